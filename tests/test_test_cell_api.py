"""The test-cell API (dlcourse.testing): complete for every test cell, protected by the tampering scan, and apart
from the chapter API and the instructor's tooling."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import build_submission, nbgrader_meta
from autograder.tampering import protected_helpers, protected_names, scan
from conftest import ROOT
from dlcourse import testing

SOLUTIONS = sorted(ROOT.glob("solutions/*/*.ipynb"))


def _python(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def names_test_cells_use(path: Path) -> dict[str, str]:
    """``{name: module}`` for every name a test cell of a source notebook (hidden tests included) uses that the
    notebook (a locked cell or the test cell itself) binds by ``from dlcourse.<module> import <name>``."""
    nb = nbformat.read(path, as_version=4)
    bound: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for node in ast.walk(ast.parse(_python(cell.source))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlcourse"):
                    bound.update({alias.asname or alias.name: node.module for alias in node.names})
                elif isinstance(node, ast.Import):
                    assert not any(a.name.startswith("dlcourse") for a in node.names), \
                        f"{path.name}: import dlcourse modules with `from dlcourse.x import name`"
    used = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            for node in ast.walk(ast.parse(_python(cell.source))):
                if isinstance(node, ast.Name) and node.id in bound:
                    used[node.id] = bound[node.id]
    return used


def released_locked_imports(path: Path) -> set[str]:
    """Names the locked cells of the released notebook import: the scan protects them in that notebook."""
    released = ROOT / "exercises" / path.parent.name / path.name
    nb = nbformat.read(released, as_version=4)
    return set(protected_names([c.source for c in nb.cells if c.cell_type == "code"
                                and nbgrader_meta(c).get("locked")])[0])


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_every_name_a_test_cell_uses_from_dlcourse_is_protected(path):
    """Is every dlcourse helper a test cell uses (hidden tests too) protected by the scan in that notebook: part of
    the test-cell API, or imported by a locked cell the student receives?"""
    used = names_test_cells_use(path)
    assert used, f"{path.name}: no test cell uses dlcourse (the parser missed the imports?)"
    protected = protected_helpers() | released_locked_imports(path)
    missing = {f"{module}.{name}" for name, module in used.items() if name not in protected}
    assert not missing, f"add these to dlcourse.testing (its lent helpers): {sorted(missing)}"
    # A name only a hidden test imports is not in the released notebook: the test-cell API must hold it.
    hidden_only = {name for name in used if name not in released_locked_imports(path)}
    assert hidden_only <= protected_helpers()


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.parent.name)
def test_no_exercise_asks_for_a_function_named_like_a_test_cell_helper(path):
    """The scan protects the test-cell API in every notebook: would an honest answer defining one of its names be
    flagged (as 09-debugging's own make_loader would be, were the loaders lent)?"""
    nb = nbformat.read(path, as_version=4)
    defined = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            for node in ast.parse(_python(cell.source)).body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    defined.add(node.name)
                elif isinstance(node, ast.Assign):
                    defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert not defined & protected_helpers()


def test_the_protected_set_is_exactly_the_test_cell_api_and_every_name_resolves():
    """Does the scan protect dlcourse.testing.__all__, no more and no less, and does each name import, from the
    module that defines it, as the same object the chapter modules offer?"""
    assert protected_helpers() == frozenset(testing.__all__)
    assert len(testing.__all__) == len(set(testing.__all__)), "a name lent twice"
    for name in testing.__all__:
        home = importlib.import_module(testing.home_module(name))
        assert getattr(testing, name) is getattr(home, name), name
    # The modules lent whole (the fixtures, the PyTorch helpers, the capstone's held-out set): every name.
    for module, names in testing.LENT.items():
        if names == testing.WHOLE_MODULE:
            assert set(importlib.import_module(module).__all__) <= set(testing.__all__), module
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        testing.fit   # a chapter helper no test cell uses is not part of the API


def test_importing_the_test_cell_api_imports_neither_torch_nor_matplotlib():
    """The NumPy assignments' test cells run with PyTorch unimportable: does `import dlcourse.testing` (with its
    guards) stay free of it, and of matplotlib, until a lent PyTorch helper is used?"""
    code = ("import sys; from dlcourse.testing import assert_close, without_shortcuts, finite_difference_gradient; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules); "
            "from dlcourse.testing import three_blobs; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.split() == ["False", "False", "True"]


def test_names_released_notebooks_import_from_the_chapter_modules_still_work():
    """Notebooks released before the split import the guards and fixtures from nnviz and torch_utils: are they the
    test-cell API's own objects there?"""
    from dlcourse import nnviz, torch_utils

    for module, names in [(nnviz, ["assert_torch_free", "without_shortcuts", "single_blas_thread", "progress"]),
                          (torch_utils, ["limited_threads", "without_training_helpers", "three_blobs",
                                         "recording_loader", "progress"])]:
        for name in names:
            expected = testing if name != "progress" else importlib.import_module("dlcourse.progress")
            assert getattr(module, name) is getattr(expected, name), f"{module.__name__}.{name}"
    # The chapter modules' public lists hold chapter helpers only.
    assert not set(nnviz.__all__) & set(testing.__all__)
    assert not set(torch_utils.__all__) & set(testing.__all__)


@pytest.mark.parametrize("code, flagged", [
    ("def without_shortcuts():\n    yield", True),                           # used by no visible cell of 01
    ("numerical_backward = lambda *a, **k: {}", True),
    ("from dlcourse.testing import assert_close", False),
    ("from dlcourse.gradcheck import finite_difference_gradient", False),   # the helper itself, re-imported
    ("from dlcourse.nnviz import without_shortcuts", False),                # its former home (released notebooks)
    ("from dlcourse.plotting import show_images as assert_close", True),
    ("from mymodule import finite_difference_gradient", True),
])
def test_the_scan_protects_every_test_cell_name_in_every_notebook(code, flagged):
    """Is a test-cell helper protected even in a notebook whose visible cells never import it, while importing
    the course's own helper of that name again is not tampering?"""
    nb = build_submission("01-losses")
    index = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == "mse_loss")
    nb.cells[index].source += "\n\n" + code
    assert bool(scan(nb)) is flagged, code


def test_the_student_package_holds_no_instructor_tooling():
    """Is the student package free of the instructor's code: no module imports autograder, nbgrader or yaml, the
    package ships dlcourse only, and the setup cells' links come from autograder/course.py?"""
    package = ROOT / "dlcourse"
    assert not (package / "course.py").exists()
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for module in modules:
                assert module.split(".")[0] not in {"autograder", "nbgrader", "nbformat", "yaml"}, \
                    f"{path.name} imports {module}"
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["packages"] == ["dlcourse"]


def test_the_wheel_students_install_ships_the_student_package_and_nothing_else(tmp_path):
    """Colab's setup cell pip-installs dlcourse from the repository: does the wheel hold every module of dlcourse/
    (the test-cell API's included) and no instructor tooling, and does the installed test-cell API work from it?"""
    source = tmp_path / "source"   # a copy of what the build reads: setuptools writes build/ next to it
    shutil.copytree(ROOT / "dlcourse", source / "dlcourse", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("dlcourse-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert shipped == {f"dlcourse/{p.name}" for p in (ROOT / "dlcourse").glob("*.py")}
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                              str(tmp_path / "site"), str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    code = ("import dlcourse, dlcourse.testing as t; from dlcourse.testing import numerical_backward, load_heldout; "
            "print(dlcourse.__file__); print(len(t.__all__))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert run.returncode == 0, run.stderr[-2000:]
    location, count = run.stdout.split()
    assert location.startswith(str(tmp_path / "site")) and int(count) == len(testing.__all__)
