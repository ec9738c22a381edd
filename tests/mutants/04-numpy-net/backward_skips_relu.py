"""mlp_backward forgets the ReLU's backward pass: the gradient flows through the hidden layers as if they were
linear."""


def mlp_backward(dlogits, caches):
    grads = {}
    dout = dlogits
    for k in range(len(caches), 0, -1):
        linear_cache, _ = caches[k - 1]
        dout, grads[f"W{k}"], grads[f"b{k}"] = linear_backward(dout, linear_cache)
    return grads
