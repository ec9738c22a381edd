"""Pictures of loss surfaces and of optimisers moving on them, for the chapters on gradients and gradient descent.

A loss of two parameters is drawn as a contour map (:func:`loss_grid` evaluates it once, :func:`plot_loss_contours`
draws it, so that an interactive figure redrawn for hundreds of states evaluates the loss only once), with the
gradient as a field of arrows (:func:`plot_gradient_field`) and the points an optimiser visits as a path
(:func:`plot_trajectory`), or the paths of several optimisers side by side (:func:`plot_trajectories`).

    >>> import matplotlib.pyplot as plt
    >>> grid = loss_grid(lambda w1, w2: w1 ** 2 + 10 * w2 ** 2, (-2, 2), (-1, 1))
    >>> fig, ax = plt.subplots()
    >>> _ = plot_loss_contours(ax, grid, title="An elongated bowl", xlabel="$w_1$", ylabel="$w_2$")
    >>> _ = plot_trajectory(ax, [[-1.5, 0.8], [-1.2, -0.8], [-1.0, 0.6]], label="gradient descent")

This module draws; it holds no optimiser and no solution to any exercise.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = ["LossGrid", "loss_grid", "plot_loss_contours", "plot_gradient_field", "plot_trajectory",
           "plot_trajectories", "PATH_COLORS"]

# Distinct on the dark-to-light default colour map and for colour-blind readers (Okabe and Ito's palette,
# with white first).
PATH_COLORS = ("white", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#D55E00", "#CC79A7", "#0072B2")


class LossGrid(NamedTuple):
    """A loss of two parameters evaluated on a regular grid.

    Shape:
        - w1, w2: ``(num, num)``, the coordinates of the grid points (as from ``np.meshgrid``, ``w1`` varying
          along the columns)
        - loss: ``(num, num)``, the loss at each grid point
    """

    w1: np.ndarray
    w2: np.ndarray
    loss: np.ndarray


def loss_grid(loss: Callable[[np.ndarray, np.ndarray], np.ndarray], xlim: tuple[float, float],
              ylim: tuple[float, float], num: int = 121) -> LossGrid:
    """Evaluate ``loss(w1, w2)`` on a ``num`` x ``num`` grid covering ``xlim`` x ``ylim``.

    Args:
        loss: function of two arrays of equal shape returning the loss at every pair, an array of that shape
            (write it with NumPy operations so that it works element-wise).
        xlim, ylim: the ranges of the first and the second parameter.
        num: number of grid points along each axis.

    Returns:
        A :class:`LossGrid`.
    """
    w1, w2 = np.meshgrid(np.linspace(*xlim, num), np.linspace(*ylim, num))
    values = np.asarray(loss(w1, w2), dtype=np.float64)
    if values.shape != w1.shape:
        raise ValueError(f"loss(w1, w2) returned shape {values.shape} for inputs of shape {w1.shape}: it must "
                         f"work element-wise")
    return LossGrid(w1, w2, values)


def plot_loss_contours(ax, grid: LossGrid, *, title: str, xlabel: str, ylabel: str, levels: int | Sequence[float] = 15,
                       log: bool = False, cmap: str = "viridis"):
    """Draw a loss surface as filled contours with thin contour lines on top.

    Args:
        ax: the matplotlib axes to draw on.
        grid: the loss on a grid, from :func:`loss_grid`.
        title, xlabel, ylabel: the axes' text.
        levels: number of contour levels, or the levels themselves.
        log: space the levels logarithmically between the grid's smallest positive and largest loss, which shows
            the floor of a steep valley that evenly spaced levels would paint in one colour.
        cmap: colour map of the filled contours (dark = low loss with the default).

    Returns:
        The filled-contour set (pass it to ``fig.colorbar`` for a colour bar).
    """
    if log and isinstance(levels, int):
        positive = grid.loss[grid.loss > 0]
        levels = np.geomspace(positive.min(), grid.loss.max(), levels)
    # Without antialiasing the PNG of a contour map is about a third of the size: an interactive figure stores
    # one PNG per state on the website.
    filled = ax.contourf(grid.w1, grid.w2, grid.loss, levels=levels, cmap=cmap, antialiased=False)
    ax.contour(grid.w1, grid.w2, grid.loss, levels=filled.levels, colors="white", linewidths=0.4, alpha=0.5,
               antialiased=False)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_xlim(grid.w1.min(), grid.w1.max())
    ax.set_ylim(grid.w2.min(), grid.w2.max())
    ax.grid(False)
    return filled


def plot_gradient_field(ax, gradient: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                        xlim: tuple[float, float], ylim: tuple[float, float], *, num: int = 9, scale: float | None = None,
                        color: str = "crimson"):
    """Draw the gradient as an arrow at each point of a ``num`` x ``num`` grid.

    All arrows share one scale, so an arrow's length is proportional to the steepness at its foot.

    Args:
        ax: the matplotlib axes to draw on.
        gradient: function of two arrays ``(w1, w2)`` returning the two partial derivatives, arrays of that shape.
        xlim, ylim: the ranges covered by the arrows' feet.
        num: arrows along each axis.
        scale: gradient length drawn as one unit of the x axis (default: the longest arrow spans one grid cell).
        color: colour of the arrows.

    Returns:
        The quiver object.
    """
    w1, w2 = np.meshgrid(np.linspace(*xlim, num), np.linspace(*ylim, num))
    d1, d2 = (np.asarray(d, dtype=np.float64) for d in gradient(w1, w2))
    if scale is None:
        longest = float(np.sqrt(d1 ** 2 + d2 ** 2).max())
        cell = (xlim[1] - xlim[0]) / max(num - 1, 1)
        scale = longest / cell if longest > 0 else 1.0
    return ax.quiver(w1, w2, d1, d2, angles="xy", scale_units="xy", scale=scale, color=color, width=0.004)


def plot_trajectory(ax, path: Sequence[Sequence[float]] | np.ndarray, *, label: str | None = None,
                    color: str = "white", marker: str = "o", markersize: float = 3.5):
    """Draw the points an optimiser visited, joined in order, with the start and the end marked.

    Args:
        ax: the matplotlib axes to draw on.
        path: the points, of shape (num_points, 2): one row per step, the first row the start.
        label: legend entry of the path.
        color: colour of the path (white shows on the default dark-to-light colour map).
        marker, markersize: the marker of every visited point.

    Returns:
        The line of the path.
    """
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path should have shape (num_points, 2), got {path.shape}")
    (line,) = ax.plot(path[:, 0], path[:, 1], marker=marker, markersize=markersize, color=color, linewidth=1.2,
                      label=label, markeredgecolor="black", markeredgewidth=0.4)
    ax.plot(*path[0], marker="s", markersize=7, color=color, markeredgecolor="black", linestyle="none")
    ax.plot(*path[-1], marker="*", markersize=12, color=color, markeredgecolor="black", linestyle="none")
    return line


def plot_trajectories(ax, paths: Mapping[str, Sequence[Sequence[float]] | np.ndarray], *,
                      colors: Sequence[str] = PATH_COLORS, markersize: float = 2.5, legend: bool = True) -> list:
    """Draw the paths of several optimisers on one map, each in its own colour, with a legend.

    A path that leaves the axes (a diverging optimiser) is drawn up to the edge: its points are clipped to the
    current limits, so the map keeps its scale. Set the limits (e.g. with :func:`plot_loss_contours`) first.

    Args:
        ax: the matplotlib axes to draw on.
        paths: ``{label: path}``, each path of shape (num_points, 2), in legend order.
        colors: the colours, used in turn.
        markersize: the marker of every visited point.
        legend: add a legend of the labels.

    Returns:
        The lines of the paths, in order.
    """
    if len(paths) > len(colors):
        raise ValueError(f"{len(paths)} paths but only {len(colors)} colours: pass more colours")
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    lines = []
    for (label, path), color in zip(paths.items(), colors):
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ValueError(f"path {label!r} should have shape (num_points, 2), got {path.shape}")
        finite = np.nan_to_num(path, nan=0.0, posinf=np.finfo(np.float64).max, neginf=-np.finfo(np.float64).max)
        lines.append(plot_trajectory(ax, np.clip(finite, [x0, y0], [x1, y1]), label=label, color=color,
                                     markersize=markersize))
    if legend and lines:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    return lines
