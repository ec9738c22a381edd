"""Collect: gather submissions from LMS downloads, folders and single files into nbgrader's ``submitted/`` folder.

Input is any mix of folders, ``.ipynb`` files and zip archives (nested zips too), as an instructor downloads
them: Canvas (``doejane_LATE_12345_67890_losses.ipynb``), Moodle (``Jane Doe_12345_assignsubmission_file_/``),
Gradescope (``submission_123/`` with ``submission_metadata.yml``), a folder per student, or
``<student>.ipynb``. Steps, in order:

1. ``list``: every file of every input, zip members included; system files are listed too, as rejected.
2. ``identify``: the student (the first of :data:`PATTERNS` that matches the file's path, or the instructor's
   ``--pattern``) and the notebook (its name without Colab's ``Copy of``, a browser's `` (1)`` or Canvas'
   ``-1``); anything else is rejected with the reason.
3. ``choose``: per student and notebook the newest file wins (LMS time, else the archive's or the file's time;
   then the higher copy number); the others are superseded.
4. ``stage``: the winner goes to ``submitted/<student>/<assignment>/<notebook>`` with ``timestamp.txt``; a file
   staged by an earlier collect that is newer wins over it. Nothing is deleted: superseded and rejected files
   are copied to ``collected/<assignment>/``, and the report lists every input file and what became of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from autograder.nbgrader_api import NbgraderError, assignments, grading_dir, load_config, source_notebooks
from autograder.store import reports_dir, update_roster

# Tried in order on the file's path inside its input (posix, zip members included). Named groups: ``student``
# (an id as is), or ``name`` and ``lms_user_id`` (the id becomes a slug of both), ``submission`` (Gradescope:
# looked up in submission_metadata.yml).
PATTERNS: list[tuple[str, str]] = [
    ("gradescope", r"(?:^|/)submission_(?P<submission>\d+)/"),
    ("canvas", r"(?:^|/)(?P<name>[a-z][a-z-]*?)(?P<late>_late)?_(?P<lms_user_id>\d+)_(?P<submission>\d+)_[^/]+"),
    ("moodle", r"(?:^|/)(?P<name>[^/]+?)_(?P<lms_user_id>\d+)_assignsubmission_(?:file|onlinetext)_"),
    ("folder", r"(?:^|/)(?P<student>[^/]+)/(?:{assignment}/)?[^/]+$"),
    ("file", r"^(?P<student>[^/]+)\.ipynb$"),
]
SYSTEM_FILES = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.git)/|(^|/)(\.DS_Store|Thumbs\.db|desktop\.ini)$")
COPY_PREFIX = re.compile(r"^(copy[ _]of[ _])+", re.IGNORECASE)
COPY_SUFFIX = re.compile(r"(\s*\((?P<paren>\d+)\)|-(?P<dash>\d+))$")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


@dataclass
class InputFile:
    """One file found in the inputs and what became of it."""

    source: str                       # where the instructor finds it: a path, or archive.zip!member
    relative: str                     # its path inside its input, for the patterns
    read: Callable[[], bytes] = field(repr=False)
    modified: dt.datetime | None = None
    outcome: str = ""                 # accepted, superseded, rejected
    reason: str = ""
    student_id: str = ""
    notebook: str = ""
    person: dict = field(default_factory=dict)
    copy_number: int = 0
    kept_as: str = ""                 # where a copy of it is kept (accepted: submitted/...)


@dataclass
class CollectionReport:
    assignment: str
    files: list[InputFile]
    path: Path | None = None

    def by_outcome(self, outcome: str) -> list[InputFile]:
        return [f for f in self.files if f.outcome == outcome]

    @property
    def accepted(self) -> list[InputFile]:
        return self.by_outcome("accepted")


# -- step 1: list ----------------------------------------------------------------------------------------------
def _zip_members(archive: zipfile.ZipFile, label: str, prefix: str) -> list[InputFile]:
    found = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        relative = prefix + info.filename
        modified = dt.datetime(*info.date_time).astimezone(dt.timezone.utc)
        source = f"{label}!{info.filename}"
        if info.filename.lower().endswith(".zip") and not SYSTEM_FILES.search(relative):
            try:
                inner = zipfile.ZipFile(io.BytesIO(archive.read(info)))
            except zipfile.BadZipFile:
                pass
            else:
                found += _zip_members(inner, source, relative[:-4] + "/")
                continue
        found.append(InputFile(source, relative, (lambda a=archive, i=info: a.read(i)), modified))
    return found


def list_inputs(inputs: list[Path]) -> list[InputFile]:
    """Every file of the inputs, zip members (and zips inside zips) included."""
    found = []
    for path in inputs:
        path = Path(path)
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                found += _one_file(file, file.relative_to(path).as_posix(), inside_folder=True)
        elif path.is_file():
            found += _one_file(path, path.name, inside_folder=False)
        else:
            raise NbgraderError(f"{path} does not exist")
    return found


def _one_file(path: Path, relative: str, inside_folder: bool) -> list[InputFile]:
    """A file, or the members of a zip archive. A zip found inside a folder (a student's upload) keeps its name
    in the members' paths (``doejane_1_2_work/losses.ipynb``); an archive given as input (the LMS download)
    does not."""
    if path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            pass
        else:
            return _zip_members(archive, str(path), relative[:-4] + "/" if inside_folder else "")
    modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return [InputFile(str(path), relative, path.read_bytes, modified)]


# -- step 2: identify ------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def gradescope_metadata(files: list[InputFile]) -> dict[str, dict]:
    """``submission_<n>`` -> {name, sid, email, created_at} from Gradescope's submission_metadata.yml."""
    import yaml

    found = {}
    for file in files:
        if PurePosixPath(file.relative).name == "submission_metadata.yml":
            file.outcome, file.reason = "rejected", "Gradescope's metadata (read for names and times)"
            try:
                data = yaml.safe_load(file.read()) or {}
            except yaml.YAMLError:
                continue
            for key, entry in data.items():
                submitters = (entry or {}).get(":submitters") or [{}]
                person = submitters[0]
                found[str(key)] = {"name": person.get(":name", ""), "sid": str(person.get(":sid") or ""),
                                   "email": person.get(":email", ""), "created_at": entry.get(":created_at")}
    return found


def identify_student(file: InputFile, patterns: list[tuple[str, str]], assignment: str,
                     gradescope: dict[str, dict]) -> bool:
    """Set the file's student id and what the LMS says about the student; False if no pattern matches."""
    for lms, pattern in patterns:
        match = re.search(pattern.replace("{assignment}", re.escape(assignment)), file.relative, re.IGNORECASE)
        if not match:
            continue
        groups = {k: v for k, v in match.groupdict().items() if v}
        if lms == "gradescope":
            entry = gradescope.get(f"submission_{groups['submission']}", {})
            file.student_id = _slug(entry.get("sid") or entry.get("email", "").split("@")[0]
                                    or f"gradescope-{groups['submission']}")
            file.person = _person(entry.get("name", ""), entry.get("email", ""), "gradescope", "")
            created = entry.get("created_at")
            if isinstance(created, dt.datetime):
                file.modified = created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)
            elif isinstance(created, str):
                try:
                    file.modified = dt.datetime.strptime(created[:26].strip(), "%Y-%m-%d %H:%M:%S.%f").replace(
                        tzinfo=dt.timezone.utc)
                except ValueError:
                    pass
        elif "student" in groups:
            student = groups["student"]
            if lms == "file":   # "Copy of alice (1).ipynb" is alice's; "losses.ipynb" alone names no student
                student = _normalise(student + ".ipynb")[0].removesuffix(".ipynb")
                if student + ".ipynb" in _all_notebook_names():
                    continue
            file.student_id = student
            file.person = _person("", "", lms if lms not in ("folder", "file") else "", "")
        else:
            name = groups.get("name", "")
            file.student_id = _slug(f"{name}-{groups['lms_user_id']}")
            file.person = _person(name, "", lms, groups["lms_user_id"])
        if file.student_id:
            return True
    return False


