-- exec_detach_s1.lua - the point detach-s1 of exec_mix.lua as a plain
-- pipeline: `orch run` of it computes the tower itself, and its losses must
-- be those of the sweep's run, which read the feature stage's cache.
local base = require "exec_base"
return extend(base, { name = "detach-s1", strategy = detach {}, seed = 1 })
