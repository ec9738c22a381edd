"""linear_backward gets its gradients from PyTorch's autograd instead of computing them."""


def linear_backward(dout, cache):
    import torch

    x, W = cache
    tx = torch.tensor(x, requires_grad=True)
    tW = torch.tensor(W, requires_grad=True)
    tb = torch.zeros(W.shape[1], dtype=tx.dtype, requires_grad=True)
    (tx @ tW + tb).backward(torch.tensor(dout))
    return tx.grad.numpy(), tW.grad.numpy(), tb.grad.numpy()
