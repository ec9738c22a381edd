"""How long the website takes to build: a cold build (every chapter executed) and a no-change rebuild.

Runs what `make book` runs (the exercise pages, then ``jupyter-book build . -W --keep-going`` with static widgets)
into a fresh temporary folder, so neither _build/ nor its execution cache is reused, then the same build again
with nothing changed. Prints both times, the execution time of each chapter, and the course's targets (cold build
within 10 minutes on 2 cores, no-change rebuild within 15 s). Nothing is asserted: the numbers depend on the
machine.

    .venv/bin/python bench/build_time.py            # build into a temporary folder, removed afterwards
    .venv/bin/python bench/build_time.py --keep     # keep it (the path is printed)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_COLD_S = 600
TARGET_REBUILD_S = 15


def build(output: Path) -> float:
    """One build as `make book` does it, into ``output``; return its wall-clock seconds."""
    env = dict(os.environ, DLCOURSE_STATIC_WIDGETS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    start = time.perf_counter()
    steps = [
        [sys.executable, "-m", "autograder", "pages"],
        [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "-W", "--keep-going",
         "--path-output", str(output)],
    ]
    for command in steps:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{' '.join(command[:3])} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return time.perf_counter() - start


def chapter_seconds(output: Path) -> dict[str, float]:
    """Execution time of each chapter, as recorded by the execution cache (jupyter-cache)."""
    from jupyter_cache import get_cache

    cache = get_cache(str(output / "_build" / ".jupyter_cache"))
    return {Path(r.uri).name: float(r.data.get("execution_seconds", 0.0)) for r in cache.list_cache_records()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the build folder")
    args = parser.parse_args()

    output = Path(tempfile.mkdtemp(prefix="dlcourse-build-bench-"))
    try:
        cold = build(output)
        rebuild = build(output)
        chapters = chapter_seconds(output)
    finally:
        if args.keep:
            print(f"build kept in {output / '_build' / 'html'}")
        else:
            shutil.rmtree(output, ignore_errors=True)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} cores usable")
    print(f"cold build:          {cold:7.1f} s   (target {TARGET_COLD_S} s on 2 cores: {cold / TARGET_COLD_S:.2f}x)")
    print(f"no-change rebuild:   {rebuild:7.1f} s   (target {TARGET_REBUILD_S} s: "
          f"{rebuild / TARGET_REBUILD_S:.2f}x)")
    executed = sum(chapters.values())
    print(f"chapter execution:   {executed:7.1f} s   ({executed / cold:.0%} of the cold build)")
    for name, seconds in sorted(chapters.items(), key=lambda item: -item[1]):
        print(f"  {name:<40} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
