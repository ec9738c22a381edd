"""The pre-submission check in a real Jupyter kernel, in the three situations where it used to mislead.

Each test runs an exercise notebook as a student's front end would (one kernel, cells in order, the notebook's
path given to the kernel as Jupyter Server does) and reads what the last cell, the check, printed.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.notebooks import build_submission, nbgrader_meta
from conftest import ROOT
from test_assignments import split_mutant

pytestmark = pytest.mark.grading
ASSIGNMENT = "01-losses"
NOTEBOOK = "losses.ipynb"
MUTANTS = ROOT / "tests" / "mutants" / ASSIGNMENT


def check_output(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")


def run(nb: nbformat.NotebookNode, folder: Path, monkeypatch, saved: nbformat.NotebookNode | None = None,
        tell_path: bool = True) -> tuple[nbformat.NotebookNode, int | None]:
    """Run All in one kernel until a cell fails, then run the check cell by hand, as a student would.

    ``saved`` is the file on disk (default: ``nb`` itself). Returns the executed notebook and the index of the
    cell where Run All stopped (None when it went through).
    """
    path = folder / NOTEBOOK
    nbformat.write(saved if saved is not None else nb, path)
    if tell_path:
        monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    else:
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    stopped = None
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)
            except CellExecutionError:
                stopped = index
                break
        if stopped is not None:
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
    return nb, stopped


def test_run_all_reaches_the_check_when_a_test_fails(tmp_path, monkeypatch):
    """With a wrong softmax, does Restart and Run All go through every cell (failed checks do not raise), with the
    failure visible in the test cell's output, and does the check list the fix instead of 'you can submit'?"""
    nb = build_submission(ASSIGNMENT, split_mutant(MUTANTS / "softmax_wrong_axis.py")[1])
    nb, stopped = run(nb, tmp_path, monkeypatch)
    assert stopped is None
    test = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "test_softmax")
    shown = "".join(o.get("text", "") for o in test.outputs if o.get("output_type") == "stream")
    assert "[check failed] the worked example: softmax of the worked example is wrong" in shown
    assert all(o.get("name") != "stderr" for o in test.outputs)
    assert [o["data"]["text/plain"] for o in test.outputs if o.get("output_type") == "execute_result"] == ["0.0"]
    out = check_output(nb)
    assert "FIX test_softmax (0 of 3 points): the worked example: softmax of the worked example is wrong" in out
    assert "ok  test_cross_entropy_grad" in out   # the softmax bug is charged once
    assert "Fix these before you submit" in out and "you can submit" not in out


def test_check_names_cells_that_never_ran_when_run_all_stopped(tmp_path, monkeypatch):
    """Situation 1: an answer cell raises, Run All stops there, the student runs the check by hand. Are the
    functions written below reported as not run (not as 'not defined' / to be written)?"""
    nb = build_submission(ASSIGNMENT)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    nb.cells[ids.index("mae_loss")].source += "\n\nprint(undefined_name)\n"
    nb, stopped = run(nb, tmp_path, monkeypatch)
    assert stopped == ids.index("mae_loss")
    out = check_output(nb)
    assert ("The cells of error_rate, softmax, cross_entropy_loss, cross_entropy_grad have not run in this "
            "kernel") in out
    assert "Run All stops at the first cell with an error" in out
    assert "you can submit" not in out and "still contains" not in out


def test_check_asks_to_save_when_the_file_is_older_than_what_ran(tmp_path, monkeypatch):
    """Situation 2: every answer is written and passes, but the file on disk is the untouched notebook (unsaved
    edits). Does the check say 'save and run this cell again' instead of a list of unfinished answers?"""
    blank = nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    nb, stopped = run(build_submission(ASSIGNMENT), tmp_path, monkeypatch, saved=blank)
    assert stopped is None
    out = check_output(nb)
    assert "you have unsaved edits" in out and "Save the notebook (Ctrl+S" in out and "run this cell again" in out
    assert "still contains 'raise NotImplementedError()'" not in out
    assert "you can submit" not in out


def test_check_never_says_submit_when_it_cannot_read_the_file(tmp_path, monkeypatch):
    """Situation 3: the kernel is not told the notebook's path. Does an untouched notebook hear that its answers
    are stubs (from the functions' own source), and never 'you can submit' even when all are written?"""
    blank = nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4)
    nb, _ = run(blank, tmp_path, monkeypatch, tell_path=False)
    out = check_output(nb)
    assert "I could not read the notebook file" in out
    assert "FIX softmax still contains 'raise NotImplementedError()'" in out
    assert "you can submit" not in out
    nb, _ = run(build_submission(ASSIGNMENT), tmp_path, monkeypatch, tell_path=False)
    out = check_output(nb)
    assert "ok  softmax is written" in out and "FIX" not in out
    assert "I could not check everything" in out and "you can submit" not in out
