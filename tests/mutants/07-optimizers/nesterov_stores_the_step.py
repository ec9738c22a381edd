"""nesterov_step stores the look-ahead step grad + momentum * v as the velocity instead of v itself."""


def nesterov_step(param, grad, state, lr, momentum):
    velocity = momentum * state.get("velocity", 0.0) + grad
    update = grad + momentum * velocity
    return param - lr * update, {"velocity": update}
