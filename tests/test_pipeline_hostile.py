"""Grades no submission can forge (issue 10, items 2, 3 and the metadata part of 6): the hostile corpus of
tests/corpus/hostile.py, one batch through `python -m autograder grade` as the current user (root in CI), and the
same batch as an ordinary user (emulated with `unshare --user`) where this machine allows it.

Every cheat does 6 of 15 points of honest work and tries to forge the rest from inside its kernel; the test cells
run in the trusted runner (autograder/verdict.py), so each gets exactly 6, while the honest control gets 15.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.feedback import hidden_lines
from conftest import ROOT, run_autograder
from corpus import ASSIGNMENT, NOTEBOOK, POINTS
from corpus.hostile import HONEST, NUMPY_PARTIAL, numpy_hostile_cases, write_hostile, y_val_edit_cases
from corpus.hostile_torch import ASSIGNMENTS as TORCH_ASSIGNMENTS
from corpus.hostile_torch import write_torch_hostile

pytestmark = pytest.mark.grading
LIMITS = ["--timeout", "20", "--memory", "1024", "--processes", "32", "--workers", "2", "--no-progress"]


ORDINARY = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


def _ordinary_user_prefix() -> list[str]:
    """The command prefix that makes a root grader an ordinary user (uid 1000 in a user namespace), or a skip."""
    if os.geteuid() != 0:
        pytest.skip("already running as an ordinary user: the batch graded as the invoking user covered it")
    probe = subprocess.run([*ORDINARY, "true"], capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"unshare --user is not available here: {probe.stderr.strip() if probe else 'no unshare'}")
    return ORDINARY


# Whether this user can make a submission's control group (made and removed at once).
CGROUP_PROBE = ("import os\nfrom autograder.sandbox import Limits, SubmissionCgroup\n"
                "group = SubmissionCgroup.create(f'ag-{os.getpid()}-probe', Limits())\n"
                "print('none' if group is None else f'v{group.version}')\n"
                "group is None or group.remove()\n")


def _snapshot(folder: Path, skip: Path) -> dict[str, str]:
    """Every path under ``folder`` but ``skip`` (links not followed) and a digest of what it is."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        info = path.lstat()
        found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode)
                            else stat.filemode(info.st_mode))
    return found


