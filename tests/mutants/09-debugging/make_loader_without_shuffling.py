"""make_loader keeps the order of the data (the defect as released): sorted labels come one class at a time."""


def make_loader(X, y, batch_size, seed=0):
    dataset = TensorDataset(X, y)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, generator=generator)
