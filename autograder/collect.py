"""Collect: gather submissions from LMS downloads, folders and single files into nbgrader's ``submitted/`` folder.

Input is any mix of folders, ``.ipynb`` files and zip archives (nested zips too), as an instructor downloads
them: Canvas (``doejane_LATE_12345_67890_losses.ipynb``), Moodle (``Jane Doe_12345_assignsubmission_file_/``),
Gradescope (``submission_123/`` with ``submission_metadata.yml``), a folder per student, or
``<student>.ipynb``. Every file is hostile input. Steps, in order:

1. ``list``: every file of every input, zip members included, without reading any content. Sizes and counts are
   capped before anything is read (:class:`Limits`: per file from its declared size, per archive, per collect;
   archives nested at most ``depth`` deep); a name with a control character, a ``..`` or an absolute path, or a
   component over 255 bytes, a symbolic link (in a folder or a zip: never followed), a hard link, a device or an
   encrypted member is rejected on its own, with the reason, and never read.
2. ``identify``: the student is decided by the OUTERMOST identifier only: the LMS entry (the Canvas or Moodle name
   of a member of the downloaded zip, Gradescope's ``submission_<n>`` where its metadata sits at the top of a zip
   download or of an ``assignment_<n>_export`` folder), the top-level folder or file name of a folder given on the
   command line, or the leftmost match of the instructor's ``--pattern``. Everything inside a student's upload is
   that student's: a folder, zip or Gradescope metadata inside it that names another student is flagged and stays
   the uploader's. The notebook is the file's name without Colab's ``Copy of``, a browser's `` (1)`` or Canvas'
   ``-1``; anything else is rejected.
3. ``choose``: per student and notebook, unflagged files first, then the newest wins, then the higher copy number.
   Times come from the LMS layer only: the date of the downloaded zip's member (of the outer member for a zip a
   student uploaded), Gradescope's ``created_at``, or the file's own time for a folder's files (the zip's own time
   for the members of a zip found in a folder), never from inside a student's archive; a time in the future is
   flagged and ignored.
4. ``stage``: the winner goes to ``submitted/<student>/<assignment>/<notebook>`` with ``timestamp.txt``, read with
   its size counted while it is decompressed (a member that expands beyond what it declares is rejected); a file
   staged by an earlier collect that is newer wins over it. Nothing is deleted: superseded files, and rejected
   files that were safe to read, are copied to ``collected/<assignment>/``, and the report lists every input file,
   what became of it and why, every name escaped (no control character reaches a terminal) and every cell safe
   for spreadsheets.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import os
import re
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable

from autograder.layout import current
from autograder.nbgrader_api import AutograderError, assignments, source_notebooks
from autograder.store import SafeCsvWriter, load_roster, printable, reports_dir, update_roster

MiB = 2**20

# Tried in order on the file's path inside its input (posix, zip members included), anchored at its start: the
# outermost identifier decides. Named groups: ``student`` (an id as is), or ``name`` and ``lms_user_id`` (the id
# becomes a slug of both). Gradescope's layout is recognised separately (see :func:`gradescope_roots`).
PATTERNS: list[tuple[str, str]] = [
    ("canvas", r"^(?P<name>[a-z][a-z-]*?)(?P<late>_late)?_(?P<lms_user_id>\d+)_(?P<submission>\d+)_[^/]+"),
    ("moodle", r"^(?P<name>[^/]+?)_(?P<lms_user_id>\d+)_assignsubmission_(?:file|onlinetext)_[^/]*"),
    ("folder", r"^(?P<student>[^/]+)/"),
    ("file", r"^(?P<student>[^/]+)\.ipynb$"),
]
GRADESCOPE_METADATA = "submission_metadata.yml"
SYSTEM_FILES = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.git)/|(^|/)(\.DS_Store|Thumbs\.db|desktop\.ini)$")
COPY_PREFIX = re.compile(r"^(copy[ _]of[ _])+", re.IGNORECASE)
COPY_SUFFIX = re.compile(r"(\s*\((?P<paren>\d+)\)|-(?P<dash>\d+))$")
# A student id becomes a folder name and a gradebook key: letters (any script), digits, . _ - @ + and inner spaces.
STUDENT_ID = re.compile(r"\w(?:[\w.@+ -]{0,98}[\w.@+-])?")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
FUTURE_TOLERANCE = dt.timedelta(days=1)   # zip dates are local times without a zone


@dataclass
class Limits:
    """What one collect reads at most; everything is checked before the content is read."""

    file_bytes: int = 32 * MiB          # one file (a zip member: its declared and its actual uncompressed size)
    archive_bytes: int = 2048 * MiB     # the uncompressed members of one archive, nested archives included
    total_bytes: int = 4096 * MiB       # everything one collect reads (and so at most writes)
    archive_members: int = 10_000       # entries of one archive
    total_files: int = 100_000          # files of one collect, archive members included
    depth: int = 3                      # archives inside archives: an LMS download, a student's zip, one more
    folder_depth: int = 32              # folders inside a folder given on the command line
    name_bytes: int = 255               # one component of a path (the limit of most file systems)
    path_bytes: int = 1024              # a whole path inside its input
    metadata_bytes: int = 4 * MiB       # Gradescope's submission_metadata.yml
    ratio: int = 100                    # a zip member over 1 MB expanding more than this many times: a zip bomb


class Unreadable(Exception):
    """A file that cannot be read safely; the message is the reason in the report."""


@dataclass
class InputFile:
    """One file found in the inputs and what became of it."""

    source: str                       # where the instructor finds it: a path, or archive.zip!member (escaped)
    relative: str                     # its path inside its input, for the patterns ("" when rejected unread)
    read: Callable[[], bytes] | None = field(default=None, repr=False)   # capped; raises Unreadable
    modified: dt.datetime | None = None   # from the LMS layer or the file itself
    outcome: str = ""                 # accepted, superseded, rejected
    reason: str = ""
    student_id: str = ""
    notebook: str = ""
    person: dict = field(default_factory=dict)
    copy_number: int = 0
    kept_as: str = ""                 # where a copy of it is kept (accepted: submitted/...)
    flag: str = ""                    # for the instructor: another student named inside an upload, a future date
    size: int = 0                     # declared (zip) or listed (folder) size in bytes
    input_index: int = 0              # which input it came from
    inner: tuple[str, ...] = ()       # its path inside the student's upload (below the identifier)
    nested: bool = False              # inside an archive that is itself inside the input (a student's zip)


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

    @property
    def flagged(self) -> list[InputFile]:
        return [f for f in self.files if f.flag]


# -- step 1: list ----------------------------------------------------------------------------------------------
def name_problem(name: str, limits: Limits) -> str:
    """Why a path found in an input (posix separators) cannot be used; "" when it can."""
    for char in name:
        category = unicodedata.category(char)
        if category == "Cs":
            return "its name is not valid text (undecodable bytes)"
        if category in ("Cc", "Cf", "Zl", "Zp"):
            return f"a control character ({printable(char)}) in its name"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in its path (it would land outside its folder)"
    if any(len(part.encode()) > limits.name_bytes for part in parts):
        return f"a name longer than {limits.name_bytes} bytes"
    if len(name.encode()) > limits.path_bytes:
        return f"a path longer than {limits.path_bytes} bytes"
    return ""


def _megabytes(size: int) -> str:
    return f"{size / MiB:.1f} MB" if size >= MiB else f"{size} bytes"


def _open_listed(path: Path, listed: os.stat_result) -> BinaryIO:
    """Open a file found by the listing: never through a symbolic link, and only if it is still that file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise Unreadable(f"cannot be opened without following a link ({error.strerror})") from None
    now = os.fstat(fd)
    if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (listed.st_dev, listed.st_ino):
        os.close(fd)
        raise Unreadable("replaced by another file since it was listed")
    return os.fdopen(fd, "rb")


