"""PyTorch helpers of the chapters "PyTorch", "Convolutional neural networks" and "Practical tricks".

* :func:`get_device` picks the GPU when there is one (Colab), the CPU otherwise.
* :func:`training_budget` chooses how much to train: the full run on a GPU, fewer epochs on a subset on a CPU,
  and says which, so that a chapter runs in seconds in the book build and for real on Colab.
* :func:`image_tensors`, :func:`make_loader` and :func:`fashion_mnist_loaders` turn the course's NumPy arrays
  (:func:`dlcourse.data.load_fashion_mnist`) into ``DataLoader``\\ s, without torchvision.
* :func:`fit` is the chapters' training loop (with a validation set, a progress bar and a :class:`History` of
  losses and accuracies); :func:`predict` returns a model's predicted labels.
* :func:`save_checkpoint` and :func:`load_checkpoint` save and resume a training run.
* :func:`progress` is a tqdm progress bar that never writes to stderr (see :func:`dlcourse.progress.progress`).

The test cells' guards and fixtures (``limited_threads``, ``without_training_helpers``, ``three_blobs``,
``recording_loader``) live in the test-cell API (:mod:`dlcourse.testing`); they are still importable from here
because notebooks released before the split import them from this module.

This module imports PyTorch (``import dlcourse`` does not); it holds no solution to any exercise.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from dlcourse.progress import progress
# The test cells' helpers that lived here before the split: released notebooks import them from this module.
from dlcourse.testing_fixtures import recording_loader, three_blobs  # noqa: F401
from dlcourse.testing_guards import limited_threads, without_training_helpers  # noqa: F401

__all__ = [
    "FASHION_MNIST_MEAN", "FASHION_MNIST_STD", "get_device", "TrainingBudget", "training_budget",
    "image_tensors", "make_loader", "Loaders", "fashion_mnist_loaders", "History", "fit", "predict",
    "save_checkpoint", "load_checkpoint", "progress",
]

# Mean and standard deviation of the Fashion-MNIST training pixels scaled to [0, 1] (see tests/test_torch_utils.py).
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


def get_device() -> torch.device:
    """The device to compute on: ``cuda`` when a GPU is available, else ``cpu``.

    ``DLCOURSE_DEVICE`` (e.g. ``cpu``) overrides the choice, to try the CPU path on a GPU machine.
    """
    requested = os.environ.get("DLCOURSE_DEVICE")
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------------------------
# How much to train


@dataclass(frozen=True)
class TrainingBudget:
    """How much a chapter trains on this machine.

    Attributes:
        device: where the training runs.
        epochs: passes over the training subset.
        n_train: number of training examples used.
        full_epochs, full_n_train: the budget on a GPU (or with ``DLCOURSE_FULL_TRAINING=1``).
        n_available: size of the whole training set.
    """

    device: torch.device
    epochs: int
    n_train: int
    full_epochs: int
    full_n_train: int
    n_available: int

    @property
    def reduced(self) -> bool:
        """True when this machine trains less than the full budget."""
        return (self.epochs, self.n_train) != (self.full_epochs, self.full_n_train)

    def __str__(self) -> str:
        what = _amount(self.epochs, self.n_train, self.n_available)
        if self.device.type == "cuda":
            return f"GPU detected: training {what}."
        if not self.reduced:
            return (f"{self.device.type.upper()} detected, full budget requested "
                    f"(DLCOURSE_FULL_TRAINING=1): training {what}; this takes a while.")
        full = _amount(self.full_epochs, self.full_n_train, self.n_available)
        return (f"{self.device.type.upper()} detected: training {what}; on a GPU this trains {full} "
                f"(set DLCOURSE_FULL_TRAINING=1 to do that here).")

    def subset(self, X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """A random subset of ``n_train`` examples (all of them, in their order, when it is the whole set).

        Args:
            X: inputs of shape (N, ...).
            y: labels of shape (N,).
        """
        if self.n_train >= len(X):
            return X, y
        keep = np.sort(np.random.default_rng(seed).permutation(len(X))[:self.n_train])
        return X[keep], y[keep]


def _amount(epochs: int, n_train: int, n_available: int) -> str:
    images = f"all {n_train:,}" if n_train >= n_available else f"{n_train:,}"
    return f"{epochs} epoch{'s' if epochs != 1 else ''} on {images} images"


def training_budget(epochs: int, n_train: int, *, cpu_epochs: int, cpu_n_train: int,
                    n_available: int | None = None, device: torch.device | None = None,
                    announce: bool = True) -> TrainingBudget:
    """The full budget on a GPU, the reduced ``cpu_*`` budget elsewhere; printed unless ``announce=False``.

    ``DLCOURSE_FULL_TRAINING=1`` asks for the full budget on any device.

    Args:
        epochs, n_train: the full budget (what a GPU trains).
        cpu_epochs, cpu_n_train: the budget without a GPU (the book build, a laptop).
        n_available: size of the whole training set (defaults to ``n_train``), for the message.
        device: the device that will train (default :func:`get_device`).

    Example:
        >>> budget = training_budget(10, 55_000, cpu_epochs=1, cpu_n_train=20_000, device=torch.device("cpu"),
        ...                          announce=False)
        >>> print(budget)
        CPU detected: training 1 epoch on 20,000 images; on a GPU this trains 10 epochs on all 55,000 images \
