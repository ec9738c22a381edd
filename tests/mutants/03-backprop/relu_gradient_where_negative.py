"""relu_backward passes the gradient through where x < 0 (only x == 0 is blocked)."""


def relu_backward(dout, cache):
    x = cache
    return dout * (x != 0)
