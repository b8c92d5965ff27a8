-- bad_huge.lua - a grid of 10^9 points, from three lists of 1000.
local base = require "base"
local l = {}
for i = 1, 1000 do
    l[i] = i
end
return sweep {
    base = base,
    grid = {
        ["schedule.steps"] = l,
        ["schedule.batch_size"] = l,
        ["data.samples"] = l,
    },
}
