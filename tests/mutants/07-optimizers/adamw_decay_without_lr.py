"""adamw_step shrinks the parameter by 1 - weight_decay, forgetting the learning rate in the decay factor."""


def adamw_step(param, grad, state, lr, beta1, beta2, eps, weight_decay):
    step = state.get("step", 0) + 1
    m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param * (1 - weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": step, "m": m, "v": v}
