-- load of precompiled bytecode is refused
local f = load(string.dump(function() return 1 end))
return require "common"