def _person(name: str, email: str, lms: str, lms_user_id: str) -> dict:
    first, _, last = name.strip().rpartition(" ")
    return {"first_name": first, "last_name": last, "email": email, "lms": lms, "lms_user_id": lms_user_id}


def _normalise(file_name: str) -> tuple[str, int]:
    """The notebook name a downloaded file stands for, and its copy number: ``Copy of losses (2).ipynb`` ->
    (``losses.ipynb``, 2)."""
    stem = PurePosixPath(file_name).stem
    stem = COPY_PREFIX.sub("", stem.strip())
    number = 0
    match = COPY_SUFFIX.search(stem)
    if match:
        number = int(match.group("paren") or match.group("dash"))
        stem = stem[:match.start()]
    return stem.strip().lower() + ".ipynb", number


def _all_notebook_names() -> dict[str, str]:
    """notebook file name (lower case) -> assignment, over every assignment."""
    return {p.name.lower(): a for a in assignments() for p in source_notebooks(a)}


def identify_notebook(file: InputFile, expected: list[str]) -> None:
    """Set the notebook the file is, or reject it."""
    name = PurePosixPath(file.relative).name
    name = re.sub(r"^[a-z][a-z-]*?(?:_late)?_\d+_\d+_", "", name, flags=re.IGNORECASE)   # Canvas' prefix
    name = re.sub(r"^.*_assignsubmission_file_", "", name)                                 # Moodle's
    normalised, file.copy_number = _normalise(name)
    lower = {n.lower(): n for n in expected}
    if normalised in lower:
        file.notebook = lower[normalised]
        return
    other = _all_notebook_names().get(normalised)
    if other:
        file.outcome, file.reason = "rejected", f"the notebook of another assignment ({other})"
    elif len(expected) == 1:
        file.notebook = expected[0]
        file.reason = f"renamed: {name!r} taken as {expected[0]}"
    else:
        file.outcome, file.reason = "rejected", f"not a notebook of this assignment ({', '.join(expected)})"


