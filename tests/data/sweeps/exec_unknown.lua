-- exec_unknown.lua - a run that waits for a run the sweep does not have.
local base = require "exec_base"
return sweep {
    name = "unknown",
    base = base,
    runs = { extend(base, { name = "a" }) },
    after = { a = "nowhere" },
}
