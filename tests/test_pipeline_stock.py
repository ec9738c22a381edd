"""The parallel grader against stock nbgrader, and what an interrupted run leaves behind."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import build_submission
from conftest import ROOT, run_autograder
from fixtures import ASSIGNMENT, FULL, HIDDEN_ONLY, MANUAL, NOTEBOOK, POINTS, WRONG
from test_assignments import split_mutant

pytestmark = pytest.mark.grading


def write(folder: Path, submissions: dict[str, nbformat.NotebookNode], notebook: str = NOTEBOOK) -> None:
    for student, nb in submissions.items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / student / notebook)


def well_formed(course: Path) -> dict[str, nbformat.NotebookNode]:
    """Submissions of the fixture assignment (tests/fixtures) that stock nbgrader grades correctly: right, blank,
    and wrong in a visible and in a hidden test, the latter with partial credit in a cell."""
    return {
        "correct": build_submission(ASSIGNMENT, root=course),
        "blank": nbformat.read(course / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4),
        "wrong-visible": build_submission(ASSIGNMENT, WRONG, root=course),
        "wrong-hidden": build_submission(ASSIGNMENT, HIDDEN_ONLY, root=course),
    }


def cell_scores(db: Path, assignment: str = ASSIGNMENT) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{db}") as gradebook:
        return {(s.student.id, g.name): float(g.auto_score)
                for s in gradebook.find_assignment(assignment).submissions
                for n in s.notebooks for g in n.grades if g.max_score and g.cell_type == "code"}   # autograded cells


def ours_and_stock(tmp_path: Path, submissions: dict[str, nbformat.NotebookNode], assignment: str = ASSIGNMENT,
                   notebook: str = NOTEBOOK, root: Path = ROOT) -> tuple[dict, dict]:
    """Grade ``submissions`` with `python -m autograder grade`, then with stock nbgrader (:func:`stock_scores`), in
    the course ``root``: each test cell's score by (student, cell), ours and stock's."""
    write(tmp_path / "in", submissions, notebook)
    ours = dict(os.environ, DLCOURSE_GRADING_DIR=str(tmp_path / "ours"))
    result = run_autograder("grade", assignment, str(tmp_path / "in"), env=ours, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = stock_scores(tmp_path, sorted(submissions), assignment, notebook, root)
    return cell_scores(tmp_path / "ours" / "gradebook.db", assignment), expected


def test_scores_equal_stock_nbgrader_autograde(tmp_path, fixture_course):
    """Does every test cell of well-formed submissions score what sequential `nbgrader autograde` gives it?"""
    submissions = well_formed(fixture_course)
    ours, expected = ours_and_stock(tmp_path, submissions, root=fixture_course)
    assert len(expected) == len(POINTS) * len(submissions)
    assert 0 < sum(expected.values()) < FULL * len(submissions)   # the cases differ: some tests fail
    # Partial credit (dlcourse.testing.Checks): the wrong double fails only the hidden check of negative numbers.
    assert 0 < expected[("wrong-hidden", "test_double")] < POINTS["test_double"]
    assert expected[("wrong-visible", "test_halve")] == 0
    assert expected[("wrong-visible", "test_double")] == POINTS["test_double"]   # one bug costs its own test only
    assert ours == expected
    # The manually graded answer counts in the maximum and waits for its grader: the autograder gives none of it.
    with (tmp_path / "ours" / "grades" / f"{ASSIGNMENT}.csv").open(newline="") as handle:
        correct = next(row for row in csv.DictReader(handle) if row["student_id"] == "correct")
    assert float(correct["max_score"]) == FULL + sum(MANUAL.values()) and float(correct["score"]) == FULL


def stock_scores(tmp_path: Path, students: list[str], assignment: str = ASSIGNMENT,
                 notebook: str = NOTEBOOK, root: Path = ROOT) -> dict[tuple[str, str], float]:
    """Stock nbgrader: its own API, one student after the other, on a gradebook of its own, in the course
    ``root`` (the repository, or ``fixture_course``)."""
    stock_dir = tmp_path / "stock"
    script = f"""
import os, shutil, sys
os.environ["DLCOURSE_GRADING_DIR"] = {str(stock_dir)!r}
sys.path.insert(0, {str(root)!r})
from autograder.nbgrader_api import check, grading_dir, load_config, make_api
config = load_config()
config.CourseDirectory.release_directory = str(grading_dir(config) / "release")
api = make_api(config)
check(api.generate_assignment({assignment!r}, force=True, create=True), "generate")
for student in {students!r}:
    target = grading_dir(config) / "submitted" / student / {assignment!r}
    target.mkdir(parents=True)
    shutil.copyfile({str(tmp_path / "in")!r} + f"/{{student}}/{notebook}", target / {notebook!r})
    check(api.autograde({assignment!r}, student, force=True, create=True), f"autograde {{student}}")
