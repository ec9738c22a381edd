"""Command line: ``python -m autograder <command>``. Run from the repository root.

A usage error (an unknown assignment, a missing folder or file, a bad option or setting) is printed as one line,
``error: ...``, with exit status 2; ``-v`` (before the command) shows the traceback too."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.nbgrader_api import ROOT, AutograderError, assignments


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.release import release

    for path in release(args.assignments or None):
        print(f"released {path.relative_to(ROOT)}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from autograder.release import sync_check_cells, sync_setup_cells

    changed = sync_setup_cells(check_only=args.check) + sync_check_cells(args.assignments or None,
                                                                         check_only=args.check)
    for path in changed:
        print(f"{'out of sync' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if args.check and changed:
        print("Run `python -m autograder sync` to update them.", file=sys.stderr)
        return 1
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from autograder.collect import Limits, collect
    from autograder.store import printable

    patterns = [("--pattern", p) for p in args.pattern] if args.pattern else None
    limits = Limits()
    if args.max_file_mb:
        limits.file_bytes = int(args.max_file_mb * 2**20)
    report = collect(args.assignment, [Path(p) for p in args.inputs], patterns, limits)
    counts = {o: len(report.by_outcome(o)) for o in ("accepted", "superseded", "rejected")}
    print(f"{len(report.files)} input files: " + ", ".join(f"{n} {o}" for o, n in counts.items())
          + (f"; {len(report.flagged)} flagged" if report.flagged else ""))
    for file in report.files:   # names are a student's: printed escaped (no terminal escape sequence gets through)
        if file.outcome != "accepted" or file.reason or file.flag:
            note = "; ".join(filter(None, [file.reason, f"FLAGGED: {file.flag}" if file.flag else ""]))
            print(printable(f"  {file.outcome:<10} {file.source}: {note}"))
    print(f"collection report: {report.path}")
    return 0


def _grade_settings(args: argparse.Namespace):
    from autograder.grade import Settings
    from autograder.sandbox import Limits

    limits = Limits()
    for name in ("memory", "cpu", "processes"):
        value = getattr(args, name)
        if value is not None:
            setattr(limits, {"memory": "memory_bytes", "cpu": "cpu_seconds", "processes": "processes"}[name],
                    int(value * 2**20) if name == "memory" else value)
    return Settings(workers=args.workers, timeout=args.timeout, isolation=args.isolation, limits=limits,
                    force=args.force, progress=not args.no_progress, verdict=args.verdict, cluster=args.cluster)


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder.grade import grade

    results, csv_path = grade(args.assignment, Path(args.submissions) if args.submissions else None,
                              Path(args.output) if args.output else None, _grade_settings(args))
    width = max(len(r.student_id) for r in results)
    for r in results:
        note = "; ".join(([r.reason] if r.reason else []) + r.flags)
        print(f"{r.student_id:<{width}}  {r.score:g}/{r.max_score:g}  {r.status}" + (f"  ({note})" if note else ""))
    print(f"grades written to {csv_path}")
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from autograder.feedback import write_feedback
    from autograder.layout import current

    paths = write_feedback(args.assignment, current())
    print(f"{len(paths)} feedback files written, e.g. {paths[0]}" if paths else "no graded submission yet")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from autograder.export import export
    from autograder.layout import current

    for path in export(args.assignment, canvas_column=args.canvas_column, layout=current()):
        print(f"written {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from autograder.report import write_report

    path = write_report(args.assignment)
    print(path.read_text(encoding="utf-8"))
    print(f"report written to {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from autograder.publish import publish

    files = publish(Path(args.dest), force=args.force)
    print(f"published {len(files)} files to {args.dest}; no solution or hidden test found in them")
    return 0


def cmd_pages(args: argparse.Namespace) -> int:
    from autograder.site import write_pages

    changed = write_pages(check_only=args.check)
    for path in changed:
        print(f"{'out of sync' if args.check else 'updated'}: {path}")
    if args.check and changed:
        print("Run `python -m autograder pages` to update them.", file=sys.stderr)
        return 1
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    from autograder import exchange

    root = exchange.exchange_root(args.exchange)
    if args.action == "release":
        folder = exchange.release(args.assignment, root, force=args.force, duedate=args.duedate)
        print(f"released {args.assignment} to {folder}")
    elif args.action == "collect":
        submissions, output = exchange.collect(args.assignment, root, before_duedate=args.before_duedate)
        print(f"{len(submissions)} submissions in {root}" + "".join(
            f"\n  left out (after the due date): {s.folder}" for s in submissions if not s.kept))
        print(output.rstrip())
    else:
        released = exchange.release_feedback(args.assignment, root)
        print(f"feedback released to {len(released)} students through {root}" if released else
              "no feedback to release: grade the submissions collected from the exchange first")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in assignments():
        print(name)
    return 0


EXAMPLES = """\
a term, in order (README, "For instructors: a whole term"):
  python -m autograder release                                  # exercises/ from solutions/
  python -m autograder publish ../course-public                 # the student copy, leak-checked
  python -m autograder collect 01-losses ~/Downloads/submissions.zip
  python -m autograder grade 01-losses                          # sandboxed, resumable
  python -m autograder feedback 01-losses
  python -m autograder export 01-losses --canvas-column "Loss functions (12345)"
  python -m autograder report 01-losses
