"""Export: the grades of one assignment as files an instructor uploads.

- ``exports/<assignment>/grades.csv``: nbgrader's CSV columns (``nbgrader export``) plus one column of points per
  graded cell (test cells, and answers graded by hand in formgrader), quoted by Python's csv module (a name with a
  comma or a quote stays one field);
- ``canvas.csv``: Canvas' gradebook import (Student, ID, SIS User ID, SIS Login ID, Section, the assignment's
  column; a "Points Possible" row). Canvas matches rows by ``ID``, the Canvas user id that ``collect`` read from
  Canvas' download names; the column should be the one Canvas shows, e.g. ``Losses (12345)``;
- ``moodle.csv``: Moodle's offline grading worksheet (Identifier ``Participant <id>``, Full name, Email
  address, Grade, Maximum Grade, Feedback comments), uploaded with *Upload grading worksheet*.

Scores are read from the gradebook, so manual grades entered in formgrader are exported too. Names, ids and
comments come from students (LMS names, folder names): every cell that a spreadsheet would run as a formula
(``=``, ``+``, ``-``, ``@``, a leading tab or line break) is written with a leading ``'``; numbers stay numbers
(:func:`autograder.store.spreadsheet_safe`).
"""

from __future__ import annotations

from pathlib import Path

from autograder.layout import Layout, current
from autograder.nbgrader_api import AutograderError, source_notebooks
from autograder.notebooks import ReleasedNotebook
from autograder.store import SafeCsvDictWriter, SafeCsvWriter, load_results, load_roster

NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]


def _number(value) -> str:
    return "" if value is None else f"{float(value):g}"


def gradebook_rows(assignment: str, layout: Layout | None = None) -> tuple[list[str], list[dict]]:
    """The test columns and one row per submission (nbgrader's columns and the points of each test cell).

    The gradebook is the source of truth of every grades table (this export, and ``grades/<assignment>.csv`` that
    ``grade`` writes): it holds the manual grades entered in formgrader, which the result records do not.
    """
    from nbgrader.api import Gradebook

    from nbgrader.api import MissingEntry

    layout = layout or current()
    source_notebooks(assignment, layout.root)   # an unknown assignment: a clear error
    if layout.gradebook is not None and not layout.gradebook.is_file():
        raise AutograderError(f"no gradebook in {layout.grading}: grade {assignment} first "
                              f"(`python -m autograder grade {assignment}`)")
    release = layout.release(assignment)
    tests = []
    notebooks = sorted(release.glob("*.ipynb"))
    for path in notebooks:
        prefix = f"{path.stem}:" if len(notebooks) > 1 else ""
        # Every graded cell, in notebook order: test cells and answers graded by hand (nbgrader "manual" cells).
        tests += [prefix + grade_id for grade_id in ReleasedNotebook.from_notebook(path).graded]
    rows = []
    with Gradebook(layout.db_url) as gradebook:
        try:
            record = gradebook.find_assignment(assignment)
        except MissingEntry:
            raise AutograderError(f"{assignment} is not in the gradebook: grade it first "
                                  f"(`python -m autograder grade {assignment}`)") from None
        for submission in sorted(record.submissions, key=lambda s: s.student.id):
            student = submission.student
            # The total is the sum of the grades read here, not nbgrader's submission.score: that one is read by
            # an earlier query, and a grade committed in between (formgrader, while `grade` runs) would make the
            # row's total disagree with its cells.
            grades = [(f"{notebook.name}:" if len(notebooks) > 1 else "", grade)
                      for notebook in submission.notebooks for grade in notebook.grades]
            raw = sum(float(grade.score or 0) for _, grade in grades)
            penalty = float(submission.late_submission_penalty or 0)
            row = {"assignment": assignment, "duedate": record.duedate or "",
                   "timestamp": submission.timestamp or "", "student_id": student.id,
                   "last_name": student.last_name or "", "first_name": student.first_name or "",
                   "email": student.email or "", "raw_score": _number(raw),
                   "late_submission_penalty": _number(submission.late_submission_penalty),
                   "score": _number(raw - penalty),
                   "max_score": _number(submission.max_score)}
            for prefix, grade in grades:
                if prefix + grade.name in tests:
                    row[prefix + grade.name] = _number(grade.score)
            rows.append(row)
    return tests, rows


def gradebook_scores(assignment: str, layout: Layout | None = None) -> dict[str, tuple[float, float, dict]]:
    """``{student_id: (score before late penalty, max score, {test column: points})}`` from the gradebook (empty
    when it has no such assignment)."""
    try:
        _, rows = gradebook_rows(assignment, layout)
    except AutograderError:   # not graded yet
        return {}
    return {row["student_id"]: (float(row["raw_score"] or 0), float(row["max_score"] or 0),
                                {k: float(v) for k, v in row.items() if k not in NBGRADER_COLUMNS and v != ""})
            for row in rows}


def export(assignment: str, canvas_column: str | None = None, layout: Layout | None = None) -> list[Path]:
    """Write the three grade files; return their paths."""
    layout = layout or current()
    tests, rows = gradebook_rows(assignment, layout)
    roster = load_roster(layout)
    comments = {r.student_id: "; ".join(f"{t.grade_id}: {t.outcome}" for n in r.notebooks for t in n.tests
                                        if t.outcome != "passed") for r in load_results(assignment, layout)}
    folder = layout.exports(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    path = folder / "grades.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvDictWriter(handle, NBGRADER_COLUMNS + tests, restval="")
        writer.writeheader()
        writer.writerows(rows)
    written.append(path)

    path = folder / "canvas.csv"
    column = canvas_column or assignment
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        max_score = rows[0]["max_score"] if rows else ""
        writer.writerow(["    Points Possible", "", "", "", "", max_score])
        for row in rows:
            person = roster.get(row["student_id"], {})
            canvas_id = person.get("lms_user_id", "") if person.get("lms") == "canvas" else ""
            name = ", ".join(filter(None, [row["last_name"], row["first_name"]])) or row["student_id"]
            writer.writerow([name, canvas_id, "", row["student_id"] if not canvas_id else "", "", row["score"]])
    written.append(path)

    path = folder / "moodle.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(["Identifier", "Full name", "Email address", "Grade", "Maximum Grade", "Feedback comments"])
        for row in rows:
            person = roster.get(row["student_id"], {})
            identifier = (f"Participant {person['lms_user_id']}" if person.get("lms") == "moodle"
                          else row["student_id"])
            name = " ".join(filter(None, [row["first_name"], row["last_name"]])) or row["student_id"]
            writer.writerow([identifier, name, row["email"], row["score"], row["max_score"],
                             comments.get(row["student_id"], "")])
    written.append(path)
    return written
