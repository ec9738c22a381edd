"""mse_loss sums the squared differences instead of averaging them (missing mean)."""


def mse_loss(y_pred, y):
    return float(np.sum((np.asarray(y_pred, dtype=float) - np.asarray(y, dtype=float)) ** 2))
