"""numerical_gradient uses forward differences (f(x + h e_i) - f(x)) / h instead of centred ones."""


def numerical_gradient(f, x, h=1e-5):
    x_work = np.array(x, dtype=np.float64)
    f_x = f(x_work)
    grad = np.zeros_like(x_work)
    for index in np.ndindex(x_work.shape):
        original = x_work[index]
        x_work[index] = original + h
        grad[index] = (f(x_work) - f_x) / h
        x_work[index] = original
    return grad
