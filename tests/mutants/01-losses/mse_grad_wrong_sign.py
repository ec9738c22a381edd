"""mse_grad has the wrong sign: 2 (y - y_pred) / n instead of 2 (y_pred - y) / n."""


def mse_grad(y_pred, y):
    y_pred = np.asarray(y_pred, dtype=float)
    return 2.0 * (np.asarray(y, dtype=float) - y_pred) / y_pred.size
