"""mlp_forward applies a ReLU after the last layer too, so negative logits are clipped to 0."""


def mlp_forward(params, X):
    caches = []
    out = X
    for k in range(1, len(params) // 2 + 1):
        out, linear_cache = linear_forward(out, params[f"W{k}"], params[f"b{k}"])
        out, relu_cache = relu_forward(out)
        caches.append((linear_cache, relu_cache))
    return out, caches
