"""sgd_step returns updated copies instead of updating params in place: the caller's parameters never change."""


def sgd_step(params, grads, lr):
    params = {name: value - lr * grads[name] for name, value in params.items()}
    return params