def _read_capped(stream: BinaryIO, declared: int, cap: int) -> bytes:
    """Read a stream, counting the bytes as they come: never more than min(declared, cap) of them."""
    limit = min(declared, cap)
    data = bytearray()
    while chunk := stream.read(min(MiB, limit + 1 - len(data))):
        data += chunk
        if len(data) > limit:
            if len(data) > declared:
                raise Unreadable(f"expands beyond the {_megabytes(declared)} it declares (a zip bomb?)")
            raise Unreadable(f"over the limit of {_megabytes(cap)} per file")
    return bytes(data)


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
               UnicodeDecodeError, ValueError, OSError)


def _read_file(path: Path, listed: os.stat_result, cap: int) -> bytes:
    try:
        with _open_listed(path, listed) as handle:
            data = _read_capped(handle, listed.st_size, cap)
            if handle.read(1):
                raise Unreadable("grew since it was listed")
            return data
    except OSError as error:
        raise Unreadable(f"unreadable ({printable(error.strerror or str(error))})") from None


class _OpenArchives:
    """The archives of one collect, each parsed once and kept open while its members are read (at most ``size``
    at a time); closed at the end of the collect."""

    def __init__(self, size: int = 8):
        self.size = size
        self.open: dict[Callable[[], BinaryIO], zipfile.ZipFile] = {}

    def get(self, opener: Callable[[], BinaryIO]) -> zipfile.ZipFile:
        if opener not in self.open:
            if len(self.open) >= self.size:
                self.open.pop(next(iter(self.open))).fp.close()
            handle = opener()
            try:
                self.open[opener] = zipfile.ZipFile(handle)
            except BaseException:
                handle.close()
                raise
        return self.open[opener]

    def close(self) -> None:
        for archive in self.open.values():
            archive.fp.close()
        self.open.clear()


