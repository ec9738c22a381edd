"""nbgrader's exchange as a submission route, without a hub: students use stock nbgrader (fetch_assignment, submit,
fetch_feedback) on a private exchange folder, the instructor uses `python -m autograder exchange ...` and the
pipeline's own collect, grade and export. The JupyterHub test (test_hub_term.py) walks the same route in a browser.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from answers import ASSIGNMENT, NOTEBOOK, ROOT, answered

pytestmark = pytest.mark.grading
COURSE = "dl-ground-up"


def nbgrader_as_student(student: str, home: Path, exchange: Path, action: str, assignment: str) -> None:
    """Stock nbgrader's exchange step ``action``, as the student ``student`` runs it on the hub (in their home,
    with their own cache), in this process: nbgrader's apps take seconds each to start on a busy machine."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeFetchAssignment, ExchangeFetchFeedback, ExchangeSubmit
    from traitlets.config import Config

    home.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.Exchange.root = str(exchange)
    config.Exchange.cache = str(home / ".nbgrader_cache")
    config.Exchange.assignment_dir = str(home)
    config.CourseDirectory.course_id = COURSE
    config.CourseDirectory.student_id = student
    config.CourseDirectory.assignment_id = assignment
    app = {"fetch_assignment": ExchangeFetchAssignment, "submit": ExchangeSubmit,
           "fetch_feedback": ExchangeFetchFeedback}[action]
    app(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config), config=config).start()


def autograder(env: dict, *args: str) -> str:
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=900)
    assert result.returncode == 0, f"autograder {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    print(f"python -m autograder {' '.join(args)}: {time.monotonic() - start:.1f} s")
    return result.stdout


def submit(student: str, home: Path, exchange: Path, with_bug: bool | None) -> None:
    """Write answers into the fetched notebook (None: leave it unanswered) and submit it."""
    path = home / ASSIGNMENT / NOTEBOOK
    if with_bug is not None:
        nbformat.write(answered(nbformat.read(path, as_version=4), with_bug), path)
    nbgrader_as_student(student, home, exchange, "submit", ASSIGNMENT)
    time.sleep(0.01)     # distinct submission times


def test_exchange_route(tmp_path: Path, grading_env: dict):
    exchange = tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    env = {**grading_env, "NBGRADER_EXCHANGE_ROOT": str(exchange)}
    homes = {s: tmp_path / "home" / s for s in ("alice", "bob")}

    out = autograder(env, "exchange", "release", ASSIGNMENT)
    assert (exchange / COURSE / "outbound" / ASSIGNMENT / NOTEBOOK).is_file(), out
    for student, home in homes.items():
        nbgrader_as_student(student, home, exchange, "fetch_assignment", ASSIGNMENT)
        assert (home / ASSIGNMENT / NOTEBOOK).read_bytes() == (ROOT / "exercises" / ASSIGNMENT / NOTEBOOK).read_bytes()
    submit("alice", homes["alice"], exchange, with_bug=False)
    submit("bob", homes["bob"], exchange, with_bug=None)              # on time, unanswered
    due = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    autograder(env, "exchange", "release", ASSIGNMENT, "--force", "--duedate", due)
    time.sleep(0.05)
    submit("bob", homes["bob"], exchange, with_bug=True)              # late resubmission, with the bug

    out = autograder(env, "exchange", "collect", ASSIGNMENT)
    assert "3 submissions" in out, out
    grading = Path(env["DLCOURSE_GRADING_DIR"])
    staged = nbformat.read(grading / "submitted" / "bob" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert "shifted = np.asarray(logits, dtype=float)" in "".join(c.source for c in staged.cells), \
        "bob's resubmission should supersede his first submission"

    autograder(env, "grade", ASSIGNMENT, "--workers", "2", "--no-progress")
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{grading / 'gradebook.db'}") as gradebook:
        scores = {s.student.id: s.score for s in gradebook.find_assignment(ASSIGNMENT).submissions}
        assert gradebook.find_submission(ASSIGNMENT, "bob").total_seconds_late > 0
        assert gradebook.find_submission(ASSIGNMENT, "alice").total_seconds_late == 0
    assert scores["alice"] == 15, scores
    bob_score = scores["bob"]
    assert bob_score < 15, scores

    out = autograder(env, "exchange", "feedback", ASSIGNMENT)
    assert "feedback released to 2 students" in out, out
    for student, expected in (("alice", 15), ("bob", bob_score)):
        nbgrader_as_student(student, homes[student], exchange, "fetch_feedback", ASSIGNMENT)
        pages = list((homes[student] / ASSIGNMENT / "feedback").glob(f"*/{Path(NOTEBOOK).stem}.html"))
        assert len(pages) == 1, f"{student} fetched {pages}"
        page = pages[0].read_text()
        assert f"<b class='final-score'>{expected:g} / 15</b>" in page, page[-1500:]
        assert "BEGIN HIDDEN TESTS" not in page and "default_rng(505)" not in page   # hidden tests stay hidden

    autograder(env, "export", ASSIGNMENT)
    rows = {r["student_id"]: r for r in csv.DictReader((grading / "exports" / ASSIGNMENT / "grades.csv").open())}
    assert float(rows["alice"]["score"]) == 15 and float(rows["bob"]["score"]) == bob_score

    # nbgrader's --before-duedate: only what was submitted by the due date (bob's unanswered first submission).
    env2 = {**env, "DLCOURSE_GRADING_DIR": str(tmp_path / "grading-2")}
    autograder(env2, "exchange", "release", ASSIGNMENT, "--force", "--duedate", due)
    out = autograder(env2, "exchange", "collect", ASSIGNMENT, "--before-duedate")
    assert "left out (after the due date): bob+" in out, out
    first = nbformat.read(tmp_path / "grading-2" / "submitted" / "bob" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert first.cells == nbformat.read(ROOT / "exercises" / ASSIGNMENT / NOTEBOOK, as_version=4).cells
    index = json.loads((tmp_path / "grading-2" / "exchange" / ASSIGNMENT / "submissions.json").read_text())
    assert sorted(s["student_id"] for s in index if s["kept"]) == ["alice", "bob"]
