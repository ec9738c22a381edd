"""The pre-submission check: the last cell of every exercise notebook calls :func:`check_submission`.

It tells the student, in plain words, what to fix before submitting:

- it reruns every visible test (the test cells' source, read from the notebook file) in the notebook's kernel and
  scores it as nbgrader does (an error scores 0, a number as the cell's last value is partial credit);
- it compares the answer cells of the file with what this kernel ran (IPython's input history): with unsaved
  edits it says "save and run this cell again" instead of judging an old file, and when Run All stopped early it
  names the cells that never ran instead of calling the functions "not defined";
- it checks the notebook's integrity: every graded cell present exactly once, with its grading metadata
  intact (a copied, deleted or re-typed cell breaks grading), the answers filled in, the file name right;
- on Colab it explains how to download the notebook for submission.

The notebook file is read from Colab (``google.colab._message``), from Jupyter (the path the server gives the
kernel: ``__session__`` / ``JPY_SESSION_NAME``) or VS Code (``__vsc_ipynb_file__``). When it cannot be found,
the check says so, checks what it can from the kernel (each function to write exists and its source, via
``inspect``, no longer raises ``NotImplementedError``), and never says "you can submit".

The expected cells are written into the cell by ``python -m autograder sync`` (:func:`check_cell_source`), so
the check knows what the notebook looked like when it was released. During grading (``NBGRADER_EXECUTION`` is
set) it does nothing.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import os
import re
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
    """A test cell's hint: its first line when that is a comment, without ``#`` ("" for code or a ``###``
    marker). A copy of ``autograder.notebooks.hint`` (this module imports only the standard library); a test
    checks that both agree on every notebook of the course."""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("###"):
            return stripped.lstrip("#").strip()
        if stripped:
            break
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
                        _first_comment(_source(c)).startswith(f"{grade_id.removeprefix('test_')}:")]
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


FAILED_MARK = "[check failed]"   # dlcourse.testing.FAILED_MARK (this module imports nothing but the stdlib)


def _score_like_nbgrader(value: Any, points: float) -> float:
    """nbgrader's reading of a test cell's last value: a number is partial credit, anything else full marks."""
    if value is None:
        return points
    try:
        return min(float(repr(value)), points)
    except (TypeError, ValueError):
        return points


def run_visible_tests(nb: dict) -> list[tuple[str, float, float, list[str]]]:
    """Run every test cell of the notebook in this kernel and score it as nbgrader would.

    Returns:
        (grade_id, points, points earned, what failed) per test cell, in notebook order.
    """
    namespace = _user_namespace()
    results = []
    for cell in nb.get("cells", []):
        meta = _meta(cell)
        if cell.get("cell_type") != "code" or not meta.get("grade"):
            continue
        grade_id, points = meta.get("grade_id", "?"), float(meta.get("points", 0))
        out, err = io.StringIO(), io.StringIO()
        try:
            tree = ast.parse(_source(cell))
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            filename = f"<test cell {grade_id}>"
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                exec(compile(tree, filename, "exec"), namespace)
                value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace) if last else None
            earned = _score_like_nbgrader(value, points)
            problems = [line[len(FAILED_MARK):].strip() for line in out.getvalue().splitlines()
                        if line.startswith(FAILED_MARK)]
            if err.getvalue().strip():
                earned = 0.0
                problems.append("the cell wrote to stderr (a warning?), which scores 0 points: "
                                + err.getvalue().strip().splitlines()[-1][:200])
        except NameError as error:
            earned, problems = 0.0, [f"{getattr(error, 'name', None) or error} is not defined"]
        except Exception as exception:   # a failing test is what this check is for
            earned, problems = 0.0, [f"{type(exception).__name__}: {exception}".splitlines()[0][:300]]
        results.append((grade_id, points, earned, problems))
    return results


# -- what ran in this kernel ------------------------------------------------------------------------------------
def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def executed_inputs() -> list[str] | None:
    """The cells this kernel ran, oldest first (IPython's input history); None outside IPython."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return None
    if shell is None:
        return None
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or shell.user_ns.get("In")
    return [str(entry) for entry in history] if history else None


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(def|class)\s+{re.escape(name)}\b", source, re.MULTILINE) is not None


def answers_out_of_date(nb: dict, cells: Mapping[str, Any], history: list[str]) -> tuple[list[str], list[str]]:
    """(answers whose saved source differs from the version this kernel last ran, answers that never ran)."""
    by_id = {_meta(c).get("grade_id"): _source(c) for c in nb.get("cells", []) if _meta(c).get("grade_id")}
    executed = {_normalise(entry) for entry in history}
    changed, never_ran = [], []
    for grade_id, kind in cells.items():
        source = by_id.get(grade_id)
        if kind != "answer" or source is None or _normalise(source) in executed:
            continue
        if any(_defines(entry, grade_id) for entry in history):
            changed.append(grade_id)
        elif _defines(source, grade_id):
            never_ran.append(grade_id)
    return changed, never_ran


def check_from_kernel(cells: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Without the notebook file: (report lines, fixes) from the answers' objects and their own source."""
    namespace = _user_namespace()
    lines, fixes = [], []
    for grade_id, kind in cells.items():
        if kind != "answer":
            continue
        value = namespace.get(grade_id)
        if value is None:
            lines.append(f"  FIX {grade_id} is not defined in this kernel")
            fixes.append(f"Run the cell that defines {grade_id} (Restart and run all), or write it.")
            continue
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            lines.append(f"  ok  {grade_id} is defined (I could not read its source to check that it is written)")
            continue
        if NOT_DONE in source:
            lines.append(f"  FIX {grade_id} still contains 'raise NotImplementedError()'")
            fixes.append(f"Write {grade_id}: replace 'raise NotImplementedError()' with your code.")
        else:
            lines.append(f"  ok  {grade_id} is written")
    return lines, fixes


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
    complete = True   # whether every answer could be checked
    history = executed_inputs()
    if nb is None:
        complete = False
        lines.append(f"I could not read the notebook file ({origin}), so I could not rerun the tests or check "
                     f"its cells. What I can check from this kernel:")
        kernel_lines, fixes = check_from_kernel(cells)
        lines += kernel_lines
    else:
        changed, never_ran = answers_out_of_date(nb, cells, history) if history is not None else ([], [])
        if changed:
            complete = False
            where = "the notebook as it is now" if origin == "Colab" else "the saved file"
            action = ("run those cells (or Runtime > Run all)" if origin == "Colab"
                      else "save the notebook (Ctrl+S; Cmd+S on a Mac)")
            fixes.append(f"What ran in this kernel differs from {where} for {', '.join(changed)}: you have "
                         f"unsaved edits, or edited a cell without running it. {action[0].upper() + action[1:]} "
                         f"and run this cell again.")
        else:
            if never_ran:
                fixes.append(f"The cells of {', '.join(never_ran)} have not run in this kernel, so their functions "
                             f"are not defined although you wrote them: Run All stops at the first cell with an "
                             f"error. Find that cell above, fix it, then restart and run all.")
            integrity = check_integrity(nb, name, notebook_name, cells)
            fixes += [fix for fix in integrity
                      if not any(f"'{grade_id}'" in fix and NOT_DONE in fix for grade_id in never_ran)]
        if origin != "Colab" and not changed:
            lines.append(f"Checked the saved file {origin}.")
        results = run_visible_tests(nb)
        passed = 0
        for grade_id, points, earned, problems in results:
            ok = earned >= points and not problems
            detail = "the visible tests pass" if ok else "; ".join(problems) or "the cell scored less than full marks"
            lines.append(f"  {'ok ' if ok else 'FIX'} {grade_id} ({earned:g} of {points:g} point"
                         f"{'s' * (points != 1)}): {detail}")
            passed += ok
            # A test of a function whose cell never ran: the fix is the one above, not another.
            not_run = bool(problems) and all(any(f"{name} is not defined" in problem for name in never_ran)
                                             for problem in problems)
            if not ok and not changed and not not_run:
                fixes.append(f"Make the visible tests of {grade_id} pass: {detail}")
        lines += ["", f"Visible tests: {passed} of {len(results)} test cells pass. Hidden tests (other shapes, "
                      f"random and extreme inputs) run too when your work is graded."]
    lines.append("")
    if fixes:
        lines.append("Fix these before you submit:")
        lines += [f"  {number}. {fix}" for number, fix in enumerate(fixes, start=1)]
    elif complete:
        lines.append("Everything I can check is in order: you can submit this notebook.")
    if not complete and not fixes:
        lines.append("I could not check everything, so I cannot tell you that this notebook is ready: open it in "
                     "Jupyter or Colab as usual and run this cell again.")
    elif nb is None:
        lines += ["", "I could not check everything (see above): fix what is listed, then open the notebook in "
                      "Jupyter or Colab as usual and run this cell again."]
    if _on_colab():
        lines += ["", f"To submit from Colab: File > Download > Download .ipynb. Your browser saves it under the "
                      f"notebook's name; submit it as '{notebook_name}' (rename the file if it is called "
                      f"'Copy of {notebook_name}' or has a ' (1)' in its name)."]
    print("\n".join(lines))
