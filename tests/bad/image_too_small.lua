-- smaller than one merged patch (patch 2 x merge 2 = 4 pixels)
return extend(require "common", {
    data = { image_size = { 2, 16 } },
})