(set DLCOURSE_FULL_TRAINING=1 to do that here).
    """
    device = torch.device(device) if device is not None else get_device()
    n_available = n_train if n_available is None else n_available
    full = device.type == "cuda" or os.environ.get("DLCOURSE_FULL_TRAINING") == "1"
    budget = TrainingBudget(device, epochs if full else cpu_epochs, n_train if full else cpu_n_train,
                            epochs, n_train, n_available)
    if announce:
        print(budget)
    return budget


# ---------------------------------------------------------------------------------------------------------------
# Data


def image_tensors(X: np.ndarray) -> torch.Tensor:
    """Greyscale uint8 images of shape (N, H, W) as a float32 tensor of shape (N, 1, H, W), standardised.

    Pixels are scaled to [0, 1], then shifted and scaled by the Fashion-MNIST training mean and standard
    deviation, so that inputs have mean about 0 and standard deviation about 1.
    """
    X = np.asarray(X)
    if X.ndim != 3 or X.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, H, W), got {X.dtype} of shape {X.shape}")
    images = torch.from_numpy(X).to(torch.float32).div_(255.0)
    return images.sub_(FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD).unsqueeze(1)


def make_loader(X, y, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` of ``(inputs, labels)`` batches over arrays held in memory.

    Args:
        X: uint8 images of shape (N, H, W) (converted by :func:`image_tensors`), or any float array or tensor of
            shape (N, ...) (used as float32).
        y: integer labels of shape (N,).
        batch_size: examples per batch; the last batch may be smaller.
        shuffle: a new random order every epoch (reproducible from ``seed``), for training.
        seed: seed of the shuffling.

    Returns:
        A ``DataLoader`` over a ``TensorDataset``: ``len(loader)`` is the number of batches and
        ``len(loader.dataset)`` the number of examples. Whole batches are sliced out of the tensors at once,
        which is much faster than collating ``batch_size`` single examples.
    """
    if isinstance(X, np.ndarray) and X.dtype == np.uint8:
        inputs = image_tensors(X)
    else:
        inputs = torch.as_tensor(X, dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    if len(inputs) != len(labels):
        raise ValueError(f"X has {len(inputs)} examples but y has {len(labels)}")
    dataset = TensorDataset(inputs, labels)
    order = (RandomSampler(dataset, generator=torch.Generator().manual_seed(seed)) if shuffle
             else SequentialSampler(dataset))
    # batch_size=None: the sampler yields lists of indices and the dataset returns whole batches.
    return DataLoader(dataset, batch_size=None, sampler=BatchSampler(order, batch_size, drop_last=False))


class Loaders(NamedTuple):
    """Training, validation and test loaders; ``budget`` says how much of the training set is used."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    budget: TrainingBudget | None


def fashion_mnist_loaders(*, batch_size: int = 128, n_val: int = 5000, budget: TrainingBudget | None = None,
                          n_train: int | None = None, seed: int = 0) -> Loaders:
    """Fashion-MNIST as loaders: a shuffled training set, a validation set held out of it, the test set.

    Args:
        batch_size: examples per training batch (evaluation uses batches of 1000).
        n_val: validation examples held out of the 60,000 training images.
        budget: when given, the training set is cut to ``budget.n_train`` examples.
        n_train: the number of training examples, when no budget is given (default: all that remain).
        seed: seed of the split, the subset and the shuffling.
    """
    from dlcourse.data import load_fashion_mnist, train_val_split

    X_train, y_train, X_test, y_test = load_fashion_mnist()
    X_train, y_train, X_val, y_val = train_val_split(X_train, y_train, n_val, seed=seed)
    if budget is not None:
        X_train, y_train = budget.subset(X_train, y_train, seed=seed)
    elif n_train is not None:
        X_train, y_train = X_train[:n_train], y_train[:n_train]
    return Loaders(make_loader(X_train, y_train, batch_size=batch_size, shuffle=True, seed=seed),
                   make_loader(X_val, y_val, batch_size=1000),
                   make_loader(X_test, y_test, batch_size=1000), budget)


# ---------------------------------------------------------------------------------------------------------------
# Training


_disabled_reason: str | None = None   # set by dlcourse.testing_guards.without_training_helpers() in a test cell


def _check_enabled(name: str) -> None:
    if _disabled_reason is not None:
        raise AssertionError(f"dlcourse.torch_utils.{name} is switched off here: {_disabled_reason}")


@dataclass
class History:
    """What :func:`fit` measured, one value per epoch.

    Attributes:
        train_loss: mean training loss over the epoch's examples.
        val_loss, val_accuracy: loss and accuracy on the validation loader after the epoch (empty without one).
        lr: learning rate of the first parameter group at the end of the epoch.
        seconds: wall-clock time of each epoch.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict[str, list[float]]:
        """Plain lists, e.g. to store in a checkpoint."""
        return asdict(self)

    def plot(self, title: str = "Training curves"):
        """Loss (training and validation) and validation accuracy per epoch, side by side; returns the figure."""
        import matplotlib.pyplot as plt

        from dlcourse.plotting import plot_curves

        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
        curves = {"training loss": self.train_loss}
        if self.val_loss:
            curves["validation loss"] = self.val_loss
        plot_curves(curves, title="Loss", ax=left)
        if self.val_accuracy:
            plot_curves({"validation accuracy": self.val_accuracy}, title="Accuracy", ylabel="accuracy", ax=right)
        else:
            right.set_axis_off()
        fig.suptitle(title)
        fig.tight_layout()
        return fig


def fit(model: nn.Module, train_loader, optimizer: torch.optim.Optimizer, *, epochs: int,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None, val_loader=None,
        device: torch.device | str | None = None, scheduler=None, batch_scheduler=None,
        history: History | None = None, show_progress: bool = True) -> History:
    """Train ``model`` for ``epochs`` epochs and evaluate it on ``val_loader`` after each.

    Args:
        model: the network; it is moved to ``device``, and the optimizer's state with it.
        train_loader: iterable of ``(inputs, labels)`` batches.
        optimizer: an optimizer over ``model.parameters()``.
        epochs: number of passes over ``train_loader``.
        loss_fn: loss of ``(logits, labels)``, a batch mean (default: cross-entropy).
        val_loader: optional validation batches, evaluated without gradients in ``model.eval()`` mode.
        device: where to compute (default :func:`get_device`).
        scheduler: learning-rate scheduler stepped once per epoch.
        batch_scheduler: learning-rate scheduler stepped after every batch (e.g. ``OneCycleLR``).
        history: a :class:`History` to continue (when resuming from a checkpoint).
        show_progress: one progress bar per epoch, on stdout.

    Returns:
        The :class:`History`, extended by ``epochs`` entries.
    """
    _check_enabled("fit")
    device = torch.device(device) if device is not None else get_device()
    loss_fn = loss_fn or nn.functional.cross_entropy
    history = history if history is not None else History()
    model.to(device)
    _optimizer_state_to_parameters(optimizer)   # e.g. state loaded while the model was still on the CPU
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        batches = progress(train_loader, desc=f"epoch {history.epochs + 1}", leave=True,
                           disable=not show_progress)
        for inputs, labels in batches:
            inputs, labels = inputs.to(device), labels.to(device)
            loss = loss_fn(model(inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if batch_scheduler is not None:
                batch_scheduler.step()
            total += loss.item() * len(labels)
            count += len(labels)
            batches.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        if scheduler is not None:
            scheduler.step()
        history.train_loss.append(total / count)
        if val_loader is not None:
            val_loss, val_accuracy = _loss_and_accuracy(model, val_loader, loss_fn, device)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
            batches.set_postfix(loss=f"{total / count:.4f}", val_loss=f"{val_loss:.4f}",
                                val_acc=f"{val_accuracy:.4f}", refresh=False)
        history.lr.append(float(optimizer.param_groups[0]["lr"]))
        history.seconds.append(time.perf_counter() - start)
        batches.close()
    return history


def _loss_and_accuracy(model: nn.Module, loader, loss_fn, device: torch.device) -> tuple[float, float]:
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            logits = model(inputs)
            total_loss += loss_fn(logits, labels).item() * len(labels)
            correct += (logits.argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return total_loss / count, correct / count


def predict(model: nn.Module, loader, device: torch.device | str | None = None) -> np.ndarray:
    """Predicted labels (argmax of the logits) of every example of ``loader``, in order, as an int array (N,).

    The model is put in evaluation mode and run without gradients.
    """
    _check_enabled("predict")
    device = torch.device(device) if device is not None else get_device()
    model.to(device).eval()
    with torch.no_grad():
        parts = [model(inputs.to(device)).argmax(dim=1).cpu() for inputs, _ in loader]
    return torch.cat(parts).numpy()


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    **extra) -> Path:
    """Save the model's (and optimizer's) state and any extra values (epoch, history, ...) to ``path``.

    Only state dicts, tensors and plain Python values are stored, so :func:`load_checkpoint` can read the file
    with ``weights_only=True`` (no arbitrary code is unpickled).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "extra": extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, path)
    return path


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    device: torch.device | str | None = None) -> dict:
    """Restore a model (and optimizer) saved by :func:`save_checkpoint`; return the extra values.

    The model is moved to ``device`` first, and the optimizer's state is put on the device of its parameters, so
    model and optimizer end up on one device whether the model was moved before or after this call (a model
    moved to the GPU after ``optimizer.load_state_dict`` would leave the optimizer's state on the CPU).

    Args:
        device: where to load the tensors and put the model (default :func:`get_device`): a checkpoint saved on
            a GPU loads on a CPU-only machine too.
    """
    device = torch.device(device) if device is not None else get_device()
    state = torch.load(Path(path), map_location=device, weights_only=True)
    model.to(device)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise KeyError(f"{path} holds no optimizer state")
        optimizer.load_state_dict(state["optimizer"])
        _optimizer_state_to_parameters(optimizer)
    return state["extra"]


def _optimizer_state_to_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Move each tensor of the optimizer's state to the device of its parameter.

    The ``step`` counters stay where PyTorch keeps them (on the CPU), except for capturable or fused optimizers,
    whose counters live with the parameters.
    """
    for group in optimizer.param_groups:
        counters_move = bool(group.get("capturable") or group.get("fused"))
        for parameter in group["params"]:
            state = optimizer.state.get(parameter)
            if not state:
                continue
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.device != parameter.device and \
                        (key != "step" or counters_move):
                    state[key] = value.to(parameter.device)

