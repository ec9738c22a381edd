"""The grading pipeline on the submission corpus (tests/corpus): one batch through `python -m autograder grade`,
then feedback, export and report on its results.

The batch runs with a 10 s cell timeout, 1 GiB of memory and 32 processes per kernel so that the endless loops,
the memory hog and the fork bomb are bounded quickly.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

import nbformat
import pytest

from autograder.feedback import hidden_lines
from autograder.export import NBGRADER_COLUMNS
from autograder.sandbox import bubblewrap_works, processes_can_be_limited
from conftest import ROOT, run_autograder
from corpus import ASSIGNMENT, FULL, NOTEBOOK, POINTS, losing, write_submissions

# One worker runs every test of this module (pytest-xdist), so that the graded batch of `batch` is made once.
pytestmark = [pytest.mark.grading, pytest.mark.xdist_group("pipeline_grade")]
LIMITS = ["--timeout", "10", "--memory", "1024", "--processes", "32", "--workers", "2"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The corpus graded once: (cases, grades CSV rows, the grading environment, stdout+stderr, grading dir)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    grading = tmp / "grading"
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading))
    # The fork bomb only where a limit can stop it (not as root without a sandbox).
    sandboxed = bubblewrap_works()
    cases = write_submissions(tmp / "submissions", ROOT, grading / "gradebook.db",
                              fork_bomb=processes_can_be_limited(sandboxed))
    isolation = [] if sandboxed else ["--isolation", "none"]   # the same as auto there, said explicitly
    result = run_autograder("grade", ASSIGNMENT, str(tmp / "submissions"), "--output", str(tmp / "grades.csv"),
                            *LIMITS, *isolation, env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    with (tmp / "grades.csv").open(newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"cases": cases, "rows": rows, "env": env, "output": result.stdout + result.stderr, "dir": grading,
            "tmp": tmp, "isolation": isolation}


def _orphans() -> list[str]:
    """Processes left by a finished grading run: their working folder (a slot's, inside a sandbox) is deleted."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.endswith("(deleted)") and ("/sandbox/" in cwd or "/ag-" in cwd):
            found.append(f"{pid} in {cwd}")
    return found


def test_every_submission_gets_its_expected_score(batch):
    """Does each corpus case get exactly its score, lose exactly its failing tests, and carry its flags?"""
    rows, isolated = batch["rows"], bubblewrap_works()
    assert set(rows) == {case.student_id for case in batch["cases"]}, "every submission must be in the grades"
    for case in batch["cases"]:
        row = rows[case.student_id]
        assert row["status"] == case.status, f"{case.student_id} ({case.why}): {row}"
        assert float(row["max_score"]) == FULL, row
        if case.isolated and not isolated:
            continue   # without bubblewrap the snooper may read the solutions: see test_sandbox_hides_...
        assert float(row["score"]) == case.score, f"{case.student_id} ({case.why}): {row}"
        for test, points in POINTS.items():   # a failing test cell loses points (all, or some: partial credit)
            score = float(row[test] or 0)
            assert score < points if test in case.failing else score == points, \
                f"{case.student_id} ({case.why}): {test} in {row}"
        for flag in case.flags:
            assert flag in row["notes"], f"{case.student_id}: {flag!r} not in {row['notes']!r}"


def test_well_formed_submissions_are_not_repaired_or_flagged(batch):
    """Is a submission that needs no repair and does nothing odd left alone (no notes at all)?"""
    for student in ("correct", "blank", "partial", "stderr", "hidden-failure", "leaky"):
        assert batch["rows"][student]["notes"] == "", batch["rows"][student]


def test_stderr_is_set_aside_but_failures_still_count(batch):
    """Are warnings, stderr prints and tqdm bars of correct code kept out of scoring, but kept for the instructor?"""
    record = json.loads((batch["dir"] / "results" / ASSIGNMENT / "stderr.json").read_text())
    assert set(record["notebooks"][0]["stderr_set_aside"]) >= {"test_mse_loss", "test_error_rate"}
    graded = nbformat.read(batch["dir"] / "autograded" / "stderr" / ASSIGNMENT / NOTEBOOK, as_version=4)
    aside = [c.metadata["autograder"]["stderr"] for c in graded.cells if "stderr" in c.metadata.get("autograder", {})]
    # (A warning raised inside a check of dlcourse.testing.Checks is silenced there and never reaches stderr.)
    assert any("counting" in text for text in aside)
    # The failing softmax of `partial` warned on stderr too: its error output still scores 0.
    assert float(batch["rows"]["partial"]["test_softmax"]) == 0


@pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap cannot create namespaces on this machine")
def test_sandbox_hides_solutions_gradebook_network_and_environment(batch):
    """Could the snooping submission read solutions/, the gradebook or the grading variables, or connect out?"""
    graded = nbformat.read(batch["dir"] / "autograded" / "snooper" / ASSIGNMENT / NOTEBOOK, as_version=4)
    text = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    found = re.search(r"SNOOP (\{.*\})", text)
    assert found, text[-2000:]
    assert "True" not in found.group(1), f"the sandbox let the submission reach: {found.group(1)}"


def test_runaway_submissions_are_bounded_and_reported(batch):
    """Do the endless loops, the kernel that exits and the fork bomb cost only their own tests, with a note?"""
    results = {p.stem: json.loads(p.read_text()) for p in (batch["dir"] / "results" / ASSIGNMENT).glob("*.json")}
    outcomes = {s: {t["grade_id"]: t["outcome"] for t in r["notebooks"][0]["tests"]} for s, r in results.items()
                if r["notebooks"][0]["tests"]}
    assert outcomes["endless-loop"]["test_mae_loss"] == "timeout"
    assert outcomes["os-exit"]["test_error_rate"] == "kernel died"
    assert outcomes["os-exit"]["test_softmax"] == "not run"
    assert "exited with code 3" in results["os-exit"]["notebooks"][0]["problem"]
    assert outcomes["memory-hog"]["test_mse_grad"] == "failed"
    assert "MemoryError" in results["memory-hog"]["notebooks"][0]["tests"][1]["message"]
    if "fork-bomb" in results:
        assert results["fork-bomb"]["score"] == FULL
    assert not _orphans(), "sandboxes (and whatever ran in them) must be gone after the run"


def test_feedback_never_shows_hidden_tests(batch):
    """Does any feedback file contain a line of a hidden test that the student did not write themselves?"""
    result = run_autograder("feedback", ASSIGNMENT, env=batch["env"])
    assert result.returncode == 0, result.stderr
    files = sorted((batch["dir"] / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    graded = {case.student_id for case in batch["cases"]}
    assert {f.parts[-3] for f in files} == graded
    secret = hidden_lines(ASSIGNMENT)
    assert len(secret) > 20
    for path in files:
        page = path.read_text(encoding="utf-8")
        own = (batch["tmp"] / "submissions" / path.parts[-3] / NOTEBOOK).read_text(errors="replace")
        leaked = [line for line in secret if line in page and line not in own]
        assert not leaked, f"{path}: hidden test lines in the feedback: {leaked[:3]}"
    hidden = (batch["dir"] / "feedback" / "hidden-failure" / ASSIGNMENT / "losses.html").read_text()
    assert "A <b>hidden test</b> of <code>test_softmax</code> failed" in hidden
    assert "finite for huge logits" in hidden            # the hint: the test cell's first comment line
    # What the course's assertion helper said in the trusted runner (issue 12's hidden-failure messages).
    assert "What the check said:" in hidden and "softmax of logits as large as 1e4 contains nan" in hidden
    leaky = (batch["dir"] / "feedback" / "leaky" / ASSIGNMENT / "losses.html").read_text()
    # The test cells ran outside the kernel, and their checks never echo what student code raised
    # (dlcourse.testing.Checks): only its type, never the encoded payload or the hidden tests.
    assert "raised AssertionError" in leaky
    assert "Checks() |" not in leaky and "BEGIN HIDDEN TESTS" not in leaky   # the message joins lines with " | "
    visible = (batch["dir"] / "feedback" / "partial" / ASSIGNMENT / "losses.html").read_text()
    assert "mae_loss of the worked example is wrong" in visible   # a visible failure shows its message


def test_export_has_nbgrader_columns_per_test_points_and_lms_files(batch):
    """Are the grades exported with nbgrader's columns plus one per test, quoted, and as Canvas/Moodle files?"""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{batch['dir'] / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_student("correct", last_name='Doe, "JD"', first_name="Jane")
    result = run_autograder("export", ASSIGNMENT, "--canvas-column", "Losses (123)", env=batch["env"])
    assert result.returncode == 0, result.stderr
    folder = batch["dir"] / "exports" / ASSIGNMENT
    with (folder / "grades.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == NBGRADER_COLUMNS + list(POINTS)
        rows = {row["student_id"]: row for row in reader}
    assert set(rows) == set(batch["rows"])
    assert rows["correct"]["last_name"] == 'Doe, "JD"' and rows["correct"]["score"] == f"{FULL:g}"
    for student, row in rows.items():
        assert row["score"] == batch["rows"][student]["score"]
        assert all(row[t] == (batch["rows"][student][t] or "0") for t in POINTS), (student, row)
    with (folder / "canvas.csv").open(newline="") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Losses (123)"]
    assert canvas[1][0].strip() == "Points Possible" and canvas[1][-1] == f"{FULL:g}"
    assert ['Doe, "JD", Jane', "", "", "correct", "", f"{FULL:g}"] in canvas
    with (folder / "moodle.csv").open(newline="") as handle:
        moodle = {row["Identifier"]: row for row in csv.DictReader(handle)}
    assert moodle["partial"]["Grade"] == f"{losing('test_mae_loss', 'test_softmax'):g}"
    assert "test_softmax: failed" in moodle["partial"]["Feedback comments"]


def test_manual_grade_shows_in_both_grades_tables(batch, tmp_path):
    """A manual grade entered in formgrader (the gradebook) replaces the autograder's in grades/<a>.csv, which
    `grade` rewrites without regrading, and in the export: the two grades tables agree."""
    from nbgrader.api import Gradebook

    grading = tmp_path / "grading"   # a copy: the other tests keep the batch's gradebook
    shutil.copytree(batch["dir"], grading)
    env = dict(batch["env"], DLCOURSE_GRADING_DIR=str(grading))
    before = batch["rows"]["partial"]
    manual = POINTS["test_softmax"]
    expected = float(before["score"]) - float(before["test_softmax"] or 0) + manual
    assert float(before["test_softmax"] or 0) < manual   # the autograder gave less
    with Gradebook(f"sqlite:///{grading / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade("test_softmax", NOTEBOOK.removesuffix(".ipynb"), ASSIGNMENT, "partial")
        grade.manual_score = manual
        gradebook.db.commit()
    again = run_autograder("grade", ASSIGNMENT, *LIMITS, *batch["isolation"], env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "submissions unchanged" in again.stderr
    exported = run_autograder("export", ASSIGNMENT, env=env)
    assert exported.returncode == 0, exported.stderr[-3000:]
    for table in (grading / "grades" / f"{ASSIGNMENT}.csv", grading / "exports" / ASSIGNMENT / "grades.csv"):
        with table.open(newline="") as handle:
            rows = {row["student_id"]: row for row in csv.DictReader(handle)}
        assert float(rows["partial"]["score"]) == expected, (table, rows["partial"])
        assert float(rows["partial"]["test_softmax"]) == manual, (table, rows["partial"])
        assert float(rows["correct"]["score"]) == float(batch["rows"]["correct"]["score"]), table


def test_report_item_analysis(batch):
    """Does the report give pass rates, common failures, a histogram, times and the repaired/rejected lists?"""
    result = run_autograder("report", ASSIGNMENT, env=batch["env"])
    assert result.returncode == 0, result.stderr
    folder = batch["dir"] / "reports" / ASSIGNMENT
    report = (folder / "report.md").read_text()
    assert (folder / "scores.png").read_bytes()[:4] == b"\x89PNG"
    with (folder / "items.csv").open(newline="") as handle:
        items = {row["test"]: row for row in csv.DictReader(handle)}
    graded = [r for r in batch["rows"].values() if r["status"] == "graded"]
    for test, points in POINTS.items():
        passed = sum(float(r[test]) == points for r in graded)
        assert int(items[test]["passed"]) == passed and int(items[test]["graded"]) == len(graded)
        assert f"`{test}`" in report
    assert items["test_mae_loss"]["most_common_failure"]   # the blank notebook's NotImplementedError, at least
    for expected in ("## Repaired", "duplicated: grade_id", "## Tampering (neutralised or flagged)", "tamper: cell",
                     "## Kernel problems", "os-exit: kernel died", "empty (rejected)", "invalid-json (rejected)",
                     "## Grading time"):
        assert expected in report, expected


def test_rerun_skips_unchanged_and_regrades_changed(batch):
    """Does a second run skip every unchanged graded submission, and regrade exactly the one that changed?"""
    results = batch["dir"] / "results" / ASSIGNMENT
    before = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    again = run_autograder("grade", ASSIGNMENT, *LIMITS, *batch["isolation"], env=batch["env"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(before)} submissions unchanged" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")} == before
    submitted = batch["dir"] / "submitted" / "blank" / ASSIGNMENT / NOTEBOOK
    submitted.write_bytes((batch["dir"] / "submitted" / "correct" / ASSIGNMENT / NOTEBOOK).read_bytes())
    third = run_autograder("grade", ASSIGNMENT, *LIMITS, *batch["isolation"], env=batch["env"])
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"{len(before) - 1} submissions unchanged" in third.stderr
    changed = {p.name for p in results.glob("*.json") if p.stat().st_mtime_ns != before[p.name]}
    assert changed == {"blank.json"}
    assert re.search(rf"^blank\s+{FULL:g}/{FULL:g}\s+graded", third.stdout, re.MULTILINE), third.stdout