def _grade_assignment(assignment: str, submissions: Path, tmp: Path, prefix: list[str], options: list[str]):
    """``python -m autograder grade`` of one folder as the invoking user or (``prefix``) an ordinary one; its
    grades by student, the result, the environment. Asserts that nothing under ``tmp`` outside the grading folder
    changed (the submissions, the test's own files: the host as the grader sees it)."""
    grading = tmp / "grading"
    before = _snapshot(tmp, grading)
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading),
               PATH=str(ROOT / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([*prefix, sys.executable, "-m", "autograder", "grade", assignment, str(submissions),
                             "--output", str(tmp / "grades.csv"), *options], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=1200)
    if prefix and result.returncode != 0 and "bubblewrap" in result.stderr and not (tmp / "grades.csv").exists():
        pytest.skip(f"the sandbox cannot start for an ordinary user here: {result.stderr[-500:]}")
    if prefix:   # what the sandbox does not guarantee for an ordinary user is said at grade time, a line each
        said = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
        assert any(line.startswith("warning: grading as an ordinary user: kernels run under the grader's own user id")
                   for line in said), result.stderr[-3000:]
        # Without a control group for this user (not delegated), the fallback says what it does not bound.
        probe = subprocess.run([*prefix, sys.executable, "-c", CGROUP_PROBE], cwd=ROOT, capture_output=True, text=True)
        assert probe.returncode == 0, probe.stderr
        unbounded = [line for line in said if line.startswith("warning: no control group could be made (")]
        if probe.stdout.strip() == "none":
            assert unbounded and "not for a submission as a whole" in unbounded[0], result.stderr[-3000:]
        else:
            assert not unbounded, f"a control group can be made here ({probe.stdout.strip()}): {unbounded}"
    after = _snapshot(tmp, grading)
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    assert changed == [str(tmp / "grades.csv")], f"grading changed files outside its folder: {changed}"
    rows = {}
    with (tmp / "grades.csv").open(newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return rows, result, env


def _grade(tmp, prefix: list[str] | None = None):
    submissions = tmp / "submissions"
    cases = write_hostile(submissions, ROOT)
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(tmp / "grading"),
               PATH=str(ROOT / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", ""))
    command = [*(prefix or []), sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(submissions),
               "--output", str(tmp / "grades.csv"), *LIMITS]
    result = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=True, timeout=1200)
    rows = {}
    if (tmp / "grades.csv").is_file():
        with (tmp / "grades.csv").open(newline="") as handle:
            rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return cases, rows, result, env


def _check_scores(cases, rows, result, points: dict | None = None, honest_score: float = HONEST) -> None:
    """Each case's scores; a cheat's (expected score HONEST) are, test by test, those of the honest-partial
    control: the same honest work without the cheat, graded in the same batch."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert set(rows) == {case.student_id for case in cases}
    points = points or POINTS
    honest = rows["honest-partial"]
    # The honest part: full points for the four done functions; the placeholders may earn partial credit
    # (a check they happen to pass), never a whole test.
    assert honest_score <= float(honest["score"]) < honest_score + 1, honest
    for case in cases:
        row = rows[case.student_id]
        assert row["status"] == case.status, f"{case.student_id} ({case.why}): {row}"
        if case.score == honest_score:
            assert float(row["score"]) == float(honest["score"]), f"{case.student_id} ({case.why}): {row}"
        else:
            assert float(row["score"]) == case.score, f"{case.student_id} ({case.why}): {row}"
        for test, worth in points.items():
            got = float(row[test] or 0)
            if test not in case.failing:
                assert got == worth, f"{case.student_id} ({case.why}): {test} in {row}"
            elif case.score == honest_score:
                assert got == float(honest[test] or 0) < worth, f"{case.student_id} ({case.why}): {test} in {row}"
            else:
                assert got < worth, f"{case.student_id} ({case.why}): {test} in {row}"
        for flag in case.flags:
            assert flag in row["notes"], f"{case.student_id}: {flag!r} not in {row['notes']!r}"


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    cases, rows, result, env = _grade(tmp)
    return {"cases": cases, "rows": rows, "result": result, "env": env, "tmp": tmp}


def test_every_cheat_scores_only_its_honest_part(batch):
    """Does each cheat get exactly its honest part (6/15 plus the partial credit its placeholders earn, the score of
    the same work without the cheat), the honest control 15/15, each metadata edit only what it
    touches (here nothing), with the repairs noted?"""
    _check_scores(batch["cases"], batch["rows"], batch["result"])


def test_no_hidden_test_source_reaches_the_feedback(batch):
    """Does the submission whose exception carries encoded test source get none of it, and do the other pages hold
    no hidden line either?"""
    result = run_autograder("feedback", ASSIGNMENT, env=batch["env"])
    assert result.returncode == 0, result.stderr
    folder = batch["tmp"] / "grading" / "feedback"
    secret = hidden_lines(ASSIGNMENT)
    for path in sorted(folder.glob(f"*/{ASSIGNMENT}/*.html")):
        page = path.read_text(encoding="utf-8")
        own = (batch["tmp"] / "submissions" / path.parts[-3] / NOTEBOOK).read_text(errors="replace")
        leaked = [line for line in secret if line in page and line not in own]
        assert not leaked, f"{path}: hidden test lines in the feedback: {leaked[:3]}"
    leak = (folder / "leak-encoded-source" / ASSIGNMENT / "losses.html").read_text(encoding="utf-8")
    assert not re.search(r"ENCODED:[A-Za-z0-9+/=]{20,}", leak) and not re.search(r"[A-Za-z0-9+/=]{80,}", leak)
    assert "mse_grad raised AssertionError" in leak, "the failure is named, without the submission's message"


def test_as_an_ordinary_user(tmp_path):
    """The same batch graded by a non-root grader (emulated: root mapped to uid 1000 in a user namespace)."""
    if os.geteuid() != 0:
        pytest.skip("already running as an ordinary user: the first batch covered it")
    probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", "true"],
                           capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip(f"unshare --user is not available here: {probe.stderr.strip() if probe else 'no unshare'}")
    cases, rows, result, _ = _grade(tmp_path, ["unshare", "--user", "--map-user=1000", "--map-group=1000"])
    if result.returncode != 0 and "bubblewrap" in result.stderr and not rows:
        pytest.skip(f"the sandbox cannot start for an ordinary user here: {result.stderr[-500:]}")
    _check_scores(cases, rows, result)


ONLY_1D_2D = ("def numerical_gradient(f, x, h=1e-5):\n"
              "    x = np.array(x, dtype=np.float64)\n"
              "    grad = np.zeros_like(x)\n"
              "    if x.ndim not in (1, 2):   # the bug: only the shapes of the visible tests\n"
              "        return grad\n"
              "    for index in np.ndindex(x.shape):\n"
              "        step = np.zeros_like(x)\n"
              "        step[index] = h\n"
              "        grad[index] = (f(x + step) - f(x - step)) / (2 * h)\n"
              "    return grad")


@pytest.mark.parametrize("user", ["invoking", "ordinary"])   # invoking: root in CI and here
@pytest.mark.parametrize("assignment", ["02-gradient-descent", "04-numpy-net"])
def test_cheats_on_callbacks_and_given_data_score_only_their_honest_part(assignment, user, tmp_path):
    """02 passes the test's callbacks into the student's code, 04 trains on a given cell's Fashion-MNIST arrays
    that are never sent: do three cheats that win in the kernel (input transformer, pre_run_cell hook, helpers'
    code swapped) score, test by test, exactly the same work without the cheat, and the honest control full
    marks? 04 also holds a train_mlp that edits the test's y_val in place (synced back to the trusted side):
    does it score no more than the same code editing a copy? Graded by the invoking user (root in CI) and by an
    ordinary user (emulated with ``unshare --user``), nothing outside the grading folder changing. (Only the
    control trains on Fashion-MNIST. The ordinary user's batch holds the sandbox's cases only: not the y_val edit
    nor the hidden failure's feedback, which the trusted runner and the host decide the same way for both.)"""
    import nbformat

    from autograder.notebooks import build_submission, source_notebook

    prefix = _ordinary_user_prefix() if user == "ordinary" else []
    name = source_notebook(assignment).name
    cases = numpy_hostile_cases(assignment)
    if assignment == "02-gradient-descent" and not prefix:   # issue 12: a failed hidden check reaches the feedback
        cases.append(("hidden-failure", "numerical_gradient right for 1-D and 2-D x only",
                      build_submission(assignment, {"numerical_gradient": ONLY_1D_2D}), False))
    if assignment == "04-numpy-net" and not prefix:   # the runner's rule, the same for both users
        cases += [(student, why, nb, False) for student, why, nb in y_val_edit_cases()]
    for student, _, nb, _ in cases:
        (tmp_path / "in" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "in" / student / name)
    rows, result, env = _grade_assignment(assignment, tmp_path / "in", tmp_path, prefix,
                                          ["--workers", "2", "--no-progress"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert set(rows) == {case[0] for case in cases}, result.stdout[-3000:]
    tests = [column for column in rows["honest-control"] if column.startswith("test_")]
    control, honest = rows["honest-control"], rows["honest-partial"]
    assert float(control["score"]) == float(control["max_score"]), control
    undone = NUMPY_PARTIAL[assignment][1]
    for test in tests:
        if test in undone:
            assert float(honest[test]) < float(control[test]), f"{test}: {honest}"
        else:
            assert float(honest[test]) == float(control[test]), f"{test}: {honest}"
    for student, why, _, cheat in cases:
        if cheat:
            assert rows[student]["status"] == "graded", f"{student} ({why}): {rows[student]}"
            assert {t: rows[student][t] for t in tests} == {t: honest[t] for t in tests}, f"{student} ({why})"
    if assignment == "04-numpy-net" and not prefix:
        # Editing y_val never pays: test by test no more than the same code editing a copy; the hidden check that
        # scores val_acc against the validation labels fails for both (they report accuracy 1.0 untrained).
        edited, baseline = rows["cheat-edits-y-val"], rows["baseline-y-val-copy"]
        assert edited["status"] == baseline["status"] == "graded", (edited, baseline)
        for test in tests:
            assert float(edited[test] or 0) <= float(baseline[test] or 0), f"{test}: {edited} vs {baseline}"
        assert float(baseline["test_train_mlp_small"]) < float(control["test_train_mlp_small"]), baseline
    if assignment != "02-gradient-descent" or prefix:
        return
    assert 0 < float(rows["hidden-failure"]["test_numerical_gradient"]) < 3, rows["hidden-failure"]
    result = run_autograder("feedback", assignment, env=env)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "grading" / "feedback"
    page = (folder / "hidden-failure" / assignment / name.replace(".ipynb", ".html")).read_text(encoding="utf-8")
    assert "What the check said:" in page and "numerical gradient on shape (2, 3, 4) is wrong" in page
    secret = hidden_lines(assignment)
    for path in sorted(folder.glob(f"*/{assignment}/*.html")):
        text = path.read_text(encoding="utf-8")
        own = (tmp_path / "in" / path.parts[-3] / name).read_text(errors="replace")   # visible tests included
        leaked = [line for line in secret if line in text and line not in own]
        assert not leaked, f"{path}: hidden test lines in the feedback: {leaked[:3]}"


@pytest.mark.parametrize("user", ["invoking", "ordinary"])   # invoking: root in CI and here
@pytest.mark.parametrize("assignment", sorted(TORCH_ASSIGNMENTS))
def test_torch_cheats_score_only_their_honest_part(assignment, user, tmp_path):
    """The PyTorch exercises (tensors as data, modules behind handles, course helpers run in the kernel): does each
    cheat (test cells turned into `pass`, errors forgotten, a tracer, Checks made to give full points, the
    PyTorch test helpers replaced in the kernel) get exactly the score of its honest work, graded by the invoking
    user and by an ordinary one (``unshare --user``), nothing outside the grading folder changing?"""
    prefix = _ordinary_user_prefix() if user == "ordinary" else []
    submissions = tmp_path / "submissions"
    spec = TORCH_ASSIGNMENTS[assignment]
    # As an ordinary user, where the spec names them, the controls and the cheats aimed at the exercise's own code.
    cases = write_torch_hostile(assignment, submissions, spec.get("as_user") if prefix else None)
    rows, result, env = _grade_assignment(assignment, submissions, tmp_path, prefix, LIMITS)
    _check_scores(cases, rows, result, spec["points"], spec["honest"])
    if prefix:   # the feedback is made on the host, the same for both users
        return
    # The feedback: no hidden test line anywhere; a failed hidden check explained with what the course's helper said.
    feedback = run_autograder("feedback", assignment, env=env)
    assert feedback.returncode == 0, feedback.stderr
    secret = hidden_lines(assignment)
    pages = {path.parts[-3]: path.read_text(encoding="utf-8")
             for path in sorted((tmp_path / "grading" / "feedback").glob(f"*/{assignment}/*.html"))}
    assert set(pages) == {case.student_id for case in cases}
    for student, page in pages.items():
        own = (submissions / student / spec["notebook"]).read_text(errors="replace")
        leaked = [line for line in secret if line in page and line not in own]
        assert not leaked, f"{student}: hidden test lines in the feedback: {leaked[:3]}"
    if "cheat-leak-source" in pages:   # an exception raised in the kernel carrying encoded source: never shown
        leak = pages["cheat-leak-source"]
        assert not re.search(r"ENCODED:[A-Za-z0-9+/=]{20,}", leak) and not re.search(r"[A-Za-z0-9+/=]{80,}", leak)
    if "hidden-failure" in pages:
        assert "A <b>hidden test</b> of <code>test_LinearFunction_backward</code> failed" in pages["hidden-failure"]
        assert "dx for x of shape (5, 4), W of shape (4, 4) (compared with PyTorch&#x27;s autograd of x @ W + b) is " \
               "wrong" in pages["hidden-failure"]
