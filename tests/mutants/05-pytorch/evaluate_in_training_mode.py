"""evaluate never calls model.eval(): dropout stays on while measuring the accuracy."""


def evaluate(model, loader, device):
    correct, count = 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            correct += (model(inputs).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count
