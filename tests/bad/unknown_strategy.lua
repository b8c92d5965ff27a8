-- a strategy kind that does not exist
return extend(require "common", {
    strategy = { kind = "surgry" },
})
