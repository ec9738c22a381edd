"""`python -m autograder collect` on hostile downloads: every file is treated as an attack.

The corpus is built by each test in its temporary folder (nothing binary is committed): a zip inside one student's
upload holding another student's notebook, Gradescope metadata inside a Canvas upload, member dates forged into the
future, symbolic links to the solutions (in a folder and inside a zip), a 300-character name, zip bombs (a header
declaring 2 GiB; a header declaring 1 kB over 64 MiB of zeros), ``../`` and absolute members, terminal escape
sequences and a bidirectional override in names, names starting with ``=``, a FIFO and a hard link, next to honest
submissions that must all be collected. The collect runs as root and as an ordinary user (``unshare --user``).
No notebook is executed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
import uuid
import zipfile
import zlib
from pathlib import Path

import nbformat
import pytest

from autograder.collect import Limits, collect
from autograder.store import FORMULA_START, printable, spreadsheet_safe, spreadsheet_value
from conftest import ROOT

ASSIGNMENT = "01-losses"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / "losses.ipynb"
LMS_DATE = (2026, 3, 1, 12, 0, 0)
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")
FUTURE = (2099, 1, 1, 0, 0, 0)


def notebook(marker: str) -> bytes:
    """A small valid notebook that says whose it is (collect never runs it)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"# {marker}")])
    return nbformat.writes(nb).encode()


def zip_of(members: dict[str, bytes], times: dict[str, tuple] | None = None,
           links: dict[str, str] | None = None) -> bytes:
    """A zip archive; ``links`` are symbolic-link members (name -> target), as `zip --symlinks` writes them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(times or {}).get(name, LMS_DATE)), data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name, date_time=LMS_DATE)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def zeros_stream(mebibytes: int) -> bytes:
    """Raw deflate data of ``mebibytes`` MiB of zeros, about 1 kB per MiB, built without compressing them all."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mebibytes + compressor.flush()


