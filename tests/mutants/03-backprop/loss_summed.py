"""softmax_cross_entropy sums the loss (and its gradient) over the batch instead of averaging."""


def softmax_cross_entropy(logits, y):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    loss = -(shifted - np.log(sum_exp))[np.arange(n), y].sum()
    dlogits = exp / sum_exp
    dlogits[np.arange(n), y] -= 1
    return float(loss), dlogits
