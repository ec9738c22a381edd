"""batchnorm_forward normalises correctly in evaluation mode but still updates the running statistics there."""


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    n = x.shape[0]
    if training and n < 2:
        raise ValueError("training mode needs more than one example")
    mean, var = x.mean(axis=0), x.var(axis=0)
    if training:
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat = (x - mean) * inv_std
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        x_hat = (x - running_mean) * inv_std
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / max(n - 1, 1)
    return gamma * x_hat + beta, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "training": bool(training)}, \
        new_mean, new_var
