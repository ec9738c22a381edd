"""rmsprop_step adds eps under the square root, sqrt(s + eps), instead of to the root, sqrt(s) + eps."""


def rmsprop_step(param, grad, state, lr, alpha, eps):
    square_avg = alpha * state.get("square_avg", 0.0) + (1 - alpha) * grad ** 2
    return param - lr * grad / np.sqrt(square_avg + eps), {"square_avg": square_avg}
