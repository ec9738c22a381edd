"""gradient_descent updates x0 in place (x = x0; x -= ...), so the caller's starting point is changed."""


def gradient_descent(grad_f, x0, lr, num_steps):
    x = x0
    trajectory = [x0.copy()]
    for _ in range(num_steps):
        x -= lr * grad_f(x)
        trajectory.append(x.copy())
    return np.array(trajectory)
