"""dropout_forward ignores `training`: it drops entries in evaluation mode too."""


def dropout_forward(x, p, training, rng):
    if not 0 <= p < 1:
        raise ValueError(f"p must be in [0, 1), got {p}")
    mask = (rng.random(x.shape) >= p) / (1 - p)
    return x * mask, {"mask": mask}
