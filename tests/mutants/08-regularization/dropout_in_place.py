"""dropout_forward multiplies x by the mask in place, modifying the caller's array."""


def dropout_forward(x, p, training, rng):
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if training and p > 0:
        mask = (rng.random(x.shape) >= p) / (1 - p)
    else:
        mask = np.ones(x.shape)
    x *= mask
    return x, {"mask": mask}
