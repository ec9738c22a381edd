"""The student side: the pre-submission check cell, and the published student copy of the course."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.nbgrader_api import NbgraderError, assignments
from autograder.notebooks import build_submission, nbgrader_meta, solution_code
from autograder.publish import find_leaks, publish
from autograder.release import expected_check_cell, sync_check_cells
from conftest import ROOT
from dlcourse import submission
from dlcourse.submission import CHECK_TAG

ASSIGNMENT = "01-losses"
NOTEBOOK = "losses.ipynb"


@pytest.mark.parametrize("assignment", assignments())
def test_every_source_notebook_ends_with_its_check_cell(assignment):
    """Is the last cell of each source notebook the locked pre-submission check for its current graded cells?"""
    assert not sync_check_cells([assignment], check_only=True), \
        f"run `python -m autograder sync {assignment}` and `python -m autograder release {assignment}`"
    for path in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")):
        last = nbformat.read(path, as_version=4).cells[-1]
        assert CHECK_TAG in last.metadata.get("tags", []) and nbgrader_meta(last).get("locked")


def run_check(nb: nbformat.NotebookNode, tmp_path: Path, monkeypatch, name: str = NOTEBOOK,
              namespace: dict | None = None) -> str:
    """Run the check cell of ``nb`` as Jupyter would, the notebook saved as ``name``; return what it prints."""
    path = tmp_path / name
    nbformat.write(nb, path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    if namespace is None:
        namespace = {}
        exec(compile(solution_code(ASSIGNMENT), "<solutions>", "exec"), namespace)
    monkeypatch.setattr(submission, "_user_namespace", lambda: namespace)
    # The kernel ran every code cell as saved (Restart and Run All), whatever IPython shell an earlier test made.
    monkeypatch.setattr(submission, "executed_inputs", lambda: [c.source for c in nb.cells if c.cell_type == "code"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(nb.cells[-1].source, {})
    return out.getvalue()


def test_check_passes_a_good_notebook(tmp_path, monkeypatch):
    out = run_check(build_submission(ASSIGNMENT), tmp_path, monkeypatch)
    assert "Visible tests: 7 of 7 test cells pass" in out
    assert "you can submit this notebook" in out


def test_check_names_every_problem_in_plain_words(tmp_path, monkeypatch):
    """A copied test cell, a deleted one, a test cell that lost its metadata, an unfinished answer, a wrong
    name and a failing visible test: is each one reported with what to do?"""
    nb = build_submission(ASSIGNMENT)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    nb.cells[ids.index("mae_loss")].source = "def mae_loss(y_pred, y):\n    raise NotImplementedError()"
    copied = nbformat.from_dict(json.loads(json.dumps(nb.cells[ids.index("test_mse_loss")])))
    copied["id"] = "copied-cell"
    nb.cells.insert(ids.index("test_mse_loss") + 1, copied)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    del nb.cells[ids.index("test_softmax")]
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    del nb.cells[ids.index("test_error_rate")].metadata["nbgrader"]
    namespace = {}
    exec(compile(solution_code(ASSIGNMENT), "<solutions>", "exec"), namespace)
    namespace["mae_loss"] = lambda y_pred, y: 0.0
    out = run_check(nb, tmp_path, monkeypatch, name="Copy of losses.ipynb", namespace=namespace)
    for words in ["'test_mse_loss' appears 2 times", "'test_softmax' is missing",
                  "looks like the test cell 'test_error_rate' but lost its grading information",
                  "'mae_loss' still contains",
                  "named 'Copy of losses.ipynb': submit it as 'losses.ipynb'",
                  "FIX test_mae_loss (0 of 1 point): the worked example: mae_loss of the worked example is wrong"]:
        assert words in out, f"{words!r} not in:\n{out}"
    assert "Fix these before you submit" in out


def test_check_does_what_it_can_without_the_file(tmp_path, monkeypatch):
    nb = build_submission(ASSIGNMENT)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(submission, "_user_namespace", lambda: {"mse_loss": print})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(nb.cells[-1].source, {})
    assert "could not read the notebook file" in out.getvalue()
    assert "ok  mse_loss is defined" in out.getvalue() and "FIX softmax is not defined" in out.getvalue()


def test_check_is_silent_during_grading(tmp_path, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(build_submission(ASSIGNMENT).cells[-1].source, {})
    assert out.getvalue() == ""


@pytest.mark.grading
def test_check_cell_in_a_real_kernel(tmp_path):
    """In a Jupyter kernel told its notebook's path (as Jupyter Server does), does the last cell report?"""
    path = tmp_path / NOTEBOOK
    nbformat.write(build_submission(ASSIGNMENT), path)
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "execute", NOTEBOOK, "--output", "out"],
                            cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                                 "HOME": str(tmp_path), "JPY_SESSION_NAME": str(path)})
    assert result.returncode == 0, result.stderr
    outputs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert "7 of 7 test cells pass" in text and all(o.get("name") != "stderr" for o in outputs)


