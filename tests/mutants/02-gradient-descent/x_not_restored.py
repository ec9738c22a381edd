"""numerical_gradient perturbs x in place and leaves each element at x[i] - h instead of restoring it."""


def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f(x)
        x[index] = original - h
        grad[index] = (f_plus - f(x)) / (2 * h)
    return grad
