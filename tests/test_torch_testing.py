"""dlcourse.torch_testing, the helpers the PyTorch exercises' test cells call on the student's objects (in a
notebook they run in place; the grader runs them in the student's kernel and checks what they return)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlcourse.torch_testing import (Recorder, accuracy_of, describe_module, function_gradients, gradients_of,
                                    parameter_gradients, state_of, student_side, train_on_batch)


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        return x @ W

    @staticmethod
    def backward(ctx, grad_out):
        x, W = ctx.saved_tensors
        return grad_out @ W.T, x.T @ grad_out


class LinearByAutograd(Linear):
    @staticmethod
    def backward(ctx, grad_out):
        x, W = ctx.saved_tensors
        with torch.enable_grad():
            xr, Wr = x.detach().requires_grad_(True), W.detach().requires_grad_(True)
            return torch.autograd.grad(xr @ Wr, (xr, Wr), grad_out)


def test_function_gradients_differentiates_copies_and_reports_autograd_in_backward():
    x, W = torch.randn(3, 2, requires_grad=True), torch.randn(2, 4)
    result = function_gradients(Linear, (x, W), torch.ones(3, 4))
    assert x.grad is None, "the caller's tensors are left alone"
    assert result["grad_fn"] == "LinearBackward" and not result["autograd_called"]
    assert torch.allclose(result["grads"][0], torch.ones(3, 4) @ W.T) and result["grads"][1] is None
    assert torch.allclose(result["out"], x.detach() @ W)
    assert function_gradients(LinearByAutograd, (x, W))["autograd_called"] is False
    refused = function_gradients(LinearByAutograd, (x, W), forbid_autograd=True)
    assert refused["autograd_called"] is True and refused["grads"] == (None, None)
    assert torch.autograd.grad is not None and torch.autograd.grad.__module__ == "torch.autograd"   # restored


def test_module_helpers_and_the_recorder():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    assert describe_module(model, kinds=(nn.Linear, nn.Conv2d)) == {
        "is_module": True, "n_parameters": 2 * 3 + 3 + 3 * 2 + 2, "all_trainable": True,
        "counts": {"Linear": 2, "Conv2d": 0}}
    assert describe_module(object())["is_module"] is False
    gradients = parameter_gradients(model, torch.randn(5, 2))
    assert set(gradients) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert student_side(model) is model
    recorder = Recorder().eval()
    with torch.no_grad():
        recorder(torch.ones(1, 2))
    recorder.train()(torch.ones(1, 2))
    assert recorder.modes == [False, True] and recorder.grad_enabled == [False, True]


def test_accuracy_of_counts_examples_and_checks_the_logits_shape():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [5.0, 4.0]])   # predicted 0, 1, 0, 1, 0
    y = torch.tensor([0, 1, 1, 1, 1])
    identity = nn.Linear(2, 2)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(2))
        identity.bias.zero_()
    assert accuracy_of(identity, DataLoader(TensorDataset(X, y), batch_size=2), n_classes=2) == 3 / 5
    try:
        accuracy_of(identity, DataLoader(TensorDataset(X, y), batch_size=2), n_classes=10)
    except AssertionError as error:
        assert "logits of your model" in str(error)
    else:
        raise AssertionError("a wrong number of logits must fail")


def test_state_gradients_and_one_batch_training_read_back_what_a_model_holds():
    """09-debugging's helpers: state_of gives detached copies of parameters and buffers (a plain dict, which crosses
    to the grader as data), gradients_of the .grad of each parameter, train_on_batch overfits one batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    state = state_of(model)
    assert type(state) is dict and set(state) == set(model.state_dict())
    assert "1.running_mean" in state and not state["0.weight"].requires_grad
    state["0.weight"].zero_()
    assert model[0].weight.abs().sum() > 0, "a copy: changing it leaves the model alone"
    assert gradients_of(model) == {name: None for name, _ in model.named_parameters()}
    x, y = torch.randn(16, 3), torch.randint(0, 2, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    grads = gradients_of(model)
    assert torch.equal(grads["3.bias"], model[3].bias.grad) and grads["3.bias"] is not model[3].bias.grad
    copy = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    copy.load_state_dict(state_of(model))
    model.eval(), copy.eval()
    assert torch.equal(copy(x), model(x))
    before = nn.functional.cross_entropy(model(x), y).item()
    assert train_on_batch(model, x, y, steps=40, lr=0.05) is None
    model.eval()
    assert nn.functional.cross_entropy(model(x), y).item() < min(0.1, before)
