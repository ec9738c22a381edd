"""Grade: autograde a folder of submitted notebooks with nbgrader and write a grades CSV.

Steps, in order:
1. find the submissions: ``DIR/<student>/<notebook>.ipynb``, ``DIR/<student>/<assignment>/<notebook>.ipynb``
   or ``DIR/<student>.ipynb`` (single-notebook assignments);
2. register the assignment in the gradebook by generating it from ``solutions/`` with a database (autograde
   restores locked cells and hidden tests from the gradebook, so this must come before step 4);
3. stage each submission where nbgrader expects it (``submitted/<student>/<assignment>/``);
4. autograde each student; one failing submission is recorded and the others are still graded;
5. read the scores back from the gradebook and write the CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autograder.nbgrader_api import NbgraderError, check, grading_dir, load_config, make_api, source_notebooks

# nbgrader 0.9's gradebook triggers SQLAlchemy autoflush warnings on every autograde; they are not ours to fix.
warnings.filterwarnings("ignore", message=".*not in session.*")


@dataclass
class StudentResult:
    """The outcome of grading one student's submission."""

    student_id: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"
    tests: dict[str, float] = field(default_factory=dict)   # grade_id of each test cell -> points scored


def find_submissions(assignment: str, folder: Path, notebook_names: list[str]) -> dict[str, dict[str, Path]]:
    """Map student id -> {expected notebook name -> submitted file}."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NbgraderError(f"submissions folder {folder} does not exist")
    found: dict[str, dict[str, Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb" and len(notebook_names) == 1:
            found[entry.stem] = {notebook_names[0]: entry}
        elif entry.is_dir():
            inner = entry / assignment if (entry / assignment).is_dir() else entry
            files = sorted(inner.glob("*.ipynb"))
            by_name = {f.name: f for f in files if f.name in notebook_names}
            if not by_name and len(files) == 1 and len(notebook_names) == 1:
                by_name = {notebook_names[0]: files[0]}   # one notebook under another name: take it
            if by_name:
                found[entry.name] = by_name
    return found


def register_assignment(assignment: str) -> None:
    """Create the assignment, its notebooks and their checksums in the gradebook from ``solutions/``."""
    config = load_config()
    release_dir = grading_dir(config) / "release"
    config.CourseDirectory.release_directory = str(release_dir)
    check(make_api(config).generate_assignment(assignment, force=True, create=True),
          f"registering {assignment} in the gradebook")


def stage(assignment: str, student_id: str, files: dict[str, Path]) -> Path:
    """Copy one student's notebooks to ``submitted/<student>/<assignment>/`` (replacing an earlier copy)."""
    config = load_config()
    target = Path(config.CourseDirectory.submitted_directory) / student_id / assignment
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, source in files.items():
        shutil.copyfile(source, target / name)
    stamp = dt.datetime.fromtimestamp(max(p.stat().st_mtime for p in files.values()), dt.timezone.utc)
    (target / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    return target


def read_scores(assignment: str, student_id: str) -> StudentResult:
    """Total and per-test scores of one graded submission, from the gradebook."""
    from nbgrader.api import Gradebook

    config = load_config()
    with Gradebook(config.CourseDirectory.db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student_id)
        result = StudentResult(student_id, float(submission.score), float(submission.max_score))
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.max_score:
                    result.tests[grade.name] = float(grade.score)
    return result


def autograde_one(assignment: str, student_id: str) -> StudentResult:
    """Autograde one staged submission and return its scores."""
    api = make_api(load_config())
    result = api.autograde(assignment, student_id, force=True, create=True)
    if not result.get("success"):
        return StudentResult(student_id, status="failed: " + _last_error_line(result))
    return read_scores(assignment, student_id)


def _last_error_line(result: dict) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    lines = [line.strip() for line in text.splitlines() if "error" in line.lower()]
    return (lines[-1] if lines else "nbgrader reported a failure")[:300]


def write_csv(assignment: str, results: list[StudentResult], path: Path) -> Path:
    """One row per student: totals, status and one column per test cell."""
    tests = sorted({name for r in results for name in r.tests})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["assignment", "student_id", "score", "max_score", "status", *tests])
        for r in results:
            writer.writerow([assignment, r.student_id, f"{r.score:g}", f"{r.max_score:g}", r.status,
                             *(f"{r.tests[t]:g}" if t in r.tests else "" for t in tests)])
    return path


def grade(assignment: str, submissions: Path, output: Path | None = None) -> tuple[list[StudentResult], Path]:
    """Autograde every submission in a folder; return the results and the path of the grades CSV."""
    names = [p.name for p in source_notebooks(assignment)]
    found = find_submissions(assignment, submissions, names)
    if not found:
        raise NbgraderError(f"no submission of {assignment} ({', '.join(names)}) found in {submissions}")
    register_assignment(assignment)
    results = []
    for student_id, files in found.items():
        stage(assignment, student_id, files)
        results.append(autograde_one(assignment, student_id))
    output = output or grading_dir() / "grades" / f"{assignment}.csv"
    return results, write_csv(assignment, results, output)
