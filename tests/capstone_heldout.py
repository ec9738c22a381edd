"""A held-out set for grading 10-capstone in the tests (a real course provides its own: README, "Held-out data").

The tests use 2,000 images of Fashion-MNIST's test set (t10k), a part the capstone's notebook never loads: enough
to grade, not secret (the test set is public, and the sandbox can read the system's copy of it). A course must
use images its students never had: newly collected and labelled ones, or a split it never published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autograder.heldout import npz_bytes, stand_in_arrays

SEED = 20261127


def heldout_arrays() -> tuple[np.ndarray, np.ndarray]:
    return stand_in_arrays(SEED)


def write_heldout(grading: Path, assignment: str = "10-capstone") -> Path:
    """Write the tests' held-out set where the grader looks for it: <grading>/heldout/<assignment>.npz."""
    images, labels = heldout_arrays()
    path = Path(grading) / "heldout" / f"{assignment}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(npz_bytes(images, labels))
    return path
