"""The data format between the student's kernel and the trusted test runner, written once for both sides.

An answer of the kernel's agent is ``"<base64 JSON>:<base64 npz>"``: a JSON tree plus NumPy arrays saved with
``allow_pickle=False``, so reading it executes nothing. The tree's nodes are JSON values and one-key tags:
``__nd__`` / ``__np__`` (an array / a NumPy scalar: an index into the npz), ``__torch__`` (a tensor as an array,
with ``requires_grad``), ``__device__`` / ``__dtype__`` (a torch constant by name), ``__tuple__``, ``__dict__``
(key-value pairs), ``__int__`` / ``__float__`` (a big int, a non-finite float, as text), ``__ref__`` (one of the
call's own arguments) and ``__handle__`` (an object that stays in the kernel).

Two users: the kernel side (:mod:`autograder.kernel_side`) encodes, the trusted runner
(:mod:`autograder.trusted_runner`) decodes, and both walk a call's arguments for the mutable objects in the same
order (:func:`walk`), which is what lets the kernel name an argument by its index.

This module runs in the student's kernel too: :mod:`autograder.verdict` sends its text there ahead of the agent's
and the agent executes it as a module of its own. So it imports the standard library and NumPy only, and PyTorch
only where it is already imported (``sys.modules``) or on the trusted side, inside a function
(``tests/test_verdict_units.py`` checks this).
"""

import base64
import io
import json
import math
import sys

import numpy

LIMIT = 64 * 2**20       # bytes of arrays in one answer
MAX_ITEMS = 100_000      # JSON nodes in one answer


def mutable(obj) -> bool:
    """An argument whose changes in the kernel are sent back (arrays, lists, dicts, NumPy generators)."""
    return isinstance(obj, (numpy.ndarray, list, dict, numpy.random.Generator))


def walk(obj, found: list, seen: set, skip=lambda obj: False) -> None:
    """Append the mutable objects among ``obj`` to ``found``, depth first, each once; ``skip(obj)`` leaves one out
    (the given data both sides hold their own copies of)."""
    if id(obj) in seen or skip(obj):
        return
    if isinstance(obj, (list, tuple, dict)) or mutable(obj):
        seen.add(id(obj))
    if mutable(obj):
        found.append(obj)
    if isinstance(obj, (list, tuple)):
        for item in obj:
            walk(item, found, seen, skip)
    elif isinstance(obj, dict):
        for item in obj.values():
            walk(item, found, seen, skip)


def _torch():
    return sys.modules.get("torch")


class Encoder:
    """Encode values as a tree plus arrays (kernel side). ``refs`` are the call's arguments (sent back as
    ``__ref__``); ``keep(obj)`` stores an object that is not data and returns its handle's key."""

    def __init__(self, keep, refs=()):
        self.keep = keep
        self.arrays = []
        self.size = 0
        self.items = 0
        self.refs = {id(o): i for i, o in enumerate(refs)}

    def array(self, value):
        value = numpy.array(value, copy=True, order="C")
        self.size += value.nbytes
        if self.size > LIMIT:
            raise ValueError("the result is too large to be graded")
        self.arrays.append(value)
        return len(self.arrays) - 1

    def handle(self, obj):
        return {"__handle__": self.keep(obj), "type": type(obj).__name__[:80]}

    def __call__(self, obj, depth=0, top=False):
        self.items += 1
        if self.items > MAX_ITEMS or depth > 50:
            raise ValueError("the result is too deeply nested or too long to be graded")
        if not top and id(obj) in self.refs:
            return {"__ref__": self.refs[id(obj)]}
        if obj is None or isinstance(obj, (bool, str)) and type(obj) in (bool, str):
            return obj
        if type(obj) is int:
            return obj if abs(obj) < 2**53 else {"__int__": str(obj)}
        if type(obj) is float:
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, numpy.generic) and not isinstance(obj, numpy.object_):
            return {"__np__": self.array(obj)}
        if type(obj) is numpy.ndarray:
            if obj.dtype.hasobject:
                return self.handle(obj)
            return {"__nd__": self.array(obj)}
        torch = _torch()
        if torch is not None and isinstance(obj, torch.Tensor):
            try:
                data = obj.detach().cpu().numpy()
            except Exception:   # bfloat16 and other types NumPy lacks
                return self.handle(obj)
            return {"__torch__": self.array(data), "requires_grad": bool(obj.requires_grad)}
        if torch is not None and type(obj) is torch.device:
            return {"__device__": str(obj)}
        if torch is not None and type(obj) is torch.dtype:
            return {"__dtype__": str(obj).rpartition(".")[2]}
        if type(obj) is tuple:
            return {"__tuple__": [self(x, depth + 1) for x in obj]}
        if type(obj) is list:
            return [self(x, depth + 1) for x in obj]
        if type(obj) is dict:
            return {"__dict__": [[self(k, depth + 1), self(v, depth + 1)] for k, v in obj.items()]}
        return self.handle(obj)

    def dump(self, tree) -> str:
        text = json.dumps(tree, allow_nan=False)
        buffer = io.BytesIO()
        if self.arrays:
            numpy.savez(buffer, **{f"a{i}": a for i, a in enumerate(self.arrays)})
        return base64.b64encode(text.encode()).decode() + ":" + base64.b64encode(buffer.getvalue()).decode()


def decode(text: str, received: list, handle):
    """Read an answer (trusted side): its JSON tree, and ``build(node)`` that turns a node into a value, nothing
    executed. ``received`` are the call's mutable arguments (``__ref__``); ``handle(key, type_name)`` makes the
    stand-in of an object that stayed in the kernel."""
    head, _, blob = text.partition(":")
    tree = json.loads(base64.b64decode(head, validate=True))
    arrays = {}
    if blob:
        with numpy.load(io.BytesIO(base64.b64decode(blob, validate=True)), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}

    def build(node):
        if isinstance(node, list):
            return [build(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "__nd__" in node:
            return arrays[f"a{int(node['__nd__'])}"]
        if "__np__" in node:
            return arrays[f"a{int(node['__np__'])}"][()]
        if "__torch__" in node:
            import torch

            tensor = torch.from_numpy(arrays[f"a{int(node['__torch__'])}"])
            return tensor.requires_grad_(True) if node.get("requires_grad") and tensor.is_floating_point() else tensor
        if "__device__" in node or "__dtype__" in node:
            return torch_constant(node)
        if "__tuple__" in node:
            return tuple(build(x) for x in node["__tuple__"])
        if "__dict__" in node:
            return {hashable(build(k)): build(v) for k, v in node["__dict__"]}
        if "__float__" in node:
            return float(str(node["__float__"]))
        if "__int__" in node:
            return int(str(node["__int__"]))
        if "__ref__" in node:
            return received[int(node["__ref__"])]
        if "__handle__" in node:
            return handle(int(node["__handle__"]), str(node.get("type", ""))[:80])
        raise ValueError("unknown node in the kernel's answer")

    return tree, build


def torch_constant(node: dict):
    """A torch.device or torch.dtype sent by name (a device string is parsed, a dtype looked up: nothing runs)."""
    import torch

    if "__device__" in node:
        return torch.device(str(node["__device__"])[:40])
    dtype = getattr(torch, str(node["__dtype__"])[:40], None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError("not a dtype")
    return dtype


def hashable(key):
    """A decoded dict key as a hashable value (an array or list sent as a key comes back as a tuple)."""
    if isinstance(key, numpy.ndarray):
        return key[()] if key.ndim == 0 else tuple(key.tolist())
    if isinstance(key, list):
        return tuple(key)
    return key