def _read_member(archives: _OpenArchives, opener: Callable[[], BinaryIO], position: int, declared: int,
                 cap: int) -> bytes:
    try:
        archive = archives.get(opener)
        # Let zipfile decompress past the declared size (it would stop there and only check the CRC) so that a member
        # whose data goes on is caught by the count in _read_capped; zipfile reads ahead by at most what it is asked
        # for (1 MB), so 2 MB of slack keep its own end-of-member check out of the way.
        info = copy.copy(archive.infolist()[position])
        info.file_size = min(declared, cap) + 2 * MiB
        with archive.open(info) as member:
            return _read_capped(member, declared, cap)
    except _ZIP_ERRORS as error:
        if "CRC" in str(error):
            raise Unreadable("its content does not match its declared size and checksum (a zip bomb or a damaged "
                             "file)") from None
        raise Unreadable(f"a damaged archive member ({printable(str(error))})") from None


class _Lister:
    """Step 1: the files of the inputs, without reading their content; every cap checked on the way."""

    def __init__(self, limits: Limits, scratch: Path, archives: _OpenArchives):
        self.limits = limits
        self.scratch = scratch
        self.archives = archives
        self.files: list[InputFile] = []
        self.count = 0
        self.total = 0
        self.unpacked = 0
        self.now = dt.datetime.now(dt.timezone.utc)
        self.inputs: dict[int, tuple[str, bool]] = {}   # input index -> (its name, whether it is a zip archive)

    def reject(self, index: int, source: str, reason: str) -> None:
        """A hostile or unusable entry: listed with its reason, never read, never copied."""
        self.files.append(InputFile(source, "", None, outcome="rejected", reason=reason, input_index=index))

    def take(self, size: int, archive: dict | None) -> str:
        """Count a file of ``size`` bytes; the reason it is over a limit, or ""."""
        self.count += 1
        if self.count > self.limits.total_files:
            return f"over the limit of {self.limits.total_files} files per collect"
        if size > self.limits.file_bytes:
            return (f"{_megabytes(size)} uncompressed, over the limit of {_megabytes(self.limits.file_bytes)} "
                    "per file" + (" (a zip bomb?)" if archive is not None else ""))
        if archive is not None:
            if archive["bytes"] + size > self.limits.archive_bytes:
                return (f"its archive holds more than {_megabytes(self.limits.archive_bytes)} uncompressed "
                        "(a zip bomb?)")
            archive["bytes"] += size
        if self.total + size > self.limits.total_bytes:
            return f"over the limit of {_megabytes(self.limits.total_bytes)} per collect"
        self.total += size
        return ""

    def input(self, index: int, path: Path) -> None:
        label = printable(str(path))
        try:
            listed = os.lstat(path)
        except FileNotFoundError:
            raise AutograderError(f"{label} does not exist") from None
        self.inputs[index] = (path.name, stat.S_ISREG(listed.st_mode) and path.suffix.lower() == ".zip")
        if stat.S_ISLNK(listed.st_mode):
            self.reject(index, label, "a symbolic link: links are never followed (give the path of its target)")
        elif stat.S_ISDIR(listed.st_mode):
            self.folder(index, path, "", 0)
        elif stat.S_ISREG(listed.st_mode) and name_problem(path.name, self.limits):
            self.reject(index, label, name_problem(path.name, self.limits))
        elif stat.S_ISREG(listed.st_mode):
            self.file(index, path, path.name, listed, inside_folder=False)
        else:
            self.reject(index, label, "not a regular file")

    def folder(self, index: int, root: Path, relative: str, depth: int) -> None:
        """The entries of a folder, never following a link (``os.scandir`` and ``lstat``)."""
        try:
            with os.scandir(root / relative if relative else root) as found:
                entries = sorted(found, key=lambda e: e.name)
        except OSError as error:
            self.reject(index, printable(str(root / relative)), f"an unreadable folder ({error.strerror})")
            return
        for entry in entries:
            path_in_input = f"{relative}/{entry.name}" if relative else entry.name
            path = root / path_in_input
            label = printable(str(path))
            try:
                listed = entry.stat(follow_symlinks=False)
            except OSError as error:
                self.reject(index, label, f"cannot be listed ({error.strerror})")
                continue
            kind = "a folder" if stat.S_ISDIR(listed.st_mode) else ""
            problem = name_problem(path_in_input, self.limits)
            if problem:
                self.reject(index, label, problem + (": nothing in it was read" if kind else ""))
            elif stat.S_ISLNK(listed.st_mode):
                try:
                    target = printable(os.readlink(path))
                except OSError:
                    target = "?"
                self.reject(index, label, f"a symbolic link (to {target}): links are never followed")
            elif kind:
                if depth + 1 > self.limits.folder_depth:
                    self.reject(index, label, f"a folder nested deeper than {self.limits.folder_depth}: not read")
                else:
                    self.folder(index, root, path_in_input, depth + 1)
            elif stat.S_ISREG(listed.st_mode):
                self.file(index, path, path_in_input, listed, inside_folder=True)
            else:
                self.reject(index, label, "not a regular file (a device, pipe or socket)")

    def file(self, index: int, path: Path, relative: str, listed: os.stat_result, inside_folder: bool) -> None:
        """A file, or the members of a zip archive. A zip found inside a folder (a student's upload) keeps its name
        in the members' paths (``doejane_1_2_work/losses.ipynb``) and gives them its own time; an archive given as
        input (the LMS download) does not, and its members keep their own (LMS) dates."""
        label = printable(str(path))
        if listed.st_nlink > 1:
            self.reject(index, label, f"a hard link ({listed.st_nlink} names for one file): copy it if it is a "
                                      "submission")
            return
        modified = self.checked_time(dt.datetime.fromtimestamp(listed.st_mtime, dt.timezone.utc))
        if relative.lower().endswith(".zip"):
            opener = functools.partial(_open_listed, path, listed)
            prefix = relative[:-4] + "/" if inside_folder else ""
            if self.archive(index, opener, label, prefix, 1, modified if inside_folder else None, {"bytes": 0},
                            nested=inside_folder):
                return
        problem = self.take(listed.st_size, None)
        if problem:
            self.reject(index, label, problem)
            return
        self.files.append(InputFile(label, relative, functools.partial(_read_file, path, listed,
                                                                       self.limits.file_bytes),
                                    modified[0], flag=modified[1], size=listed.st_size, input_index=index))

    def checked_time(self, time: dt.datetime | None) -> tuple[dt.datetime | None, str]:
        if time is not None and time > self.now + FUTURE_TOLERANCE:
            return None, f"dated in the future ({time:%Y-%m-%d %H:%M}): that date is ignored"
        return time, ""

    def archive(self, index: int, opener: Callable[[], BinaryIO], label: str, prefix: str, depth: int,
                outer: tuple[dt.datetime | None, str] | None, budget: dict, nested: bool) -> bool:
        """List a zip's members; False if the file is no zip at all (it is then listed as a file). ``outer`` is the
        time (and its flag) of the layer around the archive, which its members get; None for an LMS download,
        whose members keep their own dates."""
        limits = self.limits
        try:
            with opener() as handle:
                if not zipfile.is_zipfile(handle):
                    return False
                end_record = getattr(zipfile, "_EndRecData", None)   # the entry count, before the directory is read
                end = end_record(handle) if end_record else None
                entries = end[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)] if end else 0
                if entries > limits.archive_members:
                    self.reject(index, label, f"an archive of {entries} entries, over the limit of "
                                              f"{limits.archive_members}: not read")
                    return True
                with zipfile.ZipFile(handle) as archive:
                    infos = archive.infolist()
        except Unreadable as error:
            self.reject(index, label, str(error))
            return True
        except _ZIP_ERRORS as error:
            self.reject(index, label, f"not a readable zip archive ({printable(str(error))})")
            return True
        for position, info in enumerate(infos):
            raw = info.filename
            source = f"{label}!{printable(raw)}"
            name = raw.replace("\\", "/")
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind == stat.S_IFLNK:
                self.reject(index, source, "a symbolic link inside the archive: links are never followed")
                continue
            if info.is_dir() or kind == stat.S_IFDIR:
                continue
            problem = name_problem(name, limits)
            if problem:
                self.reject(index, source, problem)
                continue
            if kind and kind != stat.S_IFREG:
                self.reject(index, source, "not a regular file (a device, pipe or socket)")
                continue
            if info.flag_bits & 0x1:
                self.reject(index, source, "an encrypted member: not read")
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if MiB < info.file_size <= limits.file_bytes and ratio > limits.ratio:
                self.reject(index, source, f"{_megabytes(info.compress_size)} that expand to "
                                           f"{_megabytes(info.file_size)}, over {limits.ratio} times: a zip bomb")
                continue
            problem = self.take(info.file_size, budget)
            if problem:
                self.reject(index, source, problem)
                continue
            relative = prefix + "/".join(p for p in name.split("/") if p not in ("", "."))
            if outer is None:   # a member of the LMS download: its date is the LMS's
                try:
                    stamp = dt.datetime(*info.date_time).astimezone(dt.timezone.utc)
                except ValueError:
                    stamp = None
                modified, flag = self.checked_time(stamp)
            else:
                modified, flag = outer
            read = functools.partial(_read_member, self.archives, opener, position, info.file_size,
                                     limits.file_bytes)
            if relative.lower().endswith(".zip") and not SYSTEM_FILES.search(relative):
                if depth >= limits.depth:
                    self.reject(index, source, f"an archive inside {depth} archives, over the limit of "
                                               f"{limits.depth}: not read")
                    continue
                try:
                    data = read()
                except Unreadable as error:
                    self.reject(index, source, str(error))
                    continue
                self.unpacked += 1
                inner = self.scratch / f"{self.unpacked}.zip"
                inner.write_bytes(data)
                del data
                if self.archive(index, functools.partial(open, inner, "rb"), source, relative[:-4] + "/",
                                depth + 1, (modified, flag), budget, nested=True):
                    continue
            self.files.append(InputFile(source, relative, read, modified, flag=flag, size=info.file_size,
                                        input_index=index, nested=nested))
        return True


