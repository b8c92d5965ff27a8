-- samples is a key of synthetic data
return extend(require "common", {
    data = images { dir = "train/", samples = 8 },
})
