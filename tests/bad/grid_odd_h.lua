-- h is not a multiple of spatial_merge_size 2
local base = require "common"
base.data.image_size = nil
base.data.image_grid_thw = {
    { 1, 24, 24 },
    { 1, 23, 24 },
}
return base
