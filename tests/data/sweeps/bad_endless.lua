-- bad_endless.lua - the sandbox's instruction limit holds in a sweep.
local base = require "base"
local n = 0
while true do
    n = n + 1
end
return sweep { base = base, grid = { ["optimizer.lr"] = { 1e-3 } } }
