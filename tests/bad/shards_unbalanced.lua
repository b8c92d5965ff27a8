-- a brace range left open
return extend(require "common", {
    data = shards {
        "train-{000..003}.tar",
        "val-{000..003.tar",
    },
})
