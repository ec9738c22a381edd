"""sgd_linear_regression records the full-data loss before each epoch's updates instead of after them."""


def sgd_linear_regression(X, y, lr, epochs, batch_size, seed=0):
    n, d = X.shape
    w, b = np.zeros(d), 0.0
    rng = np.random.default_rng(seed)
    losses = np.empty(epochs)
    for epoch in range(epochs):
        losses[epoch] = np.mean((X @ w + b - y) ** 2)
        for batch in minibatches(n, batch_size, rng):
            residual = X[batch] @ w + b - y[batch]
            dw = 2 * X[batch].T @ residual / len(batch)
            db = 2 * residual.mean()
            w, b = w - lr * dw, b - lr * db
    return w, float(b), losses
