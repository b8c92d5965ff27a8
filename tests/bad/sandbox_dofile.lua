-- dofile is gone: files come in through require only
dofile("tests/bad/common.lua")
return require "common"
