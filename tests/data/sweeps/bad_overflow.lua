-- bad_overflow.lua - a grid whose size overflows 64 bits.
local base = require "base"
local l = {}
for i = 1, 100000 do
    l[i] = i
end
return sweep {
    base = base,
    grid = {
        ["schedule.steps"] = l,
        ["schedule.batch_size"] = l,
        ["data.samples"] = l,
        ["schedule.warmup_steps"] = l,
    },
}
