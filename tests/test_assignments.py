"""Every assignment, end to end: release in sync, and grading through `python -m autograder grade`.

For each assignment in solutions/ the grade test builds a folder of submissions and grades it in one batch:
- `correct`: the released notebook with the reference solutions filled in — must score full marks (of the
  autograded points: answers graded by hand, as in 10-capstone, stay at 0 until an instructor grades them);
- `student`: the released notebook untouched — must score 0, graded without crashing;
- `mutant-<bug>`: the correct submission with one wrong function from tests/mutants/<assignment>/<bug>.py —
  must lose points, and only in the test cells of the functions it redefines (one bug, one test: a test of a
  function that builds on another accepts the result built on the student's own version of the other).
"""

from __future__ import annotations

import ast
import csv
import filecmp
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.heldout import needs_heldout
from autograder.nbgrader_api import assignments
from autograder.notebooks import build_submission, source_notebook
from autograder.release import release
from capstone_heldout import write_heldout
from conftest import ROOT, run_autograder

ASSIGNMENTS = assignments()
MUTANTS = ROOT / "tests" / "mutants"

# The most points any single one-bug submission loses, per assignment (measured; a change in points or tests that
# makes one bug cost more shows here). 06-cnn's mutants each break one layer (its forward and backward tests);
# its training test trains the same correct ConvNet in every submission, measured at no extra cost.
MAX_POINTS_LOST = {"01-losses": 3.0, "02-gradient-descent": 3.0, "03-backprop": 3.33, "04-numpy-net": 3.57,
                   "05-pytorch": 4.33, "06-cnn": 5.12, "07-optimizers": 2.25, "08-regularization": 4.0,
                   "09-debugging": 2.0, "10-capstone": 10.5}


# Test cells that grade a function without being named after it: the training test of a network class.
ALSO_TESTED_BY = {"MLP": {"test_training"}, "ConvNet": {"test_training"},
                  "train_model": {"test_predict", "test_predict_heldout"}}


def graded_tests_of(function: str, test_ids: list[str]) -> set[str]:
    """The test cells that grade ``function``: test_<function>, test_<function>_<part>, and ALSO_TESTED_BY."""
    return {t for t in test_ids if t == f"test_{function}" or t.startswith(f"test_{function}_")
            or t in ALSO_TESTED_BY.get(function, set())}


def manual_points(assignment: str) -> float:
    """Points of the answers graded by hand (nbgrader "manual" cells): autograding leaves them at 0."""
    cells = nbformat.read(source_notebook(assignment), as_version=4).cells
    return sum(float(c.metadata.get("nbgrader", {}).get("points", 0)) for c in cells
               if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.get("nbgrader", {}).get("solution"))


def mutant_files(assignment: str) -> list[Path]:
    return sorted((MUTANTS / assignment).glob("*.py"))


def split_mutant(path: Path) -> tuple[str, dict[str, str]]:
    """A mutant's docstring (the bug) and its top-level definitions by name, with any imports in front."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    doc = ast.get_docstring(tree) or ""
    preamble = [ast.get_source_segment(text, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    definitions = {n.name: "\n".join([*preamble, ast.get_source_segment(text, n)]) for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return doc, definitions


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_in_sync_with_solutions(assignment, tmp_path):
    """Is exercises/<assignment>/ exactly what `python -m autograder release` generates from solutions/?"""
    release([assignment], release_dir=tmp_path)
    generated, committed = tmp_path / assignment, ROOT / "exercises" / assignment
    comparison = filecmp.dircmp(generated, committed, ignore=[".ipynb_checkpoints", "__pycache__"])
    assert not comparison.left_only and not comparison.right_only, \
        f"files differ: run `python -m autograder release {assignment}`"
    _, mismatch, errors = filecmp.cmpfiles(generated, committed, comparison.common_files, shallow=False)
    assert not mismatch and not errors, \
        f"{mismatch} differ from the sources: run `python -m autograder release {assignment}` and commit"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_mutants_are_well_formed(assignment):
    """Does every wrong submission name its bug and redefine a function of the assignment?"""
    answers = build_submission(assignment)   # raises if the assignment cannot be filled in
    assert answers.cells
    for path in mutant_files(assignment):
        doc, definitions = split_mutant(path)
        assert doc, f"{path.name}: the module docstring must name the bug"
        assert definitions, f"{path.name}: redefines nothing"
        build_submission(assignment, definitions)


@pytest.mark.grading
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grading_scores_correct_student_and_wrong_submissions(assignment, tmp_path, grading_env):
    """Full marks for the solution, 0 for the blank student notebook, fewer points for every one-bug variant."""
    name = source_notebook(assignment).name
    submissions = tmp_path / "submissions"
    bugs = {}
    for student, notebook in [("correct", build_submission(assignment))] + [
            (f"mutant-{p.stem}", build_submission(assignment, split_mutant(p)[1])) for p in mutant_files(assignment)]:
        (submissions / student).mkdir(parents=True)
        nbformat.write(notebook, submissions / student / name)
    for p in mutant_files(assignment):
        bugs[f"mutant-{p.stem}"] = split_mutant(p)[0].splitlines()[0]
    (submissions / "student").mkdir()
    shutil.copyfile(ROOT / "exercises" / assignment / name, submissions / "student" / name)

    if needs_heldout(assignment):   # scored on data only the grader has: the tests make their own
        write_heldout(Path(grading_env["DLCOURSE_GRADING_DIR"]))
    grades = tmp_path / "grades.csv"
    result = run_autograder("grade", assignment, str(submissions), "--output", str(grades), env=grading_env)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    with grades.open(newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"correct", "student", *bugs}, "every submission must appear in the grades"

    correct = rows["correct"]
    autograded_max = float(correct["max_score"]) - manual_points(assignment)
    assert correct["status"] == "graded" and autograded_max > 0
    assert float(correct["score"]) == autograded_max, f"solution lost points: {correct}"
    assert rows["student"]["status"] == "graded" and float(rows["student"]["score"]) == 0, rows["student"]
    survivors = [f"{sid} ({bug})" for sid, bug in bugs.items() if float(rows[sid]["score"]) >= autograded_max]
    assert not survivors, f"wrong submissions that kept full marks: {survivors}"

    if assignment not in MAX_POINTS_LOST:
        return
    lost = {}
    for path in mutant_files(assignment):
        record = json.loads((Path(grading_env["DLCOURSE_GRADING_DIR"]) / "results" / assignment /
                             f"mutant-{path.stem}.json").read_text())
        tests = [t for notebook in record["notebooks"] for t in notebook["tests"]]
        allowed = set().union(*(graded_tests_of(f, [t["grade_id"] for t in tests]) for f in split_mutant(path)[1]))
        elsewhere = {t["grade_id"]: t["points"] - t["score"] for t in tests
                     if t["score"] < t["points"] and t["grade_id"] not in allowed}
        assert not elsewhere, f"{path.stem} ({bugs['mutant-' + path.stem]}) also lost points in {elsewhere}"
        lost[path.stem] = sum(t["points"] - t["score"] for t in tests)
    assert round(max(lost.values()), 2) == MAX_POINTS_LOST[assignment], f"points lost per mutant: {lost}"
