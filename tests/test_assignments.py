"""Every assignment, end to end: release in sync, and grading through `python -m autograder grade`.

For each assignment in solutions/ the grade test builds a folder of submissions and grades it in one batch:
- `correct`: the released notebook with the reference solutions filled in — must score full marks (of the
  autograded points: answers graded by hand, as in 10-capstone, stay at 0 until an instructor grades them);
- `student`: the released notebook untouched — must score 0, graded without crashing;
- `mutant-<bug>`: the correct submission with one wrong function from tests/mutants/<assignment>/<bug>.py —
  must lose points, and only in the test cells of the functions it redefines (one bug, one test: a test of a
  function that builds on another accepts the result built on the student's own version of the other).

The training tests (test cells tagged `dlcourse-training`) take most of the time. A mutant that cannot reach any of
them (`training_tests_reached`: none of the functions it redefines is used by them, directly or not, and it changes
no global state) is graded in a second batch with `grade --skip-training`: its training tests are recorded as
skipped (and listed at the end of the pytest run), every other assertion holds for the tests that ran.
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
from autograder.notebooks import (build_submission, changes_global_state, is_test, is_training_test, nbgrader_meta,
                                  reachable_names, source_notebook)
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


def training_tests_reached(assignment: str, definitions: dict[str, str]) -> set[str]:
    """The training tests of ``assignment`` whose outcome the wrong functions ``definitions`` may change.

    Read on the submission as it is graded (the mutant's code in its answer cells, the hidden tests of the source
    in the test cells): a training test is reached when it uses one of the redefined names, directly or through
    the notebook's definitions (:func:`autograder.notebooks.reachable_names`), or when the mutant may change global
    state (:func:`autograder.notebooks.changes_global_state`), which static reading cannot follow.
    """
    source = nbformat.read(source_notebook(assignment), as_version=4)
    training = [nbgrader_meta(c)["grade_id"] for c in source.cells if is_training_test(c)]
    if not training:
        return set()
    if any(changes_global_state(code) for code in definitions.values()):
        return set(training)
    graded = build_submission(assignment, definitions)
    tests = {nbgrader_meta(c)["grade_id"]: c.source for c in source.cells if is_test(c)}
    for cell in graded.cells:
        if is_test(cell):
            cell.source = tests[nbgrader_meta(cell)["grade_id"]]
    return {t for t in training if set(definitions) & reachable_names(graded, t)}


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
def test_grading_scores_correct_student_and_wrong_submissions(assignment, tmp_path, grading_env, record_property):
    """Full marks for the solution, 0 for the blank student notebook, fewer points for every one-bug variant."""
    name = source_notebook(assignment).name
    bugs, skipping = {}, {}
    batches = {"full": [("correct", build_submission(assignment))], "skip-training": []}
    for path in mutant_files(assignment):
        doc, definitions = split_mutant(path)
        bugs[f"mutant-{path.stem}"] = doc.splitlines()[0]
        skip = not training_tests_reached(assignment, definitions)
        batches["skip-training" if skip else "full"].append((f"mutant-{path.stem}", build_submission(assignment,
                                                                                                   definitions)))
    training = {nbgrader_meta(c)["grade_id"] for c in nbformat.read(source_notebook(assignment), as_version=4).cells
                if is_training_test(c)}

    rows, records = {}, {}
    for batch, students in batches.items():
        if not students:
            continue
        submissions = tmp_path / batch / "submissions"
        for student, notebook in students:
            (submissions / student).mkdir(parents=True)
            nbformat.write(notebook, submissions / student / name)
        if batch == "full":
            (submissions / "student").mkdir()
            shutil.copyfile(ROOT / "exercises" / assignment / name, submissions / "student" / name)
        env = dict(grading_env, DLCOURSE_GRADING_DIR=str(tmp_path / batch / "grading"))
        if needs_heldout(assignment):   # scored on data only the grader has: the tests make their own
            write_heldout(Path(env["DLCOURSE_GRADING_DIR"]))
        grades = tmp_path / batch / "grades.csv"
        options = ["--skip-training"] if batch == "skip-training" else []
        result = run_autograder("grade", assignment, str(submissions), "--output", str(grades), *options, env=env)
        assert result.returncode == 0, result.stdout + result.stderr[-5000:]
        with grades.open(newline="") as handle:
            for row in csv.DictReader(handle):
                rows[row["student_id"]] = row
                record = json.loads((Path(env["DLCOURSE_GRADING_DIR"]) / "results" / assignment /
                                     f"{row['student_id']}.json").read_text())
                records[row["student_id"]] = [t for notebook in record["notebooks"] for t in notebook["tests"]]
        for student, _ in students:   # training tests skipped in that batch only, and only they
            skipped = {t["grade_id"] for t in records[student] if t["outcome"] == "skipped"}
            assert skipped == (training if batch == "skip-training" else set()), (student, skipped)
            skipping[student] = sorted(skipped)
    assert set(rows) == {"correct", "student", *bugs}, "every submission must appear in the grades"
    skipped_here = {s: tests for s, tests in skipping.items() if tests}
    if skipped_here:
        record_property("skipped_training_tests",
                        f"{assignment}: {', '.join(sorted(skipped_here))} ({', '.join(sorted(training))})")

    correct = rows["correct"]
    autograded_max = float(correct["max_score"]) - manual_points(assignment)
    assert correct["status"] == "graded" and autograded_max > 0
    assert float(correct["score"]) == autograded_max, f"solution lost points: {correct}"
    assert rows["student"]["status"] == "graded" and float(rows["student"]["score"]) == 0, rows["student"]

    def lost_in(student: str) -> dict[str, float]:
        """Points lost per test cell that ran (skipped training tests left out)."""
        return {t["grade_id"]: t["points"] - t["score"] for t in records[student] if t["outcome"] != "skipped"}

    for student in skipped_here:   # a skipped test scores 0: the score is the rest, all accounted for
        skipped_points = sum(t["points"] for t in records[student] if t["outcome"] == "skipped")
        assert rows[student]["status"] == "graded"
        assert round(float(rows[student]["score"]), 6) == round(
            autograded_max - skipped_points - sum(lost_in(student).values()), 6), rows[student]
    survivors = [f"{sid} ({bug})" for sid, bug in bugs.items()
                 if float(rows[sid]["score"]) >= autograded_max or not any(lost_in(sid).values())]
    assert not survivors, f"wrong submissions that kept full marks: {survivors}"

    if assignment not in MAX_POINTS_LOST:
        return
    lost = {}
    for path in mutant_files(assignment):
        tests = records[f"mutant-{path.stem}"]
        allowed = set().union(*(graded_tests_of(f, [t["grade_id"] for t in tests]) for f in split_mutant(path)[1]))
        elsewhere = {g: points for g, points in lost_in(f"mutant-{path.stem}").items() if points and g not in allowed}
        assert not elsewhere, f"{path.stem} ({bugs['mutant-' + path.stem]}) also lost points in {elsewhere}"
        lost[path.stem] = sum(lost_in(f"mutant-{path.stem}").values())
    assert round(max(lost.values()), 2) == MAX_POINTS_LOST[assignment], f"points lost per mutant: {lost}"
