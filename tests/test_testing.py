"""dlcourse.testing: the assertions of the graded test cells, including against monkeypatched NumPy."""

import numpy as np
import pytest

from dlcourse.testing import (assert_close, assert_finite, assert_raises, assert_scalar, assert_shape,
                              inputs_unchanged, torch_optimizer_trajectory)


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



def test_inputs_unchanged_detects_changes_to_a_dict_of_arrays():
    """Is an optimizer state changed in place reported: a key added, an array inside modified? Is a new dict fine?"""
    state = {}
    with pytest.raises(AssertionError, match=r"argument state in place \(keys added: 'm'"):
        with inputs_unchanged(state=state):
            state["m"] = np.zeros(2)
    with pytest.raises(AssertionError, match=r"modified its argument state\['m'\]"):
        with inputs_unchanged(state=state):
            state["m"] += 1
    with inputs_unchanged(state=state):
        state = {"m": state["m"] * 0.9, "step": 1}


def test_torch_optimizer_trajectory_follows_torch_optim():
    """Does the oracle give SGD with momentum's hand-computed points, for a 0-d and a 2-d parameter in turn?"""
    grads = [[np.array(1.0), np.ones((2, 3))], [np.array(-1.0), np.full((2, 3), 2.0)]]
    path = torch_optimizer_trajectory("SGD", [np.array(0.5), np.zeros((2, 3))], grads, lr=0.1, momentum=0.9)
    assert len(path) == 2 and path[0][0].shape == () and path[1][1].shape == (2, 3)
    assert_close(path[0][0], 0.5 - 0.1)                       # v = 1
    assert_close(path[1][0], 0.4 - 0.1 * (0.9 * 1.0 - 1.0))   # v = 0.9 - 1
    assert_close(path[1][1], np.full((2, 3), -0.1 - 0.1 * 2.9))

def test_assert_raises():
    """Does assert_raises fail when nothing is raised?"""
    with assert_raises(ValueError, "a negative size"):
        raise ValueError
    with pytest.raises(AssertionError, match="negative size"):
        with assert_raises(ValueError, "a negative size"):
            pass


# -- soft checks and partial credit --------------------------------------------------------------------------------
from dlcourse.testing import FAILED_MARK, Checks, take_outcomes  # noqa: E402


def run_cell(source: str, namespace: dict) -> object:
    """Run ``source`` as a notebook cell would: statements, then the value of the last expression."""
    import ast

    tree = ast.parse(source)
    last = tree.body.pop() if isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<test cell>", "exec"), namespace)
    return eval(compile(ast.Expression(last.value), "<test cell>", "eval"), namespace) if last else None


def test_checks_score_the_share_that_passes_and_print_failures_to_stdout(capsys):
    """Does a failed check print a marked line to stdout (not stderr), let the next check run, and give
    points * passed / total as the cell's last value?"""
    take_outcomes()
    namespace = {"np": np, "Checks": Checks, "assert_close": assert_close}
    value = run_cell(
        "checks = Checks()\n"
        "with checks('right'):\n    assert_close(np.ones(2), [1.0, 1.0], 'ones')\n"
        "with checks('wrong'):\n    assert_close(np.ones(2), [1.0, 3.0], 'the second value')\n"
        "with checks('test assert'):\n    assert 1 == 2, 'one is not two'\n"
        "checks.score(3)\n", namespace)
    assert value == 1.0 and float(repr(value)) == 1.0   # nbgrader reads text/plain as a float
    out, err = capsys.readouterr()
    assert err == ""
    assert f"{FAILED_MARK} wrong: the second value is wrong at index [1]" in out
    assert f"{FAILED_MARK} test assert: one is not two" in out
    assert "2 of 3 checks FAILED" in out
    outcomes = take_outcomes()
    assert [(o.check, o.passed) for o in outcomes] == [("right", True), ("wrong", False), ("test assert", False)]
    assert take_outcomes() == []


def test_checks_never_echo_what_student_code_raised(capsys):
    """Is an exception from student code reported by its built-in type only, even an AssertionError or a class
    named to carry text, while a course helper's message is kept?"""
    secret = "eJxLy0nMTDUyNjEFAA-hidden-test-source"
    namespace = {"np": np, "Checks": Checks, "assert_close": assert_close, "secret": secret}
    run_cell(
        "def student_assert():\n    assert False, secret\n"
        "def student_value():\n    raise ValueError(secret)\n"
        "def student_class():\n    raise type(secret, (Exception,), {})(secret)\n"
        "def student_stub():\n    raise NotImplementedError()\n"
        "class Weird:\n    def __float__(self):\n        raise TypeError(secret)\n"
        "checks = Checks()\n"
        "for name, call in [('a', student_assert), ('v', student_value), ('c', student_class), ('s', student_stub),"
        " ('w', lambda: assert_close(Weird(), 1.0, 'value'))]:\n"
        "    with checks(name):\n        call()\n"
        "checks.score(5)\n", namespace)
    out, err = capsys.readouterr()
    assert secret not in out and err == ""
    assert "a: your code raised AssertionError" in out
    assert "v: your code raised ValueError" in out
    assert "c: your code raised an exception of its own class" in out
    assert "s: your code raised NotImplementedError: replace `raise NotImplementedError()`" in out
    assert "w: value should be numeric, got an object of a class of your own" in out
    assert all(not o.passed and secret not in o.message for o in take_outcomes())


def test_checks_let_interrupts_through_and_cap_messages(capsys):
    """Does a timeout (KeyboardInterrupt) still stop the cell, and is a long message capped?"""
    checks = Checks()
    with pytest.raises(KeyboardInterrupt):
        with checks("slow"):
            raise KeyboardInterrupt
    with checks("long"):
        assert_close(np.ones(1), [2.0], "x" * 2000)
    assert len(checks.outcomes[-1].message) <= 700
    assert checks.score(2) == 0.0 and Checks().score(2) == 2.0
    take_outcomes()


def test_pattern_hints_name_a_transpose_and_a_constant_factor():
    """Do wrong arrays that are the transpose, a multiple, or the negative of the answer say so?"""
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(AssertionError, match="transpose"):
        assert_close(expected.T, expected)
    with pytest.raises(AssertionError, match="4 times the expected one"):
        assert_close(4 * expected, expected)
    with pytest.raises(AssertionError, match="wrong sign"):
        assert_close(-expected, expected)
    with pytest.raises(AssertionError, match=r"transposed shape, so a \.T is missing"):
        assert_shape(np.ones((3, 2)), (2, 3), "dW")


def test_a_check_failed_by_another_functions_bug_is_not_counted(capsys):
    """Does discount() take a failed check out of the score (one bug, one test) and say so on stdout?"""
    checks = Checks()
    with checks("own"):
        pass
    with checks("built on a wrong helper"):
        assert_close(np.ones(1), [2.0], "value")
    checks.discount("built on a wrong helper", "your helper is wrong; its own test charges it")
    assert checks.score(4) == 4.0
    assert "[check not counted] built on a wrong helper" in capsys.readouterr().out
    take_outcomes()


def test_a_requirement_earns_nothing_alone():
    """Does a constraint that a stub also meets ("NumPy only") earn its share only next to a working result?"""
    stub = Checks()
    with stub("NumPy only", requirement=True):
        pass
    with stub("the worked example"):
        raise NotImplementedError
    assert stub.score(2) == 0.0
    working = Checks()
    with working("NumPy only", requirement=True):
        pass
    with working("the worked example"):
        pass
    assert working.score(2) == 2.0
    take_outcomes()
