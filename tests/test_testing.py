"""dlcourse.testing: the assertions of the graded test cells, including against monkeypatched NumPy."""

import numpy as np
import pytest

from dlcourse.testing import (assert_close, assert_finite, assert_raises, assert_scalar, assert_shape,
                              inputs_unchanged)


def test_assert_close_accepts_within_tolerance_and_names_the_worst_index():
    """Does assert_close pass within tolerance and, on failure, name the index of the worst element?"""
    assert_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9])
    with pytest.raises(AssertionError, match=r"index \[1, 0\]"):
        assert_close(np.array([[1.0, 2.0], [3.5, 4.0]]), [[1.0, 2.0], [3.0, 4.0]])


def test_assert_close_rejects_shape_mismatch_and_nan():
    """Are a wrong shape and a NaN reported in words, not as a silent broadcast?"""
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.ones(3), np.ones((3, 1)))
    with pytest.raises(AssertionError, match="overflow"):
        assert_close(np.array([np.nan, 1.0]), [0.0, 1.0])
    with pytest.raises(AssertionError, match="overflow"):
        assert_finite(np.array([np.inf]))


@pytest.mark.parametrize("name", ["allclose", "isclose", "array_equal", "asarray"])
def test_monkeypatched_numpy_does_not_change_verdicts(monkeypatch, name):
    """Can a submission that replaces NumPy's comparison helpers make a wrong answer pass? It must not."""
    monkeypatch.setattr(np, name, lambda *args, **kwargs: True)
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, 2.0]), [1.0, 3.0])
    monkeypatch.setattr(np.testing, "assert_allclose", lambda *args, **kwargs: None)
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, 2.0]), [1.0, 3.0])


def test_assert_scalar_and_shape():
    """Does assert_scalar accept 0-d values but reject arrays, and assert_shape reject lists?"""
    assert assert_scalar(np.float64(2.5)) == 2.5
    with pytest.raises(AssertionError, match="mean"):
        assert_scalar(np.ones(3))
    with pytest.raises(AssertionError, match="NumPy array"):
        assert_shape([1, 2], (2,))


def test_inputs_unchanged_detects_in_place_changes():
    """Is an in-place modification of an argument reported with its name?"""
    x = np.ones(3)
    with pytest.raises(AssertionError, match="modified its argument x"):
        with inputs_unchanged(x=x):
            x -= 1
    y = np.array([np.nan, 1.0])
    with inputs_unchanged(y=y):
        pass


def test_assert_raises():
    """Does assert_raises fail when nothing is raised?"""
    with assert_raises(ValueError, "a negative size"):
        raise ValueError
    with pytest.raises(AssertionError, match="negative size"):
        with assert_raises(ValueError, "a negative size"):
            pass
