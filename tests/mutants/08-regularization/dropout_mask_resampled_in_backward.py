"""dropout_backward draws a new mask (with the same p) instead of reusing the forward pass's mask from the cache."""


def dropout_backward(dout, cache):
    scale = cache["mask"].max()
    p = 1 - 1 / scale if scale > 0 else 0.0
    fresh = (np.random.default_rng().random(dout.shape) >= p) * scale
    return dout * fresh
