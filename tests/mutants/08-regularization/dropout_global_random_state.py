"""dropout_forward draws its mask from NumPy's global generator (np.random.rand) instead of rng: not reproducible."""


def dropout_forward(x, p, training, rng):
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if training and p > 0:
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)
    else:
        mask = np.ones(x.shape)
    return x * mask, {"mask": mask}
