"""dropout_forward drops with probability p but does not scale the kept entries by 1 / (1 - p): the mean shrinks."""


def dropout_forward(x, p, training, rng):
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    if training and p > 0:
        mask = (rng.random(x.shape) >= p).astype(float)
    else:
        mask = np.ones(x.shape)
    return x * mask, {"mask": mask}
