"""sgd_linear_regression sums the gradient over the batch instead of averaging it (steps grow with batch_size)."""


def sgd_linear_regression(X, y, lr, epochs, batch_size, seed=0):
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    rng = np.random.default_rng(seed)
    losses = np.empty(epochs)
    for epoch in range(epochs):
        for batch in minibatches(n, batch_size, rng):
            residual = X[batch] @ w + b - y[batch]
            dw = 2 * X[batch].T @ residual
            db = 2 * residual.sum()
            w, b = w - lr * dw, b - lr * db
        losses[epoch] = np.mean((X @ w + b - y) ** 2)
    return w, float(b), losses
