"""Test-cell helpers of the PyTorch exercises (05, 06): they run the student's objects where those live.

In a notebook (Jupyter, Colab, stock ``nbgrader autograde``) every function here is an ordinary function and the
test cells run as plain Python. The course's grader runs the test cells in a trusted process apart from the
student's kernel (``autograder/trusted_runner.py``); there the functions listed in its ``KERNEL_CALLS`` are called
*in the student's kernel*, on the student's objects, and send back data only (tensors, numbers, strings, lists,
dicts): outputs, gradients, parameters, recorded modes. Objects that are not data (a model, a loader) stay in the
kernel behind handles whose methods the test can call. The assertions and every reference computation (PyTorch
autograd of the reference formula, reference layers, the validation data and its labels) stay in the trusted
process. So nothing here decides a test: what these functions return is the student's result, checked like any
other, and a submission that changes them only changes its own result.

* :func:`student_side` keeps an object of the test (a toy model, an optimizer) where the student's code runs, so
  that the changes the student's function makes to it can be read back afterwards.
* :func:`function_gradients` applies a ``torch.autograd.Function`` and differentiates through it.
* :func:`parameter_gradients` and :func:`describe_module` tell what a module computes and holds.
* :class:`Recorder` is a tiny model that records the training mode and the gradient mode of every call.
* :func:`train_fashion_mnist` trains a fresh model of the student's class with the course's :func:`fit`; the
  test then measures it with :func:`accuracy_of` on validation images and labels of its own.
* :func:`seconds_per_batch` times training steps (a best-effort guard of the grader's time).
* :func:`state_of` and :func:`gradients_of` read back what the student's code left in a model (its parameters and
  buffers, its gradients) as tensors, which the test compares with a reference computed on its own copy;
  :func:`train_on_batch` runs the chapter's "overfit one batch" loop on the student's model where it lives.

Rules that can only be checked inside the student's process (e.g. ``forbid_autograd``: no autograd call inside a
hand-written backward) are best-effort there: the grader flags them as such. This module holds no solution.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from dlcourse.testing import assert_shape

__all__ = ["student_side", "function_gradients", "parameter_gradients", "describe_module", "Recorder",
           "train_fashion_mnist", "accuracy_of", "seconds_per_batch", "state_of", "gradients_of",
           "train_on_batch"]


def student_side(obj: Any) -> Any:
    """``obj`` itself, kept where the student's code runs (in a notebook: here).

    Use it for objects of the test whose state the student's function changes and the test reads afterwards
    (a model trained by ``train_one_epoch``, a probe that records calls). Keep a copy of your own for reference
    computations: what is read back from ``obj`` is what the student's code left in it.
    """
    return obj


class _AutogradCalled(Exception):
    pass


def function_gradients(function, inputs: Iterable, grad_out: torch.Tensor | None = None, *,
                       forbid_autograd: bool = False) -> dict:
    """Apply ``function.apply(*inputs)`` and backpropagate ``grad_out`` (default: ones) through it.

    The inputs are copied first (the caller's tensors get no ``.grad``); a copy requires a gradient when its
    input does.

    Args:
        forbid_autograd: make ``torch.autograd.grad`` and ``Tensor.backward`` fail while the backward pass runs
            (a hand-written backward must not call autograd); ``autograd_called`` then says whether it tried.

    Returns:
        ``{"out": the output (detached), "grads": one gradient per input (None where there is none),
        "grad_fn": the name of the output's grad_fn type (None when the output has none),
        "autograd_called": bool}``.
    """
    copies = tuple(t.detach().clone().requires_grad_(t.requires_grad) if isinstance(t, torch.Tensor) else t
                   for t in inputs)
    out = function.apply(*copies)
    result = {"out": out.detach() if isinstance(out, torch.Tensor) else out, "grads": (None,) * len(copies),
              "grad_fn": None, "autograd_called": False}
    if not isinstance(out, torch.Tensor) or out.grad_fn is None:
        return result
    result["grad_fn"] = type(out.grad_fn).__name__
    grad_out = torch.ones_like(out) if grad_out is None else grad_out
    backward, real_grad, real_backward = torch.autograd.backward, torch.autograd.grad, torch.Tensor.backward
    called = []

    def refuse(*args, **kwargs):
        called.append(True)
        raise _AutogradCalled("autograd called inside a hand-written backward pass")

    if forbid_autograd:
        torch.autograd.grad, torch.Tensor.backward = refuse, refuse
    try:
        backward(out, grad_out)
    except Exception:   # noqa: BLE001 - an error of the student's backward, or the refusal above
        if not called:
            raise
    finally:
        torch.autograd.grad, torch.Tensor.backward = real_grad, real_backward
    result["autograd_called"] = bool(called)
    result["grads"] = tuple(t.grad.detach().clone() if isinstance(t, torch.Tensor) and t.grad is not None else None
                            for t in copies)
    return result


def parameter_gradients(model: nn.Module, inputs: torch.Tensor) -> dict:
    """The gradient of ``model(inputs).sum()`` with respect to every named parameter (None where none reaches
    it), after ``model.zero_grad()``."""
    model.zero_grad()
    model(inputs).sum().backward()
    return {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}


def describe_module(model: Any, kinds: Iterable[type] = ()) -> dict:
    """What a model is: ``{"is_module", "n_parameters", "all_trainable", "counts"}``, where ``counts`` gives, for
    each class in ``kinds`` (e.g. ``nn.Conv2d``), how many of the model's submodules are instances of it."""
    if not isinstance(model, nn.Module):
        return {"is_module": False, "n_parameters": 0, "all_trainable": False, "counts": {}}
    parameters = list(model.parameters())
    return {"is_module": True, "n_parameters": int(sum(p.numel() for p in parameters)),
            "all_trainable": all(p.requires_grad for p in parameters),
            "counts": {kind.__name__: sum(isinstance(m, kind) for m in model.modules()) for kind in kinds}}


class Recorder(nn.Module):
    """A linear model that records, at every call, whether it was in training mode (``modes``) and whether
    gradients were being recorded (``grad_enabled``)."""

    def __init__(self, in_features: int = 2, out_features: int = 3):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.modes: list[bool] = []
        self.grad_enabled: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.linear(x)


def train_fashion_mnist(make_model: Callable[[], nn.Module], *, epochs: int, lr: float, schedule: str = "cosine",
                        batch_size: int = 128, seed: int = 0, device=None) -> nn.Module:
    """A fresh ``make_model()`` trained by the course's :func:`~dlcourse.torch_utils.fit` on Fashion-MNIST's
    training images less the 5,000 validation images (:func:`~dlcourse.torch_utils.fashion_mnist_loaders` with
    ``seed``): Adam with learning rate ``lr``, decayed along a cosine over the epochs (``schedule="cosine"``) or
    by a one-cycle policy per batch (``"onecycle"``). Returns the model on the CPU, in evaluation mode."""
    from dlcourse.torch_utils import fashion_mnist_loaders, fit, get_device

    device = torch.device(device) if device is not None else get_device()
    torch.manual_seed(seed)
    data = fashion_mnist_loaders(batch_size=batch_size, seed=seed)
    model = make_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        fit(model, data.train, optimizer, epochs=epochs, device=device, scheduler=scheduler, show_progress=False)
    elif schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs,
                                                        steps_per_epoch=len(data.train))
        fit(model, data.train, optimizer, epochs=epochs, device=device, batch_scheduler=scheduler,
            show_progress=False)
    else:
        raise ValueError(f"schedule should be 'cosine' or 'onecycle', got {schedule!r}")
    return model.cpu().eval()


