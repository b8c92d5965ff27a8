-- a declaration that wants more memory than a pipeline may use
local big = string.rep("x", 300 * 1024 * 1024)
return require "common"