def test_check_cell_lists_the_graded_cells():
    """Does the check cell of 01-losses name every graded code cell with its kind or points?"""
    nb = nbformat.read(ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
    source = expected_check_cell(nb, NOTEBOOK)
    for cell in nb.cells[:-1]:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("grade_id"):
            assert f'"{meta["grade_id"]}": ' in source


def _mini_course(root: Path) -> None:
    """A course repository in miniature: one assignment with a solution and hidden tests, a chapter, helpers."""
    solution = nbformat.v4.new_code_cell("def area(radius):\n    ### BEGIN SOLUTION\n"
                                         "    return 3.141592653589793 * radius * radius * 1.0000\n"
                                         "    ### END SOLUTION")
    tests = nbformat.v4.new_code_cell("# area: pi r^2\nassert area(1) > 3\n### BEGIN HIDDEN TESTS\n"
                                      "assert abs(area(2.5) - 19.634954084936208) < 1e-9\n"
                                      "assert abs(area(0.125) - 0.04908738521234052) < 1e-12\n"
                                      "### END HIDDEN TESTS")
    for folder, cells in [("solutions", [solution, tests]),
                          ("exercises", [
                              nbformat.v4.new_code_cell("def area(radius):\n    raise NotImplementedError()"),
                              nbformat.v4.new_code_cell("# area: pi r^2\nassert area(1) > 3")])]:
        (root / folder / "01-area").mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), root / folder / "01-area" / "area.ipynb")
    for name, text in {"book/01-circles.md": "# Circles\n", "dlcourse/__init__.py": "", "_config.yml": "title: x\n",
                       "autograder/grade.py": "", "tests/test_x.py": ""}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)


def test_publish_copies_the_student_files_and_finds_leaks(tmp_path):
    """Does publish copy the book, exercises and helpers but no solutions/grader/tests, and does its check find
    a solution or hidden test pasted anywhere?"""
    root, dest = tmp_path / "course", tmp_path / "public"
    _mini_course(root)
    files = publish(dest, root=root)
    assert sorted(files) == ["_config.yml", "book/01-circles.md", "dlcourse/__init__.py",
                             "exercises/01-area/area.ipynb"]
    for forbidden in ("solutions", "autograder", "tests"):
        assert not (dest / forbidden).exists(), forbidden
    assert find_leaks(dest, root) == []
    shutil.copyfile(root / "solutions" / "01-area" / "area.ipynb", dest / "book" / "leaked.ipynb")
    (dest / "dlcourse" / "helpers.py").write_text("def area(r):\n    return 3.141592653589793 * r * r * 1.0000\n"
                                                  "    # return 3.141592653589793 * radius * radius * 1.0000\n")
    leaks = {(leak.path, leak.source.split("(")[-1]) for leak in find_leaks(dest, root)}
    assert leaks == {("book/leaked.ipynb", "solution)"), ("book/leaked.ipynb", "hidden tests)"),
                     ("dlcourse/helpers.py", "solution)")}
    publish(dest, root=root)   # publishing again replaces an earlier publish
    assert not (dest / "book" / "leaked.ipynb").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(NbgraderError, match="not empty"):
        publish(other, root=root)
    with pytest.raises(NbgraderError, match="course repository"):
        publish(tmp_path, root=root)   # it holds the course: publishing there would delete it


def test_the_course_publishes_without_leaks(tmp_path):
    """Can the course as committed be published: no solution region or hidden test of any assignment in the
    book, the student notebooks or the helper package?"""
    dest = tmp_path / "public"
    files = publish(dest)
    assert (dest / "exercises" / ASSIGNMENT / NOTEBOOK).is_file() and (dest / "dlcourse" / "submission.py").is_file()
    assert not any(f.startswith(("solutions/", "autograder/", "tests/", "bench/")) for f in files)
