"""Helpers of the neural-network chapters and assignments: a backpropagation stepper, a progress bar, guards.

* :func:`backprop_stepper` turns a small computational graph (a micrograd-style ``Value`` built in a chapter)
  into an interactive figure that steps through the forward pass node by node and then the backward pass,
  showing every node's value and gradient.
* :func:`progress` is a tqdm progress bar that never writes to stderr: a live bar in Jupyter and Colab, a single
  final line of text when the book build executes the notebook (``DLCOURSE_STATIC_WIDGETS=1``) or in a terminal.
* :func:`assert_torch_free` and :func:`without_shortcuts` are used by the test cells of the NumPy assignments:
  the first checks that a student's function does not use PyTorch, the second runs student code with PyTorch
  unimportable and the gradient checkers of :mod:`dlcourse.gradcheck` switched off, so that a graded gradient
  cannot be obtained from autograd or from finite differences. :func:`single_blas_thread` keeps the timing of a
  graded training run stable on a busy machine.

This module holds no solution to any exercise.
"""

from __future__ import annotations

import io
import sys
import types
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:   # imported lazily: the assignments' test cells use the guards only, without matplotlib
    from dlcourse.widgets import InteractiveFigure

__all__ = ["graph_nodes", "backprop_steps", "draw_backprop_step", "backprop_stepper", "progress", "assert_torch_free",
           "without_shortcuts", "single_blas_thread"]


# ---------------------------------------------------------------------------------------------------------------
# Stepping through forward and backward passes


def graph_nodes(output: Any) -> list[Any]:
    """The nodes of a computational graph in topological order (inputs first, ``output`` last).

    A node is any object with ``_prev``, the collection of nodes it was computed from (micrograd's convention).
    """
    order: list[Any] = []
    visited: set[int] = set()

    def visit(node: Any) -> None:
        if id(node) in visited:
            return
        visited.add(id(node))
        for parent in node._prev:
            visit(parent)
        order.append(node)

    visit(output)
    return order


def backprop_steps(output: Any) -> tuple[list[Any], list[dict]]:
    """Replay the forward and the backward pass of a graph one node at a time.

    The graph's nodes need ``data``, ``grad``, ``_prev`` and ``_backward`` (a function that adds the node's
    gradient, times the local derivative, into the ``grad`` of its ``_prev`` nodes), as micrograd's ``Value``.
    The forward values are those already stored in ``data``; the backward pass is run here, one node at a
    time in reverse topological order, starting from ``output.grad = 1``. Gradients are reset first and left
    as the full backward pass sets them.

    Returns:
        ``(nodes, steps)``: the nodes in topological order, and one state per step: step 0 before anything is
        computed, steps 1..n compute the forward values of nodes 0..n-1, step n+1 seeds ``output.grad = 1`` and
        the following n steps each run one node's ``_backward``. A state is a dict with ``phase`` ("start",
        "forward", "seed" or "backward"), ``active`` (index of the node just computed or propagated, or None),
        ``known`` (indices whose value is known), ``grads`` (every node's gradient, or None before the backward
        pass reaches it) and ``text`` (one sentence describing the step).
    """
    nodes = graph_nodes(output)
    index = {id(node): k for k, node in enumerate(nodes)}
    steps: list[dict] = [{"phase": "start", "active": None, "known": set(), "grads": [None] * len(nodes),
                          "text": "Nothing computed yet: the inputs are about to be read."}]
    known: set[int] = set()
    for k, node in enumerate(nodes):
        known = known | {k}
        parents = [index[id(p)] for p in node._prev]
        text = (f"Forward: {_name(node, k)} is an input, = {node.data:.3g}" if not parents else
                f"Forward: {_name(node, k)} = {_describe(node, nodes, index)} = {node.data:.3g}")
        steps.append({"phase": "forward", "active": k, "known": known, "grads": [None] * len(nodes),
                      "text": text})
    for node in nodes:
        node.grad = 0.0
    output.grad = 1.0
    reached = {len(nodes) - 1}
    steps.append({"phase": "seed", "active": len(nodes) - 1, "known": known,
                  "grads": _grads(nodes, reached),
                  "text": f"Backward: seed d{_name(output, len(nodes) - 1)}/d{_name(output, len(nodes) - 1)} = 1"})
    for k in reversed(range(len(nodes))):
        node = nodes[k]
        node._backward()
        parents = [index[id(p)] for p in node._prev]
        reached |= set(parents)
        text = (f"Backward: {_name(node, k)} is an input; its gradient is complete: {node.grad:.3g}" if not parents
                else f"Backward: {_name(node, k)} passes its gradient {node.grad:.3g} to "
                     f"{', '.join(_name(nodes[p], p) for p in parents)} (chain rule: times the local derivative)")
        steps.append({"phase": "backward", "active": k, "known": known, "grads": _grads(nodes, reached),
                      "text": text})
    return nodes, steps


