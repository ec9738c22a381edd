"""MLP ends with a ReLU: negative logits are cut to 0, so a class can never be ruled out."""


class MLP(nn.Module):
    def __init__(self, in_features=784, hidden=128, n_classes=10):
        super().__init__()
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(in_features, hidden)
        self.output = nn.Linear(hidden, n_classes)

    def forward(self, x):
        return torch.relu(self.output(torch.relu(self.hidden(self.flatten(x)))))
