"""`python -m autograder collect`: LMS downloads, Colab names, duplicates and junk; every input accounted for.

No notebook is executed here: collect only sorts files into nbgrader's submitted/ folder.
"""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.collect import collect
from autograder.notebooks import build_submission, is_answer
from conftest import ROOT, run_autograder

ASSIGNMENT = "01-losses"
OTHER = ROOT / "exercises" / "02-gradient-descent" / "gradient_descent.ipynb"


def notebook(marker: str) -> bytes:
    """A distinct, valid submission: the marker is a comment in the first answer cell."""
    nb = build_submission(ASSIGNMENT)
    answer = next(cell for cell in nb.cells if is_answer(cell))
    answer.source = f"# {marker}\n" + answer.source
    return nbformat.writes(nb).encode()


def zip_of(members: dict[str, bytes], times: dict[str, tuple] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(times or {}).get(name, (2026, 3, 1, 12, 0, 0)))
            archive.writestr(info, data)
    return buffer.getvalue()


def touch(path: Path, data: bytes, minutes_ago: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - 60 * minutes_ago
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def inputs(tmp_path):
    """A realistic mix of downloads. Returns (list of inputs, {input file: expected (outcome, student)})."""
    expected = {}
    canvas = tmp_path / "canvas.zip"
    canvas.write_bytes(zip_of({
        "doejane_12345_900001_losses.ipynb": notebook("canvas doejane"),
        "smithbob_late_22222_900002_losses.ipynb": notebook("canvas smithbob old"),
        "smithbob_late_22222_900003_losses-1.ipynb": notebook("canvas smithbob new"),
        "leeann_33333_900004_notes.pdf": b"%PDF-1.4",
        "leeann_33333_900005_work.zip": zip_of({"leeann/losses.ipynb": notebook("canvas leeann inside a zip")}),
        "__MACOSX/._doejane_12345_900001_losses.ipynb": b"\0\0",
    }, times={"smithbob_late_22222_900003_losses-1.ipynb": (2026, 3, 2, 9, 0, 0)}))
    expected |= {
        f"{canvas}!doejane_12345_900001_losses.ipynb": ("accepted", "doejane-12345"),
        f"{canvas}!smithbob_late_22222_900002_losses.ipynb": ("superseded", "smithbob-22222"),
        f"{canvas}!smithbob_late_22222_900003_losses-1.ipynb": ("accepted", "smithbob-22222"),
        f"{canvas}!leeann_33333_900004_notes.pdf": ("rejected", ""),
        f"{canvas}!leeann_33333_900005_work.zip!leeann/losses.ipynb": ("accepted", "leeann-33333"),
        f"{canvas}!__MACOSX/._doejane_12345_900001_losses.ipynb": ("rejected", ""),
    }
    moodle = tmp_path / "moodle.zip"
    moodle.write_bytes(zip_of({
        "Jane Roe_4444_assignsubmission_file_/losses.ipynb": notebook("moodle roe"),
        "Max Mustermann_5555_assignsubmission_file_gradient_descent.ipynb": OTHER.read_bytes(),
    }))
    expected |= {
        f"{moodle}!Jane Roe_4444_assignsubmission_file_/losses.ipynb": ("accepted", "jane-roe-4444"),
        f"{moodle}!Max Mustermann_5555_assignsubmission_file_gradient_descent.ipynb": ("rejected", ""),
    }
    gradescope = tmp_path / "gradescope.zip"
    gradescope.write_bytes(zip_of({
        "assignment_77_export/submission_metadata.yml": (
            b"submission_101:\n  :submitters:\n  - :name: Ada Lovelace\n    :sid: '1815'\n"
            b"    :email: ada@example.org\n  :created_at: 2026-03-01 10:00:00.000000000 +00:00\n"),
        "assignment_77_export/submission_101/losses.ipynb": notebook("gradescope ada"),
    }))
    expected |= {
        f"{gradescope}!assignment_77_export/submission_metadata.yml": ("rejected", ""),
        f"{gradescope}!assignment_77_export/submission_101/losses.ipynb": ("accepted", "1815"),
    }
    folder = tmp_path / "downloads"
    files = {
        touch(folder / "carol" / "losses.ipynb", notebook("carol oldest"), 30): ("superseded", "carol"),
        touch(folder / "carol" / "Copy of losses.ipynb", notebook("carol middle"), 20): ("superseded", "carol"),
        touch(folder / "carol" / "losses (1).ipynb", notebook("carol newest"), 10): ("accepted", "carol"),
        touch(folder / "dave" / ASSIGNMENT / "losses.ipynb", notebook("dave"), 5): ("accepted", "dave"),
        touch(folder / "erin.ipynb", notebook("erin"), 5): ("accepted", "erin"),
        touch(folder / "losses.ipynb", notebook("nobody"), 5): ("rejected", ""),
        touch(folder / "frank" / "answers.ipynb", notebook("frank renamed"), 5): ("accepted", "frank"),
        touch(folder / "frank" / ".ipynb_checkpoints" / "losses-checkpoint.ipynb", b"{}", 5): ("rejected", ""),
        touch(folder / ".DS_Store", b"\0", 5): ("rejected", ""),
        touch(folder / "gina" / "broken.ipynb", b"{not json", 5): ("accepted", "gina"),
    }
    expected |= {str(path): outcome for path, outcome in files.items()}
    single = touch(tmp_path / "Copy of hank.ipynb", notebook("hank"), 1)   # a single file given as input
    expected[str(single)] = ("accepted", "hank")
    return [canvas, moodle, gradescope, folder, single], expected


def test_every_input_file_is_accounted_for(inputs, tmp_path, monkeypatch):
    """Does the report list every file (zip members and nested zips included) with what became of it?"""
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "grading"))
    paths, expected = inputs
    report = collect(ASSIGNMENT, paths)
    seen = {f.source: (f.outcome, f.student_id if f.outcome != "rejected" else "") for f in report.files}
    assert seen == expected
    assert not report.flagged, [(f.source, f.flag) for f in report.flagged]   # honest downloads raise no flag
    for file in report.files:
        assert file.outcome in ("accepted", "superseded", "rejected") and (file.outcome == "accepted" or file.reason)
        if file.outcome != "accepted":
            assert Path(file.kept_as).is_file(), f"{file.source} must be kept: nothing is ever lost"
    with report.path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["input"] for row in rows} == set(expected)


