"""adam_step updates the moving averages of the state it received in place (m *= beta1, ...)."""


def adam_step(param, grad, state, lr, beta1, beta2, eps):
    if not state:
        state = {"step": 0, "m": np.zeros_like(param), "v": np.zeros_like(param)}
    m, v = state["m"], state["v"]
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad ** 2
    step = state["step"] + 1
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": step, "m": m, "v": v}