def bomb(name: str, stream: bytes, declared: int, crc: int | None = None) -> bytes:
    """A zip whose one member is the deflate ``stream`` with ``declared`` as its uncompressed size in both headers
    (the member is written stored, then its method, size and, if given, checksum are patched)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(name, date_time=LMS_DATE), stream)
    data = bytearray(buffer.getvalue())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, local + 8, zipfile.ZIP_DEFLATED)
    struct.pack_into("<I", data, local + 22, declared)
    struct.pack_into("<H", data, central + 10, zipfile.ZIP_DEFLATED)
    struct.pack_into("<I", data, central + 24, declared)
    if crc is not None:
        struct.pack_into("<I", data, local + 14, crc)
        struct.pack_into("<I", data, central + 16, crc)
    return bytes(data)


def touch(path: Path, data: bytes, minutes_ago: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = time.time() - 60 * minutes_ago
    os.utime(path, (stamp, stamp))
    return path


def lms_time(date_time: tuple) -> str:
    """timestamp.txt's text for a zip date (a local time, as collect reads it)."""
    return dt.datetime(*date_time).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def hostile(tmp_path):
    """The hostile batch: (inputs, {student: marker of the notebook that must be staged}, [(source part, reason
    part)] of the files that must be rejected, the absolute path a member names)."""
    absolute = Path("/tmp") / f"collect-absolute-{uuid.uuid4().hex}" / "losses.ipynb"
    ansi = "\x1b[2J\x1b]0;pwned\x07\x1b[31m"
    canvas = tmp_path / "canvas.zip"
    canvas.write_bytes(zip_of({
        "victimv_11111_900001_losses.ipynb": notebook("honest victimv"),
        # a zip inside mallory's upload names the victim twice, dated in the future
        "mallory_22222_900002_work.zip": zip_of({"victimv_11111_900009_losses.ipynb": notebook("mallory as victimv"),
                                                 "victim/losses.ipynb": notebook("mallory as victim")},
                                                times={"victimv_11111_900009_losses.ipynb": FUTURE,
                                                       "victim/losses.ipynb": FUTURE}),
        # Gradescope's metadata inside a Canvas upload, naming the victim
        "trudy_33333_900003_upload.zip": zip_of({
            "submission_metadata.yml": b"submission_1:\n  :submitters:\n  - :name: Victim V\n"
                                       b"    :sid: victimv-11111\n  :created_at: 2099-01-01 00:00:00.000000\n",
            "submission_1/losses.ipynb": notebook("trudy as gradescope victim")}),
        "eve_44444_900004_losses.ipynb": notebook("honest eve, forged date"),
        "oscar_55555_900005_link.zip": zip_of({}, links={"losses.ipynb": "../../solutions/01-losses/losses.ipynb"}),
        "zed_66666_900006_long.zip": zip_of({"z" * 294 + ".ipynb": notebook("zed long name"),
                                             "losses.ipynb": notebook("honest zed")}),
        "bomby_77777_900007_bomb.zip": bomb("losses.ipynb", zeros_stream(1), 2**31),
        "bomby_77777_900008_liar.zip": bomb("Copy of losses.ipynb", zeros_stream(64), 1000),
        "bomby_77777_900009_ratio.zip": bomb("losses (2).ipynb", zeros_stream(16), 16 * 2**20),
        "dot_88888_900010_x.zip": zip_of({"../../escaped.ipynb": notebook("dot escaped"),
                                          str(absolute): notebook("dot absolute")}),
        "../lms-escaped.ipynb": notebook("lms escaped"),
        f"ansi_12121_900011_{ansi}.ipynb": notebook("ansi"),
    }, times={"eve_44444_900004_losses.ipynb": FUTURE,
              "mallory_22222_900002_work.zip": (2026, 3, 1, 13, 0, 0)}))
    moodle = tmp_path / "moodle.zip"
    moodle.write_bytes(zip_of({
        '=HYPERLINK("evil.example")_4444_assignsubmission_file_/losses.ipynb': notebook("honest formula name")}))
    # Gradescope's layout inside the only upload of a Canvas download, and in the only folder of a folder
    metadata = (b"submission_5:\n  :submitters:\n  - :name: Victim\n    :sid: victim\n"
                b"  :created_at: 2099-01-01 00:00:00.000000\n")
    alone = tmp_path / "canvas-one.zip"
    alone.write_bytes(zip_of({"walt_13131_900012_up.zip": zip_of({
        "submission_metadata.yml": metadata, "submission_5/losses.ipynb": notebook("walt as gradescope victim")})}))
    touch(tmp_path / "late" / "xena" / "submission_metadata.yml", metadata, 5)
    touch(tmp_path / "late" / "xena" / "submission_5" / "losses.ipynb", notebook("xena as gradescope victim"), 5)
    folder = tmp_path / "downloads"
    touch(folder / "victim" / "losses.ipynb", notebook("honest victim"), 60)
    touch(folder / "alice" / "losses.ipynb", notebook("honest alice"), 30)
    touch(folder / "alice" / "extra.zip", zip_of({"victim/losses.ipynb": notebook("alice as victim")},
                                                 times={"victim/losses.ipynb": FUTURE}), 10)
    touch(folder / "bob" / "Copy of losses (1).ipynb", notebook("honest bob"), 20)
    (folder / "carl").mkdir()
    (folder / "carl" / "losses.ipynb").symlink_to(SOLUTION)
    (folder / "dan.ipynb").symlink_to(SOLUTION)
    (folder / "solutions-link").symlink_to(SOLUTION.parent, target_is_directory=True)
    touch(folder / f"{ansi}red" / "losses.ipynb", notebook("ansi folder"), 5)
    touch(folder / "=1+2" / "losses.ipynb", notebook("formula folder"), 5)
    (folder / "fifo").mkdir()
    os.mkfifo(folder / "fifo" / "losses.ipynb")
    touch(tmp_path / "elsewhere" / "gil.ipynb", notebook("gil hard link"), 5)
    (folder / "gil").mkdir()
    os.link(tmp_path / "elsewhere" / "gil.ipynb", folder / "gil" / "losses.ipynb")
    touch(folder / "hal" / "losses\u202egnp.ipynb", notebook("hal bidi"), 5)
    staged = {"victim": "honest victim", "alice": "honest alice", "bob": "honest bob",
              "victimv-11111": "honest victimv", "mallory-22222": "mallory as", "trudy-33333": "trudy as",
              "eve-44444": "honest eve", "zed-66666": "honest zed", "hyperlink-evil-example-4444": "honest formula"}
    rejected = [("oscar_55555_900005_link.zip!losses.ipynb", "symbolic link inside the archive"),
                ("carl/losses.ipynb", "symbolic link (to"), ("dan.ipynb", "symbolic link"),
                ("solutions-link", "symbolic link"),
                ("z" * 294, "longer than 255 bytes"),
                ("900007_bomb.zip!losses.ipynb", "over the limit of 32.0 MB per file (a zip bomb?)"),
                ("900008_liar.zip!Copy of losses.ipynb", "expands beyond the 1000 bytes it declares (a zip bomb?)"),
                ("900009_ratio.zip!losses (2).ipynb", "over 100 times: a zip bomb"),
                ("../../escaped.ipynb", "'..' in its path"), ("canvas.zip!../lms-escaped.ipynb", "'..' in its path"),
                (str(absolute), "an absolute path"),
                ("ansi_12121_900011_\\x1b[2J", "control character (\\x1b)"),
                ("\\x1b[2J\\x1b]0;pwned\\x07\\x1b[31mred", "control character (\\x1b)"),
                ("=1+2/losses.ipynb", "cannot be a student id"), ("fifo/losses.ipynb", "not a regular file"),
                ("gil/losses.ipynb", "a hard link"), ("losses\\u202egnp.ipynb", "control character (\\u202e)")]
    staged |= {"walt-13131": "walt as gradescope victim", "xena": "xena as gradescope victim"}
    return [canvas, moodle, alone, tmp_path / "late", folder], staged, rejected, absolute


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (links not followed) and a digest of what it is."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[str(path)] = stat.filemode(info.st_mode)
    return found


