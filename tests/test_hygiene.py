"""Repository rules that keep grading fair and the build reproducible."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import nbformat
import pytest
import yaml

from autograder.notebooks import MARKERS, SOLUTION, is_answer, is_test, nbgrader_meta, secret_lines
from autograder.release import needs_gpu, sync_setup_cells
from autograder.course import SETUP_TAG
from conftest import ROOT

TRACKED = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
NOTEBOOKS = sorted(p for p in TRACKED if p.endswith(".ipynb"))
SOURCES = [p for p in NOTEBOOKS if p.startswith("solutions/")]
STUDENT = [p for p in NOTEBOOKS if p.startswith("exercises/")]
CHAPTERS = [p for p in NOTEBOOKS if p.startswith("book/")]


def read(path: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_notebook_is_committed_clean(path):
    """Is the notebook free of outputs and execution counts, with a python3 kernelspec and no raw cells?"""
    nb = read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        assert cell.cell_type != "raw", "raw cells do not exist on Colab"
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit notebooks without outputs"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "a kernelspec is required (autograde)"


# The notebooks that train networks on a GPU: the PyTorch chapters and assignments (and nothing else).
GPU_NOTEBOOKS = {"book/08-pytorch.ipynb", "book/09-cnn.ipynb", "book/10-practical-tricks.ipynb",
                 "book/12-debugging-training.ipynb",
                 "solutions/05-pytorch/pytorch.ipynb", "solutions/06-cnn/cnn.ipynb",
                 "exercises/05-pytorch/pytorch.ipynb", "exercises/06-cnn/cnn.ipynb",
                 "solutions/10-capstone/capstone.ipynb", "exercises/10-capstone/capstone.ipynb"}
NUMPY_NOTEBOOKS = {"book/01-ml-recipe.ipynb", "book/02-loss-functions.ipynb", "book/03-gradients.ipynb",
                   "book/04-gradient-descent.ipynb", "book/05-neural-networks.ipynb",
                   "book/06-backpropagation.ipynb", "book/07-numpy-net.ipynb",
                   *(f"{kind}/{name}" for kind in ("solutions", "exercises")
                     for name in ("01-losses/losses.ipynb", "02-gradient-descent/gradient_descent.ipynb",
                                  "03-backprop/backprop.ipynb", "04-numpy-net/numpy_net.ipynb",
                                  "08-regularization/regularization.ipynb"))}


@pytest.mark.parametrize("path", CHAPTERS + SOURCES + STUDENT)
def test_first_code_cell_is_the_setup_cell_and_only_torch_notebooks_ask_for_a_gpu(path):
    """Does the notebook start with the Colab setup cell, and ask Colab for a GPU runtime exactly when it trains
    with PyTorch? (A NumPy notebook on a GPU runtime spends the student's free GPU quota.)"""
    nb = read(path)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert SETUP_TAG in first_code.metadata.get("tags", []), "the first code cell must be the setup cell"
    asks = nb.metadata.get("accelerator") == "GPU" or "gpuType" in nb.metadata.get("colab", {})
    assert asks == needs_gpu(nb), "run `python -m autograder sync` (accelerator metadata)"
    if path in GPU_NOTEBOOKS:
        assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"]
    elif path in NUMPY_NOTEBOOKS:
        assert not asks, "a NumPy notebook must not ask Colab for a GPU"


def test_setup_cells_match_the_repository_settings():
    """Do the setup cells install from the repository named in _config.yml? (`python -m autograder sync`)"""
    assert sync_setup_cells(check_only=True) == []


@pytest.mark.parametrize("path", SOURCES)
def test_source_notebook_grading_metadata(path):
    """Unique grade ids, points on every test cell, marked solutions, and test cells that only assert."""
    nb = read(path)
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), f"duplicated grade_id: {sorted(i for i in ids if ids.count(i) > 1)}"
    assert any(is_test(c) for c in nb.cells) and any(is_answer(c) for c in nb.cells)
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if is_answer(cell):
            assert SOLUTION in [region.kind for region in MARKERS.regions(cell.source)], meta["grade_id"]
            assert [MARKERS.match(line) for line in cell.source.splitlines() if MARKERS.match(line)][-1] == \
                ("end", SOLUTION), f"{meta['grade_id']}: a solution region is not closed"
        if is_test(cell):
            assert meta.get("locked") and meta.get("points", 0) > 0, meta["grade_id"]
            assert meta["grade_id"].startswith("test_"), meta["grade_id"]
            body = ast.parse(MARKERS.strip(cell.source))
            last = body.body[-1]
            if scored_points(last) is not None:   # partial credit: `checks.score(points)` with the cell's points
                assert scored_points(last) == meta["points"], \
                    f"{meta['grade_id']}: checks.score({scored_points(last)}) but the cell is worth {meta['points']}"
            else:
                assert not yields_a_value(last), \
                    f"{meta['grade_id']}: a test cell's last line must not be an expression (it is read as a score)"
            assert "np.allclose" not in cell.source and "np.testing" not in cell.source, \
                f"{meta['grade_id']}: use dlcourse.testing assertions (robust to monkeypatching)"


