"""Guards of the test-cell API (:mod:`dlcourse.testing`): they keep a graded function honest.

* :func:`assert_torch_free` checks that a student's function (and the functions and classes of the notebook that
  it uses) does not use PyTorch, in the assignments whose point is to write the gradients by hand with NumPy.
* :func:`without_shortcuts` runs student code with PyTorch unimportable and the gradient checkers of
  :mod:`dlcourse.gradcheck` switched off, so that a graded gradient cannot be obtained from autograd or from
  finite differences.
* :func:`without_training_helpers` switches :func:`dlcourse.torch_utils.fit` and ``predict`` off, so that a graded
  training step cannot hand its work to the chapters' training loop.
* :func:`single_blas_thread` and :func:`limited_threads` keep the time of a graded training run predictable on a
  busy machine (NumPy's BLAS, PyTorch).

Importing this module imports neither PyTorch nor matplotlib: the NumPy assignments' test cells use it with
PyTorch made unimportable. This module holds no solution to any exercise.
"""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["assert_torch_free", "without_shortcuts", "without_training_helpers", "single_blas_thread",
           "limited_threads"]


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _is_torch(value: Any) -> bool:
    if isinstance(value, types.ModuleType):
        return value.__name__.split(".")[0] == "torch"
    module = getattr(type(value), "__module__", "") or ""
    own = getattr(value, "__module__", "") if isinstance(value, (type, types.BuiltinFunctionType,
                                                                   types.FunctionType)) else ""
    return module.split(".")[0] == "torch" or (own or "").split(".")[0] == "torch"


def _torch_uses(function: Any, seen: set[int], path: str) -> list[str]:
    """Where ``function``, or any function or class of the notebook it refers to, uses PyTorch."""
    if id(function) in seen:
        return []
    seen.add(id(function))
    if isinstance(function, type):
        found = []
        for attribute in vars(function).values():
            target = getattr(attribute, "__func__", attribute)
            if isinstance(target, types.FunctionType):
                found += _torch_uses(target, seen, f"{path}.{target.__name__}")
        return found
    if not isinstance(function, types.FunctionType):
        return []
    found = []
    names = _code_names(function.__code__)
    if "torch" in names:
        found.append(f"{path} refers to the name 'torch'")
    cells = [cell.cell_contents for cell in function.__closure__ or () if _filled(cell)]
    for name in sorted(names):
        if name not in function.__globals__:
            continue   # a builtin, an attribute name or a local name
        value = function.__globals__[name]
        if _is_torch(value):
            found.append(f"{path} uses {name}, which comes from PyTorch")
        elif isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == \
                function.__globals__.get("__name__"):
            found += _torch_uses(value, seen, f"{path} -> {name}")
    for value in cells:
        if _is_torch(value):
            found.append(f"{path} captures a PyTorch object")
        elif isinstance(value, (types.FunctionType, type)):
            found += _torch_uses(value, seen, f"{path} -> {getattr(value, '__name__', '?')}")
    return found


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def assert_torch_free(*functions: Callable) -> None:
    """Fail if a function, or a function or class of the notebook that it uses, uses PyTorch.

    The check reads the functions' code (names it refers to, modules and objects they resolve to), so it also
    catches ``import torch`` at the top of a cell and PyTorch objects kept in global variables. Together with
    :func:`without_shortcuts`, which makes ``import torch`` fail while student code runs, it enforces "NumPy
    only" in assignments whose point is to write the gradients by hand.
    """
    problems: list[str] = []
    seen: set[int] = set()
    for function in functions:
        problems += _torch_uses(function, seen, getattr(function, "__name__", repr(function)))
    if problems:
        raise AssertionError("this assignment is about writing forward and backward passes with NumPy alone, "
                             "but PyTorch is used: " + "; ".join(problems))


def _refuse(*args, **kwargs):
    raise AssertionError("a graded function called a gradient checker of dlcourse.gradcheck: the point of the "
                         "exercise is to compute the gradient yourself (use the checkers only to test your code)")


@contextmanager
def without_shortcuts() -> Iterator[None]:
    """Run the block with PyTorch unimportable and dlcourse's finite-difference helpers switched off.

    Inside the block ``import torch`` raises ``ImportError`` and every function of :mod:`dlcourse.gradcheck`
    raises ``AssertionError``, including references a notebook took with ``from ... import``. Both are restored
    when the block ends, so the test itself can use them as oracles afterwards.
    """
    from dlcourse import gradcheck

    saved_modules = {name: module for name, module in sys.modules.items()
                     if name == "torch" or name.startswith("torch.")}
    checkers = [f for f in vars(gradcheck).values()
                if isinstance(f, types.FunctionType) and f.__module__ == gradcheck.__name__]
    saved_code = [f.__code__ for f in checkers]
    for name in saved_modules:
        sys.modules[name] = None   # `import torch` now raises ImportError
    sys.modules["torch"] = None
    for f in checkers:
        f.__code__ = _refuse.__code__
    try:
        yield
    finally:
        for f, code in zip(checkers, saved_code):
            f.__code__ = code
        del sys.modules["torch"]
        for name in saved_modules:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the block with NumPy's BLAS limited to one thread (a no-op where threadpoolctl is not installed).

    A multi-threaded BLAS slows down by an order of magnitude when other processes compete for the cores: its
    threads wait for each other at every matrix product (measured on the course's 2-core machines: one epoch of
    a 784-128-10 network took 1.8 s on one thread and 25 s on two under a load of 8). One thread keeps the time
    of a graded training run predictable on a busy grading machine or CI runner.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@contextmanager
def limited_threads(threads: int = 1) -> Iterator[None]:
    """Run the block with PyTorch limited to ``threads`` CPU threads, then restore the previous setting.

    PyTorch's threads wait for each other at every operation; on a machine whose cores are busy with other
    work (a CI runner, a grading server) two threads can be many times slower than one. A graded training run
    on one thread takes a predictable time.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def without_training_helpers(reason: str = "a graded function must do this work itself") -> Iterator[None]:
    """Run the block with :func:`dlcourse.torch_utils.fit` and ``predict`` switched off (they raise
    ``AssertionError`` with ``reason``).

    The check is made inside the functions, so references taken with ``from ... import`` are switched off too.
    This imports PyTorch (through :mod:`dlcourse.torch_utils`).
    """
    from dlcourse import torch_utils

    previous, torch_utils._disabled_reason = torch_utils._disabled_reason, reason
    try:
        yield
    finally:
        torch_utils._disabled_reason = previous
