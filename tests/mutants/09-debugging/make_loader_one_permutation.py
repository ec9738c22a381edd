"""make_loader shuffles the data once: every epoch repeats the same order."""


def make_loader(X, y, batch_size, seed=0):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(X[order], y[order]), batch_size=batch_size)
