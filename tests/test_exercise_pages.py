"""The website's exercise pages (book/exercises/, `python -m autograder pages`): in sync with the released
notebooks, complete (every test cell and its points), and free of solutions and hidden tests."""

from __future__ import annotations

import os
import subprocess

import nbformat
import pytest

from autograder.notebooks import is_test, nbgrader_meta, secret_lines
from autograder.site import PAGES_DIR, expected_pages, released_assignments
from conftest import ROOT

ASSIGNMENTS = released_assignments(ROOT)


def test_committed_pages_match_the_released_notebooks():
    """Are the pages what `python -m autograder pages` writes from exercises/ now?"""
    stale = [str(path) for path, text in expected_pages(ROOT).items()
             if not (ROOT / path).is_file() or (ROOT / path).read_text(encoding="utf-8") != text]
    assert not stale, f"out of sync: {stale}; run `python -m autograder pages` and commit book/exercises/"
    if os.environ.get("CI"):
        # `make book` rewrites the pages before building: in CI, a page it changed was committed stale.
        changed = subprocess.run(["git", "status", "--porcelain", "--", str(PAGES_DIR)], cwd=ROOT,
                                 capture_output=True, text=True).stdout
        assert not changed.strip(), f"pages differ from the commit:\n{changed}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_page_lists_every_test_cell_with_its_points(assignment):
    """Does the page name every test cell and every answer graded by hand of the student notebook, and the total
    of their points?"""
    page = (ROOT / PAGES_DIR / f"{assignment}.md").read_text(encoding="utf-8")
    cells = [c for path in sorted((ROOT / "exercises" / assignment).glob("*.ipynb"))
             for c in nbformat.read(path, as_version=4).cells]
    tests = [nbgrader_meta(c) for c in cells if is_test(c)]
    graded = [nbgrader_meta(c) for c in cells if nbgrader_meta(c).get("grade")]   # tests and manual answers
    assert tests, f"{assignment} has no test cell"
    for meta in graded:
        assert f"`{meta['grade_id']}`" in page
    assert f"**{sum(m.get('points', 0) for m in graded):g}**" in page, "total points missing"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_page_shows_no_solution_or_hidden_test(assignment):
    """Does no line of a solution or a hidden test (one the student notebook does not show) reach the page?"""
    page = (ROOT / PAGES_DIR / f"{assignment}.md").read_text(encoding="utf-8")
    student = "\n".join(c.source for path in sorted((ROOT / "exercises" / assignment).glob("*.ipynb"))
                        for c in nbformat.read(path, as_version=4).cells)
    secret = [line for path in sorted((ROOT / "solutions" / assignment).glob("*.ipynb"))
              for line in secret_lines(nbformat.read(path, as_version=4).cells) if line not in student]
    assert secret, f"{assignment}: found no solution or hidden-test line to look for"
    leaked = [line for line in secret if line in page]
    assert not leaked, f"{assignment}: the page shows {leaked[:3]}"
