"""Grading speed: stock sequential `nbgrader autograde` against `python -m autograder grade`, same submissions.

    .venv/bin/python bench/grading_speed.py [--assignment 03-backprop] [--submissions 40] [--workers N]

Builds N submissions of the assignment (the reference solution and each wrong submission of
tests/mutants/<assignment>/, in turn), stages identical copies for both graders in two fresh grading folders,
then times, one after the other on this machine:

1. stock nbgrader: ``nbgrader generate_assignment`` (the gradebook) and ``nbgrader autograde`` over all students,
   one after the other, with the course's configuration;
2. the pipeline: ``python -m autograder grade`` (which registers the assignment itself).

It prints both times (wall clock, and CPU time of every process involved, kernels included), their ratios and
whether every test cell got the same score from both. Nothing is asserted: timings depend on the machine and on
what else runs on it (the load average is printed with them; CPU time depends on it least).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from autograder.notebooks import build_submission, source_notebook  # noqa: E402
from test_assignments import mutant_files, split_mutant  # noqa: E402


def make_submissions(assignment: str, count: int) -> dict[str, nbformat.NotebookNode]:
    """``count`` submissions: the solution, then each mutant, round and round."""
    variants = [("correct", build_submission(assignment))]
    variants += [(p.stem, build_submission(assignment, split_mutant(p)[1])) for p in mutant_files(assignment)]
    return {f"s{i:03d}-{variants[i % len(variants)][0]}": variants[i % len(variants)][1] for i in range(count)}


def stage(grading: Path, assignment: str, submissions: dict[str, nbformat.NotebookNode]) -> None:
    name = source_notebook(assignment).name
    for student, nb in submissions.items():
        folder = grading / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / name)
        (folder / "timestamp.txt").write_text("2026-03-01 12:00:00.000000 UTC")


def run(command: list[str], grading: Path) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds of the command and every process it waited for (kernels included)."""
    env = dict(os.environ, DLCOURSE_GRADING_DIR=str(grading),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cell_scores(grading: Path, assignment: str) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{grading / 'gradebook.db'}") as gradebook:
        return {(s.student.id, g.name): float(g.auto_score)
                for s in gradebook.find_assignment(assignment).submissions
                for n in s.notebooks for g in n.grades if g.max_score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="03-backprop")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=0, help="pipeline workers (default: one per core)")
    args = parser.parse_args()
    submissions = make_submissions(args.assignment, args.submissions)
    config = str(ROOT / "autograder" / "nbgrader_config.py")
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        stock, ours = Path(tmp) / "stock", Path(tmp) / "pipeline"
        for folder in (stock, ours):
            stage(folder, args.assignment, submissions)
        cores = len(os.sched_getaffinity(0))
        variants = len(set(k.split('-', 1)[1] for k in submissions))
        print(f"{len(submissions)} submissions of {args.assignment} ({variants}"
              f" variants), {cores} cores, load average before: {os.getloadavg()[0]:.1f}")
        generate = run([nbgrader, "generate_assignment", args.assignment, f"--NbGrader.config_file={config}",
                        "--force", f"--CourseDirectory.release_directory={stock / 'release'}"], stock)
        autograde = run([nbgrader, "autograde", args.assignment, f"--NbGrader.config_file={config}", "--force"],
                        stock)
        stock_seconds, stock_cpu = generate[0] + autograde[0], generate[1] + autograde[1]
        print(f"stock nbgrader autograde (sequential): {stock_seconds:7.1f} s "
              f"({stock_seconds / len(submissions):.2f} s per submission), CPU {stock_cpu:.0f} s")
        ours_seconds, ours_cpu = run([sys.executable, "-m", "autograder", "grade", args.assignment, "--no-progress",
                                      "--workers", str(args.workers)], ours)
        print(f"python -m autograder grade:            {ours_seconds:7.1f} s "
              f"({ours_seconds / len(submissions):.2f} s per submission), CPU {ours_cpu:.0f} s")
        print(f"speed-up: {stock_seconds / ours_seconds:.1f}x wall-clock, {stock_cpu / ours_cpu:.1f}x less CPU time "
              f"(load average after: {os.getloadavg()[0]:.1f})")
        expected, found = cell_scores(stock, args.assignment), cell_scores(ours, args.assignment)
        differing = sorted(k for k in expected if expected[k] != found.get(k))
        same = not differing and expected == found
        print(f"scores: {len(expected)} test cells, {'identical' if same else 'DIFFERENT'}"
              + (f" ({len(differing)} differ, e.g. {differing[:3]})" if differing else ""))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
