-- eval takes a set or a split, not both
return extend(require "common", {
    eval = {
        data = images { dir = "val/" },
        split = 0.1,
    },
})
