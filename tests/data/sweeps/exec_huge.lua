-- exec_huge.lua - a grid of 10^9 points: refused before it is expanded.
local base = require "exec_base"
local ten = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }
local lrs = {}
for i = 1, 10000 do lrs[i] = i * 1e-7 end
return sweep {
    name = "huge",
    base = base,
    grid = {
        ["optimizer.lr"] = lrs,
        ["schedule.steps"] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                               21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37,
                               38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54,
                               55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71,
                               72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88,
                               89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100 },
        ["schedule.batch_size"] = ten,
        ["seed"] = ten,
        ["optimizer.weight_decay"] = ten,
    },
}
