"""Release: generate the student notebooks in ``exercises/`` from the sources in ``solutions/``.

Steps, in order:
1. sync the Colab setup cells of every notebook with ``_config.yml`` (the release must carry current settings),
   and its Colab accelerator metadata with what it does (only notebooks that train with
   ``dlcourse.torch_utils`` ask Colab for a GPU), and the final pre-submission check cell of each released
   source notebook with its graded cells (the check
   must know the cells the students receive);
2. run nbgrader's ``generate_assignment`` without a database (releasing needs no gradebook; grading rebuilds
   the same checksums from the same sources);
3. rewrite each generated notebook in canonical form, so the same sources always give the same bytes, with
   the stubs of the answer cells saying what to write, or holding the defective code a debugging exercise
   gives (:func:`insert_given`);
4. regenerate the website's exercise pages, which describe the released notebooks.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from autograder.course import SETUP_TAG, load_config as load_course_config, setup_cell_source
from autograder.nbgrader_api import ROOT, assignments, check, load_config, make_api
from autograder.notebooks import ReleasedNotebook, is_answer
from dlcourse.submission import CHECK_TAG, check_cell_source

CHECK_GRADE_ID = "check"


def notebooks_with_setup_cells(root: Path = ROOT) -> list[Path]:
    """Every notebook that must begin with the Colab setup cell: chapters and assignment sources."""
    return sorted([*(root / "book").rglob("*.ipynb"), *(root / "solutions").rglob("*.ipynb")])


_TORCH_UTILS = re.compile(r"\bdlcourse\.torch_utils\b|\bfrom dlcourse import\b[^\n]*\btorch_utils\b")
GPU_TYPE = "T4"   # Colab's free GPU


def needs_gpu(nb: nbformat.NotebookNode) -> bool:
    """Does the notebook train networks with ``dlcourse.torch_utils`` (so that Colab should offer it a GPU)?

    NumPy notebooks, and those that use PyTorch only to check a result on the CPU, do not: asking for a GPU there
    spends students' free GPU quota and brings "cannot connect to GPU" dialogs for nothing.
    """
    return any(c.cell_type == "code" and _TORCH_UTILS.search(c.source) for c in nb.cells)


def _sync_accelerator(nb: nbformat.NotebookNode) -> bool:
    """Set (or remove) the notebook metadata that makes Colab offer a GPU runtime; True when it changed."""
    before = json.dumps(nb.metadata, sort_keys=True)
    colab = nb.metadata.setdefault("colab", {})
    if needs_gpu(nb):
        nb.metadata["accelerator"] = "GPU"
        colab["gpuType"] = GPU_TYPE
    else:
        nb.metadata.pop("accelerator", None)
        colab.pop("gpuType", None)
    return json.dumps(nb.metadata, sort_keys=True) != before


def sync_setup_cells(root: Path = ROOT, check_only: bool = False) -> list[Path]:
    """Make every notebook's setup cell match ``_config.yml``, and its accelerator metadata match
    :func:`needs_gpu`; return the notebooks that were (or would be) changed.

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
        accelerator_changed = _sync_accelerator(nb)
        if cells[0].source != expected or accelerator_changed:
            changed.append(path)
            if not check_only:
                cells[0].source = expected
                write_canonical(nb, path)
    return changed


def expected_check_cell(nb: nbformat.NotebookNode, notebook_name: str) -> str:
    """The check cell's source for a source notebook: its nbgrader code cells with their kind or points."""
    return check_cell_source(notebook_name, ReleasedNotebook.from_node(notebook_name, nb).code_cells(
        skip=[CHECK_GRADE_ID]))


