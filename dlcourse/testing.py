"""The test-cell API: everything the exercises' graded test cells use from ``dlcourse``, importable from here.

* **Assertions** (this module): ``assert_close``, ``assert_shape``, ... and the soft checks :class:`Checks`.
* **Guards** (:mod:`dlcourse.testing_guards`): ``without_shortcuts``, ``assert_torch_free``,
  ``without_training_helpers``, ``single_blas_thread``, ``limited_threads``.
* **Fixtures** (:mod:`dlcourse.testing_fixtures`): ``three_blobs``, ``recording_loader``.
* **Lent helpers**: the gradient oracles and checks of :mod:`dlcourse.gradcheck` that test cells use
  (``finite_difference_gradient``, ``numerical_backward``, ...), the PyTorch test helpers of
  :mod:`dlcourse.torch_testing` and the capstone's :mod:`dlcourse.heldout`. They are imported on first use, so
  that ``import dlcourse.testing`` imports neither PyTorch nor matplotlib.

``__all__`` lists the whole API. The autograder's tampering scan (``autograder/tampering.py``) protects every name
in it in every notebook: a student cell that rebinds one of them is neutralised, even when only a hidden test uses
it. (Chapter helpers that a notebook's locked cells import, such as ``make_loader``, are protected there too.)

**Assertions.**
Test cells run in the same kernel as the student's code, after it. These helpers therefore do not use NumPy's
comparison helpers (``np.allclose``, ``np.isclose``, ``np.testing``, ``np.array_equal``), which a submission
could replace; they hold their own references to the few NumPy functions they need, taken when this module is
first imported (in the notebook's locked import cell, before any student code runs), and otherwise rely on
ndarray methods and operators, which cannot be reassigned from Python.

Every failure message says, in plain words, what was expected and what was found, so that the visible tests
teach as well as grade.

**Partial credit.** A test cell groups its assertions into named checks and ends with the points earned, which
nbgrader reads as partial credit (the cell's last value, when it is a number; an error still scores 0)::

    checks = Checks()
    with checks("the worked example"):
        assert_close(mse_loss(y_pred, y), 1.25, "mse_loss of the worked example")
    ### BEGIN HIDDEN TESTS
    with checks("random shapes"):
        ...
    ### END HIDDEN TESTS
    checks.score(2)

A failed check does not stop the cell: it prints ``[check failed] <check>: <message>`` to stdout (stderr would
cost all the cell's points in nbgrader) and the next check runs. ``checks.score(points)`` prints a summary and
returns ``points * passed / total``. The message of a failed check is written by this module's helpers, by
:mod:`dlcourse.gradcheck`, or by an ``assert`` of the test cell itself; an exception raised by the student's code
is reported by its type only ("your code raised ValueError"), never with its text, which can carry anything.
Every outcome is also recorded: :func:`take_outcomes` hands them to a grader that runs the test cells itself.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as _np

from dlcourse import testing_guards
from dlcourse.testing_guards import (assert_torch_free, limited_threads, single_blas_thread,  # noqa: F401 (__all__)
                                     without_shortcuts, without_training_helpers)

ASSERTIONS = ["assert_close", "assert_shape", "assert_scalar", "assert_finite", "assert_unchanged",
              "inputs_unchanged", "assert_raises", "assert_close_to_one_of", "CheckFailure", "ReportedError",
              "Checks", "Outcome", "take_outcomes", "torch_optimizer_trajectory", "FAILED_MARK", "MESSAGE_LIMIT"]
WHOLE_MODULE = "*"
# Helpers of other modules that test cells use, lent on first use: {module: its names, or the whole __all__}.
# Only oracles and checks: the chapter API's data and loaders (load_fashion_mnist, make_loader, ...) stay out,
# since an exercise may ask for a function of that name (09-debugging's make_loader); the locked cells that
# import them protect them in the notebooks whose tests use them.
LENT: dict[str, tuple[str, ...] | str] = {
    "dlcourse.gradcheck": ("finite_difference_gradient", "numerical_backward", "check_gradient", "check_backward"),
    "dlcourse.heldout": WHOLE_MODULE,
    "dlcourse.testing_fixtures": WHOLE_MODULE,
    "dlcourse.torch_testing": WHOLE_MODULE,
}


def _declared_names(module: str) -> list[str]:
    """A module's ``__all__``, read from its source without importing it (it may import PyTorch)."""
    spec = importlib.util.find_spec(module)
    with open(spec.origin, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise ImportError(f"{module} declares no __all__, so dlcourse.testing cannot lend its names")


_LENDER = {name: module for module, names in LENT.items()
           for name in (_declared_names(module) if names == WHOLE_MODULE else names)}

__all__ = [*ASSERTIONS, *testing_guards.__all__, *_LENDER]


def home_module(name: str) -> str:
    """The module that defines the test-cell helper ``name`` (``dlcourse.testing`` for the assertions)."""
    if name in _LENDER:
        return _LENDER[name]
    if name in testing_guards.__all__:
        return testing_guards.__name__
    if name in ASSERTIONS:
        return __name__
    raise KeyError(f"{name!r} is not part of the test-cell API (dlcourse.testing.__all__)")


def __getattr__(name: str) -> Any:
    """Lend a helper of another module on first use (PEP 562): ``from dlcourse.testing import three_blobs``."""
    if name not in _LENDER:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LENDER[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


FAILED_MARK = "[check failed]"   # starts the stdout line of every failed check
MESSAGE_LIMIT = 700              # characters of a failure message that are kept (a gradient report with hints fits)

# Taken at import time, before any student code runs (see the module docstring).
_asarray = _np.asarray
_ndarray = _np.ndarray
_unravel_index = _np.unravel_index
_where = _np.where
_float64 = _np.float64
_FLOAT_MAX = float(_np.finfo(_np.float64).max)


class CheckFailure(AssertionError):
    """A failed assertion of a test cell; its message is written by the course, never by student code."""


class ReportedError(Exception):
    """An error whose message the course wrote about the student's code, e.g. the grader's report that a call into
    the student's process raised ("your softmax raised ValueError"): a check shows its message as it is."""


def _type_name(value: Any) -> str:
    """The name of ``value``'s type when it is a built-in or NumPy type; a class of the student's own is not named
    (its name is the student's text, and could carry anything)."""
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    home = sys.modules.get(module)
    if (module == "builtins" or module.split(".")[0] in ("numpy", "torch")) and home is not None and \
            getattr(home, kind.__name__, None) is kind:
        return kind.__name__
    return "an object of a class of your own"


def _as_float_array(value: Any, name: str) -> _np.ndarray:
    try:
        array = _asarray(value, dtype=_float64)
    except (TypeError, ValueError):
        # The conversion's own message can come from the student's object (its __float__ or __array__).
        raise CheckFailure(f"{name} should be numeric, got {_type_name(value)}") from None
    return array


def assert_shape(value: Any, shape: tuple[int, ...], name: str = "result") -> None:
    """Check that ``value`` is a NumPy array of exactly ``shape``."""
    if not isinstance(value, _ndarray):
        raise CheckFailure(f"{name} should be a NumPy array of shape {shape}, got {_type_name(value)}")
    if tuple(value.shape) != tuple(shape):
        hint = ""
        if len(shape) == 2 and tuple(value.shape) == tuple(shape)[::-1]:
            hint = ": the transposed shape, so a .T is missing or extra in a matrix product"
        raise CheckFailure(f"{name} should have shape {tuple(shape)}, got {tuple(value.shape)}{hint}")


def assert_scalar(value: Any, name: str = "result") -> float:
    """Check that ``value`` is a single real number (Python float/int or a 0-d array); return it as a float."""
    if isinstance(value, _ndarray) and value.size != 1:
        raise CheckFailure(f"{name} should be a single number, got an array of shape {value.shape} "
                             f"(did you forget to take the mean?)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CheckFailure(f"{name} should be a number, got {_type_name(value)}") from None
    return number


def assert_finite(value: Any, name: str = "result") -> None:
    """Check that every element is finite (no NaN, no infinity): the usual symptom of overflow."""
    array = _as_float_array(value, name)
    # A comparison, unlike arithmetic on inf or NaN, never emits a RuntimeWarning (stderr would cost points).
    bad = ~(array.__abs__() <= _FLOAT_MAX)
    if bad.any():
        index = [int(i) for i in _unravel_index(int(bad.argmax()), array.shape)] if array.ndim else []
        raise CheckFailure(f"{name} contains {array[tuple(index)] if array.ndim else array} at index "
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
        raise CheckFailure(f"{name} should have shape {e.shape}, got {a.shape}")
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
        raise CheckFailure(f"{name} is wrong{where}: got {a.ravel()[worst]:.8g}, expected "
                             f"{e.ravel()[worst]:.8g} (|difference| {error.ravel()[worst]:.3g}, "
                             f"{int((excess > 0).sum())} of {a.size} values off){_pattern_hint(a, e)}")


def _pattern_hint(actual: _np.ndarray, expected: _np.ndarray) -> str:
    """A likely cause read from the pattern of a wrong array: a constant factor, or the transpose."""
    if actual.ndim == 2 and actual.shape[0] == actual.shape[1] > 1 and \
            ((actual.T - expected).__abs__() <= 1e-9 + 1e-6 * expected.__abs__()).all():
        return "; it is the transpose of the expected value: a .T is missing or extra"
    nonzero = expected.__abs__() > 1e-12
    if actual.size < 2 or not nonzero.all():
        return ""
    ratio = actual / expected
    first = float(ratio.ravel()[0])
    if first == 1.0 or first == 0.0 or not ((ratio - first).__abs__() <= 1e-6 * abs(first)).all():
        return ""
    if abs(first + 1) < 1e-6:
        return "; every value has the wrong sign (a minus lost?)"
    return (f"; every value is {first:.6g} times the expected one: a constant factor (a sum instead of a mean, "
            f"a missing 1/N or 2?)")


def assert_close_to_one_of(actual: Any, candidates: dict[str, Any], name: str = "result", rtol: float = 1e-6,
                           atol: float = 1e-9) -> str:
    """Check that ``actual`` is close to one of ``candidates`` (``{description: value}``); return the one matched.

    Used to test a function step by step: the first candidate is the right answer, the others what the function
    returns when it correctly builds on the student's own (possibly wrong) version of another function, so that
    one bug costs the points of one test. A NaN or infinity matches only the same value at the same place in a
    candidate that is not the first. On failure the message compares with the first candidate.
    """
    a = _as_float_array(actual, name)
    for number, (description, value) in enumerate(candidates.items()):
        e = _as_float_array(value, description)
        if a.shape != e.shape:
            continue
        same_special = (a == e) | ((a != a) & (e != e))
        finite = (a.__abs__() <= _FLOAT_MAX) & (e.__abs__() <= _FLOAT_MAX)
        if number == 0 and not finite.all():
            continue
        a0, e0 = _where(finite, a, 0.0), _where(finite, e, 0.0)   # no arithmetic on inf/NaN (no warnings)
        close = same_special | (finite & ((a0 - e0).__abs__() <= atol + rtol * e0.__abs__()))
        if close.all():
            return description
    first = next(iter(candidates.values()))
    assert_close(actual, first, name, rtol, atol)
    raise CheckFailure(f"{name} is wrong")


def assert_unchanged(before: _np.ndarray, after: _np.ndarray, name: str = "input") -> None:
    """Check that an input array was not modified (``before`` is a copy taken before the call)."""
    if before.shape != after.shape or not ((before == after) | ((before != before) & (after != after))).all():
        raise CheckFailure(f"your function modified its argument {name} in place; work on a copy "
                             f"(e.g. x = x.copy() or x = x - ...) instead of x -= ... or x[...] = ...")


def _snapshot(value: Any) -> Any:
    """A deep copy of an array, a number, or a dict of them (an optimizer's state)."""
    if isinstance(value, dict):
        return {key: _snapshot(item) for key, item in value.items()}
    return _asarray(value).copy()


def _assert_same(before: Any, after: Any, name: str) -> None:
    if isinstance(before, dict):
        added, removed = sorted(map(repr, set(after) - set(before))), sorted(map(repr, set(before) - set(after)))
        if added or removed:
            raise CheckFailure(f"your function modified its argument {name} in place (keys added: "
                               f"{', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'}); build a "
                               f"new dict (e.g. new = dict(state) or new = {{...}}) and return it instead")
        for key in before:
            _assert_same(before[key], after[key], f"{name}[{key!r}]")
        return
    assert_unchanged(before, after if isinstance(after, _ndarray) else _asarray(after), name)


@contextmanager
def inputs_unchanged(**arrays: Any) -> Iterator[None]:
    """Context manager: fail if any of the named arrays is modified inside the block.

    A value may also be a dict of arrays and numbers (an optimizer's state): then adding or removing a key, or
    changing an array in it, counts as a modification.

    Example:
        >>> x = _np.ones(3)
        >>> with inputs_unchanged(x=x):
        ...     y = x * 2
    """
    copies = {name: _snapshot(value) for name, value in arrays.items()}
    yield
    for name, value in arrays.items():
        _assert_same(copies[name], value, name)


@contextmanager
def assert_raises(exception: type[BaseException], what: str) -> Iterator[None]:
    """Context manager: fail unless the block raises ``exception``; ``what`` describes the bad input."""
    try:
        yield
    except exception:
        return
    raise CheckFailure(f"expected {exception.__name__} for {what}, but nothing was raised")



# -- soft checks and partial credit ------------------------------------------------------------------------------
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                       if isinstance(value, type) and issubclass(value, BaseException)}


@dataclass
class Outcome:
    """One check of a test cell: its name, whether it passed, and the course-written message when it failed."""

    check: str
    passed: bool
    message: str = ""
    discounted: bool = False   # failed because of another function's bug: counted neither way
    requirement: bool = False  # a constraint (e.g. "NumPy only"): credited only when a check of results passes


_OUTCOMES: list[Outcome] = []


def take_outcomes() -> list[Outcome]:
    """Every check outcome recorded since the last call (for a grader that runs the test cells itself)."""
    taken = list(_OUTCOMES)
    _OUTCOMES.clear()
    return taken


def _cap(text: str) -> str:
    text = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def _innermost_file(traceback) -> tuple[str, bool]:
    """(file name of the frame that raised, whether that frame is the check's own block)."""
    first = traceback
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return os.path.abspath(traceback.tb_frame.f_code.co_filename), traceback is first


def failure_message(error: BaseException, traceback=None) -> str:
    """What to tell the student about an exception inside a check, without echoing student-written text.

    The message is kept when it was written by the course: an assertion of this package (or of
    :mod:`dlcourse.gradcheck`), or an ``assert`` written in the test cell itself. Anything raised deeper, by the
    student's code, is reported by the name of its built-in type only.
    """
    traceback = traceback or error.__traceback__
    filename, in_block = _innermost_file(traceback) if traceback else ("", False)
    by_course = os.path.dirname(filename) == _PACKAGE_DIR
    if isinstance(error, AssertionError) and (by_course or in_block):
        return _cap(str(error) or "an assertion of the test failed")
    if isinstance(error, ReportedError):
        return _cap(str(error))
    kind = type(error).__name__
    named = kind if kind in _BUILTIN_EXCEPTIONS and type(error) is getattr(builtins, kind) else ""
    if in_block and isinstance(error, NameError) and getattr(error, "name", None):
        # A name the test cell itself uses (the student's function): its cell has not run.
        return f"{error.name} is not defined: run the cell that defines it (or Restart and run all)"
    if in_block:
        # Raised by the test's own code while using a returned value (unpacking, indexing, a method call).
        return (f"the test could not use what your function returned ({named or 'an error'}): check the type, "
                f"shape and number of the values it returns")
    if named == "NotImplementedError":
        return "your code raised NotImplementedError: replace `raise NotImplementedError()` with your code"
    return (f"your code raised {named or 'an exception of its own class'} "
            f"(call your function on these inputs yourself to see the message)")


class Checks:
    """Named soft checks of one test cell, and the points they earn (see the module docstring).

    Example:
        >>> checks = Checks()
        >>> with checks("one plus one"):
        ...     assert 1 + 1 == 2
        >>> checks.score(2)
        ...
    """

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def __call__(self, check: str, requirement: bool = False) -> "_Check":
        """The block ``with checks(name):`` is the check named ``name``: a failure is printed and recorded.

        A ``requirement`` (a constraint such as "NumPy only", which an unwritten stub also meets) earns its
        share only when at least one other check passes.
        """
        return _Check(self, check, requirement)

    def record(self, outcome: Outcome) -> None:
        if not outcome.passed:
            print(f"{FAILED_MARK} {outcome.check}: {outcome.message}", flush=True)
        self.outcomes.append(outcome)
        _OUTCOMES.append(outcome)

    def discount(self, check: str, reason: str) -> None:
        """Count a failed check neither way: the test found that it failed because of another function's bug
        (which that function's own test charges), so that one bug costs one test."""
        for outcome in self.outcomes:
            if outcome.check == check and not outcome.passed and not outcome.discounted:
                outcome.discounted = True
                print(f"[check not counted] {check}: {reason}", flush=True)

    @property
    def counted(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.discounted]

    @property
    def passed(self) -> int:
        results = [o for o in self.counted if not o.requirement]
        passed = sum(o.passed for o in results)
        # Requirements earn their share next to a working result, or alone when every result check was
        # discounted (nothing of this function's own is known to be wrong).
        credit_requirements = passed > 0 or not results
        return passed + (sum(o.passed for o in self.counted if o.requirement) if credit_requirements else 0)

    def score(self, points: float) -> float:
        """Print a summary and return the points earned: ``points`` times the share of checks that passed.

        The value is the cell's last expression, which nbgrader reads as the cell's score.
        """
        total = len(self.counted)
        earned = float(points) if total == 0 else round(float(points) * self.passed / total, 2)
        uncounted = len(self.outcomes) - total
        note = f" ({uncounted} not counted, see above)" if uncounted else ""
        if self.passed == total:
            print(f"All {total} checks passed{note}: {earned:g} of {points:g} points.")
        else:
            print(f"{total - self.passed} of {total} checks FAILED (see above){note}: {earned:g} of {points:g} points.")
        return earned


class _Check:
    """One ``with checks(name):`` block. ``__exit__`` sees the traceback as it left the block, which tells an
    assertion of the test cell (raised in the block itself) from an exception of the code it called."""

    def __init__(self, checks: Checks, check: str, requirement: bool = False) -> None:
        self.checks, self.check, self.requirement = checks, _cap(check), requirement

    def __enter__(self) -> None:
        # Warnings go to stderr, which costs all of a cell's points in nbgrader: inside a check they are
        # silenced, and what they warn about (an overflow, a NaN) fails the check's assertions instead.
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        self.warnings.__exit__(None, None, None)
        if kind is None:
            self.checks.record(Outcome(self.check, True, requirement=self.requirement))
            return False
        # KeyboardInterrupt (a timeout), SystemExit and MemoryError stop the cell: a crash scores 0.
        if not issubclass(kind, Exception) or issubclass(kind, MemoryError):
            return False
        self.checks.record(Outcome(self.check, False, failure_message(error, traceback), requirement=self.requirement))
        return True


# -- oracles -------------------------------------------------------------------------------------------------------
def torch_optimizer_trajectory(optimizer: str, starts: list, grads: list, **hyperparameters: Any) -> list:
    """The parameters that ``torch.optim.<optimizer>`` visits when it is handed the given gradients, in float64.

    One optimizer updates all the parameters together, as in training, so a test that calls a step function on
    each parameter in turn (with the state it returned for that parameter) must find the same values.

    Args:
        optimizer: the name of a class of ``torch.optim``: ``"SGD"``, ``"RMSprop"``, ``"Adam"``, ``"AdamW"``, ...
        starts: the initial parameters, a list of arrays of any shapes (0-d included).
        grads: ``grads[t][i]`` is the gradient handed to parameter ``i`` at step ``t``, of its shape.
        **hyperparameters: keyword arguments of the optimizer (``lr``, ``momentum``, ``nesterov``, ``betas``,
            ``eps``, ``alpha``, ``weight_decay``, ...).

    Returns:
        ``path[t][i]``: parameter ``i`` after ``t + 1`` steps, a float64 array of its shape.

    Example:
        >>> path = torch_optimizer_trajectory("SGD", [_np.zeros(2)], [[_np.ones(2)], [_np.ones(2)]], lr=0.1,
        ...                                   momentum=0.9)
        >>> [p[0].round(3).tolist() for p in path]
        [[-0.1, -0.1], [-0.29, -0.29]]
    """
    import torch

    params = [torch.tensor(_asarray(start, dtype=_float64), requires_grad=True) for start in starts]
    opt = getattr(torch.optim, optimizer)(params, **hyperparameters)
    path = []
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = torch.tensor(_asarray(grad, dtype=_float64))
        opt.step()
        path.append([param.detach().numpy().copy() for param in params])
    return path
