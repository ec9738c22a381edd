"""relu_forward zeroes the negative entries of its input in place, modifying the caller's array."""


def relu_forward(x):
    x[x < 0] = 0
    return x, x
