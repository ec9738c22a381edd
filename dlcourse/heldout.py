"""Scoring on held-out data, for the hidden tests of an open-ended assignment (the capstone).

The held-out set is not part of the course: the course's grader reads it from the instructor's grading folder
and hands its path to the trusted test runner only (``DLCOURSE_HELDOUT``; see ``autograder/heldout.py``). In a
student's notebook, on Colab or in stock ``nbgrader autograde``, :func:`load_heldout` raises
:class:`HeldoutUnavailable`: there is nothing to find.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["HeldoutUnavailable", "load_heldout", "accuracy_points"]

ENV = "DLCOURSE_HELDOUT"


class HeldoutUnavailable(RuntimeError):
    """The held-out set is not available here: only the course's grader has it."""


def load_heldout() -> tuple[np.ndarray, np.ndarray]:
    """The held-out ``(images, labels)`` that the grader provides to its trusted test runner.

    Raises:
        HeldoutUnavailable: anywhere else (a student's notebook, stock nbgrader).
    """
    path = os.environ.get(ENV)
    if not path or not os.path.isfile(path):
        raise HeldoutUnavailable("the held-out set is available only to the course's grader "
                                 "(`python -m autograder grade`), which scores this cell on it")
    with np.load(path, allow_pickle=False) as data:
        return data["images"], data["labels"]


def accuracy_points(accuracy: float, zero_at: float, full_at: float, points: float) -> float:
    """Points for an accuracy on a linear scale: 0 at ``zero_at`` or below, ``points`` at ``full_at`` or above.

    Example:
        >>> accuracy_points(0.84, zero_at=0.78, full_at=0.86, points=10)
        7.5
    """
    if not zero_at < full_at:
        raise ValueError(f"zero_at ({zero_at}) must be below full_at ({full_at})")
    share = (float(accuracy) - zero_at) / (full_at - zero_at)
    return round(points * min(max(share, 0.0), 1.0), 2)
