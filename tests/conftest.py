"""Shared fixtures: the repository root, a private grading folder, and one book build per test session."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SESSION_START = time.time()
# The tiers of the suite (pyproject.toml registers them): a test file or test says which of the last four it
# belongs to; every other test is a unit test, which `make check` runs as the inner loop.
TIERS = ("unit", "grading", "book", "browser", "hub")


@pytest.hookimpl(tryfirst=True)   # before pytest-xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Mark unit tests, and keep work that must not be split across pytest-xdist workers on one worker each:
    the tests that read the built book (one build, then the browser) and the JupyterHub tests (local accounts)."""
    for item in items:
        tiers = {m.name for m in item.iter_markers()} & set(TIERS)
        if not tiers:
            item.add_marker(pytest.mark.unit)
        if "hub" in tiers or "tests/hub/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("hub"))
        elif "built_book" in getattr(item, "fixturenames", ()) or "browser" in tiers:
            item.add_marker(pytest.mark.xdist_group("book"))


@pytest.fixture
def grading_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running `python -m autograder` with its own gradebook and working folder."""
    env = dict(os.environ)
    env["DLCOURSE_GRADING_DIR"] = str(tmp_path / "grading")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_autograder(*args: str, env: dict[str, str], timeout: float = 1800,
                   cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the autograder command line from the course root (the repository's, or ``fixture_course``), as an
    instructor would."""
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.fixture(scope="session")
def fixture_course(tmp_path_factory) -> Path:
    """A course root holding only the frozen fixture assignment of tests/fixtures/, released (one per worker)."""
    from fixtures import make_course

    return make_course(tmp_path_factory.mktemp("fixture-course") / "course")


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book once per test session (shared by pytest-xdist workers) and return _build/html.

    The build is the README's: `make book` (static widgets on, warnings are errors). A build finished during this
    session is reused; otherwise the book is built, executing chapters that the cache does not hold.
    """
    html = ROOT / "_build" / "html"
    lock_path = ROOT / "_build" / ".build.lock"
    lock_path.parent.mkdir(exist_ok=True)
    stamp = ROOT / "_build" / ".built-by-tests"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # one worker builds, the others wait and reuse the result
        if not (stamp.exists() and stamp.stat().st_mtime >= SESSION_START):
            result = subprocess.run(["make", "book"], cwd=ROOT, text=True, capture_output=True)
            if result.returncode != 0:
                pytest.fail(f"the book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
            stamp.touch()
    return html


def pytest_terminal_summary(terminalreporter):
    """Say which mutants had their training tests skipped (tests/test_assignments.py): they did not run."""
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             for key, value in getattr(report, "user_properties", ()) if key == "skipped_training_tests"]
    if lines:
        terminalreporter.section("training tests skipped (the mutant cannot reach them)")
        for line in sorted(set(lines)):
            terminalreporter.write_line(line)
