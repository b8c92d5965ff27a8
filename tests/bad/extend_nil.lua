-- extend of a module that returned nothing useful
local base = nil
return extend(base, { seed = 1 })
