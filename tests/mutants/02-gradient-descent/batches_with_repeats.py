"""minibatches draws the indices with replacement, so some repeat and others are missing."""


def minibatches(n, batch_size, rng):
    order = rng.integers(0, n, size=n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]
