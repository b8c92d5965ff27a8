-- a typo inside model
return extend(require "common", {
    model = {
        dept = 2,
    },
})
