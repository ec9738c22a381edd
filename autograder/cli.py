"""Command line: ``python -m autograder <command>``. Run from the repository root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.nbgrader_api import ROOT, NbgraderError, assignments


def cmd_release(args: argparse.Namespace) -> int:
    from autograder.release import release

    for path in release(args.assignments or None):
        print(f"released {path.relative_to(ROOT)}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from autograder.release import sync_setup_cells

    changed = sync_setup_cells(check_only=args.check)
    for path in changed:
        print(f"{'out of sync' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if args.check and changed:
        print("Run `python -m autograder sync` to update them.", file=sys.stderr)
        return 1
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from autograder.grade import grade

    results, csv_path = grade(args.assignment, Path(args.submissions), Path(args.output) if args.output else None)
    width = max(len(r.student_id) for r in results)
    for r in results:
        print(f"{r.student_id:<{width}}  {r.score:g}/{r.max_score:g}  {r.status}")
    print(f"grades written to {csv_path}")
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


def cmd_list(args: argparse.Namespace) -> int:
    for name in assignments():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("release", help="regenerate student notebooks in exercises/ from solutions/")
    p.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    p.set_defaults(run=cmd_release)

    p = commands.add_parser("sync", help="update every notebook's Colab setup cell from _config.yml")
    p.add_argument("--check", action="store_true", help="only report notebooks out of sync (exit 1 if any)")
    p.set_defaults(run=cmd_sync)

    p = commands.add_parser("grade", help="autograde submitted notebooks and write a grades CSV")
    p.add_argument("assignment", help="assignment name, e.g. 01-losses")
    p.add_argument("submissions", help="folder with one sub-folder (or one .ipynb) per student")
    p.add_argument("--output", help="CSV path (default: <grading dir>/grades/<assignment>.csv)")
    p.set_defaults(run=cmd_grade)

    p = commands.add_parser("pages", help="write the website's exercise pages (book/exercises/) from exercises/")
    p.add_argument("--check", action="store_true", help="only report pages out of sync (exit 1 if any)")
    p.set_defaults(run=cmd_pages)

    p = commands.add_parser("list", help="list the assignments")
    p.set_defaults(run=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except NbgraderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
