"""sgd_momentum_step averages the gradient into the velocity (v = momentum * v + (1 - momentum) * grad), which is
torch's dampening=momentum, not its default."""


def sgd_momentum_step(param, grad, state, lr, momentum):
    velocity = momentum * state.get("velocity", 0.0) + (1 - momentum) * grad
    return param - lr * velocity, {"velocity": velocity}
