"""The pre-submission check: the last cell of every exercise notebook calls :func:`check_submission`.

It tells the student, in plain words, what to fix before submitting:

- it reruns every visible test (the test cells' source, read from the notebook file) in the notebook's kernel;
- it checks the notebook's integrity: every graded cell present exactly once, with its grading metadata
  intact (a copied, deleted or re-typed cell breaks grading), the answers filled in, the file name right;
- on Colab it explains how to download the notebook for submission.

The notebook file is read from Colab (``google.colab._message``), from Jupyter (the path the server gives the
kernel: ``__session__`` / ``JPY_SESSION_NAME``) or VS Code (``__vsc_ipynb_file__``). When it cannot be found,
the check says so and does what it can without it: it checks that the functions to write exist.

The expected cells are written into the cell by ``python -m autograder sync`` (:func:`check_cell_source`), so
the check knows what the notebook looked like when it was released. During grading (``NBGRADER_EXECUTION`` is
set) it does nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

__all__ = ["CHECK_TAG", "check_cell_source", "check_submission"]

CHECK_TAG = "dlcourse-check"
NOT_DONE = "raise NotImplementedError"


def check_cell_source(notebook_name: str, cells: Mapping[str, Any]) -> str:
    """Source of the check cell for a notebook whose graded code cells are ``cells``.

    Args:
        notebook_name: the file name students must submit, e.g. ``"losses.ipynb"``.
        cells: ``{grade_id: "locked" | "answer" | points}`` for each nbgrader code cell, in notebook order.
    """
    entries = ",\n".join(f"    {json.dumps(grade_id)}: {json.dumps(kind)}" for grade_id, kind in cells.items())
    return (
        "# Before you submit: restart the kernel and run all cells, then read what this last cell says.\n"
        "# It reruns the visible tests and checks that every graded cell is still there, once and unchanged.\n"
        "from dlcourse.submission import check_submission\n"
        "\n"
        f"check_submission({json.dumps(notebook_name)}, {{\n{entries},\n}})"
    )


# -- finding the notebook ---------------------------------------------------------------------------------------
def _user_namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def read_notebook() -> tuple[dict | None, str, str]:
    """(the notebook's JSON, its file name, where it came from); (None, "", why not) when it cannot be read."""
    if _on_colab():
        try:
            from google.colab import _message

            reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
            nb = reply["ipynb"]
            return nb, nb.get("metadata", {}).get("colab", {}).get("name", ""), "Colab"
        except Exception as error:   # an older or newer Colab: fall back to what the kernel knows
            return None, "", f"Colab did not hand over the notebook ({error})"
    namespace = _user_namespace()
    candidates = [namespace.get("__vsc_ipynb_file__"), namespace.get("__session__"), os.environ.get("JPY_SESSION_NAME")]
    for candidate in candidates:
        if candidate and str(candidate).endswith(".ipynb"):
            path = Path(str(candidate)).expanduser()
            if not path.is_file() and (Path.cwd() / path.name).is_file():
                path = Path.cwd() / path.name
            if path.is_file():
                try:
                    return json.loads(path.read_text(encoding="utf-8")), path.name, str(path)
                except (OSError, ValueError) as error:
                    return None, path.name, f"{path} could not be read ({error})"
    return None, "", "this Jupyter did not tell the kernel which notebook it runs"


# -- the checks -------------------------------------------------------------------------------------------------
def _meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _first_comment(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip() if line.strip().startswith("#") else ""
    return ""


def check_integrity(nb: dict, name: str, expected_name: str, cells: Mapping[str, Any]) -> list[str]:
    """What is wrong with the notebook's structure, as instructions to the student."""
    problems = []
    found: dict[str, list[int]] = {}
    code_cells = list(nb.get("cells", []))   # every cell: the numbers are those the student sees
    for index, cell in enumerate(code_cells, start=1):
        grade_id = _meta(cell).get("grade_id")
        if grade_id:
            found.setdefault(grade_id, []).append(index)
    test_markers = {_first_comment(_source(c)): _meta(c).get("grade_id") for c in code_cells
                    if _meta(c).get("grade") and _first_comment(_source(c))}
    for grade_id, kind in cells.items():
        where = found.get(grade_id, [])
        what = "test cell" if not isinstance(kind, str) else ("answer cell" if kind == "answer" else "given cell")
        if not where:
            # A test cell's first line names what it tests ("# mse_loss: ..."): it may still be there, stripped.
            stripped = [i for i, c in enumerate(code_cells, start=1) if not _meta(c).get("grade_id") and
                        not isinstance(kind, str) and
                        _first_comment(_source(c)).startswith(f"# {grade_id.removeprefix('test_')}:")]
            if stripped:
                problems.append(f"Cell {stripped[0]} looks like the test cell '{grade_id}' but lost its grading "
                                f"information, so it would not be graded: replace it with the cell from a fresh "
                                f"copy of the notebook.")
            else:
                problems.append(f"The {what} '{grade_id}' is missing: you deleted it, or its grading information "
                                f"was lost (for example by re-typing it). Undo the deletion (Edit > Undo), or copy "
                                f"the cell from a fresh copy of the notebook into the same place.")
            continue
        if len(where) > 1:
            problems.append(f"The {what} '{grade_id}' appears {len(where)} times (cells {', '.join(map(str, where))}): "
                            f"you copied it. Delete the copies and keep the original one, so that it is graded "
                            f"once.")
        cell = code_cells[where[0] - 1]
        meta = _meta(cell)
        if kind == "answer":
            if not meta.get("solution"):
                problems.append(f"The answer cell '{grade_id}' lost its grading information; copy your code into "
                                f"the answer cell of a fresh copy of the notebook.")
            elif NOT_DONE in _source(cell):
                problems.append(f"The answer cell '{grade_id}' still contains 'raise NotImplementedError()': "
                                f"replace it with your code.")
        elif not isinstance(kind, str):
            if not meta.get("grade") or float(meta.get("points", -1)) != float(kind):
                problems.append(f"The test cell '{grade_id}' lost its grading information (it should be worth "
                                f"{kind:g} points); copy it back from a fresh copy of the notebook.")
    for index, cell in enumerate(code_cells, start=1):
        marker = _first_comment(_source(cell))
        if not _meta(cell).get("grade_id") and marker in test_markers and cell.get("cell_type") == "code":
            problems.append(f"Cell {index} looks like a copy of the test cell '{test_markers[marker]}' without its "
                            f"grading information: delete it.")
    if name and name != expected_name:
        problems.append(f"The notebook is named '{name}': submit it as '{expected_name}' (rename the file, "
                        f"removing any 'Copy of' or ' (1)').")
    return problems


def run_visible_tests(nb: dict) -> list[tuple[str, float, str]]:
    """Run every test cell of the notebook in this kernel: (grade_id, points, "" or the first error line)."""
    namespace = _user_namespace()
    results = []
    for cell in nb.get("cells", []):
        meta = _meta(cell)
        if cell.get("cell_type") != "code" or not meta.get("grade"):
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(_source(cell), f"<test cell {meta.get('grade_id')}>", "exec"), namespace)
            error = ""
        except Exception as exception:   # a failing test is what this check is for
            error = f"{type(exception).__name__}: {exception}".splitlines()[0]
        results.append((meta.get("grade_id", "?"), float(meta.get("points", 0)), error))
    return results


def check_submission(notebook_name: str, cells: Mapping[str, Any]) -> None:
    """Print what to fix before submitting (nothing happens during grading).

    Args:
        notebook_name: the file name to submit.
        cells: the graded code cells the notebook was released with (see :func:`check_cell_source`).
    """
    if os.environ.get("NBGRADER_EXECUTION"):
        return
    nb, name, origin = read_notebook()
    fixes: list[str] = []
    lines = [f"Pre-submission check of {notebook_name}", ""]
    if nb is None:
        lines.append(f"I could not read the notebook file ({origin}), so I could not rerun the tests or check "
                     f"its cells. What I can check from here:")
        namespace = _user_namespace()
        for grade_id, kind in cells.items():
            if kind == "answer":
                ok = callable(namespace.get(grade_id))
                lines.append(f"  {'ok ' if ok else 'FIX'} {grade_id} is {'defined' if ok else 'not defined'}")
                if not ok:
                    fixes.append(f"Run the answer cell that defines {grade_id} (or write it).")
    else:
        if origin != "Colab":
            lines.append(f"Checked the last saved version of {origin}: save (Ctrl+S) before running this cell.")
        fixes += check_integrity(nb, name, notebook_name, cells)
        results = run_visible_tests(nb)
        passed = 0
        for grade_id, points, error in results:
            lines.append(f"  {'ok ' if not error else 'FIX'} {grade_id} ({points:g} point{'s' * (points != 1)})"
                         + (f": {error}" if error else ": the visible tests pass"))
            passed += not error
            if error:
                fixes.append(f"Make the visible tests of {grade_id} pass: {error}")
        lines += ["", f"Visible tests: {passed} of {len(results)} test cells pass. Hidden tests (other shapes, "
                      f"random and extreme inputs) run too when your work is graded."]
    lines.append("")
    if fixes:
        lines.append("Fix these before you submit:")
        lines += [f"  {number}. {fix}" for number, fix in enumerate(fixes, start=1)]
    else:
        lines.append("Everything I can check is in order: you can submit this notebook.")
    if _on_colab():
        lines += ["", f"To submit from Colab: File > Download > Download .ipynb. Your browser saves it under the "
                      f"notebook's name; submit it as '{notebook_name}' (rename the file if it is called "
                      f"'Copy of {notebook_name}' or has a ' (1)' in its name)."]
    print("\n".join(lines))
