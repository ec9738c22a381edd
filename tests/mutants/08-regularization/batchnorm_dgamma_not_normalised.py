"""batchnorm_backward computes dgamma from the centred input x - mean instead of the normalised x_hat."""


def batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dx_hat = dout * gamma
    if cache["training"]:
        dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    else:
        dx = dx_hat * inv_std
    return dx, (dout * x_hat / inv_std).sum(axis=0), dout.sum(axis=0)
