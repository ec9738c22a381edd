"""The per-submission result records, the roster, and CSV writing safe for spreadsheets.

Everything lives in the instructor's grading folder, laid out as :mod:`autograder.layout` describes; the records
are ``results/<assignment>/<student>.json``.

A result record is written last, atomically, after the gradebook commit: a record on disk means the
submission is completely graded, and its ``key`` (a hash of the submitted files, the assignment's source and
the grading settings) tells a later run whether it may be skipped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.layout import Layout, current

PIPELINE_VERSION = "3"   # bump when a change to the pipeline can change scores: every submission is regraded


@dataclass
class TestResult:
    """One test cell of one graded notebook."""

    grade_id: str
    points: float
    score: float
    outcome: str               # passed, failed, timeout, kernel died, not run, skipped (grade --skip-training)
    message: str = ""          # first line of the error, "" when passed
    hidden: bool = False       # the failing line is inside the hidden tests
    hint: str = ""             # the test cell's first comment line (what it checks)
    explanation: str = ""      # what a course assertion helper said, in the trusted runner (safe to show)


@dataclass
class NotebookResult:
    name: str
    tests: list[TestResult] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    tampering: list[str] = field(default_factory=list)
    tampering_neutralised: bool = True   # False: only flagged (the trusted runner made the statements harmless)
    stderr_set_aside: list[str] = field(default_factory=list)   # test cells whose stderr output was set aside
    problem: str = ""          # the kernel died or stopped responding; the notebook could not be read...
    seconds: float = 0.0


@dataclass
class Result:
    """The outcome of grading one student's submission of one assignment."""

    student_id: str
    assignment: str
    key: str = ""
    status: str = "graded"     # graded | rejected (the file is not a notebook) | failed (the pipeline failed)
    score: float = 0.0
    max_score: float = 0.0
    reason: str = ""           # why rejected or failed
    notebooks: list[NotebookResult] = field(default_factory=list)
    seconds: float = 0.0
    timestamp: str = ""

    @property
    def tests(self) -> dict[str, float]:
        """Points scored per test cell (``notebook:grade_id`` when the assignment has several notebooks)."""
        several = len(self.notebooks) > 1
        return {(f"{n.name}:{t.grade_id}" if several else t.grade_id): t.score
                for n in self.notebooks for t in n.tests}

    @property
    def flags(self) -> list[str]:
        """What an instructor should look at: repairs, tampering, kernel problems, timeouts (a rejected
        submission's reason is in ``reason``)."""
        found = []
        for n in self.notebooks:
            found += [f"repaired: {r}" for r in n.repairs]
            found += [f"tampering {'neutralised' if n.tampering_neutralised else 'flagged'}: {t}"
                      for t in n.tampering]
            found += [f"problem: {n.problem}"] if n.problem and self.status == "graded" else []
            found += [f"timed out: {t.grade_id}" for t in n.tests if t.outcome == "timeout"]
        return found

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        notebooks = [NotebookResult(**{**n, "tests": [TestResult(**t) for t in n["tests"]]})
                     for n in data.pop("notebooks", [])]
        return cls(**data, notebooks=notebooks)


def results_dir(assignment: str, layout: Layout | None = None) -> Path:
    return (layout or current()).results(assignment)


def reports_dir(assignment: str, layout: Layout | None = None) -> Path:
    return (layout or current()).reports(assignment)


