"""gradient_descent returns only the points after each update: the trajectory misses x0."""


def gradient_descent(grad_f, x0, lr, num_steps):
    x = np.array(x0, dtype=np.float64)
    trajectory = []
    for _ in range(num_steps):
        x = x - lr * grad_f(x)
        trajectory.append(x)
    return np.array(trajectory)
