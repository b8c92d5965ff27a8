-- a 336 x 336 image written [h, w, t] instead of [t, h, w]
return extend(require "common", {
    data = {
        image_size = unset,
        image_grid_thw = { { 24, 24, 1 } },
    },
})
