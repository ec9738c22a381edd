"""How long `make test` takes on a fresh clone: this commit against an earlier one, on the same machine.

Clones the repository once per revision into a temporary folder and runs CI's command there (``CI=true bash
.ci/run``: `make test`, which sets up its own ``.venv`` first), one revision after the other so that they do not
share the cores. Prints, per revision, the wall-clock seconds of the whole command (setup included), pytest's
summary line, and the ratio to the first revision. Nothing is asserted: the numbers depend on the machine and its
load, so run it on an idle machine. Each run took 11 to 15 minutes on 2 cores (2026-11).

Issue 16's target: `make test` at least a third faster than when the issue was filed (fe2b082: 298 tests, pytest
on one core), with the same assertions. The suite has grown since (670 tests at a85785b), so the ratio of the two
whole runs is an upper bound of what the same tests would take:

    .venv/bin/python bench/suite_time.py fe2b082 HEAD
    .venv/bin/python bench/suite_time.py fe2b082 HEAD --keep     # keep the clones and their logs (paths printed)
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


def run(revision: str, folder: Path) -> tuple[float, str, int]:
    """Clone ``revision`` into ``folder`` and run CI's command there: (seconds, pytest's summary line, exit code)."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(folder)], check=True)
    # On a branch, as a clone is: the hub test asks git for the branch name.
    subprocess.run(["git", "checkout", "--quiet", "-B", "suite-time", revision], cwd=folder, check=True)
    log = folder.with_suffix(".log")
    env = dict(os.environ, CI="true")
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(["bash", ".ci/run"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    summary = [line.strip("= \n") for line in log.read_text(errors="replace").splitlines()
               if re.search(r"\d+ (passed|failed)", line) and line.startswith("=")]
    return seconds, (summary[-1] if summary else f"no pytest summary: see {log}"), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="commits to time, the first one the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the clones and their logs")
    args = parser.parse_args()

    revisions = [subprocess.run(["git", "rev-parse", "--short", r], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip() for r in args.revisions]
    work = Path(tempfile.mkdtemp(prefix="dlcourse-suite-bench-"))
    os.chmod(work, 0o755)   # as any clone: the hub test's local accounts use the clone's environment
    rows = []
    try:
        for revision in revisions:
            print(f"{revision}: running `CI=true bash .ci/run` in a fresh clone ...", flush=True)
            seconds, summary, code = run(revision, work / revision)
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
