"""minibatches shuffles with np.random's global state instead of the rng it is given."""


def minibatches(n, batch_size, rng):
    order = np.random.permutation(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]
