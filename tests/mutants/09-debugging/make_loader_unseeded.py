"""make_loader shuffles with the global random generator: the seed no longer decides the order of the epochs."""


def make_loader(X, y, batch_size, seed=0):
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
