"""dlcourse.gradcheck: does it accept right gradients, reject wrong ones, and say why?"""

import numpy as np
import pytest

from dlcourse.gradcheck import (GradientCheckError, check_backward, check_gradient, compare_gradients,
                                finite_difference_gradient, relative_error)


def test_finite_difference_matches_known_gradient_and_restores_x():
    """Is the centred difference accurate to ~h**2, and is x exactly restored afterwards?"""
    x = np.array([[0.5, -1.5], [2.0, 3.0]])
    before = x.copy()
    grad = finite_difference_gradient(lambda v: float(np.sum(np.sin(v) * v ** 2)), x)
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    assert np.max(np.abs(grad - exact)) < 1e-8
    assert np.array_equal(x, before)


def test_finite_difference_rejects_integer_arrays():
    """Does it refuse integer inputs, whose perturbation would be silently rounded?"""
    with pytest.raises(TypeError, match="float"):
        finite_difference_gradient(lambda v: float(v.sum()), np.arange(3))


def test_check_gradient_accepts_correct_and_reports_error():
    """Does a correct gradient pass with a relative error far below the threshold?"""
    x = np.random.default_rng(0).normal(size=(3, 4))
    report = check_gradient(lambda v: float(np.sum(v ** 3)), x, 3 * x ** 2, name="x")
    assert report.ok and report.max_rel_error < 1e-7
    assert "OK" in str(report)


@pytest.mark.parametrize("factor, hint", [(4.0, "4 times too large"), (-1.0, "wrong sign"),
                                          (0.5, "2 times too small")])
def test_failures_name_worst_element_and_cause(factor, hint):
    """Does a wrong gradient fail, naming the worst element, its index and the usual cause?"""
    x = np.random.default_rng(1).normal(size=(5, 2))
    with pytest.raises(GradientCheckError) as error:
        check_gradient(lambda v: float(np.sum(v ** 2)), x, factor * 2 * x, name="W")
    message = str(error.value)
    assert "worst element dW[" in message and "analytic" in message and "numerical" in message
    assert hint in message


def test_transposed_gradient_is_diagnosed():
    """Does a gradient of transposed shape get the 'transpose' hint?"""
    report = compare_gradients(np.zeros((3, 2)), np.ones((2, 3)), "dW")
    assert not report.ok
    assert any("transpose" in h for h in report.hints)


def test_check_backward_of_a_linear_layer():
    """Does check_backward accept the right linear-layer gradients and reject a missing batch sum?"""
    rng = np.random.default_rng(2)
    x, W, dout = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    b = rng.normal(size=2)
    forward = lambda x, W, b: x @ W + b  # noqa: E731
    check_backward(forward, {"x": x, "W": W, "b": b}, dout, {"x": dout @ W.T, "W": x.T @ dout, "b": dout.sum(0)})
    with pytest.raises(GradientCheckError, match="db"):
        check_backward(forward, {"x": x, "W": W, "b": b}, dout, {"x": dout @ W.T, "W": x.T @ dout, "b": dout[0]})


def test_relative_error_is_symmetric_and_bounded():
    """Is the relative error 0 for equal values, 1 for opposite ones, and symmetric?"""
    a, b = np.array([1.0, 2.0, -3.0]), np.array([1.0, -2.0, -3.5])
    assert np.allclose(relative_error(a, b), relative_error(b, a))
    assert relative_error(a, b)[0] == 0 and relative_error(a, b)[1] == 1


def test_missing_regularisation_gradient_is_named():
    """A gradient without its L2 term passes at reg=0 and fails at reg>0: does the hint name the regulariser?"""
    rng = np.random.default_rng(0)
    W, A = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for reg in [0.0, 0.7]:
        def loss(v, reg=reg):
            return float(np.sum(A * v) + 0.5 * reg * np.sum(v * v))
        if reg == 0:
            check_gradient(loss, W, A, name="W")
        else:
            with pytest.raises(GradientCheckError, match="regularisation term is missing"):
                check_gradient(loss, W, A, name="W")
