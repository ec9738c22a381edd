"""Repair a submitted notebook before nbgrader sees it, logging every repair.

Real submissions are damaged in a few recurring ways: a copied cell carries a second copy of its ``grade_id``
(nbgrader then stops the whole batch), a cell's nbgrader metadata is lost (Colab or an editor drops it), a test
cell is deleted, Colab saves nbformat 4.0 without cell ids and adds its own metadata, a kernelspec is missing or
names another environment's kernel. Each repair below is one small function ``(notebook, reference) -> [what
was done]``; :data:`REPAIRS` runs them in order. The reference is the released student notebook, the exact
notebook the student started from (the grader regenerates it with the gradebook, so both agree).

Repairs are of two kinds. A *format* repair (nbformat version, cell ids, Colab's metadata, the kernelspec) fixes
what a front end writes when the student did exactly what the course asked: its note starts with
:data:`FORMAT_NOTE`, the student's feedback leaves it out and the instructor's report lists it
(:func:`is_format_only`). A *structural* repair (a copied, deleted or re-typed cell) keeps its note for the student.

A file that is not a notebook at all (empty, not JSON, JSON without cells) cannot be repaired:
:func:`load_submission` raises :class:`Rejected` with the reason, and the grader scores it 0.
"""

from __future__ import annotations

import copy
import json

import nbformat
from nbformat import NotebookNode
from nbformat.v4.nbbase import random_cell_id

from autograder.notebooks import ReleasedNotebook, defined_names, hint, nbgrader_meta

COLAB_CELL_KEYS = ("colab", "id", "outputId", "executionInfo", "colab_type")
FORMAT_NOTE = "format: "   # starts the note of every format-only repair


def is_format_only(note: str) -> bool:
    """Whether a repair note is of format only (silent to the student; listed for the instructor)."""
    return note.startswith(FORMAT_NOTE)


class Rejected(ValueError):
    """The file cannot be graded; the message says why in words an instructor can pass on."""


# The released notebook a submission is repaired against (the name the repairs and their tests use).
Reference = ReleasedNotebook


def load_submission(raw: bytes) -> tuple[NotebookNode, list[str]]:
    """Parse a submitted file into an nbformat 4 notebook; raise :class:`Rejected` if it is not one."""
    if not raw.strip():
        raise Rejected("the file is empty" if not raw else "the file holds only whitespace")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejected(f"not a text file (byte {error.start} is not UTF-8): not a notebook") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise Rejected(f"not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}): the file "
                       f"is damaged or is not a notebook") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        raise Rejected("valid JSON but not a Jupyter notebook (no list of cells)")
    repairs = []
    version = data.get("nbformat")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:   # nbformat raises many types for malformed notebooks
        raise Rejected(f"a notebook nbformat cannot read: {error}") from None
    if version != 4:
        repairs.append(f"{FORMAT_NOTE}converted from nbformat {version} to nbformat 4")
    for cell in nb.cells:   # fields a hand-edited or foreign notebook may lack
        cell.setdefault("metadata", NotebookNode())
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
    return nb, repairs


def upgrade_format(nb: NotebookNode, reference: Reference) -> list[str]:
    """nbformat 4.0-4.4 (Colab saves 4.0) has no cell ids; 4.5 requires unique ones."""
    missing = [c for c in nb.cells if not c.get("id")]
    seen, duplicated = set(), []
    for cell in nb.cells:
        if cell.get("id") and cell.get("id") in seen:
            duplicated.append(cell)
        seen.add(cell.get("id"))
    if nb.nbformat_minor >= 5 and not missing and not duplicated:
        return []
    old_minor = nb.nbformat_minor
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for cell in missing + duplicated:
        cell["id"] = random_cell_id()
    done = []
    if old_minor < 5:
        done.append(f"nbformat 4.{old_minor} without cell ids: upgraded to 4.5, {len(missing)} cell ids added")
    elif missing:
        done.append(f"{len(missing)} cells had no id: ids added")
    if duplicated:
        done.append(f"{len(duplicated)} cells repeated another cell's id: new ids given")
    return done


