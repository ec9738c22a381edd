"""minibatches cuts 0..n-1 into batches in their original order, without shuffling."""


def minibatches(n, batch_size, rng):
    order = np.arange(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]
