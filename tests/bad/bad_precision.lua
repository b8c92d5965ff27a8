-- there is no fp64 precision
return extend(require "common", {
    precision = "fp64",
})