def strip_colab_metadata(nb: NotebookNode, reference: Reference) -> list[str]:
    """Colab adds per-cell metadata (its own ids, execution info) and notebook settings; keep the course's."""
    count = 0
    for cell in nb.cells:
        keys = [k for k in COLAB_CELL_KEYS if k in cell.metadata]
        for key in keys:
            del cell.metadata[key]
        count += bool(keys)
    done = []
    if count:
        done.append(f"removed Colab metadata from {count} cells")
    for key in ("colab", "accelerator", "gpuClass"):
        expected = reference.released.metadata.get(key)
        if nb.metadata.get(key) != expected:
            if expected is None:
                del nb.metadata[key]
            else:
                nb.metadata[key] = copy.deepcopy(expected)
            done.append(f"notebook metadata {key!r} reset to the course's")
    return done


def fix_kernelspec(nb: NotebookNode, reference: Reference) -> list[str]:
    """A missing kernelspec crashes autograde; another environment's kernel name cannot be started."""
    found = nb.metadata.get("kernelspec")
    expected = reference.kernelspec
    if found == expected:
        return []
    nb.metadata["kernelspec"] = copy.deepcopy(expected)
    if not found:
        return [f"no kernelspec: set to {expected.get('name')!r}"]
    if found.get("name") != expected.get("name"):
        return [f"foreign kernel {found.get('name')!r}: set to {expected.get('name')!r}"]
    return ["incomplete kernelspec (Colab omits 'language'): set to the course's"]


GRADE_KEYS = ("grade", "solution", "locked", "task", "points")


def restore_grade_metadata(nb: NotebookNode, reference: Reference) -> list[str]:
    """nbgrader metadata that the released notebook does not have is put right against it.

    A cell with a ``grade_id`` the released notebook does not know (renamed, or an extra graded cell) loses its
    nbgrader metadata and runs as an ordinary cell (re-identification may then recognise it); a known cell whose
    metadata says something else than the released cell's (an answer re-marked as a test, ``"locked": true`` on an
    answer cell, other points) gets the released cell's metadata back. nbgrader would otherwise stop on the whole
    notebook, or grade what the student declared.
    """
    done = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        released = reference.cells.get(grade_id) if isinstance(grade_id, str) else None
        if released is None:
            del cell.metadata["nbgrader"]
            shown = repr(grade_id)[:60]
            done.append(f"cell {index} had nbgrader metadata with a grade_id the assignment does not have "
                        f"({shown}): it now runs as an ordinary cell")
            continue
        expected = nbgrader_meta(released)
        differs = [k for k in GRADE_KEYS if bool(expected.get(k)) != bool(meta.get(k))
                   or (k == "points" and expected.get("grade") and meta.get(k) != expected.get(k))]
        if differs:
            cell.metadata["nbgrader"] = copy.deepcopy(released.metadata["nbgrader"])
            for key in ("deletable", "editable"):
                if key in released.metadata:
                    cell.metadata[key] = released.metadata[key]
            changed = ", ".join(f"{k}={meta.get(k)!r}" for k in differs)[:200]
            done.append(f"cell {index} ({grade_id!r}) had nbgrader metadata that differs from the released "
                        f"notebook's ({changed}): restored")
    return done


def _position_score(nb: NotebookNode, index: int, grade_id: str, reference: Reference) -> tuple:
    """How well cell ``index`` sits where ``grade_id`` belongs: after the cells that precede it in the
    released notebook, before those that follow it (higher is better)."""
    order = list(reference.cells)
    rank = order.index(grade_id)
    before = after = 0
    for position, cell in enumerate(nb.cells):
        other = nbgrader_meta(cell).get("grade_id")
        if other in reference.cells and other != grade_id:
            if order.index(other) < rank and position < index:
                before += 1
            elif order.index(other) > rank and position > index:
                after += 1
    return before + after, -index


def deduplicate_grade_ids(nb: NotebookNode, reference: Reference) -> list[str]:
    """Keep one cell per ``grade_id`` (nbgrader stops the batch otherwise); copies become ordinary cells.

    The cell kept is the one whose content is the released cell's (for locked cells) and that sits where the
    released notebook has it (after the cells before it, before the cells after it).
    """
    positions: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id:
            positions.setdefault(grade_id, []).append(index)
    done = []
    for grade_id, indices in positions.items():
        if len(indices) < 2:
            continue
        released = reference.cells.get(grade_id)

        def rank(index: int) -> tuple:
            same = released is not None and nb.cells[index].source.strip() == released.source.strip()
            known = _position_score(nb, index, grade_id, reference) if released is not None else (0, -index)
            return (same if nbgrader_meta(released or {}).get("locked") else True, *known)

        keep = max(indices, key=rank)
        for index in indices:
            if index != keep:
                del nb.cells[index].metadata["nbgrader"]
        copies = ", ".join(str(i) for i in indices if i != keep)
        done.append(f"grade_id {grade_id!r} appeared {len(indices)} times (cells {', '.join(map(str, indices))}): "
                    f"kept cell {keep}; the copy (cell {copies}) now runs as an ordinary cell")
    return done