"""
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    stock = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True)
    assert stock.returncode == 0, stock.stderr[-3000:]
    return cell_scores(stock_dir / "gradebook.db", assignment)


def test_pytorch_scores_equal_stock_nbgrader_autograde(tmp_path):
    """05-pytorch, graded by the trusted runner (tensors as data, models behind handles, course helpers run in the
    kernel): does every test cell score what stock `nbgrader autograde`, running the same cells in the student's
    kernel, gives it? Honest work without a network (MLP left as the stub, so that no submission trains for
    long): right, with a bug only a hidden check finds, with a bug in train_one_epoch, and blank."""
    assignment, notebook = "05-pytorch", "pytorch.ipynb"
    mutants = ROOT / "tests" / "mutants" / assignment
    stub = {"MLP": "class MLP(nn.Module):\n    def __init__(self, *args, **kwargs):\n"
                   "        raise NotImplementedError('write MLP here')"}
    submissions = {
        "partial": build_submission(assignment, stub),
        "square-w": build_submission(assignment, {**stub, **split_mutant(mutants / "square_W_not_transposed.py")[1]}),
        "no-zero-grad": build_submission(assignment,
                                         {**stub, **split_mutant(mutants / "train_without_zero_grad.py")[1]}),
        "blank": nbformat.read(ROOT / "exercises" / assignment / notebook, as_version=4),
    }
    ours, expected = ours_and_stock(tmp_path, submissions, assignment, notebook)
    assert len(expected) == 6 * len(submissions)
    assert expected[("partial", "test_train_one_epoch")] == 3 and expected[("partial", "test_MLP")] == 0
    assert 0 < expected[("square-w", "test_LinearFunction_backward")] < 3   # partial credit
    assert 0 < expected[("no-zero-grad", "test_train_one_epoch")] < 3
    assert ours == expected


def _interruptible() -> None:
    """In the grader's process before it starts: SIGINT delivered as in a terminal. A suite started in the
    background (`make test &`) ignores SIGINT, and a test before this one may have blocked it in this worker
    (the disposition and the mask are inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_an_interrupted_run_loses_no_result_and_resumes(tmp_path, fixture_course):
    """After Ctrl-C in the middle of a batch, are the finished results intact, no sandbox left, and does the next
    run grade only what is missing?"""
    # s0 is graded first and fast; the others take 3 s more each (a correct halve that sleeps), so the interrupt
    # sent when s0's record appears lands while the batch still runs, however loaded the machine is.
    slow = {"halve": "import time\n\ndef halve(x):\n    time.sleep(3)\n    return np.asarray(x, dtype=float) / 2"}
    submissions = {f"s{i}": build_submission(ASSIGNMENT, slow if i else None, root=fixture_course) for i in range(5)}
    write(tmp_path / "in", submissions)
    grading = tmp_path / "grading"
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    process = subprocess.Popen([sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(tmp_path / "in"),
                                "--workers", "1", "--no-progress"], cwd=fixture_course, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_interruptible)
    results = grading / "results" / ASSIGNMENT
    deadline = time.monotonic() + 600
    while not list(results.glob("s*.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    done = {p.name: p.stat().st_mtime_ns for p in results.glob("s*.json")}
    assert done, stderr[-3000:]
    assert len(done) < len(submissions), "the run was to be interrupted before the end"
    for path in results.glob("s*.json"):
        assert json.loads(path.read_text())["score"] == FULL   # complete records only
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        assert not (cwd.endswith("(deleted)") and "/sandbox/" in cwd), f"process {pid} survived in {cwd}"
    again = run_autograder("grade", ASSIGNMENT, "--workers", "1", env=env, cwd=fixture_course)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(done)} submissions unchanged" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("s*.json") if p.name in done} == done
    assert len(list(results.glob("s*.json"))) == len(submissions)


def test_debugging_scores_equal_stock_nbgrader_autograde(tmp_path):
    """09-debugging, graded by the trusted runner (its tests keep their models in the kernel with student_side and
    read back weights, gradients and statistics with state_of and gradients_of): does every test cell score what
    stock `nbgrader autograde`, running the same cells in the student's kernel, gives it? The solution, and one
    submission with four bugs whose checks go through each way back from the kernel (each test uses only its own
    function): the mode evaluate leaves a model in, gradients read back, partial credit on weights read back, an MLP
    that returns probabilities. (Its checks fail or pass by wide margins: an MLP whose logits are cut at 0 passes
    the overfitting checks by chance, and the trusted runner's chance then differed from the kernel's under load.)"""
    assignment, notebook = "09-debugging", "debugging.ipynb"
    mutants = ROOT / "tests" / "mutants" / assignment
    bugs = {}
    for bug in ("evaluate_leaves_eval_mode", "train_step_zero_grad_after_backward", "init_weights_pytorch_default",
                "mlp_softmax_output"):
        bugs.update(split_mutant(mutants / f"{bug}.py")[1])
    submissions = {"correct": build_submission(assignment), "four-bugs": build_submission(assignment, bugs)}
    ours, expected = ours_and_stock(tmp_path, submissions, assignment, notebook)
    assert len(expected) == 5 * len(submissions)
    assert sum(score for (student, _), score in expected.items() if student == "correct") == 10
    assert expected[("four-bugs", "test_make_loader")] == 2
    assert 0 < expected[("four-bugs", "test_evaluate")] < 2   # partial credit
    assert expected[("four-bugs", "test_train_step")] == 0
    assert 0 < expected[("four-bugs", "test_init_weights")] < 2
    assert expected[("four-bugs", "test_MLP")] == 0   # probabilities, not logits: 0 of the 2 points
    assert ours == expected