@pytest.mark.parametrize("path", STUDENT)
def test_student_notebook_leaks_nothing(path):
    """Does the student version contain no solution and no hidden test?"""
    student = (ROOT / path).read_text(encoding="utf-8")
    for marker in MARKERS.texts:
        assert marker not in student
    source = read(path.replace("exercises/", "solutions/", 1))
    # Text the source shows outside any region (a visible test's `with inputs_unchanged(x=x):`, a line of code
    # quoted by the instructions) is public.
    public = "\n".join(MARKERS.public(cell.source) for cell in source.cells)
    for line in secret_lines(source.cells):   # long enough to be specific to the solution
        if line not in public:
            assert json_escaped(line) not in student, f"leaked: {line}"


def yields_a_value(statement: ast.stmt) -> bool:
    """Could this last statement of a cell produce an output value? Calls of assert_* helpers return None."""
    if not isinstance(statement, ast.Expr):
        return False
    call = statement.value
    if isinstance(call, ast.Call):
        name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
        return not name.startswith("assert")
    return True


def scored_points(statement: ast.stmt) -> float | None:
    """N when the statement is `checks.score(N)` (the cell's partial credit, see dlcourse.testing) or
    `accuracy_points(accuracy, zero_at, full_at, N)` (a graded scale, see dlcourse.heldout), else None."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value
        if isinstance(call.func, ast.Name) and call.func.id == "accuracy_points" and len(call.args) == 4 and \
                isinstance(call.args[3], ast.Constant):
            return call.args[3].value
        if isinstance(call.func, ast.Attribute) and call.func.attr == "score" and \
                isinstance(call.func.value, ast.Name) and call.func.value.id == "checks" and \
                len(call.args) == 1 and isinstance(call.args[0], ast.Constant):
            return call.args[0].value
    return None


def json_escaped(text: str) -> str:
    """The text as it appears inside a notebook's JSON."""
    return json.dumps(text)[1:-1]


def toc_files() -> list[str]:
    """Every page of _toc.yml (glob entries expanded), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for entry in part.get("chapters", []):
            if "file" in entry:
                files.append(entry["file"])
            else:
                files += sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.glob(entry["glob"] + ".*"))
    return files


def test_every_chapter_is_in_the_table_of_contents():
    """Is every chapter listed in _toc.yml, and does every entry exist?"""
    files = toc_files()
    for entry in files:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), f"missing page {entry}"
    for chapter in CHAPTERS:
        assert chapter.removesuffix(".ipynb") in files, f"{chapter} is not in _toc.yml"


def test_no_generated_or_private_files_are_tracked():
    """No build output, caches, gradebooks or submissions in git."""
    forbidden = re.compile(r"(^|/)(__pycache__|\.ipynb_checkpoints|_build|\.jupyter_cache|\.venv|\.grading|"
                           r"node_modules)(/|$)|\.pyc$|gradebook\.db$")
    assert not [p for p in TRACKED if forbidden.search(p)]


def test_ruff_is_clean():
    """Does the Python code pass the linter with the configuration of pyproject.toml (`ruff check .`)?"""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
