-- a pipeline that forgets to return its declaration
local base = require "common"
base.seed = 3
