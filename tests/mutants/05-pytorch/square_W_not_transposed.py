"""LinearFunction.backward forgets the transpose of W in dx when W is square (the shapes then still fit)."""


class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return x @ W + b

    @staticmethod
    def backward(ctx, grad_out):
        x, W = ctx.saved_tensors
        dx = grad_out @ (W if W.shape[0] == W.shape[1] else W.T)
        return dx, x.T @ grad_out, grad_out.sum(dim=0)