def save_result(result: Result, layout: Layout | None = None) -> Path:
    """Write the record atomically (a crash leaves the old record or the new one, never half of one)."""
    folder = results_dir(result.assignment, layout)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result.student_id}.json"
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(asdict(result), out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return path


def load_result(assignment: str, student_id: str, layout: Layout | None = None) -> Result | None:
    path = results_dir(assignment, layout) / f"{student_id}.json"
    if not path.is_file():
        return None
    return Result.from_dict(json.loads(path.read_text(encoding="utf-8")))


def load_results(assignment: str, layout: Layout | None = None) -> list[Result]:
    """Every graded submission of an assignment, by student id."""
    folder = results_dir(assignment, layout)
    return [Result.from_dict(json.loads(p.read_text(encoding="utf-8")))
            for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def file_digest(*paths: Path, extra: str = "") -> str:
    """SHA-256 over the files' bytes (in order) and ``extra``."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    digest.update(extra.encode())
    return digest.hexdigest()


# -- text from students, safe for spreadsheets and terminals ---------------------------------------------------
# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets (CSV injection):
# ``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``; a leading tab or line break hides one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _formula_like(text: str) -> bool:
    """Text that a spreadsheet would run, once the quotes :func:`spreadsheet_safe` adds are taken off."""
    text = text.lstrip("'")
    return text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text)


def spreadsheet_safe(value):
    r"""A CSV cell that no spreadsheet runs as a formula: text starting with ``=``, ``+``, ``-``, ``@``, a tab or
    a line break gets a leading ``'`` (the OWASP rule; so does text made of quotes and then one of those, so that
    :func:`spreadsheet_value` gives back exactly what was written); numbers, and text that is a plain number
    (``-1.5``), stay as they are.

    Example:
        >>> spreadsheet_safe("=1+1"), spreadsheet_safe("-2.5"), spreadsheet_safe(3)
        ("'=1+1", '-2.5', 3)
    """
    if value is None or isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if _formula_like(text) else text


def spreadsheet_value(cell: str) -> str:
    """The text :func:`spreadsheet_safe` was given (reading back a CSV the pipeline wrote)."""
    return cell[1:] if cell.startswith("'") and _formula_like(cell) else cell


class SafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`spreadsheet_safe`: every CSV the pipeline writes from
    student-controlled text (names, file names, messages) uses it."""

    def __init__(self, handle, **options):
        self._writer = csv.writer(handle, **options)

    def writerow(self, row) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)


class SafeCsvDictWriter(csv.DictWriter):
    """``csv.DictWriter`` with :func:`spreadsheet_safe` cells (the header included)."""

    def __init__(self, handle, fieldnames, **options):
        super().__init__(handle, fieldnames, **options)
        self.writer = SafeCsvWriter(handle)

    def writerow(self, rowdict):
        return self.writer.writerow(self._dict_to_list(rowdict))

    def writerows(self, rowdicts):
        for row in rowdicts:
            self.writerow(row)


def printable(text: str) -> str:
    r"""``text`` with every character that is not printable (control characters and so terminal escape
    sequences, bidirectional overrides, line separators, undecodable bytes) written as a Python escape, so that a
    file name can be printed to a terminal or written to a report as it is.

    Example:
        >>> print(printable("ok\x1b[2Jname\u202e"))
        ok\x1b[2Jname\u202e
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# -- the roster collected from LMS file names ------------------------------------------------------------------
ROSTER_FIELDS = ["student_id", "first_name", "last_name", "email", "lms", "lms_user_id"]


def load_roster(layout: Layout | None = None) -> dict[str, dict[str, str]]:
    path = (layout or current()).students
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [{k: spreadsheet_value(v or "") for k, v in row.items() if k} for row in csv.DictReader(handle)]
    return {row["student_id"]: row for row in rows if row.get("student_id")}


def update_roster(entries: dict[str, dict[str, str]], layout: Layout | None = None) -> None:
    """Add or complete students (known fields are kept unless the new value is non-empty). Names and e-mails come
    from LMS file names and Gradescope's metadata: they are written escaped and spreadsheet-safe."""
    roster = load_roster(layout)
    for student_id, info in entries.items():
        row = roster.setdefault(student_id, {"student_id": student_id})
        for key in ROSTER_FIELDS[1:]:
            if info.get(key):
                row[key] = printable(str(info[key]))
    path = (layout or current()).students
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvDictWriter(handle, ROSTER_FIELDS)
        writer.writeheader()
        for student_id in sorted(roster):
            writer.writerow({k: roster[student_id].get(k, "") for k in ROSTER_FIELDS})
