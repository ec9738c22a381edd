"""A simulated GPU on the CPU: finds the device bugs that only a real GPU would show, on a machine without one.

On a CPU every tensor lives on one device, so a training loop that forgets ``model.to(device)``, or an optimizer
whose state stays on the CPU after its model moved, runs fine in CI and crashes on Colab's GPU ("Expected all
tensors to be on the same device"). Inside :func:`simulated_gpu`:

* ``torch.cuda.is_available()`` is true, so :func:`dlcourse.torch_utils.get_device` (and any notebook) picks
  ``cuda``;
* ``tensor.to("cuda")``, ``.cuda()``, ``module.to(device)``, ``torch.zeros(..., device="cuda")`` and
  ``torch.load(..., map_location="cuda")`` compute on the CPU as usual but *tag* the tensors they return as being
  on ``cuda:0``; ``.device`` and ``.is_cuda`` report the tag; every operation's results carry its inputs' tag,
  ``.cpu()`` / ``.to("cpu")`` remove it;
* an operation that mixes tagged and untagged tensors raises the ``RuntimeError`` CUDA raises (a 0-dim CPU tensor
  may join GPU tensors, as on CUDA; copies and indexing may cross devices), and ``.numpy()`` of a tagged tensor
  raises CUDA's ``TypeError``;
* an optimizer step over a parameter of at least ``cpu_param_limit`` values on the (untagged) CPU raises too: a
  notebook that trains on the CPU while a GPU is present is slow on Colab, a bug of its own. (A forward pass on
  the CPU, e.g. to check a shape, is fine.)

Not simulated: speed, memory, mixed precision (``torch.autocast("cuda")``), pinned memory and streams; a tensor
saved from the simulated GPU and loaded without ``map_location`` comes back on the CPU (on CUDA it would come back
on the GPU). Tensors made by C++ code that bypasses Python (rare in course code) are seen as on the CPU.

It is a development tool (``tests/test_simulated_gpu.py``, ``bench/gpu_check.py --simulate``), not part of the
course's lessons. Call :func:`activate` to switch it on for the rest of a process (a notebook kernel).

Example:
    >>> import torch
    >>> with simulated_gpu():
    ...     model = torch.nn.Linear(3, 2)                  # forgot model.to(device)
    ...     x = torch.randn(4, 3).to("cuda")
    ...     model(x)
    Traceback (most recent call last):
    ...
    RuntimeError: Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! \
(in linear: a tensor of shape (4, 3) is on cuda:0, one of shape (2, 3) on cpu)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode

__all__ = ["SimulatedGPU", "simulated_gpu", "activate", "on_simulated_gpu", "DEVICE_NAME"]

DEVICE_NAME = "Simulated GPU (dlcourse.simulated_gpu, computing on the CPU)"
_GPU = torch.device("cuda", 0)
_CPU = torch.device("cpu")
_TAG = "_dlcourse_simulated_gpu"
_Base = torch._C.TensorBase

# Operations that may take tensors of two devices (as on CUDA): copies, indexing, printing.
_CROSS_DEVICE = {_Base.copy_, torch.Tensor.__setitem__, torch.Tensor.__getitem__, torch.Tensor.__repr__,
                 torch.Tensor.__format__, torch.Tensor.__str__, torch._has_compatible_shallow_copy_type}


def on_simulated_gpu(tensor: torch.Tensor) -> bool:
    """True when ``tensor`` was placed on the simulated GPU."""
    return bool(getattr(tensor, _TAG, False))


def _tag(tensor: Any, on_gpu: bool) -> None:
    if isinstance(tensor, torch.Tensor):
        if on_gpu:
            setattr(tensor, _TAG, True)
        elif _TAG in getattr(tensor, "__dict__", {}):
            delattr(tensor, _TAG)


def _tensors(value: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif depth < 4 and isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, depth + 1)


def _device_target(value: Any) -> bool | None:
    """True for a CUDA device, False for the CPU, None for anything else (a dtype, a non-device string)."""
    if isinstance(value, torch.device):
        device = value
    elif isinstance(value, str):
        try:
            device = torch.device(value)
        except RuntimeError:
            return None
    else:
        return None
    return {"cuda": True, "cpu": False}.get(device.type)


def _mixing_error(func, gpu: torch.Tensor, cpu: torch.Tensor) -> RuntimeError:
    name = getattr(func, "__name__", str(func))
    return RuntimeError(
        f"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! (in "
        f"{name}: a tensor of shape {tuple(gpu.shape)} is on cuda:0, one of shape {tuple(cpu.shape)} on cpu)")


class SimulatedGPU(TorchFunctionMode):
    """The torch function mode behind :func:`simulated_gpu` (see the module's documentation).

    Args:
        cpu_param_limit: an optimizer step over a CPU parameter of at least this many values raises (see
            :func:`simulated_gpu`); ``None`` allows training on the CPU.
    """

    def __init__(self, cpu_param_limit: int | None = 10_000):
        super().__init__()
        self.cpu_param_limit = cpu_param_limit
        self._hook = None

    def __enter__(self):
        if self.cpu_param_limit is not None:
            self._hook = register_optimizer_step_pre_hook(self._check_step)
        return super().__enter__()

    def __exit__(self, *exc):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        return super().__exit__(*exc)

    def _check_step(self, optimizer, args, kwargs) -> None:
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None and not on_simulated_gpu(parameter) \
                        and parameter.numel() >= self.cpu_param_limit:
                    raise RuntimeError(
                        f"{type(optimizer).__name__}.step() trains a parameter of shape {tuple(parameter.shape)} "
                        f"on the CPU while a GPU is available: move the model to `device` (and its batches).")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        descriptor = getattr(func, "__self__", None)
        name = getattr(func, "__name__", "")
        if descriptor is not None and name in ("__get__", "__set__") and args:
            return self._attribute(func, descriptor, name, args, kwargs)
        if func is _Base.to:
            return self._to(func, args, kwargs)
        if func is _Base.cuda:
            return self._move(args[0], True, lambda copy: args[0].clone() if copy else args[0])
        if func is _Base.cpu:
            return self._move(args[0], False, lambda copy: args[0].clone() if copy else args[0])
        if func in (_Base.numpy, torch.Tensor.__array__) and on_simulated_gpu(args[0]):
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
                            "tensor to host memory first.")
        target = None
        if "device" in kwargs:
            target = _device_target(kwargs["device"])
            if target is not None:
                kwargs = {**kwargs, "device": _CPU}
        inputs = list(_tensors((args, kwargs)))
        gpu = [t for t in inputs if on_simulated_gpu(t)]
        if func not in _CROSS_DEVICE and target is None:
            cpu = [t for t in inputs if not on_simulated_gpu(t) and t.dim() > 0]
            if gpu and cpu:
                raise _mixing_error(func, gpu[0], cpu[0])
        result = func(*args, **kwargs)
        if func in _CROSS_DEVICE:
            if func is torch.Tensor.__getitem__:
                _tag(result, on_simulated_gpu(args[0]))
            return result
        if target is not None:
            originals = {id(t) for t in inputs}
            if isinstance(result, torch.Tensor) and id(result) in originals and on_simulated_gpu(result) != target:
                result = result.clone()
            for t in _tensors(result):
                _tag(t, target)
        elif gpu:
            for t in _tensors(result):
                _tag(t, True)
        return result

    def _attribute(self, func, descriptor, name, args, kwargs):
        tensor = args[0]
        if name == "__get__":
            if descriptor is _Base.device:
                return _GPU if on_simulated_gpu(tensor) else func(*args, **kwargs)
            if descriptor is _Base.is_cuda:
                return on_simulated_gpu(tensor)
            if descriptor is _Base.is_cpu:
                return not on_simulated_gpu(tensor)
            result = func(*args, **kwargs)
            if descriptor in (_Base.grad, _Base._grad, _Base.data) and isinstance(result, torch.Tensor):
                _tag(result, on_simulated_gpu(tensor))
            return result
        value = args[1]
        if descriptor in (_Base.grad, _Base._grad) and isinstance(value, torch.Tensor) and \
                on_simulated_gpu(value) != on_simulated_gpu(tensor):
            raise RuntimeError("assigned grad has data located on a different device than the tensor's")
        result = func(*args, **kwargs)
        if descriptor is _Base.data and isinstance(value, torch.Tensor):
            _tag(tensor, on_simulated_gpu(value))
        return result

    def _to(self, func, args, kwargs):
        source, rest = args[0], list(args[1:])
        target = None
        for i, value in enumerate(rest):
            if isinstance(value, torch.Tensor):            # .to(other): other's device and dtype
                target, rest[i] = on_simulated_gpu(value), value.dtype
            elif _device_target(value) is not None:
                target, rest[i] = _device_target(value), _CPU
        kwargs = dict(kwargs)
        if isinstance(kwargs.get("other"), torch.Tensor):
            other = kwargs.pop("other")
            target = on_simulated_gpu(other)
            kwargs["dtype"] = other.dtype
        if _device_target(kwargs.get("device")) is not None:
            target, kwargs["device"] = _device_target(kwargs["device"]), _CPU
        if target is None:
            target = on_simulated_gpu(source)
        if target != on_simulated_gpu(source):
            kwargs["copy"] = True
        result = func(source, *rest, **kwargs)
        _tag(result, target)
        return result

    @staticmethod
    def _move(source, target: bool, compute):
        result = compute(target != on_simulated_gpu(source))
        _tag(result, target)
        return result


_CUDA_PATCHES = {
    "is_available": lambda: True,
    "device_count": lambda: 1,
    "current_device": lambda: 0,
    "get_device_name": lambda device=None: DEVICE_NAME,
    "synchronize": lambda device=None: None,
    "manual_seed": lambda seed: None,
    "manual_seed_all": lambda seed: None,
    "empty_cache": lambda: None,
}


class _Patches:
    """``torch.cuda`` functions, ``torch.load`` and ``nn.Parameter`` replaced while the simulation is on."""

    def __init__(self):
        self.saved: list[tuple[Any, str, Any]] = []

    def set(self, owner, name, value):
        self.saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def undo(self):
        for owner, name, value in reversed(self.saved):
            setattr(owner, name, value)
        self.saved.clear()


def _patch(patches: _Patches) -> None:
    for name, value in _CUDA_PATCHES.items():
        patches.set(torch.cuda, name, value)
    original_load = torch.load

    def load(f, map_location=None, *args, **kwargs):
        target = _device_target(map_location)
        if target is None:
            return original_load(f, map_location, *args, **kwargs)
        loaded = original_load(f, _CPU, *args, **kwargs)
        for t in _tensors(loaded):
            _tag(t, target)
        return loaded

    patches.set(torch, "load", load)
    original_new = torch.nn.Parameter.__new__

    def new_parameter(cls, data=None, requires_grad=True):
        parameter = original_new(cls, data, requires_grad)
        _tag(parameter, data is not None and on_simulated_gpu(data))
        return parameter

    patches.set(torch.nn.Parameter, "__new__", new_parameter)


@contextmanager
def simulated_gpu(cpu_param_limit: int | None = 10_000) -> Iterator[SimulatedGPU]:
    """Run the block as on a machine with one GPU, simulated on the CPU (see the module's documentation)."""
    patches = _Patches()
    _patch(patches)
    try:
        with SimulatedGPU(cpu_param_limit) as mode:
            yield mode
    finally:
        patches.undo()


def activate(cpu_param_limit: int | None = 10_000) -> SimulatedGPU:
    """Switch the simulated GPU on for the rest of this process (e.g. in a notebook's first cell)."""
    _patch(_Patches())
    mode = SimulatedGPU(cpu_param_limit)
    mode.__enter__()
    return mode
