"""batchnorm_backward forgets the path through the batch mean: dx lacks the - mean(gamma * dout) term."""


def batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dx_hat = dout * gamma
    if cache["training"]:
        dx = inv_std * (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0))
    else:
        dx = dx_hat * inv_std
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
