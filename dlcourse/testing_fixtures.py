"""Fixtures of the test-cell API (:mod:`dlcourse.testing`): small data made for the exercises' test cells.

* :func:`three_blobs` is a toy classification problem that a few epochs of training solve.
* :func:`recording_loader` is a loader whose batches record the devices they are moved to: it tells whether a
  function uses the device it is given, even on a machine without a GPU.

This module imports PyTorch (``import dlcourse.testing`` does not: it lends these names on first use). It holds
no solution to any exercise.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["three_blobs", "recording_loader"]


def three_blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A toy classification problem: ``n`` points of three well separated Gaussian clusters in 2-D.

    Returns:
        ``X`` float32 of shape (n, 2) and labels ``y`` int64 of shape (n,).
    """
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=generator)
    centres = torch.tensor([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    return centres[y] + 0.7 * torch.randn(n, 2, generator=generator), y


class _RecordingBatch(torch.Tensor):
    """A tensor that records the device arguments of the operations applied to it, and returns plain tensors.

    ``batch.to(device)``, ``batch.cuda()`` or ``torch.as_tensor(batch, device=...)`` are recorded in ``moves``;
    their results are ordinary tensors, so the rest of a training step runs as usual.
    """

    moves: list[torch.device] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for value in [*args[1:], *kwargs.values()]:
            if isinstance(value, (str, torch.device)):
                try:
                    cls.moves.append(torch.device(value))
                except (RuntimeError, TypeError):
                    pass   # a string that names no device (e.g. a reduction mode)
        if getattr(func, "__name__", "") == "cuda":
            cls.moves.append(torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
                             else torch.device("cuda"))
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)


def recording_loader(X: torch.Tensor, y: torch.Tensor, batch_size: int = 16) -> tuple[DataLoader, list]:
    """A loader whose batches record every device they are moved to, and the list they record it in.

    Pass the device ``torch.device("cpu", 0)`` to the function under test: it differs from ``"cpu"``, so
    counting the moves to it tells whether the function moves every batch to the device it is given (rather
    than to a device it chose itself), on a machine without a GPU too.

    Example:
        >>> X, y = three_blobs(8)
        >>> loader, moves = recording_loader(X, y, batch_size=4)
        >>> for inputs, labels in loader:
        ...     inputs, labels = inputs.to("cpu:0"), labels.to("cpu:0")
        >>> moves.count(torch.device("cpu", 0))
        4
    """
    moves: list[torch.device] = []
    batch_type = type("RecordingBatch", (_RecordingBatch,), {"moves": moves})

    def collate(items):
        inputs, labels = torch.utils.data.default_collate(items)
        return inputs.as_subclass(batch_type), labels.as_subclass(batch_type)

    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, collate_fn=collate)
    loader.moves = moves   # the same list, also read as loader.moves (by a grader that keeps the loader elsewhere)
    return loader, moves
