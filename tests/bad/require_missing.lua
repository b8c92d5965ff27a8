-- a module that is not in the search path
return require "no_such_base"
