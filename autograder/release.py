"""Release: generate the student notebooks in ``exercises/`` from the sources in ``solutions/``.

Steps, in order:
1. sync the Colab setup cells of every notebook with ``_config.yml`` (the release must carry current settings);
2. run nbgrader's ``generate_assignment`` without a database (releasing needs no gradebook; grading rebuilds
   the same checksums from the same sources);
3. rewrite each generated notebook in canonical form, so the same sources always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.nbgrader_api import ROOT, assignments, check, load_config, make_api
from dlcourse.course import SETUP_TAG, load_config as load_course_config, setup_cell_source


def notebooks_with_setup_cells(root: Path = ROOT) -> list[Path]:
    """Every notebook that must begin with the Colab setup cell: chapters and assignment sources."""
    return sorted([*(root / "book").rglob("*.ipynb"), *(root / "solutions").rglob("*.ipynb")])


def sync_setup_cells(root: Path = ROOT, check_only: bool = False) -> list[Path]:
    """Make every notebook's setup cell match ``_config.yml``; return the notebooks that were (or would be) changed.

    Args:
        check_only: report notebooks out of sync without writing them.
    """
    expected = setup_cell_source(load_course_config(root))
    changed = []
    for path in notebooks_with_setup_cells(root):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if SETUP_TAG in c.get("metadata", {}).get("tags", [])]
        if not cells:
            raise ValueError(f"{path.relative_to(root)} has no cell tagged {SETUP_TAG!r}; copy the first cell "
                             f"of any chapter (see CONTRIBUTING.md)")
        if cells[0].source != expected:
            changed.append(path)
            if not check_only:
                cells[0].source = expected
                write_canonical(nb, path)
    return changed


def write_canonical(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook without outputs or execution counts, in nbformat's standard layout."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def release(names: list[str] | None = None, root: Path = ROOT, release_dir: Path | None = None) -> list[Path]:
    """Generate the student notebooks of the given assignments (all by default); return their paths.

    Args:
        release_dir: where to write them instead of ``exercises/`` (the tests compare the two).
    """
    if release_dir is None:
        sync_setup_cells(root)
    config = load_config(GenerateAssignment={"no_database": True}, SaveCells={"enabled": False})
    if release_dir is not None:
        config.CourseDirectory.release_directory = str(release_dir)
    api = make_api(config)
    written = []
    for name in names or assignments(root):
        check(api.generate_assignment(name, force=True, create=False), f"generate_assignment {name}")
        for path in sorted((release_dir or root / "exercises").joinpath(name).glob("*.ipynb")):
            write_canonical(nbformat.read(path, as_version=4), path)
            written.append(path)
    return written