"""


def build_parser() -> argparse.ArgumentParser:
    from autograder.sandbox import Limits

    limits = Limits()   # the one owner of the defaults the help text names
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="regenerate student notebooks in exercises/ from solutions/")
    p.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    p.set_defaults(run=cmd_release)

    p = commands.add_parser("sync", help="update every notebook's Colab setup cell from _config.yml and each "
                                         "assignment's final pre-submission check cell")
    p.add_argument("assignments", nargs="*", help="assignments whose check cell to sync (default: all)")
    p.add_argument("--check", action="store_true", help="only report notebooks out of sync (exit 1 if any)")
    p.set_defaults(run=cmd_sync)

    p = commands.add_parser("collect", help="gather submissions (folders, .ipynb files, LMS zip downloads)")
    p.add_argument("assignment", help="assignment name, e.g. 01-losses")
    p.add_argument("inputs", nargs="+", help="folders, notebooks and zip archives, in any mix")
    p.add_argument("--pattern", action="append", help="regular expression searched in each file's path, with a "
                   "(?P<student>...) group; replaces the Canvas/Moodle/Gradescope/folder defaults (repeatable)")
    p.add_argument("--max-file-mb", type=float, help="largest file read, uncompressed (default 32): larger files and "
                   "zip members are rejected unread")
    p.set_defaults(run=cmd_collect)

    p = commands.add_parser("grade", help="autograde the collected submissions in parallel sandboxes")
    p.add_argument("assignment", help="assignment name, e.g. 01-losses")
    p.add_argument("submissions", nargs="?", help="collect this folder first (one sub-folder or .ipynb per student)")
    p.add_argument("--output", help="CSV path (default: <grading dir>/grades/<assignment>.csv)")
    p.add_argument("--workers", type=int, default=0, help="parallel kernels (default: one per core)")
    p.add_argument("--timeout", type=int, help="seconds per cell (default: c.Execute.timeout of the config)")
    p.add_argument("--isolation", choices=["auto", "bwrap", "none"], default="auto",
                   help="sandbox with bubblewrap (auto: when it works here)")
    p.add_argument("--memory", type=int,
                   help=f"MiB of memory: all of a submission's processes together where a control group is available, "
                   f"else each process (default {limits.memory_bytes // 2**20})")
    p.add_argument("--cpu", type=int, help=f"CPU seconds per process (default {limits.cpu_seconds})")
    p.add_argument("--processes", type=int, help=f"processes and threads per kernel (default {limits.processes})")
    p.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    p.add_argument("--verdict", choices=["auto", "trusted", "kernel"], default="auto",
                   help="where test cells run: trusted (a separate process; the student's kernel only answers "
                        "calls with data), kernel (in the student's kernel, best-effort), auto (trusted for the "
                        "assignments that support it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cluster", metavar="tcp://HOST:8786",
                   help="run the sandboxed execution on the workers of this Dask scheduler (each worker thread is "
                        "one sandbox; --workers is ignored); this process alone writes the gradebook and results")
    p.set_defaults(run=cmd_grade)

    p = commands.add_parser("feedback", help="one HTML feedback file per student, without hidden tests")
    p.add_argument("assignment")
    p.set_defaults(run=cmd_feedback)

    p = commands.add_parser("export", help="grades for nbgrader (CSV with per-test columns), Canvas and Moodle")
    p.add_argument("assignment")
    p.add_argument("--canvas-column", help="the assignment's column in Canvas, e.g. 'Losses (12345)'")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("report", help="item analysis: pass rates, common failures, score histogram, timings")
    p.add_argument("assignment")
    p.set_defaults(run=cmd_report)

    p = commands.add_parser("publish", help="write the student-facing copy of the course (no solutions)")
    p.add_argument("dest", help="folder to write (e.g. a clone of the public repository)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder that is not a git clone")
    p.set_defaults(run=cmd_publish)

    p = commands.add_parser("pages", help="write the website's exercise pages (book/exercises/) from exercises/ "
                                           "and the helper reference (book/api.md) from dlcourse/")
    p.add_argument("--check", action="store_true", help="only report pages out of sync (exit 1 if any)")
    p.set_defaults(run=cmd_pages)

    p = commands.add_parser("exchange", help="nbgrader's exchange (JupyterHub's Assignments tab): release an "
                                             "assignment, collect its submissions, return feedback")
    p.add_argument("action", choices=["release", "collect", "feedback"])
    p.add_argument("assignment", help="assignment name, e.g. 01-losses")
    p.add_argument("--exchange", help="the exchange folder (default: $NBGRADER_EXCHANGE_ROOT, else nbgrader's "
                   "Exchange.root, else /srv/nbgrader/exchange)")
    p.add_argument("--force", action="store_true", help="release: replace an earlier release")
    p.add_argument("--duedate", help="release: the due date, e.g. '2026-12-01 17:00:00 UTC' (late penalties)")
    p.add_argument("--before-duedate", action="store_true",
                   help="collect: only submissions made by the gradebook's due date (as nbgrader's option)")
    p.set_defaults(run=cmd_exchange)

    p = commands.add_parser("list", help="list the assignments")
    p.set_defaults(run=cmd_list)
    return parser


# Errors an instructor can fix: the pipeline's own, and those of the files and settings it reads (a folder that
# does not exist, a notebook without its setup cell, a bad _config.yml). Anything else is a bug: its traceback shows.
USAGE_ERRORS = (AutograderError, OSError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USAGE_ERRORS as error:
        if args.verbose:
            raise
        if isinstance(error, AutograderError):   # its message says what to do
            print(f"error: {error}", file=sys.stderr)
        else:
            print(f"error: {type(error).__name__}: {error} (-v shows the traceback)", file=sys.stderr)
        return 2
