-- shards {} needs at least one pattern
return extend(require "common", {
    data = shards {},
})
