"""evaluate averages the accuracies of the batches, which weighs a small last batch as much as a full one."""


def evaluate(model, loader, device):
    model.eval()
    accuracies = []
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            accuracies.append((model(inputs).argmax(dim=1) == labels).float().mean().item())
    return sum(accuracies) / len(accuracies)
