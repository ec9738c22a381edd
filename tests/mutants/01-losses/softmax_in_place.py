"""softmax subtracts the row maximum in place, modifying the caller's logits."""


def softmax(logits):
    logits -= np.max(logits, axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / np.sum(exp, axis=1, keepdims=True)
