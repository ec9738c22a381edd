"""The capstone (10-capstone): held-out data that only grading reads, and the hand-graded answer in the export.

The held-out set lives in the grading folder (autograder/heldout.py); the tests write their own
(tests/capstone_heldout.py). One grading batch (two quick submissions) shows that a submission that hunts for it
finds nothing and that the labels reach no file the grader writes, then that a manual grade entered in the
gradebook (as formgrader does) is exported next to the autograded points.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import heldout
from autograder.heldout import HELDOUT, find_heldout_copies, npz_bytes, validate
from autograder.nbgrader_api import NbgraderError
from autograder.notebooks import build_submission, nbgrader_meta
from autograder.publish import publish
from autograder.verdict import TRUSTED_ASSIGNMENTS, runner_environment
from capstone_heldout import heldout_arrays, write_heldout
from conftest import ROOT, run_autograder
import dlcourse.heldout as heldout_module
from dlcourse.heldout import HeldoutUnavailable, accuracy_points, load_heldout
from test_assignments import split_mutant

ASSIGNMENT = "10-capstone"
NOTEBOOK = "capstone.ipynb"
SPEC = HELDOUT[ASSIGNMENT]


def small_set(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("content, message", [
    (None, "the held-out set is missing: put it at"),
    (b"not a zip file", "is not a readable .npz"),
    (npz_bytes(*small_set())[:100], "is not a readable .npz"),
    ("images-only", "lacks the array(s) labels"),
    ("float-images", "expected uint8 images of shape (N, 28, 28)"),
    ("label-11", "labels must be integers in 0..9"),
    ("object-labels", "is not a readable .npz"),
    ("too-few", "at least 500 are needed"),
])
def test_a_missing_or_malformed_heldout_file_is_a_clear_error(tmp_path, content, message):
    """Does every problem with the instructor's file stop grading with a message that says what is wrong?"""
    images, labels = small_set()
    path = tmp_path / "10-capstone.npz"
    if content == "images-only":
        np.savez(path, images=images)
    elif content == "float-images":
        np.savez(path, images=images.astype(np.float32), labels=labels)
    elif content == "label-11":
        np.savez(path, images=images, labels=np.where(labels == 0, 11, labels))
    elif content == "object-labels":
        np.savez(path, images=images, labels=np.array([str(x) for x in labels], dtype=object))
    elif content == "too-few":
        np.savez(path, images=images[:100], labels=labels[:100])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(NbgraderError, match=None) as error:
        validate(path, SPEC)
    assert message in str(error.value) and str(path) in str(error.value)


def test_grading_without_heldout_data_or_its_safeguards_is_refused(tmp_path, monkeypatch):
    """Is the capstone graded only with its held-out file, by the trusted runner, in the sandbox?"""
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "grading"))
    assert ASSIGNMENT in TRUSTED_ASSIGNMENTS
    with pytest.raises(NbgraderError, match=r"missing: put it at .*heldout/10-capstone\.npz"):
        heldout.require(ASSIGNMENT, "trusted", sandboxed=True)
    path = write_heldout(tmp_path / "grading")
    assert heldout.require(ASSIGNMENT, "trusted", sandboxed=True) == path
    with pytest.raises(NbgraderError, match="--verdict kernel would hand the held-out labels"):
        heldout.require(ASSIGNMENT, "kernel", sandboxed=True)
    with pytest.raises(NbgraderError, match="needs the sandbox"):
        heldout.require(ASSIGNMENT, "trusted", sandboxed=False)
    assert heldout.require("01-losses", "kernel", sandboxed=False) is None


def test_the_command_line_says_where_the_heldout_file_goes(tmp_path, grading_env):
    """Does `grade 10-capstone` without the file stop before collecting anything, naming the path?"""
    result = run_autograder("grade", ASSIGNMENT, str(tmp_path), env=grading_env, timeout=120)
    assert result.returncode != 0
    assert f"{grading_env['DLCOURSE_GRADING_DIR']}/heldout/10-capstone.npz" in result.stderr
    assert not (Path(grading_env["DLCOURSE_GRADING_DIR"]) / "submitted").exists()


