"""mae_loss forgets the absolute value, so positive and negative errors cancel."""


def mae_loss(y_pred, y):
    return float(np.mean(np.asarray(y_pred, dtype=float) - np.asarray(y, dtype=float)))
