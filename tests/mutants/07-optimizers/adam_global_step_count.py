"""adam_step counts the steps on the function itself, one count shared by all the parameters, not in the state."""


def adam_step(param, grad, state, lr, beta1, beta2, eps):
    adam_step.steps = getattr(adam_step, "steps", 0) + 1
    step = adam_step.steps
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), {"m": m, "v": v}
