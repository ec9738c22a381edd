"""two_layer_net_loss adds the L2 term to the loss but not to the gradients of W1 and W2."""


def two_layer_net_loss(params, X, y, reg=0.0):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    hidden, cache_hidden = linear_forward(X, W1, b1)
    activated, cache_relu = relu_forward(hidden)
    logits, cache_logits = linear_forward(activated, W2, b2)
    data_loss, dlogits = softmax_cross_entropy(logits, y)
    loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    dactivated, dW2, db2 = linear_backward(dlogits, cache_logits)
    _, dW1, db1 = linear_backward(relu_backward(dactivated, cache_relu), cache_hidden)
    return float(loss), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
