"""Gradient checking: compare a hand-written gradient with centred finite differences.

The centred difference ``(f(x + h e_i) - f(x - h e_i)) / 2h`` has an error of order ``h**2`` (the forward
difference only ``h``), so in float64 with ``h = 1e-6`` a correct gradient typically agrees to a relative error
below ``1e-7``. A relative error above ``1e-5`` almost always means a bug.

    >>> import numpy as np
    >>> x = np.array([1.0, -2.0, 3.0])
    >>> report = check_gradient(lambda v: np.sum(v ** 3), x, 3 * x ** 2)
    >>> report.ok
    True

For layers, :func:`numerical_backward` computes the gradient of ``sum(fn(...) * dout)`` with respect to every
input, which is exactly what a ``*_backward(dout, cache)`` function must return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from dlcourse.testing import CheckFailure

__all__ = [
    "GradientCheckError",
    "GradientReport",
    "finite_difference_gradient",
    "numerical_backward",
    "relative_error",
    "check_gradient",
    "check_backward",
]

DEFAULT_TOLERANCE = 1e-5


class GradientCheckError(CheckFailure):
    """A hand-written gradient disagrees with finite differences."""


@dataclass
class GradientReport:
    """Outcome of one gradient check.

    Attributes:
        name: what was checked, e.g. ``"dW"``.
        max_rel_error: the largest element-wise relative error.
        worst_index: index of the element with that error.
        analytic, numeric: the two values at that index.
        tolerance: the threshold the check used.
        hints: likely causes, worked out from the pattern of the disagreement.
    """

    name: str
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    tolerance: float
    hints: list[str]

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        text = (f"gradient check of {self.name}: {verdict}, max relative error {self.max_rel_error:.2e} "
                f"(threshold {self.tolerance:.0e}: below it the gradients agree to float64 finite-difference "
                f"precision; above it there is almost surely a bug)")
        if not self.ok:
            text += (f"\n  worst element {self.name}{list(self.worst_index)}: "
                     f"analytic {self.analytic:.6g}, numerical {self.numeric:.6g}")
            text += "".join(f"\n  hint: {hint}" for hint in self.hints)
        return text


def finite_difference_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Centred finite-difference gradient of a scalar function.

    Args:
        f: function of one array returning a scalar.
        x: the point, a float array of any shape. It is perturbed in place one element at a time and restored
            before the function returns.
        h: the step.

    Returns:
        Array of x's shape with ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` at every index i.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a float array (got {x.dtype}); finite differences of integers are meaningless")
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = float(f(x))
        x[index] = original - h
        f_minus = float(f(x))
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_backward(fn: Callable[..., np.ndarray], inputs: Mapping[str, np.ndarray], dout: np.ndarray,
                       h: float = 1e-6) -> dict[str, np.ndarray]:
    """Numerical gradients of ``sum(fn(**inputs) * dout)`` with respect to each named input.

    Args:
        fn: a forward function returning an array (a layer's output).
        inputs: the arguments of ``fn`` by name; those that are float arrays are differentiated.
        dout: upstream gradient, of the shape of ``fn``'s output.

    Returns:
        ``{name: d<name>}`` for every float-array input, each of its input's shape.
    """
    grads = {}
    for name, value in inputs.items():
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            def scalar(_, name=name):
                return float(np.sum(fn(**inputs) * dout))
            grads[name] = finite_difference_gradient(scalar, value, h)
    return grads


def relative_error(analytic: np.ndarray, numeric: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Element-wise ``|a - n| / max(|a| + |n|, eps)``: 0 when equal, 1 when opposite or one is zero."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), eps)


def _diagnose(analytic: np.ndarray, numeric: np.ndarray, point: np.ndarray | None = None) -> list[str]:
    """Name the usual causes of a failing check from the pattern of the disagreement.

    ``point`` is the parameter the gradient is taken at, when known: a difference proportional to it is the
    signature of an L2 regularisation term (``reg * sum(W**2)`` has the gradient ``2 * reg * W``).
    """
    hints = []
    if analytic.shape != numeric.shape:
        if analytic.shape == numeric.shape[::-1]:
            hints.append("the gradient has the transposed shape: a missing or extra .T in a matrix product")
        return hints + [f"shape {analytic.shape} differs from the parameter's shape {numeric.shape}"]
    a, n = analytic.ravel(), numeric.ravel()
    scale = float(np.dot(a, n) / np.dot(n, n)) if np.dot(n, n) > 0 else 0.0
    if np.allclose(a, scale * n, rtol=1e-4, atol=1e-10) and abs(scale) > 1e-12:
        if abs(scale + 1) < 1e-3:
            hints.append("the gradient has the wrong sign (a minus lost, or computing y - y_hat instead of "
                         "y_hat - y)")
        elif abs(scale - round(scale)) < 1e-3 and round(scale) > 1:
            hints.append(f"the gradient is {round(scale)} times too large: a sum over the batch where the loss "
                         f"takes the mean (divide by N), or a missing factor 1/2")
        elif abs(1 / scale - round(1 / scale)) < 1e-3 and round(1 / scale) > 1:
            hints.append(f"the gradient is {round(1 / scale)} times too small: dividing by N twice, or a "
                         f"missing factor 2 (d/dx x**2 = 2x)")
        else:
            hints.append(f"the gradient is off by a constant factor {scale:.4g}")
    if point is not None and np.shape(point) == analytic.shape and np.any(point != 0):
        missing = (n - a)
        p = np.asarray(point, dtype=np.float64).ravel()
        ratio = float(np.dot(missing, p) / np.dot(p, p))
        if abs(ratio) > 1e-12 and np.allclose(missing, ratio * p, rtol=1e-4, atol=1e-9):
            if ratio > 0:
                hints.append(f"the missing part is proportional to the parameter itself ({ratio:.4g} times it): "
                             f"the gradient of the regularisation term is missing (for a loss "
                             f"0.5 * reg * sum(W**2) it is reg * W); a check with reg=0 passes")
            else:
                hints.append(f"the extra part is proportional to the parameter itself ({-ratio:.4g} times it): "
                             f"the regularisation gradient is counted twice, too large, or added to a parameter "
                             f"that is not regularised")
    if analytic.ndim == 2 and analytic.shape[0] == analytic.shape[1] and np.allclose(analytic.T, numeric):
        hints.append("the gradient is the transpose of the right one: swap the operands of the matrix product")
    if np.all(a == 0) and np.any(n != 0):
        hints.append("the gradient is all zeros: the backward pass never writes it, or a mask removes everything")
    wrong = relative_error(analytic, numeric) > DEFAULT_TOLERANCE
    if not hints and 0 < wrong.mean() < 0.6:
        hints.append(f"only {wrong.sum()} of {wrong.size} elements disagree: look at a mask or a branch "
                     f"(ReLU at x <= 0, the max of a pooling window, the selected class in a loss)")
    if not hints:
        hints.append("the pattern is irregular: check each step of the chain rule against the forward pass, "
                     "and the forward pass for in-place changes of its inputs")
    return hints


def compare_gradients(analytic: np.ndarray, numeric: np.ndarray, name: str = "gradient",
                      tolerance: float = DEFAULT_TOLERANCE, point: np.ndarray | None = None) -> GradientReport:
    """Compare two gradients and return a :class:`GradientReport` (does not raise).

    ``point``, the value the gradient is taken at, lets the hints recognise a missing regularisation term.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        return GradientReport(name, float("inf"), (), float("nan"), float("nan"), tolerance,
                              _diagnose(analytic, numeric))
    if analytic.size == 0:
        return GradientReport(name, 0.0, (), 0.0, 0.0, tolerance, [])
    errors = relative_error(analytic, numeric)
    # Where both gradients are ~0 the relative error is rounding noise divided by nearly nothing.
    errors = np.where(np.abs(analytic) + np.abs(numeric) < 1e-10, 0.0, errors)
    errors = np.where(np.isfinite(analytic), errors, np.inf)
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
    report = GradientReport(name, float(errors[worst]), tuple(int(i) for i in worst),
                            float(analytic[worst]), float(numeric[worst]), tolerance, [])
    if not report.ok:
        report.hints = _diagnose(analytic, numeric, point)
    return report


def check_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray, name: str = "x",
                   tolerance: float = DEFAULT_TOLERANCE, h: float = 1e-6) -> GradientReport:
    """Check ``analytic`` against the finite-difference gradient of ``f`` at ``x``.

    Raises:
        GradientCheckError: naming the worst element, its index and the likely causes.
    """
    x = np.array(x, dtype=np.float64)
    report = compare_gradients(analytic, finite_difference_gradient(f, x, h), f"d{name}", tolerance, point=x)
    if not report.ok:
        raise GradientCheckError(str(report))
    return report


def check_backward(fn: Callable[..., np.ndarray], inputs: Mapping[str, np.ndarray], dout: np.ndarray,
                   analytic: Mapping[str, np.ndarray], tolerance: float = DEFAULT_TOLERANCE,
                   h: float = 1e-6) -> dict[str, GradientReport]:
    """Check a layer's backward pass: ``analytic[name]`` must equal d sum(fn(**inputs) * dout) / d inputs[name].

    Example:
        >>> x, W = np.random.randn(4, 3), np.random.randn(3, 2)
        >>> dout = np.random.randn(4, 2)
        >>> reports = check_backward(lambda x, W: x @ W, {"x": x, "W": W}, dout,
        ...                          {"x": dout @ W.T, "W": x.T @ dout})
    """
    inputs = {k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
    numeric = numerical_backward(fn, inputs, np.asarray(dout, dtype=np.float64), h)
    reports = {name: compare_gradients(analytic[name], numeric[name], f"d{name}", tolerance, point=inputs[name])
               for name in numeric}
    failed = [str(r) for r in reports.values() if not r.ok]
    if failed:
        raise GradientCheckError("\n".join(failed))
    return reports