def test_newest_file_wins_and_lms_identity_is_kept(inputs, tmp_path, monkeypatch):
    """Is the newest of a student's files the one staged (with its time), and are names and LMS ids recorded?"""
    grading = tmp_path / "grading"
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(grading))
    collect(ASSIGNMENT, inputs[0])
    submitted = grading / "submitted"

    def staged(student: str) -> str:
        return (submitted / student / ASSIGNMENT / "losses.ipynb").read_text()

    assert "carol newest" in staged("carol")
    assert "canvas smithbob new" in staged("smithbob-22222")
    assert "canvas leeann inside a zip" in staged("leeann-33333")
    stamp = (submitted / "1815" / ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp.startswith("2026-03-01 10:00:00"), stamp
    with (grading / "students.csv").open(newline="") as handle:
        roster = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert roster["1815"]["email"] == "ada@example.org" and roster["1815"]["last_name"] == "Lovelace"
    assert roster["jane-roe-4444"]["lms"] == "moodle" and roster["jane-roe-4444"]["lms_user_id"] == "4444"
    assert roster["doejane-12345"]["lms"] == "canvas" and roster["doejane-12345"]["lms_user_id"] == "12345"
    report = (grading / "reports" / ASSIGNMENT / "collection.csv").read_text()
    assert "another assignment (02-gradient-descent)" in report and "not a notebook (.pdf)" in report


def test_a_later_collect_keeps_the_newer_submission(tmp_path, monkeypatch):
    """Does collecting again keep whichever file is newer, and keep the other one as superseded?"""
    grading = tmp_path / "grading"
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(grading))
    new = touch(tmp_path / "first" / "ivy" / "losses.ipynb", notebook("ivy new"), 1)
    old = touch(tmp_path / "second" / "ivy" / "losses.ipynb", notebook("ivy old"), 60)
    assert collect(ASSIGNMENT, [new.parent.parent]).accepted
    report = collect(ASSIGNMENT, [old.parent.parent])
    assert [f.outcome for f in report.files] == ["superseded"]
    assert "ivy new" in (grading / "submitted" / "ivy" / ASSIGNMENT / "losses.ipynb").read_text()
    assert "ivy old" in Path(report.files[0].kept_as).read_text()


def test_custom_pattern_and_command_line(tmp_path):
    """Does --pattern name students in a layout the defaults do not know, through the command line?"""
    grading = tmp_path / "grading"
    touch(tmp_path / "in" / "week3-s123456-losses.ipynb", notebook("custom"), 1)
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading))
    result = run_autograder("collect", ASSIGNMENT, str(tmp_path / "in"), r"--pattern=-(?P<student>s\d+)-",
                            env=env)
    assert result.returncode == 0, result.stderr
    assert "1 accepted" in result.stdout
    assert (grading / "submitted" / "s123456" / ASSIGNMENT / "losses.ipynb").is_file()
    result = run_autograder("collect", ASSIGNMENT, str(tmp_path / "in"), "--max-file-mb=0.0001", env=env)
    assert result.returncode == 0 and "1 rejected" in result.stdout and "per file" in result.stdout, result.stdout


def test_the_outermost_folder_is_the_student(tmp_path, monkeypatch):
    """Is the top-level folder of a folder input the student, whatever folders it holds, and is an instructor who
    gave a folder of sections told how to give them?"""
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "grading"))
    touch(tmp_path / "all" / "section1" / "carol" / "losses.ipynb", notebook("carol"), 10)
    touch(tmp_path / "all" / "section1" / "dave" / "losses.ipynb", notebook("dave"), 5)
    report = collect(ASSIGNMENT, [tmp_path / "all"])
    assert [(f.student_id, f.outcome) for f in report.files] == [("section1", "superseded"), ("section1", "accepted")]
    assert "give that folder as input" in report.files[0].reason
    report = collect(ASSIGNMENT, [tmp_path / "all" / "section1"])
    assert [(f.student_id, f.outcome) for f in report.files] == [("carol", "accepted"), ("dave", "accepted")]
    zipped = tmp_path / "all.zip"   # the same in a zip: its top-level folder is the student
    zipped.write_bytes(zip_of({"section1/carol/losses.ipynb": notebook("carol"),
                               "section1/dave/losses.ipynb": notebook("dave")}))
    report = collect(ASSIGNMENT, [zipped])
    assert [f.outcome for f in report.files] == ["superseded", "accepted"]
    assert "give that folder as input" in report.files[0].reason