def list_inputs(inputs: list[Path], limits: Limits, scratch: Path,
                archives: _OpenArchives) -> tuple[list[InputFile], dict[int, tuple[str, bool]]]:
    """Every file of the inputs, zip members (and zips inside zips, unpacked to ``scratch``) included; hostile
    entries rejected. Also returns each input's name and whether it is a zip archive. The files' ``read`` needs
    ``scratch`` and ``archives`` to be open."""
    lister = _Lister(limits, scratch, archives)
    for index, path in enumerate(inputs):
        lister.input(index, Path(path))
    return lister.files, lister.inputs


# -- step 2: identify ------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


GRADESCOPE_EXPORT = re.compile(r"assignment_\d+_export")


def gradescope_roots(files: list[InputFile], kinds: dict[int, tuple[str, bool]]) -> dict[int, str]:
    """input index -> the folder (inside that input) holding Gradescope's ``submission_metadata.yml``, which is
    then trusted for names and times: the top of a zip download or of a folder named like Gradescope's export
    (``assignment_77_export``), or such an export folder at the input's top. Metadata anywhere else (inside a
    student's folder or zip, even when that student is alone in the download) is not trusted."""
    roots = {}
    for file in files:
        if file.nested or PurePosixPath(file.relative).name != GRADESCOPE_METADATA:
            continue
        name, is_zip = kinds.get(file.input_index, ("", False))
        folder = file.relative[:-len(GRADESCOPE_METADATA)]
        if (folder == "" and (is_zip or GRADESCOPE_EXPORT.fullmatch(name))) or \
                GRADESCOPE_EXPORT.fullmatch(folder.rstrip("/")):
            roots.setdefault(file.input_index, folder)
    return roots


