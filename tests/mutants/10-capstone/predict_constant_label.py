"""predict answers the same class for every image, without training anything (a guess scores 0.1)."""


def train_model(X_train, y_train, X_val, y_val):
    return None


def predict(images):
    return np.full(len(images), 3, dtype=np.int64)
