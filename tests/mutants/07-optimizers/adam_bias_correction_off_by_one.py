"""adam_step corrects the bias with the step count of the next step (t + 1 at the first step, not 1)."""


def adam_step(param, grad, state, lr, beta1, beta2, eps):
    step = state.get("step", 1) + 1
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": step, "m": m, "v": v}