# The peak resident memory of this process since its exec (VmHWM): getrusage's ru_maxrss would also count the
# pytest process it was forked from, since Linux carries the high-water mark across exec.
RUN_COLLECT = ("import re, sys\nfrom autograder.cli import main\ncode = main(sys.argv[1:])\n"
               "status = open('/proc/self/status').read()\n"
               "print('maxrss_kib', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
               "sys.exit(code)\n")


def unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", "id", "-u"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == "1000"


@pytest.mark.parametrize("user", ["invoking", "ordinary"])   # invoking: root in CI and here
def test_hostile_batch(hostile, tmp_path, user):
    """Does collect, on a batch of hostile files, reject each one with its reason, never follow a link, never write
    outside the grading folder, keep every student's submission their own, and collect every honest one?"""
    if user == "ordinary" and not unshare_works():
        pytest.skip("`unshare --user --map-user=1000` is not available here: the ordinary-user run is skipped")
    inputs, staged, rejected, absolute = hostile
    grading = tmp_path / "grading"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = snapshot(tmp_path)
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"] if user == "ordinary" else []
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading), TMPDIR=str(scratch))
    result = subprocess.run([*prefix, sys.executable, "-c", RUN_COLLECT, "collect", ASSIGNMENT,
                             *map(str, inputs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # no control character reaches the terminal: every name is printed escaped
    assert not [c for c in result.stdout + result.stderr if not c.isprintable() and c != "\n"], result.stdout
    assert "\\x1b[2J" in result.stdout and "FLAGGED" in result.stdout
    maxrss = int(result.stderr.split("maxrss_kib")[1].split()[0])
    print(f"collect as {user}: peak memory {maxrss / 1024:.0f} MiB")
    assert maxrss < 200 * 1024, f"collect held {maxrss} KiB at its peak: a bomb was expanded in memory"

    # nothing outside the grading folder changed; nothing left in the temporary folder
    after = snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert all(Path(p).is_relative_to(grading) for p in changed), sorted(changed)
    assert not absolute.exists() and not absolute.parent.exists()
    assert not list(tmp_path.rglob("*escaped*")) and not (ROOT / "escaped.ipynb").exists()
    assert not list(scratch.iterdir()), "collect left its scratch files behind"
    # the grading folder holds only what collect writes there, as plain files, and little of it
    allowed = ("submitted", "collected", "reports", "students.csv")
    for path in grading.rglob("*"):
        assert path.relative_to(grading).parts[0] in allowed, path
        assert not path.is_symlink(), path
    assert sum(p.stat().st_size for p in grading.rglob("*") if p.is_file()) < 1_000_000

    # every honest submission is collected, each student's own, with times from the LMS layer
    submitted = grading / "submitted"
    assert {p.name for p in submitted.iterdir()} == set(staged)
    for student, marker in staged.items():
        folder = submitted / student / ASSIGNMENT
        assert sorted(p.name for p in folder.iterdir()) == ["losses.ipynb", "timestamp.txt"], student
        assert marker in (folder / "losses.ipynb").read_text(), student
    assert "honest victim" in (submitted / "victim" / ASSIGNMENT / "losses.ipynb").read_text()
    assert "honest victimv" in (submitted / "victimv-11111" / ASSIGNMENT / "losses.ipynb").read_text()
    for student in ("victimv-11111", "trudy-33333"):
        stamp = (submitted / student / ASSIGNMENT / "timestamp.txt").read_text()
        assert stamp.startswith(lms_time(LMS_DATE)), (student, stamp)
    stamp = (submitted / "mallory-22222" / ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp.startswith(lms_time((2026, 3, 1, 13, 0, 0))), stamp            # the outer member's date
    for student in staged:
        assert not (submitted / student / ASSIGNMENT / "timestamp.txt").read_text().startswith("2099")

    with (grading / "reports" / ASSIGNMENT / "collection.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    text = "".join(v for row in rows for v in row.values())
    assert text.isprintable(), "a control character reached the collection report"
    for part, reason in rejected:
        matches = [r for r in rows if part in r["input"]]
        assert matches, f"{part} is not in the report"
        for row in matches:
            assert row["outcome"] == "rejected" and reason in row["reason"], row
            if "student id" not in reason:   # hostile: never read, never copied
                assert not row["kept_as"], f"a hostile file was copied: {row}"
    flags: dict[str, str] = {}
    for row in rows:
        flags[row["student_id"]] = flags.get(row["student_id"], "") + row["flag"]
    assert "names another student (victimv-11111" in flags["mallory-22222"]
    assert "names another student (victim)" in flags["alice"]
    assert "submission_metadata.yml inside trudy-33333's upload" in flags["trudy-33333"]
    assert "dated in the future" in flags["eve-44444"]
    for student in ("walt-13131", "xena"):   # alone in their download: their metadata is still not trusted
        assert "submission_metadata.yml inside" in flags[student] and "Gradescope submission folder" in flags[student]
    alice_extra = [r for r in rows if r["input"].endswith("extra.zip!victim/losses.ipynb")]
    assert [r["outcome"] for r in alice_extra] == ["superseded"] and alice_extra[0]["student_id"] == "alice"

    # the roster and the report are spreadsheet-safe; the formula name is kept, neutralised
    for path in [grading / "students.csv", grading / "reports" / ASSIGNMENT / "collection.csv"]:
        assert_no_formula(path)
    with (grading / "students.csv").open(newline="", encoding="utf-8") as handle:
        roster = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert roster["hyperlink-evil-example-4444"]["last_name"] == "'=HYPERLINK(\"evil.example\")"
    assert "victimv-11111" not in roster or roster["victimv-11111"]["email"] == ""


def assert_no_formula(path: Path) -> None:
    """No cell of the CSV file at ``path`` would run as a spreadsheet formula."""
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                formula = cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") and not NUMBER.fullmatch(cell)
                assert not formula, f"{path.name}: {cell!r} would run as a formula"


def test_limits_are_checked_before_reading(tmp_path, monkeypatch):
    """Are counts, archive sizes and nesting capped before anything is read, one file at a time, the rest collected?"""
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "grading"))
    honest = {f"s{i}/losses.ipynb": notebook(f"s{i}") for i in range(4)}
    size = len(honest["s0/losses.ipynb"])
    lms = tmp_path / "lms.zip"
    lms.write_bytes(zip_of(honest))
    report = collect(ASSIGNMENT, [lms], limits=Limits(archive_bytes=3 * size + 10))
    assert [f.outcome for f in report.files] == ["accepted"] * 3 + ["rejected"]
    assert "its archive holds more than" in report.files[3].reason
    report = collect(ASSIGNMENT, [lms], limits=Limits(archive_members=3))
    assert len(report.files) == 1 and "an archive of 4 entries" in report.files[0].reason
    report = collect(ASSIGNMENT, [lms], limits=Limits(total_files=2))
    assert [f.outcome for f in report.files].count("rejected") == 2
    assert "over the limit of 2 files" in report.files[-1].reason
    report = collect(ASSIGNMENT, [lms], limits=Limits(file_bytes=size - 1))
    assert all("per file" in f.reason for f in report.files)
    # a member whose checksum matches the 1000 bytes it declares, and whose data goes on for 4 MiB, next to an honest
    # 3 MiB member (read in several chunks, its checksum checked at its end)
    lms.write_bytes(zip_of({"big/losses.ipynb": os.urandom(3 * 2**20)}))
    liar = tmp_path / "liar.zip"
    liar.write_bytes(bomb("liar/losses.ipynb", zeros_stream(4), 1000, crc=zlib.crc32(bytes(1000))))
    report = collect(ASSIGNMENT, [lms, liar])
    assert [f.outcome for f in report.files] == ["accepted", "rejected"], [f.reason for f in report.files]
    assert "expands beyond the 1000 bytes it declares" in report.files[1].reason
    # an LMS download holding a student's zip holding a zip holding a zip: the third level is not opened
    nested = zip_of({"deep_1_2_work.zip": zip_of({"a.zip": zip_of({"b.zip": zip_of({"losses.ipynb": b"{}"}),
                                                                   "losses.ipynb": notebook("deep")})})})
    lms.write_bytes(nested)
    report = collect(ASSIGNMENT, [lms])
    outcomes = {f.source.split("!", 1)[1]: (f.outcome, f.reason) for f in report.files}
    assert outcomes["deep_1_2_work.zip!a.zip!losses.ipynb"][0] == "accepted"
    assert "an archive inside 3 archives" in outcomes["deep_1_2_work.zip!a.zip!b.zip"][1]


def test_exports_neutralise_formulas(tmp_path, monkeypatch):
    """Do the grade exports (nbgrader, Canvas, Moodle CSVs) write a student's formula-like name as text, and numbers
    as numbers?"""
    from autograder import export

    grading = tmp_path / "grading"
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(grading))
    folder = tmp_path / "in"
    touch(folder / "=cmd" / "losses.ipynb", notebook("formula id"), 1)   # not even a usable student id
    moodle = tmp_path / "moodle.zip"
    moodle.write_bytes(zip_of({"@SUM(A1)_4444_assignsubmission_file_/losses.ipynb": notebook("at"),
                               "+cmd_5555_assignsubmission_file_/losses.ipynb": notebook("plus")}))
    report = collect(ASSIGNMENT, [folder, moodle])
    assert [f.outcome for f in report.files] == ["rejected", "accepted", "accepted"]
    assert "cannot be a student id" in report.files[0].reason
    hostile_names = {"sum-a1-4444": ("=HYPERLINK(\"http://evil\",\"x\")", "@SUM(A1)", "-2+3", "\tx@example.org"),
                     "cmd-5555": ("+cmd|' /C calc'!A0", "\r=1", "Ann", "ann@example.org")}
    rows = [{"assignment": ASSIGNMENT, "duedate": "", "timestamp": "", "student_id": student, "last_name": last,
             "first_name": first, "email": email, "raw_score": "-1.5", "late_submission_penalty": "0",
             "score": "-1.5", "max_score": "15", "mse_loss": "2"}
            for student, (first, last, _, email) in hostile_names.items()]
    monkeypatch.setattr(export, "gradebook_rows", lambda assignment, layout=None: (["mse_loss"], rows))
    paths = export.export(ASSIGNMENT, canvas_column="=Losses (12345)")
    assert [p.name for p in paths] == ["grades.csv", "canvas.csv", "moodle.csv"]
    for path in paths + [grading / "students.csv", grading / "reports" / ASSIGNMENT / "collection.csv"]:
        assert_no_formula(path)
    with paths[0].open(newline="", encoding="utf-8") as handle:
        grades = list(csv.DictReader(handle))
    assert grades[0]["last_name"] == "'@SUM(A1)" and grades[0]["first_name"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert grades[0]["score"] == "-1.5" and grades[0]["mse_loss"] == "2"      # numbers stay numbers
    assert spreadsheet_value(grades[1]["first_name"]) == "+cmd|' /C calc'!A0"
    with paths[1].open(newline="", encoding="utf-8") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][-1] == "'=Losses (12345)" and canvas[2][0].startswith("'@SUM(A1)")
    with paths[2].open(newline="", encoding="utf-8") as handle:
        moodle_rows = list(csv.reader(handle))
    assert moodle_rows[1][2] == "'\tx@example.org" and moodle_rows[1][3] == "-1.5"


def test_spreadsheet_and_terminal_escaping():
    """Are formula starts neutralised (and reversible), numbers left alone, and control characters escaped?"""
    for text in ["=1+1", "+1+1", "-1+1", "@A1", "\t=1", "\r=1", "\n=1", "-", "=", "+cmd"]:
        assert spreadsheet_safe(text) == "'" + text and spreadsheet_value(spreadsheet_safe(text)) == text
        assert text.startswith(FORMULA_START)
    for value in ["-1.5", "+2", "3e-4", "-0", "15", "", "Ann", "'quoted'", "'-1", 2.5, -3]:
        assert spreadsheet_safe(value) == value
    for text in ["'=x' is a name", "''@x"]:   # quotes then a formula: one more quote, and read back exactly
        assert spreadsheet_safe(text) == "'" + text and spreadsheet_value(spreadsheet_safe(text)) == text
    assert printable("a\x1b[2Jb\x07\u202e\u2028\udcff") == "a\\x1b[2Jb\\x07\\u202e\\u2028\\udcff"
    assert printable("Zoë Ünal, 李") == "Zoë Ünal, 李"
