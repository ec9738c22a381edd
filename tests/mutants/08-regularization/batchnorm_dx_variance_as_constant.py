"""batchnorm_backward treats the batch variance as a constant: dx lacks the - x_hat * mean(gamma * dout * x_hat) term."""


def batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dx_hat = dout * gamma
    if cache["training"]:
        dx = inv_std * (dx_hat - dx_hat.mean(axis=0))
    else:
        dx = dx_hat * inv_std
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
