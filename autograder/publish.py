"""Publish: write the student-facing copy of the course, ready to push to a public repository.

Steps, in order:

1. ``select``: the files git tracks under :data:`PUBLISHED` (the book, the student notebooks, the helper package,
   the requirements and the configuration). An allow-list: ``solutions/``, ``autograder/``, ``tests/``,
   ``bench/``, the grading folder and anything new stay out unless listed here.
2. ``copy`` them into DEST (a folder that is empty, a git clone, or an earlier publish: its files other than
   ``.git`` are replaced).
3. ``verify``: no solution region and no hidden test of any source notebook appears in DEST (:func:`find_leaks`),
   and no held-out set of the grading folder, nor one of its arrays, nor a file named like one
   (:func:`autograder.heldout.find_heldout_copies`). A leak removes nothing silently: publish stops with the list,
   and DEST should not be pushed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.heldout import find_heldout_copies
from autograder.nbgrader_api import ROOT, AutograderError
from autograder.notebooks import MARKERS, public_lines, specific_lines

PUBLISHED = ["book", "exercises", "dlcourse", "_config.yml", "_toc.yml", "requirements.txt", "pyproject.toml",
             "README.md", "LICENSE", "LICENSE.md", "package.json", "package-lock.json", ".gitignore"]
MARKER = ".published-by-autograder"


@dataclass
class Leak:
    path: str           # the published file
    source: str         # the source notebook and the kind of region
    lines: list[str]    # the region's lines found in the file


def secret_regions(root: Path = ROOT) -> list[tuple[str, list[str]]]:
    """(where, distinctive lines) of every solution region and hidden-test region of the source notebooks.

    A region's distinctive lines are those long enough to be specific and not also public: a line that appears
    outside the secret regions of some source notebook (a visible test repeated in the hidden ones, a given layer
    that a later assignment hands out) is not evidence of a leak.
    """
    public, regions = set(), []
    for path in sorted((root / "solutions").rglob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        public |= public_lines(cells)
        for index, cell in enumerate(cells):
            for region in MARKERS.regions(cell.source):
                regions.append((f"{path.relative_to(root)} cell {index} ({region.kind})", region.lines))
    return [(where, lines) for where, lines in ((w, specific_lines(ls, public)) for w, ls in regions) if lines]


def find_leaks(dest: Path, root: Path = ROOT) -> list[Leak]:
    """Regions of which at least half the distinctive lines (at least two, or the only one) appear in one file."""
    texts = {}
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and ".git" not in p.relative_to(dest).parts):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        # Notebooks store source as JSON strings: compare the decoded text too.
        texts[path.relative_to(dest).as_posix()] = text + "\n" + _notebook_text(text)
    leaks = []
    for where, lines in secret_regions(root):
        needed = 1 if len(lines) == 1 else max(2, (len(lines) + 1) // 2)
        for name, text in texts.items():
            found = [line for line in lines if line in text]
            if len(found) >= needed:
                leaks.append(Leak(name, where, found))
    return leaks


def _notebook_text(text: str) -> str:
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception:   # not a notebook
        return ""
    return "\n".join(cell.source for cell in nb.cells)


def published_files(root: Path = ROOT) -> list[str]:
    """The tracked files under :data:`PUBLISHED`, relative to the repository root."""
    listing = subprocess.run(["git", "ls-files", "-z", "--", *PUBLISHED], cwd=root, capture_output=True,
                             text=True, check=True).stdout
    return sorted(f for f in listing.split("\0") if f and (root / f).is_file())


def publish(dest: Path, root: Path = ROOT, force: bool = False) -> list[str]:
    """Write the student-facing copy into ``dest`` and verify it; return the files written."""
    dest, root = Path(dest).resolve(), root.resolve()
    if dest == root or dest in root.parents or root in dest.parents:
        raise AutograderError(f"{dest} is, holds or lies inside the course repository; choose a folder outside it")
    if dest.exists() and any(dest.iterdir()) and not ((dest / ".git").exists() or (dest / MARKER).exists()
                                                      or force):
        raise AutograderError(f"{dest} is not empty and is neither a git clone nor an earlier publish; "
                            f"use --force to replace its content")
    files = published_files(root)                                                      # step 1
    dest.mkdir(parents=True, exist_ok=True)
    for entry in dest.iterdir():                                                       # step 2
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for relative in files:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
    (dest / MARKER).write_text("Written by `python -m autograder publish`; do not edit, publish again.\n")
    leaks = find_leaks(dest, root)                                                     # step 3
    if leaks:
        details = "\n".join(f"  {leak.path}: {leak.source}: {leak.lines[0][:80]!r} (+{len(leak.lines) - 1} lines)"
                            for leak in leaks)
        raise AutograderError(f"{len(leaks)} solution or hidden-test regions appear in {dest}; do not push it:\n"
                            f"{details}")
    copies = find_heldout_copies(dest)
    if copies:
        raise AutograderError(f"held-out grading data appears in {dest}; do not push it, remove it from the "
                            f"repository:\n" + "\n".join(f"  {copy}" for copy in copies))
    return files
