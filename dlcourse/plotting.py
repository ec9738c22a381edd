"""Plotting helpers shared by the chapters: one look, legible in the website's light and dark themes."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["use_course_style", "plot_curves", "show_images", "plot_confusion_matrix"]


def use_course_style() -> None:
    """Set matplotlib defaults for the course: white figure background (readable in dark mode), grid, sizes."""
    plt.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 90,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "font.size": 11,
        "axes.titlesize": 12,
        "legend.frameon": False,
    })


def plot_curves(curves: Mapping[str, Sequence[float]], *, title: str, xlabel: str = "epoch",
                ylabel: str = "loss", ax=None, logy: bool = False):
    """Plot named curves (e.g. training and validation loss per epoch) on one axes.

    Args:
        curves: ``{label: values}``; epochs are numbered from 1.
        title, xlabel, ylabel: the axes' text.
        ax: axes to draw on; a new figure is made when omitted.
        logy: logarithmic y axis.

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots()
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) <= 30 else None,
                markersize=3, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


def show_images(images: np.ndarray, labels: Sequence[str] | None = None, *, title: str, ncols: int = 8,
                size: float = 1.2):
    """Show a grid of greyscale images of shape (N, H, W), each with an optional caption.

    Returns:
        The figure.
    """
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.15), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray_r")
            if labels is not None:
                ax.set_title(str(labels[k]), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], *,
                          title: str = "Confusion matrix", ax=None):
    """Plot the confusion matrix of integer labels: row = true class, column = predicted class.

    Returns:
        The confusion matrix, an int array of shape (C, C).
    """
    c = len(class_names)
    matrix = np.zeros((c, c), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(matrix, cmap="Blues")
    ax.figure.colorbar(image, ax=ax, label="count")
    ax.set(xticks=range(c), yticks=range(c), xlabel="predicted class", ylabel="true class", title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    ax.grid(False)
    for i in range(c):
        for j in range(c):
            ax.text(j, i, matrix[i, j], ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    return matrix