def gradescope_metadata(files: list[InputFile], roots: dict[int, str], limits: Limits) -> dict[tuple[int, str], dict]:
    """(input index, ``submission_<n>``) -> {name, sid, email, created_at} from the trusted metadata files."""
    import yaml

    found = {}
    for file in files:
        root = roots.get(file.input_index)
        if root is None or file.relative != root + GRADESCOPE_METADATA or file.outcome:
            continue
        file.outcome, file.reason = "rejected", "Gradescope's metadata (read for names and times)"
        if file.size > limits.metadata_bytes:
            file.reason = f"Gradescope's metadata, over {_megabytes(limits.metadata_bytes)}: not read"
            continue
        try:
            data = yaml.safe_load(file.read()) or {}
        except (Unreadable, yaml.YAMLError, RecursionError, ValueError) as error:
            file.reason = f"Gradescope's metadata, unreadable ({printable(str(error))[:200]})"
            continue
        if not isinstance(data, dict):
            continue
        for key, entry in data.items():
            entry = entry if isinstance(entry, dict) else {}
            submitters = entry.get(":submitters") or [{}]
            person = submitters[0] if isinstance(submitters, list) and isinstance(submitters[0], dict) else {}
            found[(file.input_index, str(key))] = {
                "name": str(person.get(":name") or ""), "sid": str(person.get(":sid") or ""),
                "email": str(person.get(":email") or ""), "created_at": entry.get(":created_at")}
    return found


