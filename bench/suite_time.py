"""How long `make test` takes on a fresh clone: this commit against an earlier one, on the same machine.

Clones the repository once per revision into a temporary folder and runs CI's command there (``CI=true bash
.ci/run``: `make test`, which sets up its own ``.venv`` first), one revision after the other so that they do not
share the cores. Prints, per revision, the wall-clock seconds of the whole command (setup included), pytest's
summary line, and the ratio to the first revision. Nothing is asserted: the numbers depend on the machine and its
load, so run it on an idle machine. Each run took 11 to 15 minutes on 2 cores (2026-11).

Issue 16's target: `make test` at least a third faster than when the issue was filed (fe2b082: 298 tests, pytest
on one core), with the same assertions. The suite has grown since (670 tests at a85785b), so the ratio of the two
whole runs is an upper bound of what the same tests would take. ``--same-tests-as-first`` runs, in each later
revision, only the tests of the first one: their ids there (the same, or renamed as :data:`RENAMED` says; pytest
stops on an id it cannot find). A test may have grown since (more mutants, more pages in the book it builds), so
this too is an upper bound:

    .venv/bin/python bench/suite_time.py fe2b082 HEAD
    .venv/bin/python bench/suite_time.py fe2b082 HEAD --same-tests-as-first
    .venv/bin/python bench/suite_time.py fe2b082 HEAD --keep     # keep the clones and their logs (paths printed)

Measured on 2 cores (2026-11-28), ``fe2b082 HEAD --same-tests-as-first``: 770 s against 528 s (0.69) at 8bfaa7f,
then 741 s against 515 s (0.70) once `make book` ran the chapters in parallel (69b6c50); the same 298 tests,
setup included, take 30 % less time, i.e. run 1.44 times as fast.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Tests renamed since fe2b082, as (old part of the id, new part): the chapters renumbered when chapter 01 (the ML
# recipe) was added, and the hygiene test of the Colab GPU request, which now also checks that only torch notebooks
# ask for one.
RENAMED = (("book/05-backpropagation", "book/06-backpropagation"), ("book/06-numpy-net", "book/07-numpy-net"),
           ("book/07-pytorch", "book/08-pytorch"), ("book/08-cnn", "book/09-cnn"),
           ("book/09-practical-tricks", "book/10-practical-tricks"),
           ("test_first_code_cell_is_the_setup_cell_and_colab_asks_for_a_gpu",
            "test_first_code_cell_is_the_setup_cell_and_only_torch_notebooks_ask_for_a_gpu"))


def test_ids(folder: Path) -> list[str]:
    """The ids of the tests of the clone in ``folder`` (after its run: its own environment collects them)."""
    listed = subprocess.run([str(folder / ".venv" / "bin" / "python"), "-m", "pytest", "--collect-only", "-q",
                             "-p", "no:cacheprovider"], cwd=folder, capture_output=True, text=True, check=True)
    return [line for line in listed.stdout.splitlines() if "::" in line]


def renamed(test_id: str) -> str:
    for old, new in RENAMED:
        test_id = test_id.replace(old, new)
    return test_id


def run(revision: str, folder: Path, tests: Path | None = None) -> tuple[float, str, int]:
    """Clone ``revision`` into ``folder`` and run CI's command there (`make test`, restricted to the test ids
    listed in ``tests`` if given): (seconds, pytest's summary line, exit code)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    # On a branch, as a clone is: the hub test asks git for the branch name.
    subprocess.run(["git", "checkout", "--quiet", "-B", "suite-time", revision], cwd=folder, check=True)
    log = folder.with_suffix(".log")
    env = dict(os.environ, CI="true")
    command = ["bash", ".ci/run"] if tests is None else ["make", "test", f"PYTEST_ARGS=@{tests}"]
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    summary = [line.strip("= \n") for line in log.read_text(errors="replace").splitlines()
               if re.search(r"\d+ (passed|failed)", line) and line.startswith("=")]
    return seconds, (summary[-1] if summary else f"no pytest summary: see {log}"), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="commits to time, the first one the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the clones and their logs")
    parser.add_argument("--same-tests-as-first", action="store_true",
                        help="in the later revisions, run only the tests of the first one (see RENAMED)")
    args = parser.parse_args()

    revisions = [subprocess.run(["git", "rev-parse", "--short", r], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip() for r in args.revisions]
    work = Path(tempfile.mkdtemp(prefix="dlcourse-suite-bench-"))
    os.chmod(work, 0o755)   # as any clone: the hub test's local accounts use the clone's environment
    rows = []
    try:
        tests = None
        for revision in revisions:
            print(f"{revision}: running `CI=true bash .ci/run` in a fresh clone"
                  f"{f' (the {len(tests.read_text().splitlines())} tests of {revisions[0]})' if tests else ''} ...",
                  flush=True)
            seconds, summary, code = run(revision, work / revision, tests)
            if args.same_tests_as_first and tests is None:
                tests = work / "tests-of-first.txt"
                tests.write_text("".join(renamed(test_id) + "\n" for test_id in test_ids(work / revision)))
            rows.append((revision, seconds, summary, code))
            print(f"{revision}: {seconds:.0f} s, exit {code}, {summary}", flush=True)
    finally:
        if args.keep:
            print(f"clones and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1]
    print(f"\n{'revision':<10} {'seconds':>8} {'vs first':>9}  exit  pytest")
    for revision, seconds, summary, code in rows:
        print(f"{revision:<10} {seconds:8.0f} {seconds / base:9.2f}  {code:>4}  {summary}")


if __name__ == "__main__":
    main()