def _name(node: Any, k: int) -> str:
    return getattr(node, "label", "") or f"node {k}"


def _describe(node: Any, nodes: list[Any], index: dict[int, int]) -> str:
    names = [_name(p, index[id(p)]) for p in node._prev]
    op = getattr(node, "_op", "") or "f"
    if len(names) == 2 and op in {"+", "*", "-", "/"}:
        return f"{names[0]} {op} {names[1]}"
    return f"{op}({', '.join(names)})"


def _grads(nodes: list[Any], reached: set[int]) -> list[float | None]:
    return [float(node.grad) if k in reached else None for k, node in enumerate(nodes)]


def _layout(nodes: list[Any]) -> list[tuple[float, float]]:
    """Position of every node, left to right: columns by depth, rows ordered to keep edges short.

    A computed node sits one column right of its deepest parent; an input sits one column left of its first
    consumer. Columns are filled from the output backwards, each node placed near the mean height of its
    consumers, so a tree is drawn without crossings.
    """
    index = {id(node): k for k, node in enumerate(nodes)}
    parents = [[index[id(p)] for p in node._prev] for node in nodes]
    consumers: list[list[int]] = [[] for _ in nodes]
    for k, ps in enumerate(parents):
        for p in ps:
            consumers[p].append(k)
    depth = [0] * len(nodes)
    for k in range(len(nodes)):   # topological order: the parents' depths are final
        depth[k] = max((depth[p] + 1 for p in parents[k]), default=0)
    for k in reversed(range(len(nodes))):
        if not parents[k] and consumers[k]:
            depth[k] = min(depth[c] for c in consumers[k]) - 1
    shift = min(depth)
    y = [0.0] * len(nodes)
    columns: dict[int, list[int]] = {}
    for k in range(len(nodes)):
        columns.setdefault(depth[k] - shift, []).append(k)
    for d in sorted(columns, reverse=True):
        members = sorted(columns[d], key=lambda k: -sum(y[c] for c in consumers[k]) / max(len(consumers[k]), 1))
        for row, k in enumerate(members):
            y[k] = (len(members) - 1) / 2 - row + (sum(y[c] for c in consumers[k]) / len(consumers[k])
                                                   if consumers[k] and len(members) == 1 else 0.0)
    return [(float(depth[k] - shift), y[k]) for k in range(len(nodes))]