def test_only_the_graders_runner_can_load_the_heldout_set(tmp_path, monkeypatch):
    """Outside the trusted runner (a student's notebook, stock nbgrader) load_heldout has nothing to find, and the
    runner gets the path only from the grader, never from the grader's own environment."""
    monkeypatch.delenv("DLCOURSE_HELDOUT", raising=False)
    with pytest.raises(HeldoutUnavailable, match="available only to the course's grader"):
        load_heldout()
    path = write_heldout(tmp_path)
    monkeypatch.setenv("DLCOURSE_HELDOUT", str(path))
    assert "DLCOURSE_HELDOUT" not in runner_environment()
    images, labels = load_heldout()
    assert images.shape == (2000, 28, 28) and labels.shape == (2000,)
    assert accuracy_points(0.79, 0.80, 0.85, 10) == 0 and accuracy_points(0.9, 0.80, 0.85, 10) == 10
    assert accuracy_points(0.825, 0.80, 0.85, 10) == 5


def test_publish_refuses_a_copy_that_holds_heldout_data(tmp_path, monkeypatch):
    """Does publish stop when a tracked file is the held-out file, holds one of its arrays, or is named like one?"""
    grading = tmp_path / "grading"
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(grading))
    path = write_heldout(grading)
    images, labels = heldout_arrays()
    repo = tmp_path / "course"
    (repo / "exercises" / "10-capstone").mkdir(parents=True)
    (repo / "book").mkdir()
    (repo / "exercises" / "10-capstone" / "extra.npz").write_bytes(path.read_bytes())   # the file, renamed
    np.save(repo / "book" / "labels.npy", labels)                                     # one array, re-saved
    (repo / "book" / "held_out_labels.csv").write_text("3,1,4\n")                     # a telling name
    (repo / "book" / "intro.md").write_text("# Welcome\n")
    (repo / "book" / "heldout.md").write_text("How held-out data is graded.\n")      # a page about it: fine
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    with pytest.raises(NbgraderError, match="held-out grading data appears") as error:
        publish(tmp_path / "published", root=repo)
    for name in ("exercises/10-capstone/extra.npz", "book/labels.npy", "book/held_out_labels.csv"):
        assert name in str(error.value)
    assert "intro.md" not in str(error.value) and "heldout.md" not in str(error.value)
    # The course as committed holds none: the released exercise and the sources ship no data of this kind.
    assert find_heldout_copies(ROOT / "exercises", grading / "heldout") == []
    assert find_heldout_copies(ROOT / "solutions", grading / "heldout") == []


SNOOP = '''
import json as _json, os as _os
_report = {"env": sorted(k for k, v in _os.environ.items() if "heldout" in (k + v).lower() or "grading" in v),
           "exact_path": _os.path.exists(HELDOUT_PATH), "grading_dir": _os.path.exists(GRADING_DIR)}
_report["named_files"] = [_os.path.join(d, f) for d, sub, files in _os.walk("/")
                          if not d.startswith(("/proc", "/sys", "/dev")) for f in files if "heldout" in f.lower()]
_report["processes"] = []
for _pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
    for _name in ("environ", "cmdline"):
        try:
            _text = open(f"/proc/{_pid}/{_name}", "rb").read()
        except OSError:
            continue
        if b"heldout" in _text.lower() or b"trusted_runner" in _text:
            _report["processes"].append(f"{_pid}/{_name}")
print("SNOOP", _json.dumps(_report))
'''

QUICK_TRAIN = '''
def train_model(X_train, y_train, X_val, y_val):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    loader = make_loader(X_train[:20_000], y_train[:20_000], batch_size=128, shuffle=True, seed=0)
    fit(model, loader, torch.optim.Adam(model.parameters(), lr=3e-3), epochs=2, device=device, show_progress=False)
    return model.eval()
'''


def test_the_kernel_factorys_command_line_names_neither_the_heldout_data_nor_the_runner():
    """The factory runs as ``python -c <autograder/zygote.py>``, so every kernel can read its source as a command
    line: the snooping submission below reports a process whose command line says "heldout" or "trusted_runner"."""
    source = (ROOT / "autograder" / "zygote.py").read_text(encoding="utf-8").lower()
    assert "heldout" not in source and "trusted_runner" not in source


