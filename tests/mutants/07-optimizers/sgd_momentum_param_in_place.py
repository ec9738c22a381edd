"""sgd_momentum_step updates the caller's parameter in place (param -= ...) and returns it."""


def sgd_momentum_step(param, grad, state, lr, momentum):
    velocity = momentum * state.get("velocity", 0.0) + grad
    param -= lr * velocity
    return param, {"velocity": velocity}
