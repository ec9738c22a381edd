"""Assertions for the graded test cells of the exercises.

Test cells run in the same kernel as the student's code, after it. These helpers therefore do not use NumPy's
comparison helpers (``np.allclose``, ``np.isclose``, ``np.testing``, ``np.array_equal``), which a submission
could replace; they hold their own references to the few NumPy functions they need, taken when this module is
first imported (in the notebook's locked import cell, before any student code runs), and otherwise rely on
ndarray methods and operators, which cannot be reassigned from Python.

Every failure message says, in plain words, what was expected and what was found, so that the visible tests
teach as well as grade.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as _np

__all__ = ["assert_close", "assert_shape", "assert_scalar", "assert_finite", "assert_unchanged",
           "inputs_unchanged", "assert_raises"]

# Taken at import time, before any student code runs (see the module docstring).
_asarray = _np.asarray
_ndarray = _np.ndarray
_unravel_index = _np.unravel_index
_float64 = _np.float64
_FLOAT_MAX = float(_np.finfo(_np.float64).max)


def _as_float_array(value: Any, name: str) -> _np.ndarray:
    try:
        array = _asarray(value, dtype=_float64)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{name} should be numeric, got {type(value).__name__}: {error}") from None
    return array


def assert_shape(value: Any, shape: tuple[int, ...], name: str = "result") -> None:
    """Check that ``value`` is a NumPy array of exactly ``shape``."""
    if not isinstance(value, _ndarray):
        raise AssertionError(f"{name} should be a NumPy array of shape {shape}, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{name} should have shape {tuple(shape)}, got {tuple(value.shape)}")


def assert_scalar(value: Any, name: str = "result") -> float:
    """Check that ``value`` is a single real number (Python float/int or a 0-d array); return it as a float."""
    if isinstance(value, _ndarray) and value.size != 1:
        raise AssertionError(f"{name} should be a single number, got an array of shape {value.shape} "
                             f"(did you forget to take the mean?)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} should be a number, got {type(value).__name__}") from None
    return number


def assert_finite(value: Any, name: str = "result") -> None:
    """Check that every element is finite (no NaN, no infinity): the usual symptom of overflow."""
    array = _as_float_array(value, name)
    # A comparison, unlike arithmetic on inf or NaN, never emits a RuntimeWarning (stderr would cost points).
    bad = ~(array.__abs__() <= _FLOAT_MAX)
    if bad.any():
        index = [int(i) for i in _unravel_index(int(bad.argmax()), array.shape)] if array.ndim else []
        raise AssertionError(f"{name} contains {array[tuple(index)] if array.ndim else array} at index "
                             f"{index}: overflow or log(0)? Look for exp of a large number "
                             f"or a missing max-subtraction.")


def assert_close(actual: Any, expected: Any, name: str = "result", rtol: float = 1e-6,
                 atol: float = 1e-9) -> None:
    """Check ``|actual - expected| <= atol + rtol * |expected|`` element-wise, with matching shapes.

    Args:
        actual: the student's value (array or number).
        expected: the reference value (array or number).
        name: what is being compared, for the message.
        rtol, atol: relative and absolute tolerance.
    """
    a = _as_float_array(actual, name)
    e = _as_float_array(expected, "expected value")
    if a.shape != e.shape:
        raise AssertionError(f"{name} should have shape {e.shape}, got {a.shape}")
    assert_finite(a, name)
    if a.size == 0:
        return
    error = (a - e).__abs__()
    allowed = atol + rtol * e.__abs__()
    excess = error - allowed
    worst = int(excess.argmax())
    if excess.ravel()[worst] > 0:
        index = [int(i) for i in _unravel_index(worst, a.shape)] if a.ndim else []
        where = f" at index {index}" if index else ""
        raise AssertionError(f"{name} is wrong{where}: got {a.ravel()[worst]:.8g}, expected "
                             f"{e.ravel()[worst]:.8g} (|difference| {error.ravel()[worst]:.3g}, "
                             f"{int((excess > 0).sum())} of {a.size} values off)")


def assert_unchanged(before: _np.ndarray, after: _np.ndarray, name: str = "input") -> None:
    """Check that an input array was not modified (``before`` is a copy taken before the call)."""
    if before.shape != after.shape or not ((before == after) | ((before != before) & (after != after))).all():
        raise AssertionError(f"your function modified its argument {name} in place; work on a copy "
                             f"(e.g. x = x.copy() or x = x - ...) instead of x -= ... or x[...] = ...")


@contextmanager
def inputs_unchanged(**arrays: _np.ndarray) -> Iterator[None]:
    """Context manager: fail if any of the named arrays is modified inside the block.

    Example:
        >>> x = _np.ones(3)
        >>> with inputs_unchanged(x=x):
        ...     y = x * 2
    """
    copies = {name: array.copy() for name, array in arrays.items()}
    yield
    for name, array in arrays.items():
        assert_unchanged(copies[name], array, name)


@contextmanager
def assert_raises(exception: type[BaseException], what: str) -> Iterator[None]:
    """Context manager: fail unless the block raises ``exception``; ``what`` describes the bad input."""
    try:
        yield
    except exception:
        return
    raise AssertionError(f"expected {exception.__name__} for {what}, but nothing was raised")