@pytest.mark.grading
def test_heldout_data_reaches_no_submission_and_manual_grades_are_exported(tmp_path, grading_env):
    """A submission that hunts for the held-out set (environment, every file it can see, the exact path, other
    processes) finds nothing and scores 0 on it; the labels appear in no file grading writes; a linear model gets
    partial credit; a manual grade entered in the gradebook is exported next to the autograded points."""
    grading = Path(grading_env["DLCOURSE_GRADING_DIR"])
    path = write_heldout(grading)
    _, labels = heldout_arrays()
    canary = "".join(map(str, labels[:60]))   # the labels as anything that printed them would show them

    snoop = build_submission(ASSIGNMENT, split_mutant(ROOT / "tests/mutants/10-capstone/"
                                                      "predict_reads_heldout_labels.py")[1])
    honest = build_submission(ASSIGNMENT, {"train_model": QUICK_TRAIN})
    for cell in snoop.cells:
        if nbgrader_meta(cell).get("grade_id") == "predict":
            cell.source += f"\n\nHELDOUT_PATH, GRADING_DIR = {str(path)!r}, {str(grading)!r}\n" + SNOOP
    for cell in honest.cells:
        if nbgrader_meta(cell).get("grade_id") == "justification":
            cell.source = "A linear model: 0.83 on validation in two seconds; I expect a little less on new images."
    for student, nb in [("snoop", snoop), ("alice", honest)]:
        (tmp_path / "in" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "in" / student / NOTEBOOK)

    result = run_autograder("grade", ASSIGNMENT, str(tmp_path / "in"), env=grading_env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    records = {s: json.loads((grading / "results" / ASSIGNMENT / f"{s}.json").read_text()) for s in ("snoop", "alice")}
    scores = {s: {t["grade_id"]: t["score"] for n in r["notebooks"] for t in n["tests"]} for s, r in records.items()}
    assert scores["snoop"]["test_predict_heldout"] == 0
    assert 0 < scores["alice"]["test_predict_heldout"] < 10, scores["alice"]   # the linear scale: partial credit

    graded = nbformat.read(grading / "autograded" / "snoop" / ASSIGNMENT / NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    report = json.loads(printed.split("SNOOP ", 1)[1].splitlines()[0])
    public = str(Path(heldout_module.__file__).resolve())   # the course's loader: code, not data
    report["named_files"] = [f for f in report["named_files"] if f != public]
    assert report == {"env": [], "exact_path": False, "grading_dir": False, "named_files": [], "processes": []}

    feedback = run_autograder("feedback", ASSIGNMENT, env=grading_env, timeout=300)
    assert feedback.returncode == 0, feedback.stderr[-3000:]

    # As formgrader's "save" does: the manual score of the hand-graded cell, in the pipeline's gradebook.
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{grading / 'gradebook.db'}"
    with Gradebook(db_url) as gradebook:
        grade = gradebook.find_grade("justification", NOTEBOOK.removesuffix(".ipynb"), ASSIGNMENT, "alice")
        assert grade.needs_manual_grade and grade.max_score == 5
        grade.manual_score = 4
        gradebook.db.commit()
    exported = run_autograder("export", ASSIGNMENT, env=grading_env, timeout=300)
    assert exported.returncode == 0, exported.stderr[-3000:]
    with (grading / "exports" / ASSIGNMENT / "grades.csv").open(newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    alice = rows["alice"]
    autograded = scores["alice"]["test_predict"] + scores["alice"]["test_predict_heldout"]
    assert float(alice["justification"]) == 4
    assert float(alice["test_predict_heldout"]) == scores["alice"]["test_predict_heldout"]
    assert float(alice["score"]) == pytest.approx(autograded + 4) and float(alice["max_score"]) == 17
    assert rows["snoop"]["justification"] == "0"

    # The labels reach no file that grading wrote (autograded notebooks, records, feedback, exports).
    leaked = []
    for file in grading.rglob("*"):
        if file.is_file() and "heldout" not in file.relative_to(grading).parts and file.suffix != ".db":
            if canary in file.read_text(errors="replace"):
                leaked.append(str(file.relative_to(grading)))
    assert not leaked
    assert os.path.isfile(path)
