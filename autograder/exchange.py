"""nbgrader's exchange as a submission route, next to LMS downloads (``python -m autograder exchange ...``).

On a JupyterHub students fetch and submit assignments in JupyterLab's *Assignments* tab, which uses nbgrader's
exchange: a folder every user can write (``Exchange.root``, by default ``/srv/nbgrader/exchange``). This module
connects that exchange to the grading pipeline:

- ``release``: nbgrader's own ``release_assignment`` of the student version in ``exercises/<assignment>`` (what
  ``python -m autograder release`` generates) to ``<exchange>/<course>/outbound/<assignment>``; ``--duedate``
  records the due date in the gradebook, where nbgrader's late penalties read it.
- ``collect``: every submission in ``<exchange>/<course>/inbound`` (``<student>+<assignment>+<time>+<random>``) is
  copied to ``<grading>/exchange/<assignment>/inbound/`` (kept, never deleted) with the submission time as the
  files' time, and handed to ``python -m autograder collect``: the same identification, choice of the newest
  submission per student (a resubmission supersedes the earlier one, as ``nbgrader collect --update`` does), records
  and report as for LMS downloads; ``grade`` then works unchanged, and a submission after the gradebook's due date
  is late as nbgrader defines it (``AssignLatePenalties``). ``--before-duedate`` keeps, like nbgrader's option of the
  same name, only submissions made by the due date.
- ``feedback``: writes the feedback pages (``python -m autograder feedback``), adds what the instructor entered in
  formgrader (manual grades, extra credit, comments) and the final score from the gradebook, and releases each
  page to ``<exchange>/<course>/feedback/`` under the name nbgrader's ``fetch_feedback`` looks for (the hash of the
  submission's secret and the notebook), so that students fetch it in the Assignments tab.

Students' commands stay stock nbgrader (``fetch_assignment``, ``validate``, ``submit``, ``fetch_feedback``, ``list``,
from the Assignments tab or the command line), and so does formgrader.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.layout import current
from autograder.nbgrader_api import ROOT, AutograderError, check, load_config, make_api, source_notebooks

DEFAULT_ROOT = "/srv/nbgrader/exchange"


@dataclass
class Submission:
    """One submission found in the exchange's inbound folder."""

    folder: str              # its name in inbound/: <student>+<assignment>+<timestamp>[+<random>]
    student_id: str
    timestamp: str           # nbgrader's text, e.g. "2026-11-27 13:30:00.123456 UTC"
    secret: str              # submission_secret.txt: names the feedback file nbgrader's fetch_feedback looks for
    notebooks: list[str]
    kept: bool = True        # False: left out (--before-duedate)


def exchange_root(explicit: str | None = None) -> Path:
    """The exchange: ``--exchange``, else ``$NBGRADER_EXCHANGE_ROOT``, else nbgrader's configuration or default."""
    if explicit:
        return Path(explicit)
    if os.environ.get("NBGRADER_EXCHANGE_ROOT"):
        return Path(os.environ["NBGRADER_EXCHANGE_ROOT"])
    config = load_config()
    return Path(config.Exchange.root) if "root" in config.Exchange else Path(DEFAULT_ROOT)


def course_id() -> str:
    return load_config().CourseDirectory.course_id


def _config(exchange: Path, **overrides):
    return load_config(Exchange={"root": str(exchange)}, **overrides)


# -- release -----------------------------------------------------------------------------------------------------
def release(assignment: str, exchange: Path, force: bool = False, duedate: str | None = None) -> Path:
    """Release ``exercises/<assignment>`` to the exchange (nbgrader's ``release_assignment``); return the folder."""
    source_notebooks(assignment)            # a clear error for an unknown assignment
    released = ROOT / "exercises" / assignment
    if not released.is_dir():
        raise AutograderError(f"{released} does not exist: run `python -m autograder release {assignment}` first")
    if not exchange.is_dir():
        raise AutograderError(f"the exchange {exchange} does not exist: create it, mode 0777 "
                            f"(mkdir -p {exchange} && chmod 777 {exchange})")
    config = _config(exchange, ExchangeReleaseAssignment={"force": force})
    api = make_api(config)
    check(api.release_assignment(assignment), f"releasing {assignment} to {exchange}")
    if duedate:
        from nbgrader.api import Gradebook
        from nbgrader.utils import parse_utc

        with Gradebook(config.CourseDirectory.db_url) as gradebook:
            gradebook.update_or_create_assignment(assignment, duedate=parse_utc(duedate))
    return exchange / config.CourseDirectory.course_id / "outbound" / assignment


