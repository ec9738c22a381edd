"""Tests of dlcourse.nnviz and dlcourse.progress (the stepper, the progress bar) and of dlcourse.testing_guards."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from dlcourse import gradcheck, nnviz, testing_guards


class Value:
    """A minimal micrograd-style scalar, enough to build test graphs."""

    def __init__(self, data, _prev=(), _op="", label=""):
        self.data, self.grad = float(data), 0.0
        self._prev, self._op, self.label = tuple(_prev), _op, label
        self._backward = lambda: None

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data ** 2) * out.grad
        out._backward = _backward
        return out


def small_graph():
    a, b, c = Value(2.0, label="a"), Value(-3.0, label="b"), Value(0.5, label="c")
    e = a * b
    e.label = "e"
    d = e + c
    d.label = "d"
    f = d * a   # a is used twice: its gradient must add up both paths
    f.label = "f"
    return a, b, c, f


def test_graph_nodes_lists_every_node_once_with_parents_first():
    a, b, c, f = small_graph()
    nodes = nnviz.graph_nodes(f)
    assert len(nodes) == 6 and nodes[-1] is f
    position = {id(n): k for k, n in enumerate(nodes)}
    for node in nodes:
        for parent in node._prev:
            assert position[id(parent)] < position[id(node)]


def test_backprop_steps_end_with_the_gradients_of_a_full_backward_pass():
    a, b, c, f = small_graph()
    nodes, steps = nnviz.backprop_steps(f)
    assert len(steps) == 2 * len(nodes) + 2
    assert [s["phase"] for s in steps[:2]] == ["start", "forward"]
    assert steps[len(nodes) + 1]["phase"] == "seed"
    # f = (a*b + c) * a: df/da = 2ab + c, df/db = a^2, df/dc = a.
    assert a.grad == pytest.approx(2 * 2.0 * -3.0 + 0.5)
    assert b.grad == pytest.approx(4.0)
    assert c.grad == pytest.approx(2.0)
    final = steps[-1]["grads"]
    assert final[[id(n) for n in nodes].index(id(a))] == pytest.approx(a.grad)
    # Before the backward pass no gradient is shown; the forward pass reveals one value per step.
    assert all(g is None for g in steps[3]["grads"])
    assert len(steps[3]["known"]) == 3


def test_a_node_used_twice_shows_its_partial_gradient_until_both_paths_are_done():
    a, b, c, f = small_graph()
    nodes, steps = nnviz.backprop_steps(f)
    ia = [id(n) for n in nodes].index(id(a))
    seen = [s["grads"][ia] for s in steps if s["grads"][ia] is not None]
    assert seen[0] == pytest.approx(-5.5)    # through f = d * a only: df/da = d
    assert seen[-1] == pytest.approx(-11.5)  # plus the path through e = a * b: d * 1 + b * a


def test_backprop_stepper_renders_every_step_with_alt_text():
    *_, f = small_graph()
    figure = nnviz.backprop_stepper(f)
    values = figure.controls["step"].values()
    assert len(values) == 2 * 6 + 2
    png = figure.render_png(step=values[-1])
    assert png.startswith(b"\x89PNG")
    assert "Step 0 of 13" in figure.alt_text(step=0)
    assert "Backward" in figure.alt_text(step=values[-1])


def test_progress_writes_one_final_line_to_stdout_and_nothing_to_stderr(capsys):
    total = 0
    for k in nnviz.progress(range(50), desc="counting"):
        total += k
    captured = capsys.readouterr()
    assert total == sum(range(50))
    assert captured.err == ""
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert len(lines) == 1 and "counting" in lines[0] and "50/50" in lines[0]


def test_progress_as_a_manual_bar_with_postfix(capsys):
    bar = nnviz.progress(total=3, desc="epochs")
    for loss in (0.9, 0.5, 0.3):
        bar.update(1)
        bar.set_postfix(loss=loss)
    bar.close()
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "3/3" in captured.out and "loss=0.3" in captured.out


def numpy_only(x):
    return np.maximum(x, 0)


def test_assert_torch_free_accepts_numpy_code():
    testing_guards.assert_torch_free(numpy_only)


def test_assert_torch_free_rejects_an_import_inside_the_function():
    def uses_torch(x):
        import torch
        return torch.relu(torch.as_tensor(x)).numpy()

    with pytest.raises(AssertionError, match="torch"):
        testing_guards.assert_torch_free(uses_torch)


def test_assert_torch_free_rejects_a_global_alias_and_a_helper_that_uses_it():
    torch = pytest.importorskip("torch")
    namespace = {"__name__": "__main__", "t": torch}
    exec("def helper(x):\n    return t.as_tensor(x)\n\ndef graded(x):\n    return helper(x) * 2\n", namespace)
    with pytest.raises(AssertionError, match="helper"):
        testing_guards.assert_torch_free(namespace["graded"])


def test_without_shortcuts_blocks_torch_and_gradcheck_then_restores_them():
    pytest.importorskip("torch")
    from dlcourse.gradcheck import finite_difference_gradient   # a reference taken before the block

    x = np.array([1.0, 2.0])
    with testing_guards.without_shortcuts():
        with pytest.raises(ImportError):
            import torch  # noqa: F401
        with pytest.raises(AssertionError, match="compute the gradient yourself"):
            finite_difference_gradient(lambda v: float((v ** 2).sum()), x)
        with pytest.raises(AssertionError):
            gradcheck.numerical_backward(lambda x: x, {"x": x}, np.ones(2))
    import torch
    assert sys.modules["torch"] is torch
    assert finite_difference_gradient(lambda v: float((v ** 2).sum()), x) == pytest.approx(2 * x)


def test_single_blas_thread_limits_blas_inside_the_block_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    np.ones((2, 2)) @ np.ones((2, 2))   # make sure NumPy's BLAS is loaded

    def blas_threads():
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    with testing_guards.single_blas_thread():
        assert blas_threads() and all(n == 1 for n in blas_threads())
    assert blas_threads() == before
