"""error_rate returns the number of mistakes instead of their fraction."""


def error_rate(labels_pred, labels):
    return float(np.sum(np.asarray(labels_pred) != np.asarray(labels)))
