-- block 4 does not exist in a tower of depth 4
return extend(require "common", {
    model = { fullatt_block_indexes = { 1, 4 } },
})
