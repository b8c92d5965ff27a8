-- every pipeline needs a model
return {
    data = { source = "synthetic", samples = 8, classes = 4, image_size = { 16, 16 } },
    strategy = full {},
    optimizer = { kind = "sgd", lr = 0.1 },
    schedule = { steps = 4, batch_size = 2 },
}