def sync_check_cells(names: list[str] | None = None, root: Path = ROOT, check_only: bool = False) -> list[Path]:
    """Make the last cell of each source notebook of ``names`` (default: all assignments) the locked
    pre-submission check cell (``dlcourse.submission``) for its current graded cells; return the notebooks
    that were (or would be) changed."""
    changed = []
    for name in names or assignments(root):
        for path in sorted((root / "solutions" / name).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            source = expected_check_cell(nb, path.name)
            found = [c for c in nb.cells if CHECK_TAG in c.get("metadata", {}).get("tags", [])]
            cell = found[-1] if found else nbformat.v4.new_code_cell(source)
            metadata = {"nbgrader": {"grade": False, "grade_id": CHECK_GRADE_ID, "locked": True,
                                     "schema_version": 3, "solution": False, "task": False},
                        "tags": [CHECK_TAG]}
            if len(found) == 1 and nb.cells[-1] is cell and cell.source == source and \
                    all(cell.metadata.get(k) == v for k, v in metadata.items()):
                continue
            changed.append(path)
            if check_only:
                continue
            nb.cells = [c for c in nb.cells if not any(c is f for f in found)]
            cell.source = source
            cell.metadata.update(metadata)
            nb.cells.append(cell)
            write_canonical(nb, path)
    return changed


_STUB = "raise NotImplementedError()"


def name_stubs(source: str) -> str:
    """Make each stub of an answer cell say what to write: nbgrader's ``raise NotImplementedError()`` becomes
    ``raise NotImplementedError("write mse_loss here")``, naming the function (or ``Class.method``) it is in.

    nbgrader's ``ClearSolutions.code_stub`` is one fixed string for every cell, hence this step of the release.
    A stub outside any function says "write your code here".
    """
    if _STUB not in source:
        return source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    where: dict[int, str] = {}

    def visit(node: ast.AST, names: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = names
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = (*names, child.name)
            if isinstance(child, ast.Raise) and isinstance(child.exc, ast.Call) and not child.exc.args \
                    and isinstance(child.exc.func, ast.Name) and child.exc.func.id == "NotImplementedError":
                where[child.lineno] = ".".join(names)
            visit(child, inner)

    visit(tree, ())
    lines = source.split("\n")
    for lineno, name in where.items():
        line = lines[lineno - 1]
        if line.strip() == _STUB:
            message = f"write {name} here" if name else "write your code here"
            lines[lineno - 1] = line.replace(_STUB, f"raise NotImplementedError({message!r})".replace("'", '"'))
    return "\n".join(lines)


_GIVEN = re.compile(r"^(?P<indent>[ \t]*)### GIVEN(?: (?P<code>.*))?$")


def insert_given(source: str) -> str:
    """Release the defective code of a debugging exercise: each stub followed by ``### GIVEN`` lines becomes the
    code those lines hold, without the markers.

    In a source notebook, the lines right after ``### END SOLUTION`` may say what the student receives instead
    of the solution, one line each (``### GIVEN return torch.softmax(logits, dim=1)``; a bare ``### GIVEN``
    gives nothing, e.g. for a missing line). In the solution they are comments; in the released notebook they
    replace nbgrader's stub, so that the student gets code that runs and has a defect to find. A stub without
    them stays a stub.

    Raises:
        ValueError: ``### GIVEN`` lines that do not follow a solution region.
    """
    lines = source.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _GIVEN.match(line):
            raise ValueError(f"a `### GIVEN` line must follow `### END SOLUTION`: {line.strip()!r}")
        stub = line.strip() == "# YOUR CODE HERE" and index + 2 < len(lines) and \
            lines[index + 1].strip() == _STUB and _GIVEN.match(lines[index + 2])
        if not stub:
            out.append(line)
            index += 1
            continue
        index += 2
        while index < len(lines) and (given := _GIVEN.match(lines[index])):
            if given["code"] is not None:
                out.append(given["indent"] + given["code"])
            index += 1
    return "\n".join(out)


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
        sync_check_cells(names, root)
    config = load_config(GenerateAssignment={"no_database": True}, SaveCells={"enabled": False})
    if release_dir is not None:
        config.CourseDirectory.release_directory = str(release_dir)
    api = make_api(config)
    written = []
    for name in names or assignments(root):
        check(api.generate_assignment(name, force=True, create=False), f"generate_assignment {name}")
        for path in sorted((release_dir or root / "exercises").joinpath(name).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if is_answer(cell):
                    cell.source = name_stubs(insert_given(cell.source))
            write_canonical(nb, path)
            written.append(path)
    if release_dir is None:
        from autograder.site import write_pages

        write_pages(root)   # the website's exercise pages describe the released notebooks
    return written
