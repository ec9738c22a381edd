"""MLP has no activation between its two linear layers: the whole network is one linear map."""


class MLP(nn.Module):
    def __init__(self, in_features=784, hidden=256, out_features=10):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.Linear(hidden, out_features))

    def forward(self, x):
        return self.layers(x)
