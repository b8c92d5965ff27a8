-- require may not leave the pipeline's directory
local base = require "../../pipelines/base"
return base