def accuracy_of(model, loader, n_classes: int = 10) -> float:
    """The fraction of the examples of ``loader`` whose largest logit of ``model(inputs)`` is at the label.

    The labels never leave this function: only the inputs are given to the model (on the CPU).
    """
    right, seen = 0, 0
    for inputs, labels in loader:
        with torch.no_grad():
            logits = model(inputs)
        if isinstance(logits, torch.Tensor):
            logits = logits.detach().cpu().numpy()
        logits = np.asarray(logits, dtype=float)
        assert_shape(logits, (len(inputs), n_classes), "the logits of your model for a batch of images")
        right += int((logits.argmax(axis=1) == np.asarray(labels)).sum())
        seen += len(labels)
    return right / seen


def seconds_per_batch(model: nn.Module, batches: list, device=None) -> float:
    """The shortest time one training step of ``model`` took over ``batches`` (the first is a warm-up)."""
    from dlcourse.torch_utils import fit, get_device

    device = torch.device(device) if device is not None else get_device()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    times = []
    for batch in batches:
        start = time.perf_counter()
        fit(model, [batch], optimizer, epochs=1, device=device, show_progress=False)
        times.append(time.perf_counter() - start)
    return min(times[1:] or times)


def state_of(model: nn.Module) -> dict:
    """The parameters and buffers of ``model`` (its ``state_dict``) as a plain dict of detached tensor copies.

    A test loads them into a copy of its own (``reference.load_state_dict(state_of(model))``) to measure what the
    student's code left in the model (weights, running statistics) with its own computations.
    """
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def gradients_of(model: nn.Module) -> dict:
    """The ``.grad`` of every named parameter of ``model`` (a detached copy; None where there is none)."""
    return {name: None if p.grad is None else p.grad.detach().clone() for name, p in model.named_parameters()}


def train_on_batch(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, steps: int,
                   lr: float) -> None:
    """Train ``model`` on the one batch ``(inputs, labels)``: ``steps`` steps of Adam with learning rate ``lr`` on
    ``F.cross_entropy(model(inputs), labels)`` (the chapter's first sanity check: a network can overfit a small
    batch). The test then asks the model for its logits on the batch and computes the loss itself."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
