"""The helper reference book/api.md (`python -m autograder pages`, autograder/api_page.py): every public helper of
dlcourse, each with the chapters and exercises that really use it. (That the committed page is in sync is checked
with the exercise pages, tests/test_exercise_pages.py.)"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import pytest

import dlcourse
from autograder.api_page import CHAPTER_MODULES, SUBMISSION_MODULE, build_reference, render_api_page
from autograder.site import expected_pages
from conftest import ROOT
from dlcourse import testing

# Modules of the package the page does not list, and why.
NOT_LISTED = {"simulated_gpu": "a development tool for CI, not used by chapters or test cells"}
LABEL = re.compile(r"^\((api-[^)]+)\)=$", re.MULTILINE)
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def page() -> str:
    return render_api_page(build_reference(ROOT))


def entries(page: str) -> dict[str, str]:
    """``{label: the text of its entry}``."""
    marks = list(LABEL.finditer(page))
    found = {}
    for mark, following in zip(marks, [*marks[1:], None]):
        end = following.start() if following else len(page)
        text = page[mark.end():end]
        found[mark.group(1)] = re.split(r"^#{2,3} ", text, flags=re.MULTILINE)[0]
    return found


def label(module: str, name: str) -> str:
    return f"api-{module}.{name}".lower()


def test_every_module_of_the_package_has_its_place_on_the_page():
    """Is each module of dlcourse in the chapter API, the test-cell API, the submission check, or excluded by
    name? (A new module must be placed.)"""
    test_cell_modules = {testing.home_module(name).split(".")[-1] for name in testing.__all__}
    placed = set(CHAPTER_MODULES) | test_cell_modules | {SUBMISSION_MODULE} | set(NOT_LISTED)
    modules = {m.name for m in pkgutil.iter_modules(dlcourse.__path__)}
    assert modules == placed, f"not placed: {sorted(modules - placed)}; gone: {sorted(placed - modules)}"


def test_every_public_helper_has_one_entry_with_its_signature_and_docstring(page):
    """Does every name of every listed module's __all__ (chapter API, test-cell API, submission) have exactly
    one entry, with a signature, and the first paragraph of its docstring where it has one?"""
    found = entries(page)
    assert len(LABEL.findall(page)) == len(found), "a label appears twice"
    names = [(f"dlcourse.{m}", n) for m in (*CHAPTER_MODULES, SUBMISSION_MODULE)
             for n in importlib.import_module(f"dlcourse.{m}").__all__]
    names += [("dlcourse.testing", n) for n in testing.__all__]
    for module, name in names:
        value = getattr(importlib.import_module(module), name)
        defined_in = getattr(value, "__module__", None) if callable(value) else None
        where = defined_in if defined_in and defined_in.startswith("dlcourse") else module
        if where == "dlcourse.testing" and module == "dlcourse.testing":
            where = testing.home_module(name)
        key = label(where, name)
        assert key in found, f"{module}.{name} has no entry ({key})"
        entry = found[key]
        assert f"#### `{name}`" in entry and "```python" in entry
        doc = (value.__doc__ or "") if callable(value) and getattr(value, "__module__", "") == where else ""
        if doc.strip():   # its first words (a role such as :func:`x` is written ``x`` on the page)
            first = " ".join(doc.split()[:3])
            assert re.sub(r":\w+:`([^`]+)`", r"``\1``", first) in " ".join(entry.split()), f"{name}: no docstring"


def chapters_importing(name: str) -> set[str]:
    """Chapters whose code imports ``name`` from a dlcourse module, read with a regular expression (the page is
    built with ast)."""
    pattern = re.compile(r"from dlcourse\.\w+ import (\([^)]*\)|[^\n]*)")
    found = set()
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for imported in pattern.findall(code):
            parts = re.sub(r"#[^\n]*", "", imported).strip("()").split(",")
            if name in {part.split()[0] for part in parts if part.strip()}:
                found.add(path.stem)
    return found


def test_chapter_links_name_the_chapters_that_import_each_helper(page):
    """For each helper, are the chapter links exactly the chapters that import it, each with the chapter's
    title, to a notebook that exists?"""
    titles = {}
    for path in (ROOT / "book").glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        first = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
        titles[path.stem] = re.search(r"^# (.+)$", "".join(first["source"]), re.MULTILINE).group(1).strip()
    checked = 0
    for key, entry in entries(page).items():
        name = re.search(r"^#### `(\w+)`", entry, re.MULTILINE).group(1)
        used = next((line for line in entry.splitlines() if line.startswith(("Used in", "Not used"))), None)
        assert used is not None, key
        linked = {target.removesuffix(".ipynb"): text for text, target in LINK.findall(used)
                  if target.endswith(".ipynb")}
        for stem, text in linked.items():
            assert (ROOT / "book" / f"{stem}.ipynb").is_file() and text == titles[stem], (key, stem)
        assert set(linked) == chapters_importing(name), f"{key}: page {sorted(linked)}"
        checked += 1
    assert checked >= len(testing.__all__)


def test_known_uses_are_on_the_page(page):
    """A few facts checked by hand: the stepper is chapter 6's, every chapter sets the course style, and the
    guard `without_shortcuts` serves exercises 02, 03, 04, 06 and 08."""
    found = entries(page)
    assert [t for _, t in LINK.findall(found["api-dlcourse.nnviz.backprop_stepper"])] == ["06-backpropagation.ipynb"]
    style = [t for _, t in LINK.findall(found["api-dlcourse.plotting.use_course_style"])]
    assert len(style) == len(list((ROOT / "book").glob("*.ipynb")))
    guard = [t for _, t in LINK.findall(found["api-dlcourse.testing_guards.without_shortcuts"])]
    assert guard == [f"exercises/{e}.md" for e in ("02-gradient-descent", "03-backprop", "04-numpy-net", "06-cnn",
                                                   "08-regularization")]
    for target in {t for _, t in LINK.findall(page) if t.startswith("exercises/")}:
        assert (ROOT / "book" / target).is_file(), target


def test_the_page_is_written_by_pages_and_listed_in_the_table_of_contents():
    assert "book/api.md" in {str(p) for p in expected_pages(ROOT)}
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*- file: book/api\s*$", toc, re.MULTILINE)


def test_heading_levels_never_skip_one(page):
    """The book builds with -W, and MyST warns when a heading is more than one level below the previous one."""
    outside_code = re.sub(r"```python\n.*?\n```", "", page, flags=re.DOTALL)
    levels = [len(m.group(1)) for m in re.finditer(r"^(#+) ", outside_code, re.MULTILINE)]
    assert levels[0] == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:])), levels
