"""gradient_descent stores the same array at every row and updates it in place: every row ends up the last point."""


def gradient_descent(grad_f, x0, lr, num_steps):
    x = np.array(x0, dtype=np.float64)
    trajectory = [x]
    for _ in range(num_steps):
        x -= lr * grad_f(x)
        trajectory.append(x)
    return np.array(trajectory)