def reidentify_cells(nb: NotebookNode, reference: Reference) -> list[str]:
    """Give back lost nbgrader metadata to cells recognised by their content.

    An answer cell is recognised by the functions or classes it defines, a test cell by its first comment
    line (CONTRIBUTING: it says what the cell checks), any other locked cell by its exact content. Only
    ``grade_id``s missing from the notebook are given out, each to one cell.
    """
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells} - {None}
    done = []
    for index, cell in enumerate(nb.cells):
        if nbgrader_meta(cell).get("grade_id"):
            continue
        match = None
        for grade_id, released in reference.cells.items():
            if grade_id in present or released.cell_type != cell.cell_type:
                continue
            if grade_id in reference.answers:
                names = reference.answers[grade_id]
                if names and names <= set(defined_names(cell.source)):
                    match, how = grade_id, f"it defines {', '.join(sorted(names))}"
            elif grade_id in reference.tests:
                marker = reference.tests[grade_id]
                if marker and hint(cell.source) == marker:
                    match, how = grade_id, f"its first line is the test's ({marker[:40]}...)"
            elif cell.source.strip() == released.source.strip() and cell.source.strip():
                match, how = grade_id, "its content is that cell's"
            if match:
                break
        if match is None:
            continue
        cell.metadata["nbgrader"] = copy.deepcopy(reference.cells[match].metadata["nbgrader"])
        for key in ("deletable", "editable"):
            if key in reference.cells[match].metadata:
                cell.metadata[key] = reference.cells[match].metadata[key]
        present.add(match)
        done.append(f"cell {index} had lost its nbgrader metadata: re-identified as {match!r} ({how})")
    return done


def restore_deleted_cells(nb: NotebookNode, reference: Reference) -> list[str]:
    """Put back code cells of the released notebook that are missing: a deleted test cell (nbgrader restores its
    hidden tests from the gradebook), or an answer cell (its empty stub, which scores 0)."""
    present = {nbgrader_meta(c).get("grade_id") for c in nb.cells} - {None}
    order = list(reference.cells)
    done = []
    for grade_id in order:
        released = reference.cells[grade_id]
        if grade_id in present or released.cell_type != "code":
            continue
        # Insert after the nearest earlier cell of the released notebook that the submission has.
        position = 0
        for earlier in reversed(order[:order.index(grade_id)]):
            indices = [i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == earlier]
            if indices:
                position = indices[0] + 1
                break
        cell = copy.deepcopy(released)
        cell["id"] = random_cell_id()
        nb.cells.insert(position, cell)
        present.add(grade_id)
        kind = "test cell" if grade_id in reference.tests else (
            "answer cell" if grade_id in reference.answers else "locked cell")
        what = " (its hidden tests come from the gradebook)" if kind == "test cell" else (
            ": the empty stub, so its tests score 0" if kind == "answer cell" else "")
        done.append(f"{kind} {grade_id!r} was deleted: restored at cell {position}{what}")
    return done


# Repairs of the file's format only: their notes start with FORMAT_NOTE (see the module docstring).
FORMAT_REPAIRS = (upgrade_format, strip_colab_metadata, fix_kernelspec)

# In order. Cell ids first: later steps insert and compare cells. Metadata the released notebook does not have is
# put right before cells are matched by grade_id. Duplicates before re-identification: a
# copy must not hold the grade_id a cell with lost metadata needs. Restoring deleted cells comes last, so that
# only what neither de-duplication nor re-identification found is put back.
REPAIRS = [upgrade_format, strip_colab_metadata, fix_kernelspec, restore_grade_metadata, deduplicate_grade_ids,
           reidentify_cells, restore_deleted_cells]


def repair(nb: NotebookNode, reference: Reference) -> list[str]:
    """Apply every repair in order; return what was done (empty for a well-formed submission)."""
    done = []
    for step in REPAIRS:
        done += [FORMAT_NOTE + note if step in FORMAT_REPAIRS else note for note in step(nb, reference)]
    return done
