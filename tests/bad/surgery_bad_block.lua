-- the tiny tower has blocks 0..3
return extend(require "common", {
    strategy = surgery { replace = "visual.blocks.4.attn.qkv" },
})
