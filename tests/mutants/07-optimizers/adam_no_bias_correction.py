"""adam_step leaves out the bias correction: it divides m by sqrt(v) + eps as they are."""


def adam_step(param, grad, state, lr, beta1, beta2, eps):
    step = state.get("step", 0) + 1
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad ** 2
    return param - lr * m / (np.sqrt(v) + eps), {"step": step, "m": m, "v": v}
