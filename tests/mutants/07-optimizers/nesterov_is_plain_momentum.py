"""nesterov_step takes the heavy-ball step along the velocity, without Nesterov's look-ahead."""


def nesterov_step(param, grad, state, lr, momentum):
    velocity = momentum * state.get("velocity", 0.0) + grad
    return param - lr * velocity, {"velocity": velocity}
