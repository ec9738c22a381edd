"""evaluate switches the model to evaluation mode and leaves it there: training continues without dropout."""


def evaluate(model, loader):
    device = next(model.parameters()).device
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            correct += (model(inputs).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count
