"""linear_backward computes dW as dout.T @ x: a missing transpose gives the transpose of dW, of shape (M, D)."""


def linear_backward(dout, cache):
    x, W = cache
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)