# -- step 3 and 4: choose and stage ----------------------------------------------------------------------------
def _staged_time(folder: Path) -> dt.datetime | None:
    stamp = folder / "timestamp.txt"
    if not stamp.is_file():
        return None
    try:
        return dt.datetime.strptime(stamp.read_text().strip(), TIMESTAMP_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _keep_copy(file: InputFile, folder: Path, data: bytes) -> str:
    """Copy a superseded or rejected file to ``folder`` (nothing is ever lost); return where."""
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.() -]+", "_", file.relative.replace("/", "__"))[-150:]
    target = folder / f"{hashlib.sha256(data).hexdigest()[:8]}-{safe}"
    target.write_bytes(data)
    return str(target)


def collect(assignment: str, inputs: list[Path], patterns: list[tuple[str, str]] | None = None) -> CollectionReport:
    """Collect submissions of ``assignment`` from ``inputs`` into ``submitted/``; write and return the report.

    Args:
        patterns: ``(label, regex)`` pairs replacing :data:`PATTERNS` (``--pattern``): the regex is searched in
            each file's path and must name a ``student`` group.
    """
    expected = [p.name for p in source_notebooks(assignment)]
    config = load_config()
    submitted = Path(config.CourseDirectory.submitted_directory)
    kept = grading_dir(config) / "collected" / assignment
    files = list_inputs(inputs)                                                         # step 1
    gradescope = gradescope_metadata(files)
    for file in files:                                                                  # step 2
        if file.outcome:
            continue
        if SYSTEM_FILES.search(file.relative):
            file.outcome, file.reason = "rejected", "a system file, not a submission"
        elif not file.relative.lower().endswith(".ipynb"):
            suffix = PurePosixPath(file.relative).suffix or "no extension"
            file.outcome, file.reason = "rejected", f"not a notebook ({suffix})"
        elif not identify_student(file, patterns or PATTERNS, assignment, gradescope):
            file.outcome, file.reason = "rejected", "no student id in its path (see --pattern)"
        else:
            identify_notebook(file, expected)
    candidates: dict[tuple[str, str], list[InputFile]] = {}
    for file in files:                                                                  # step 3
        if not file.outcome:
            candidates.setdefault((file.student_id, file.notebook), []).append(file)
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    roster = {}
    for (student_id, notebook), group in sorted(candidates.items()):
        group.sort(key=lambda f: (f.modified or epoch, f.copy_number, f.relative), reverse=True)
        winner = group[0]
        for loser in group[1:]:
            loser.outcome = "superseded"
            loser.reason = f"an older file of the same student and notebook ({winner.source} is newer)"
            loser.kept_as = _keep_copy(loser, kept / "superseded" / student_id, loser.read())
        folder = submitted / student_id / assignment                                  # step 4
        target = folder / notebook
        data = winner.read()
        staged_at = _staged_time(folder)
        if target.is_file() and target.read_bytes() == data:
            winner.outcome, winner.kept_as = "accepted", str(target)
            winner.reason = "; ".join(filter(None, [winner.reason, "already collected"]))
        elif target.is_file() and staged_at and winner.modified and staged_at > winner.modified:
            winner.outcome = "superseded"
            winner.reason = f"an earlier collect staged a newer file ({staged_at:%Y-%m-%d %H:%M})"
            winner.kept_as = _keep_copy(winner, kept / "superseded" / student_id, data)
        else:
            if target.is_file():
                old = InputFile(str(target), f"previously-collected-{notebook}", target.read_bytes)
                _keep_copy(old, kept / "superseded" / student_id, target.read_bytes())
            folder.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            stamp = winner.modified or dt.datetime.now(dt.timezone.utc)
            (folder / "timestamp.txt").write_text(stamp.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT))
            winner.outcome, winner.kept_as = "accepted", str(target)
        roster[student_id] = winner.person
    for file in files:
        if file.outcome == "rejected" and not file.kept_as:
            try:
                file.kept_as = _keep_copy(file, kept / "rejected", file.read())
            except (OSError, zipfile.BadZipFile) as error:
                file.reason += f" (could not be copied: {error})"
    update_roster(roster)
    report = CollectionReport(assignment, files)
    report.path = write_report(report)
    return report


def write_report(report: CollectionReport) -> Path:
    """``reports/<assignment>/collection.csv`` (this run); earlier runs' reports stay, with their date."""
    folder = reports_dir(report.assignment)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    path = folder / f"collection-{stamp}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "outcome", "reason", "student_id", "notebook", "time", "kept_as"])
        for f in report.files:
            writer.writerow([f.source, f.outcome, f.reason, f.student_id, f.notebook,
                             f.modified.isoformat() if f.modified else "", f.kept_as])
    shutil.copyfile(path, folder / "collection.csv")
    return folder / "collection.csv"
