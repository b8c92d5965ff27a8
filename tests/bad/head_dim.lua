-- 24 / 4 = 6: the rotary embedding needs head_dim % 4 == 0
return extend(require "common", {
    model = {
        hidden_size = 24,
        num_heads = 4,
    },
})
