"""train_mlp records the accuracy on the training data as the validation accuracy."""


def train_mlp(X_train, y_train, X_val, y_val, layer_sizes, lr, epochs, batch_size, seed=0):
    dtype = X_train.dtype if np.issubdtype(X_train.dtype, np.floating) else np.float64
    params = {name: value.astype(dtype) for name, value in init_params(layer_sizes, seed).items()}
    rng = np.random.default_rng(seed)
    history = {"train_loss": [], "val_acc": []}
    n = X_train.shape[0]
    for _ in range(epochs):
        order = rng.permutation(n)
        total_loss = 0.0
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            logits, caches = mlp_forward(params, X_train[batch])
            loss, dlogits = softmax_cross_entropy(logits, y_train[batch])
            sgd_step(params, mlp_backward(dlogits, caches), lr)
            total_loss += loss * len(batch)
        history["train_loss"].append(total_loss / n)
        train_logits, _ = mlp_forward(params, X_train)
        history["val_acc"].append(float(np.mean(train_logits.argmax(axis=1) == y_train)))
    return params, history
