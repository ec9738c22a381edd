"""Reading nbgrader notebooks: cell roles, solution code, and submissions built from the sources.

Used by the test suite (correct and wrong submissions), the benchmarks (the reference implementation) and the
grading pipeline (re-identifying cells). Nothing here executes a student's code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Mapping

import nbformat

from autograder.nbgrader_api import ROOT

_MARKERS = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_answer(cell) -> bool:
    """An autograded-answer cell: the student writes code here."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_test(cell) -> bool:
    """An autograder-tests cell: locked, carries points."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def strip_markers(source: str) -> str:
    """Source without the nbgrader region markers (the full solution, or the tests with the hidden part)."""
    return "\n".join(line for line in source.splitlines() if not _MARKERS.match(line))


def defined_names(source: str) -> list[str]:
    """Top-level functions and classes a piece of code defines, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def source_notebook(assignment: str, root: Path = ROOT) -> Path:
    """The (single) source notebook of an assignment."""
    notebooks = sorted((root / "solutions" / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"{assignment}: expected one source notebook, found {len(notebooks)}")
    return notebooks[0]


def solution_code(assignment: str, root: Path = ROOT) -> str:
    """The reference implementation: the import cell and every answer cell of the source, markers removed."""
    nb = nbformat.read(source_notebook(assignment, root), as_version=4)
    parts = [strip_markers(c.source) for c in nb.cells
             if is_answer(c) or nbgrader_meta(c).get("grade_id") == "imports"]
    return "\n\n".join(parts)


def load_solution(assignment: str, root: Path = ROOT) -> dict:
    """Execute the reference implementation and return its namespace (for benchmarks and test oracles)."""
    namespace: dict = {"__name__": f"solution_{assignment.replace('-', '_')}"}
    exec(compile(solution_code(assignment, root), f"<solution {assignment}>", "exec"), namespace)
    return namespace


def build_submission(assignment: str, appended: Mapping[str, str] | None = None,
                     root: Path = ROOT) -> nbformat.NotebookNode:
    """A submission as a student would hand it in: the released notebook with the solutions filled in.

    Args:
        appended: ``{function or class name: code}``; the code is appended to the answer cell that defines that
            name, so it replaces the reference definition before that name's tests run (used for wrong
            submissions).

    Raises:
        KeyError: when no answer cell defines one of the names.
    """
    source = nbformat.read(source_notebook(assignment, root), as_version=4)
    released = nbformat.read(root / "exercises" / assignment / source_notebook(assignment, root).name,
                             as_version=4)
    answers = {nbgrader_meta(c)["grade_id"]: strip_markers(c.source) for c in source.cells if is_answer(c)}
    pending = dict(appended or {})
    for cell in released.cells:
        if not is_answer(cell):
            continue
        code = answers[nbgrader_meta(cell)["grade_id"]]
        for name in [n for n in pending if n in defined_names(code)]:
            code += "\n\n" + pending.pop(name)
        cell.source = code
    if pending:
        raise KeyError(f"no answer cell of {assignment} defines {', '.join(pending)}")
    return released
