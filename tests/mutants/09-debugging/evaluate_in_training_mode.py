"""evaluate never calls model.eval() (the defect as released): dropout stays on and batch norm uses batch statistics."""


def evaluate(model, loader):
    was_training = model.training
    device = next(model.parameters()).device
    correct, count = 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            correct += (model(inputs).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    model.train(was_training)
    return correct / count
