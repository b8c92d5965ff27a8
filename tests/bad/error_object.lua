-- error() with a table: still a one-line message with a position
error({ reason = "no" })
return require "common"