def draw_backprop_step(fig, nodes: list[Any], state: dict, *, title: str = "Backpropagation, step by step") -> None:
    """Draw one state of :func:`backprop_steps` on a matplotlib figure."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    ax = fig.subplots()
    position = _layout(nodes)
    index = {id(node): k for k, node in enumerate(nodes)}
    xs = [p[0] for p in position]
    ys = [p[1] for p in position]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.set_axis_off()
    active = state["active"]
    backward = state["phase"] in {"seed", "backward"}
    boxes = []
    for k, node in enumerate(nodes):
        x, y = position[k]
        is_active = k == active
        face = "#fdebd0" if is_active else "#eaf2f8" if k in state["known"] else "#f4f4f4"
        box = FancyBboxPatch((x - 0.36, y - 0.3), 0.72, 0.6, boxstyle="round,pad=0.02", facecolor=face,
                             edgecolor="#c0392b" if is_active else "#555555", lw=2.0 if is_active else 1.0,
                             zorder=2)
        ax.add_patch(box)
        boxes.append(box)
        op = getattr(node, "_op", "")
        header = _name(node, k) + (f"  [{op}]" if op else "")
        value = f"value {node.data:.3g}" if k in state["known"] else "value ?"
        grad = state["grads"][k]
        gradient = f"grad {grad:.3g}" if grad is not None else ("grad ?" if backward else "")
        ax.text(x, y + 0.14, header, ha="center", va="center", fontsize=9, fontweight="bold", zorder=3)
        ax.text(x, y - 0.02, value, ha="center", va="center", fontsize=8.5, zorder=3)
        ax.text(x, y - 0.17, gradient, ha="center", va="center", fontsize=8.5, color="#c0392b", zorder=3)
    for k, node in enumerate(nodes):
        for parent in node._prev:
            p = index[id(parent)]
            hot_backward = state["phase"] == "backward" and k == active
            hot_forward = state["phase"] == "forward" and k == active
            skip = abs(position[k][0] - position[p][0]) > 1.5   # an edge that jumps a column bends around boxes
            ax.add_patch(FancyArrowPatch(position[p], position[k], patchA=boxes[p], patchB=boxes[k],
                                         arrowstyle="<|-" if hot_backward else "-|>", mutation_scale=14,
                                         connectionstyle=f"arc3,rad={-0.25 if skip else 0.0}",
                                         lw=2.4 if (hot_backward or hot_forward) else 1.0, zorder=1,
                                         color="#c0392b" if hot_backward else "#2471a3" if hot_forward
                                         else "#999999"))
    ax.set_title(f"{title}\n{state['text']}", fontsize=10)


def backprop_stepper(output: Any, *, title: str = "Backpropagation, step by step",
                     figsize: tuple[float, float] = (8.0, 4.2)) -> "InteractiveFigure":
    """An interactive figure with a "step" slider through the forward and backward pass of a small graph.

    Args:
        output: the last node of the graph (see :func:`backprop_steps` for what a node needs).
        title: the figure's title; the current step is described below it.

    Returns:
        An :class:`~dlcourse.widgets.InteractiveFigure`; the last expression of a cell displays it.
    """
    from dlcourse.widgets import Slider, interactive_figure

    nodes, steps = backprop_steps(output)

    def draw(fig, step):
        draw_backprop_step(fig, nodes, steps[int(step)], title=title)

    def alt(step):
        state = steps[int(step)]
        return (f"A computational graph of {len(nodes)} nodes drawn left to right, inputs on the left. "
                f"Step {int(step)} of {len(steps) - 1}. {state['text']}")

    return interactive_figure(draw, {"step": Slider(0, len(steps) - 1, 1, 0, fmt="{:.0f}")}, alt=alt,
                              figsize=figsize)


# ---------------------------------------------------------------------------------------------------------------
# Progress bars that never write to stderr


class _FinalLine(io.TextIOBase):
    """A file for tqdm that keeps only the bar's latest state and prints it once, as one line, when closed."""

    def __init__(self, stream):
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self.last = part
        return len(text)

    def flush(self) -> None:
        pass

    def emit(self) -> None:
        if self.last:
            self.stream.write(self.last.rstrip() + "\n")
            self.stream.flush()
            self.last = ""


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable | None = None, **kwargs: Any):
    """A tqdm progress bar (same arguments as ``tqdm.tqdm``) that never writes to stderr.

    In Jupyter and Colab it is tqdm's live notebook bar. When the book build executes a notebook
    (``DLCOURSE_STATIC_WIDGETS=1``) or outside a notebook, the bar is written to stdout once, in its final
    state, when it closes: a static page shows one clean line instead of a hundred redraws.

    Example:
        >>> for epoch in progress(range(3), desc="epochs"):
        ...     pass
    """
    from dlcourse.widgets import static_widgets_enabled

    if _in_notebook() and not static_widgets_enabled():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(iterable, **kwargs)
    from tqdm.std import tqdm as text_tqdm

    sink = _FinalLine(sys.stdout)
    kwargs.setdefault("mininterval", 1.0)
    kwargs.setdefault("ascii", False)
    kwargs.setdefault("ncols", 100)
    bar = text_tqdm(iterable, file=sink, **kwargs)
    close = bar.close

    def close_and_emit() -> None:
        close()
        sink.emit()

    bar.close = close_and_emit
    return bar


# ---------------------------------------------------------------------------------------------------------------
# Guards for the test cells of the NumPy assignments


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
