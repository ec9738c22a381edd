"""rmsprop_step stores the new average into the caller's state dict instead of returning a new one."""


def rmsprop_step(param, grad, state, lr, alpha, eps):
    state["square_avg"] = alpha * state.get("square_avg", 0.0) + (1 - alpha) * grad ** 2
    return param - lr * grad / (np.sqrt(state["square_avg"]) + eps), state