def _gradescope_time(created) -> dt.datetime | None:
    if isinstance(created, dt.datetime):
        return created if created.tzinfo else created.replace(tzinfo=dt.timezone.utc)
    if isinstance(created, str):
        try:
            return dt.datetime.strptime(created[:26].strip(), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            return None
    return None


def _components(relative: str, end: int) -> int:
    """How many path components a match ending at ``end`` covers."""
    head = relative[:end]
    return head.count("/") + (0 if head.endswith("/") or not head else 1)


def identify_student(file: InputFile, patterns: list[tuple[str, str]], assignment: str,
                     gradescope: dict[tuple[int, str], dict], gradescope_root: str | None,
                     notebook_names: dict[str, str], custom: bool = False) -> bool:
    """Set the file's student id (from the outermost identifier) and what the LMS says about the student; False
    if nothing identifies a student."""
    relative = file.relative
    if gradescope_root is not None and not custom and relative.startswith(gradescope_root):
        match = re.match(re.escape(gradescope_root) + r"submission_(?P<submission>\d+)/", relative)
        if not match:
            return False
        key = f"submission_{match['submission']}"
        entry = gradescope.get((file.input_index, key), {})
        file.student_id = _slug(entry.get("sid") or entry.get("email", "").split("@")[0]
                                or f"gradescope-{match['submission']}")
        file.person = _person(entry.get("name", ""), entry.get("email", ""), "gradescope", "")
        created = _gradescope_time(entry.get("created_at"))
        if created is not None and created > dt.datetime.now(dt.timezone.utc) + FUTURE_TOLERANCE:
            file.flag = f"dated in the future ({created:%Y-%m-%d %H:%M}) by Gradescope's metadata: ignored"
            file.modified = None
        elif created is not None:
            file.modified = created
        file.inner = tuple(relative.split("/")[_components(relative, match.end()):])
        return bool(file.student_id)
    for lms, pattern in patterns:
        match = re.search(pattern.replace("{assignment}", re.escape(assignment)), relative, re.IGNORECASE)
        if not match:
            continue
        groups = {k: v for k, v in match.groupdict().items() if v}
        if "student" in groups:
            student = groups["student"]
            if lms == "file":   # "Copy of alice (1).ipynb" is alice's; "losses.ipynb" alone names no student
                student = _normalise(student + ".ipynb")[0].removesuffix(".ipynb")
                if student + ".ipynb" in notebook_names:
                    continue
            file.student_id = student
            file.person = _person("", "", lms if lms not in ("folder", "file", "--pattern") else "", "")
        elif "lms_user_id" in groups:
            name = groups.get("name", "")
            file.student_id = _slug(f"{name}-{groups['lms_user_id']}")
            file.person = _person(name, "", lms, groups["lms_user_id"])
        else:
            continue
        if file.student_id:
            file.inner = tuple(relative.split("/")[_components(relative, match.end()):])
            return True
    return False


def _person(name: str, email: str, lms: str, lms_user_id: str) -> dict:
    first, _, last = name.strip().rpartition(" ")
    return {"first_name": first, "last_name": last, "email": email, "lms": lms, "lms_user_id": lms_user_id}


def another_student(file: InputFile, known: set[str], patterns: list[tuple[str, str]], custom: bool,
                    ignore: set[str]) -> str:
    """What inside the file's upload names a student other than its uploader ("" if nothing)."""
    owner = file.student_id
    own = {owner.lower(), re.sub(r"-\d+$", "", owner.lower())}   # doejane-12345 may name a folder doejane
    inner = list(file.inner)
    if custom:
        text = "/".join(inner)
        for _, pattern in patterns:
            for match in re.finditer(pattern, text, re.IGNORECASE):
                other = match.groupdict().get("student")
                if other and other.lower() != owner.lower():
                    return f"names another student ({printable(other)}) inside {owner}'s upload"
        return ""
    for part in inner:
        if part == GRADESCOPE_METADATA:
            return f"Gradescope's {GRADESCOPE_METADATA} inside {owner}'s upload: not trusted"
        if re.fullmatch(r"submission_\d+", part):
            return f"a Gradescope submission folder ({printable(part)}) inside {owner}'s upload"
        for lms, pattern in PATTERNS[:2]:
            match = re.match(pattern, part, re.IGNORECASE)
            if match:
                other = _slug(f"{match['name']}-{match['lms_user_id']}")
                if other != owner:
                    return f"names another student ({printable(other)}, a {lms} name) inside {owner}'s upload"
        stem = re.sub(r"\.(zip|ipynb)$", "", part, flags=re.IGNORECASE)
        stem = _normalise(stem + ".ipynb")[0].removesuffix(".ipynb") if part.lower().endswith(".ipynb") else stem
        if stem.lower() in known and stem.lower() not in ignore | own:
            return f"names another student ({printable(stem)}) inside {owner}'s upload"
    return ""


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


def identify_notebook(file: InputFile, expected: list[str], notebook_names: dict[str, str] | None = None) -> None:
    """Set the notebook the file is, or reject it."""
    notebook_names = _all_notebook_names() if notebook_names is None else notebook_names
    name = PurePosixPath(file.relative).name
    name = re.sub(r"^[a-z][a-z-]*?(?:_late)?_\d+_\d+_", "", name, flags=re.IGNORECASE)   # Canvas' prefix
    name = re.sub(r"^.*_assignsubmission_file_", "", name)                                 # Moodle's
    normalised, file.copy_number = _normalise(name)
    lower = {n.lower(): n for n in expected}
    if normalised in lower:
        file.notebook = lower[normalised]
        return
    other = notebook_names.get(normalised)
    if other:
        file.outcome, file.reason = "rejected", f"the notebook of another assignment ({other})"
    elif len(expected) == 1:
        file.notebook = expected[0]
        file.reason = f"renamed: {printable(name)!r} taken as {expected[0]}"
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


def _write_atomic(target: Path, data: bytes) -> None:
    """Write a file in a new inode and rename it over the target (a link at the target is replaced, not
    followed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".collect-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, target)


def _keep_copy(file: InputFile, folder: Path, data: bytes) -> str:
    """Copy a superseded or rejected file to ``folder`` (nothing is ever lost), under a safe name; return where."""
    safe = re.sub(r"[^A-Za-z0-9._() -]+", "_", file.relative.replace("/", "__"))[-100:].lstrip(". ") or "file"
    target = folder / f"{hashlib.sha256(data).hexdigest()[:8]}-{safe}"
    _write_atomic(target, data)
    return str(target)


def _compile(patterns: list[tuple[str, str]]) -> None:
    for label, pattern in patterns:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise AutograderError(f"{label} {pattern!r} is not a regular expression: {error}") from None
        if "student" not in compiled.groupindex and "lms_user_id" not in compiled.groupindex:
            raise AutograderError(f"{label} {pattern!r} has no (?P<student>...) group")


def collect(assignment: str, inputs: list[Path], patterns: list[tuple[str, str]] | None = None,
            limits: Limits | None = None) -> CollectionReport:
    """Collect submissions of ``assignment`` from ``inputs`` into ``submitted/``; write and return the report.

    Args:
        patterns: ``(label, regex)`` pairs replacing :data:`PATTERNS` (``--pattern``): the regex is searched in
            each file's path (its leftmost match decides) and must name a ``student`` group.
        limits: the caps on sizes and counts (default :class:`Limits`).
    """
    limits = limits or Limits()
    custom = patterns is not None
    patterns = patterns or PATTERNS
    _compile(patterns)
    expected = [p.name for p in source_notebooks(assignment)]
    notebook_names = _all_notebook_names()
    layout = current()
    submitted = layout.submitted
    kept = layout.collected(assignment)
    archives = _OpenArchives()
    with tempfile.TemporaryDirectory(prefix="collect-") as scratch:
        try:
            files, kinds = list_inputs(inputs, limits, Path(scratch), archives)         # step 1
            report = _sort_and_stage(assignment, files, kinds, patterns, custom, expected, notebook_names,
                                     submitted, kept, limits)
        finally:
            archives.close()
    report.path = write_report(report)
    return report


def _sort_and_stage(assignment: str, files: list[InputFile], kinds: dict[int, tuple[str, bool]],
                    patterns: list[tuple[str, str]], custom: bool, expected: list[str], notebook_names: dict[str, str],
                    submitted: Path, kept: Path, limits: Limits) -> CollectionReport:
    roots = {} if custom else gradescope_roots(files, kinds)
    gradescope = gradescope_metadata(files, roots, limits)
    for file in files:                                                                  # step 2
        if file.outcome:
            continue
        if SYSTEM_FILES.search(file.relative):
            file.outcome, file.reason = "rejected", "a system file, not a submission"
        elif not identify_student(file, patterns, assignment, gradescope, roots.get(file.input_index),
                                  notebook_names, custom):
            if file.relative.lower().endswith(".ipynb"):
                file.outcome, file.reason = "rejected", "no student id in its path (see --pattern)"
            else:
                suffix = PurePosixPath(file.relative).suffix or "no extension"
                file.outcome, file.reason = "rejected", f"not a notebook ({printable(suffix)})"
        elif not STUDENT_ID.fullmatch(file.student_id):
            file.outcome = "rejected"
            file.reason = (f"the name {printable(file.student_id)!r} cannot be a student id (letters, digits, "
                           ". _ - @ + and inner spaces, at most 100)")
            file.student_id = ""
    known = {f.student_id.lower() for f in files if f.student_id and not f.outcome}
    known |= {s.lower() for s in load_roster()}
    if submitted.is_dir():
        known |= {p.name.lower() for p in submitted.iterdir()}
    known |= {k.rsplit("-", 1)[0] for k in known if re.search(r"-\d+$", k)}   # doejane of doejane-12345
    ignore = {assignment.lower()} | {n.removesuffix(".ipynb") for n in notebook_names}
    for file in files:
        if file.student_id and not file.outcome:
            flag = another_student(file, known, patterns, custom, ignore)
            file.flag = "; ".join(filter(None, [file.flag, flag]))
            if file.outcome:
                continue
            if not file.relative.lower().endswith(".ipynb"):
                suffix = PurePosixPath(file.relative).suffix or "no extension"
                file.outcome, file.reason = "rejected", f"not a notebook ({printable(suffix)})"
            else:
                identify_notebook(file, expected, notebook_names)
    candidates: dict[tuple[str, str], list[InputFile]] = {}
    for file in files:                                                                  # step 3
        if not file.outcome:
            candidates.setdefault((file.student_id, file.notebook), []).append(file)
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    roster = {}
    for (student_id, notebook), group in sorted(candidates.items()):
        group.sort(key=lambda f: (not f.flag, f.modified or epoch, f.copy_number, f.relative), reverse=True)
        winner, data = None, b""
        for file in group:
            if winner is None:
                try:
                    data = file.read()
                except Unreadable as error:
                    file.outcome, file.reason, file.read = "rejected", str(error), None
                    continue
                winner = file
                continue
            file.outcome = "superseded"
            file.reason = f"an older file of the same student and notebook ({winner.source} is newer)"
            if file.inner[:-1] != winner.inner[:-1]:
                file.reason += ("; in another folder of the same upload (if the folders inside "
                                f"{printable(student_id)} are students, give that folder as input)")
            _keep(file, kept / "superseded" / student_id)
        if winner is None:
            continue
        folder = submitted / student_id / assignment                                  # step 4
        target = folder / notebook
        staged_at = _staged_time(folder)
        try:
            if target.is_file() and target.read_bytes() == data:
                winner.outcome, winner.kept_as = "accepted", str(target)
                winner.reason = "; ".join(filter(None, [winner.reason, "already collected"]))
            elif target.is_file() and staged_at and winner.modified and staged_at > winner.modified:
                winner.outcome = "superseded"
                winner.reason = f"an earlier collect staged a newer file ({staged_at:%Y-%m-%d %H:%M})"
                winner.kept_as = _keep_copy(winner, kept / "superseded" / student_id, data)
            else:
                if target.is_file():
                    old = InputFile(str(target), f"previously-collected-{notebook}")
                    _keep_copy(old, kept / "superseded" / student_id, target.read_bytes())
                _write_atomic(target, data)
                stamp = winner.modified or dt.datetime.now(dt.timezone.utc)
                _write_atomic(folder / "timestamp.txt",
                              stamp.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT).encode())
                winner.outcome, winner.kept_as = "accepted", str(target)
        except OSError as error:
            winner.outcome, winner.reason = "rejected", f"could not be staged ({printable(str(error))})"
            continue
        roster[student_id] = winner.person
    for file in files:
        if file.outcome == "rejected" and not file.kept_as and file.read is not None:
            _keep(file, kept / "rejected")
    update_roster(roster)
    return CollectionReport(assignment, files)


def _keep(file: InputFile, folder: Path) -> None:
    """Keep a copy of a file that was safe to read; say why not otherwise."""
    try:
        file.kept_as = _keep_copy(file, folder, file.read())
    except (Unreadable, OSError) as error:
        file.reason += f" (not kept: {printable(str(error))})"


REPORT_COLUMNS = ["input", "outcome", "reason", "student_id", "notebook", "time", "kept_as", "flag"]


def write_report(report: CollectionReport) -> Path:
    """``reports/<assignment>/collection.csv`` (this run); earlier runs' reports stay, with their date. Every cell
    is escaped and spreadsheet-safe."""
    folder = reports_dir(report.assignment)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    path = folder / f"collection-{stamp}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(REPORT_COLUMNS)
        for f in report.files:
            writer.writerow([printable(str(cell)) for cell in (
                f.source, f.outcome, f.reason, f.student_id, f.notebook,
                f.modified.isoformat() if f.modified else "", f.kept_as, f.flag)])
    _write_atomic(folder / "collection.csv", path.read_bytes())
    return folder / "collection.csv"
