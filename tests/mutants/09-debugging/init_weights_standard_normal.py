"""init_weights draws weights of standard deviation 1 (the defect as released): the initial loss is far above ln C."""


def init_weights(model):
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    for layer in linears:
        nn.init.normal_(layer.weight, std=1.0)
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        linears[-1].weight.mul_(0.01)
