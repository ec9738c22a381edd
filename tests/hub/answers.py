"""Students' answers to 01-losses for the hub tests: the reference solution, or the solution with a bug."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = "01-losses"
NOTEBOOK = "losses.ipynb"
# A softmax without the max shift: right on the visible example, overflows on the hidden tests' huge logits.
BUG = ("softmax", "shifted = logits - np.max(logits, axis=1, keepdims=True)",
       "shifted = np.asarray(logits, dtype=float)")
SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*(\n|$)", re.MULTILINE)


def answered(released: dict | nbformat.NotebookNode, with_bug: bool) -> nbformat.NotebookNode:
    """The released notebook with every answer cell filled in from the solution (and the bug, if asked)."""
    nb = nbformat.from_dict(released) if isinstance(released, dict) else released
    solutions = {c.metadata.get("nbgrader", {}).get("grade_id"): c
                 for c in nbformat.read(ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4).cells}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            source = SOLUTION_MARKERS.sub("", solutions[meta["grade_id"]].source)
            if with_bug and meta["grade_id"] == BUG[0]:
                assert BUG[1] in source, "the bug no longer applies to the solution"
                source = source.replace(BUG[1], BUG[2])
            cell.source = source
    return nb
