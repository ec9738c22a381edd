"""Grading on a Dask cluster: the same batch graded locally and by `grade --cluster` on 1, 2 and 4 workers.

    .venv/bin/python bench/cluster_grading.py [--assignment 01-losses] [--submissions 24] [--workers 1,2,4]

Builds N submissions (the reference solution and each wrong submission of tests/mutants/<assignment>/, in
turn), then grades identical copies, each in a fresh grading folder, one run after the other on this machine:

1. locally: ``python -m autograder grade`` with 1 kernel, then one kernel per core;
2. on a local Dask cluster (`dask scheduler` and K `dask worker` processes of one thread each, on 127.0.0.1,
   started before the clock starts, as a course would keep them running): ``grade --cluster``, for each K.

It prints the wall-clock time of each run, its throughput (submissions per second, and per worker), the
coordinating process's CPU time per submission (steps 1-5 and 7-9 and the Dask client: what one coordinator
spends per submission, whatever the number of machines; a second run of the same command, where every submission
is unchanged and skipped, gives its fixed part), and the coordination overhead per submission (the one-worker
cluster's time minus the one-kernel local run's, divided by N). Every run must give every test cell
the same score: the script exits with status 1 otherwise. Nothing about time is asserted: timings depend on the
machine and on what else runs on it (the load average is printed).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from grading_speed import make_submissions, stage  # noqa: E402
from servers import dask_cluster  # noqa: E402


def grade(grading: Path, assignment: str, options: list[str]) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds of the grading process and its waited-for children, and the grades CSV rows."""
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", assignment, "--no-progress",
                             "--output", str(grading / "grades.csv"), *options], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"grade {' '.join(options)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    with (grading / "grades.csv").open(newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="01-losses")
    parser.add_argument("--submissions", type=int, default=24)
    parser.add_argument("--workers", default="1,2,4", help="cluster sizes (worker processes), comma-separated")
    args = parser.parse_args()
    sizes = [int(k) for k in args.workers.split(",")]
    cores = len(os.sched_getaffinity(0))
    submissions = make_submissions(args.assignment, args.submissions)
    n = len(submissions)
    print(f"{n} submissions of {args.assignment}; {cores} cores; load average {os.getloadavg()[0]:.2f} at start")
    runs = []   # (label, workers, wall, coordinator CPU or None, rows)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for kernels in dict.fromkeys([1, cores]):
            grading = Path(tmp) / f"local-{kernels}"
            stage(grading, args.assignment, submissions)
            wall, cpu, rows = grade(grading, args.assignment, ["--workers", str(kernels)])
            runs.append((f"local, {kernels} kernel(s)", kernels, wall, None, rows))
            print(f"  {runs[-1][0]:<28} {wall:7.1f} s", flush=True)
        fixed = None   # coordinator CPU seconds that do not depend on the number of submissions
        for size in sizes:
            with dask_cluster(workers=size, threads=1) as cluster:
                grading = Path(tmp) / f"cluster-{size}"
                stage(grading, args.assignment, submissions)
                wall, cpu, rows = grade(grading, args.assignment, ["--cluster", cluster.address])
                if fixed is None:   # the same command again, every submission unchanged: the fixed cost
                    fixed = grade(grading, args.assignment, ["--cluster", cluster.address])[1]
            runs.append((f"cluster, {size} worker(s)", size, wall, cpu, rows))
            print(f"  {runs[-1][0]:<28} {wall:7.1f} s", flush=True)

    reference = runs[0][4]
    identical = all(rows == reference for *_, rows in runs)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'run':<28} {'wall s':>7} {'subm/s':>7} {'subm/s/worker':>14} {'coordinator CPU ms/subm':>24}")
    for label, workers, wall, cpu, _ in runs:
        coordinator = f"{1000 * cpu / n:.0f}" if cpu is not None else "-"
        print(f"{label:<28} {wall:7.1f} {n / wall:7.2f} {n / wall / workers:14.2f} {coordinator:>24}")
    if fixed is not None:
        marginal = [1000 * (cpu - fixed) / n for *_, cpu, _ in runs if cpu is not None]
        print(f"coordinator: {fixed:.1f} s CPU fixed per run (start, imports, reading the records), then "
              f"{min(marginal):.0f} to {max(marginal):.0f} ms CPU per submission (steps 1-5 and 7-9, Dask client)")
    local_one = next(wall for label, workers, wall, cpu, _ in runs if cpu is None and workers == 1)
    cluster_one = [wall for label, workers, wall, cpu, _ in runs if cpu is not None and workers == 1]
    if cluster_one:
        print(f"coordination overhead: {1000 * (cluster_one[0] - local_one) / n:+.0f} ms per submission "
              f"(1-worker cluster against 1 local kernel, wall clock)")
    for label, workers, wall, cpu, _ in runs:
        if cpu is not None:
            print(f"speed-up of {label}: {cluster_one[0] / wall if cluster_one else float('nan'):.2f}x "
                  f"the 1-worker cluster; {local_one / wall:.2f}x 1 local kernel")
    print(f"every test cell's score identical in all {len(runs)} runs: {'yes' if identical else 'NO'}")
    if not identical:
        for label, *_, rows in runs:
            different = sorted(s for s in reference if rows.get(s) != reference[s])
            if different:
                print(f"  {label}: {', '.join(different)}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
