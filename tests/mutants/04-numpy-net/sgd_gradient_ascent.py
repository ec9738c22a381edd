"""sgd_step adds the gradient instead of subtracting it (gradient ascent)."""


def sgd_step(params, grads, lr):
    for name, grad in grads.items():
        params[name] += lr * grad
