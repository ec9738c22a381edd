"""The command line shows an instructor's mistakes as one line that says what to do, never a traceback (`-v`
shows it). In-process and without a kernel: each case stops before any grading starts."""

from __future__ import annotations

import pytest

from autograder import cli
from autograder.nbgrader_api import AutograderError


@pytest.fixture(autouse=True)
def grading_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "grading"))
    return tmp_path / "grading"


def error_line(capsys, *argv: str) -> str:
    """Run the command; check it failed with status 2 and one line on stderr; return that line."""
    assert cli.main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("command", [["grade"], ["feedback"], ["export"], ["collect", "."]])
def test_unknown_assignment(capsys, command):
    """An assignment that does not exist is named, with the known ones."""
    line = error_line(capsys, command[0], "99-nothing", *command[1:])
    assert "unknown assignment '99-nothing'" in line and "01-losses" in line


def test_missing_submissions_folder(capsys, tmp_path):
    """`grade A FOLDER` with a folder that does not exist says so."""
    missing = tmp_path / "no-such-folder"
    line = error_line(capsys, "grade", "01-losses", str(missing))
    assert f"{missing} does not exist" in line


def test_nothing_collected(capsys):
    """`grade A` before anything was collected says to collect first."""
    assert "run `python -m autograder collect 01-losses" in error_line(capsys, "grade", "01-losses")


def test_export_before_grading(capsys):
    assert "grade 01-losses first" in error_line(capsys, "export", "01-losses")


@pytest.mark.parametrize("pattern, says", [("(", "is not a regular expression"),
                                           ("x", "has no (?P<student>...) group")])
def test_bad_pattern_option(capsys, tmp_path, pattern, says):
    assert says in error_line(capsys, "collect", "01-losses", str(tmp_path), "--pattern", pattern)


def test_bad_option_value_is_argparse_usage(capsys):
    """A value of the wrong type is refused by the parser, with the usage line and status 2."""
    with pytest.raises(SystemExit) as raised:
        cli.main(["grade", "01-losses", "--workers", "many"])
    assert raised.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err


def test_file_and_value_errors_are_one_line_and_verbose_shows_the_traceback(capsys, monkeypatch):
    """An OSError or ValueError of a stage (a missing file, a bad setting) is one line; -v raises it."""
    import autograder.site

    def missing(check_only=False):
        raise FileNotFoundError("exercises/x holds no notebook: run `python -m autograder release x`")

    monkeypatch.setattr(autograder.site, "write_pages", missing)
    assert "FileNotFoundError: exercises/x holds no notebook" in error_line(capsys, "pages")
    with pytest.raises(FileNotFoundError):
        cli.main(["-v", "pages"])
    with pytest.raises(AutograderError, match="unknown assignment"):
        cli.main(["-v", "grade", "99-nothing"])


def test_held_out_assignment_is_not_sent_to_a_cluster(capsys):
    """The capstone's held-out labels never leave the grading machine: `--cluster` is refused before anything
    is collected or contacted."""
    line = error_line(capsys, "grade", "10-capstone", "--cluster", "tcp://127.0.0.1:9")
    assert "held-out data" in line and "without --cluster" in line
