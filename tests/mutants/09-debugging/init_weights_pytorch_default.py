"""init_weights keeps PyTorch's default scale, std sqrt(1 / (3 fan_in)), instead of He's sqrt(2 / fan_in)."""


def init_weights(model):
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    for layer in linears:
        nn.init.kaiming_uniform_(layer.weight, a=5 ** 0.5)
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        linears[-1].weight.mul_(0.01)
