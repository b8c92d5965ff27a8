-- bad_choice.lua - an empty choice.
return sweep {
    base = require "base",
    random = { n = 4, space = { ["strategy.rank"] = choice {} } },
}
