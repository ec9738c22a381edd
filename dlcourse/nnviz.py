"""Helpers of the neural-network chapters: a backpropagation stepper and a progress bar.

* :func:`backprop_stepper` turns a small computational graph (a micrograd-style ``Value`` built in a chapter)
  into an interactive figure that steps through the forward pass node by node and then the backward pass,
  showing every node's value and gradient.
* :func:`progress` (from :mod:`dlcourse.progress`) is a tqdm progress bar that never writes to stderr.

The guards that test cells use (``assert_torch_free``, ``without_shortcuts``, ``single_blas_thread``) live in
:mod:`dlcourse.testing_guards`, part of the test-cell API :mod:`dlcourse.testing`; they are still importable from
here because notebooks released before the split import them from this module.

This module holds no solution to any exercise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # imported lazily: importing this module needs no matplotlib
    from dlcourse.widgets import InteractiveFigure

from dlcourse.progress import progress
from dlcourse.testing_guards import assert_torch_free, single_blas_thread, without_shortcuts  # noqa: F401 (see above)

__all__ = ["graph_nodes", "backprop_steps", "draw_backprop_step", "backprop_stepper", "progress"]


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
