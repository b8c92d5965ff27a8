-- a Lua error while declaring
local base = require "common"
local settings = nil
base.seed = settings.seed
return base