# -- collect -----------------------------------------------------------------------------------------------------
def staging_dir(assignment: str) -> Path:
    return current().exchange(assignment)


def _utc(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _parse_time(text: str) -> dt.datetime:
    """nbgrader's timestamp text as an aware datetime in UTC."""
    from nbgrader.utils import parse_utc

    return _utc(parse_utc(text.strip()))


def inbound_submissions(assignment: str, exchange: Path) -> list[Submission]:
    """The submissions of ``assignment`` in the exchange's inbound folder, oldest first."""
    inbound = exchange / course_id() / "inbound"
    if not inbound.is_dir():
        raise AutograderError(f"{inbound} does not exist: release the assignment first "
                            f"(`python -m autograder exchange release {assignment}`)")
    name = re.compile(rf"(?P<student>.+?)\+{re.escape(assignment)}\+(?P<timestamp>[^+]+)(?:\+[^+]*)?")
    found = []
    for folder in sorted(inbound.iterdir()):
        match = name.fullmatch(folder.name)
        if not match or not folder.is_dir():
            continue
        stamp = folder / "timestamp.txt"
        timestamp = stamp.read_text().strip() if stamp.is_file() else match["timestamp"]
        secret_file = folder / "submission_secret.txt"
        secret = secret_file.read_text() if secret_file.is_file() else ""
        notebooks = sorted(p.name for p in folder.glob("*.ipynb"))
        found.append(Submission(folder.name, match["student"], timestamp, secret, notebooks))
    return sorted(found, key=lambda s: _parse_time(s.timestamp))


def _duedate(assignment: str) -> dt.datetime | None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(load_config().CourseDirectory.db_url) as gradebook:
        try:
            due = gradebook.find_assignment(assignment).duedate
        except MissingEntry:
            return None
    return _utc(due) if due is not None else None


def collect(assignment: str, exchange: Path, before_duedate: bool = False) -> tuple[list[Submission], str]:
    """Copy the exchange's submissions into the grading folder and collect them; return them and collect's output."""
    submissions = inbound_submissions(assignment, exchange)
    staging = staging_dir(assignment)
    inbound = staging / "inbound"
    due = _duedate(assignment) if before_duedate else None
    if before_duedate and due is None:
        raise AutograderError(f"--before-duedate: {assignment} has no due date in the gradebook "
                            f"(`python -m autograder exchange release {assignment} --duedate ...`)")
    source = exchange / course_id() / "inbound"
    for submission in submissions:
        when = _parse_time(submission.timestamp)
        if due is not None and when > due:
            submission.kept = False
            continue
        target = inbound / submission.folder
        if not target.is_dir():                 # an exchange folder never changes: copied once, kept for good
            target.mkdir(parents=True)
            nanoseconds = int(when.timestamp()) * 10**9 + when.microsecond * 1000
            for notebook in submission.notebooks:
                shutil.copyfile(source / submission.folder / notebook, target / notebook)
                os.utime(target / notebook, ns=(nanoseconds, nanoseconds))
    staging.mkdir(parents=True, exist_ok=True)
    index = staging / "submissions.json"
    known = {s["folder"]: s for s in json.loads(index.read_text())} if index.is_file() else {}
    known.update({s.folder: asdict(s) for s in submissions})
    index.write_text(json.dumps(sorted(known.values(), key=lambda s: s["folder"]), indent=1))
    for stale in [p for p in inbound.iterdir()] if inbound.is_dir() else []:
        if stale.name in known and not known[stale.name]["kept"]:
            shutil.rmtree(stale)
    if not any(s.kept for s in submissions):
        return submissions, "no submission in the exchange yet"
    pattern = rf"^(?P<student>[^/]+?)\+{re.escape(assignment)}\+[^/]+/[^/]+$"
    result = subprocess.run([sys.executable, "-m", "autograder", "collect", assignment, str(inbound),
                             "--pattern", pattern], cwd=ROOT, text=True, capture_output=True)
    if result.returncode != 0:
        raise AutograderError(f"`python -m autograder collect` failed:\n{result.stdout}{result.stderr}")
    return submissions, result.stdout


# -- feedback ----------------------------------------------------------------------------------------------------
def _graded_submission(assignment: str, student_id: str) -> dict | None:
    """The exchange submission that was collected for the student: the one whose notebooks are the files in
    ``submitted/`` (the newest such, should a student have submitted the same files twice)."""
    index = staging_dir(assignment) / "submissions.json"
    if not index.is_file():
        return None
    submitted = current().submission(student_id, assignment)
    inbound = staging_dir(assignment) / "inbound"
    candidates = [s for s in json.loads(index.read_text()) if s["student_id"] == student_id and s["kept"]]
    for entry in sorted(candidates, key=lambda s: _parse_time(s["timestamp"]), reverse=True):
        if all((submitted / n).is_file()
               and (submitted / n).read_bytes() == (inbound / entry["folder"] / n).read_bytes()
               for n in entry["notebooks"]):
            return entry
    return None


def review_section(assignment: str, student_id: str, notebook: str) -> str:
    """HTML: the instructor's manual grades and comments from the gradebook (formgrader), and the final score."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(load_config().CourseDirectory.db_url) as gradebook:
        try:
            record = gradebook.find_submission_notebook(notebook, assignment, student_id)
        except MissingEntry:
            return ""
        lines = []
        for grade in sorted(record.grades, key=lambda g: g.name):
            if grade.manual_score is not None:
                lines.append(f"<li><code>{html.escape(grade.name)}</code>: your instructor set the score to "
                             f"{grade.manual_score:g} / {grade.max_score:g} (the autograder gave "
                             f"{(grade.auto_score or 0):g})</li>")
            if grade.extra_credit:
                lines.append(f"<li><code>{html.escape(grade.name)}</code>: extra credit {grade.extra_credit:g}</li>")
        for comment in sorted(record.comments, key=lambda c: c.name):
            if comment.manual_comment:
                lines.append(f"<li><code>{html.escape(comment.name)}</code>: "
                             f"&ldquo;{html.escape(comment.manual_comment)}&rdquo;</li>")
        penalty = record.late_submission_penalty or 0
        final = record.score - penalty
        late = (f" A late-submission penalty of {penalty:g} points applies." if penalty else "")
        return ("<section id='instructor-review'><h2>Your instructor's review</h2>"
                + (f"<ul>{''.join(lines)}</ul>" if lines else "<p>No manual grades or comments.</p>")
                + f"<p>Final score of this notebook: <b class='final-score'>{final:g} / {record.max_score:g}</b>"
                  f" points.{late}</p></section>")


def release_feedback(assignment: str, exchange: Path) -> list[tuple[str, Path]]:
    """Write the feedback pages, add the gradebook's manual grades and comments, release them to the exchange;
    return (student, released file) pairs."""
    from nbgrader.utils import notebook_hash

    result = subprocess.run([sys.executable, "-m", "autograder", "feedback", assignment], cwd=ROOT, text=True,
                            capture_output=True)
    if result.returncode != 0:
        raise AutograderError(f"`python -m autograder feedback` failed:\n{result.stdout}{result.stderr}")
    config = load_config()
    feedback = current().feedback
    outbound = exchange / config.CourseDirectory.course_id / "feedback"
    if not (exchange / config.CourseDirectory.course_id).is_dir():
        raise AutograderError(f"{exchange / config.CourseDirectory.course_id} does not exist: "
                            f"release an assignment to this exchange first")
    outbound.mkdir(exist_ok=True)
    outbound.chmod(0o755)
    released = []
    for page in sorted(feedback.glob(f"*/{assignment}/*.html")):
        student_id, notebook = page.parent.parent.name, page.stem
        entry = _graded_submission(assignment, student_id)
        if entry is None or not entry["secret"]:
            continue                                      # not submitted through the exchange (an LMS download)
        text = page.read_text(encoding="utf-8")
        text = text.replace("</body>", review_section(assignment, student_id, notebook) + "</body>", 1)
        target = outbound / f"{notebook_hash(secret=entry['secret'], notebook_id=notebook)}.html"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)
        os.replace(temporary, target)
        released.append((student_id, target))
    return released
