"""The book builds with warnings as errors (`make book`), and publishes chapters but never solutions."""

from __future__ import annotations

import re

import pytest

from test_hygiene import toc_files

pytestmark = pytest.mark.book


def test_every_page_of_the_table_of_contents_is_built(built_book):
    """Does every page listed in _toc.yml have its HTML page?"""
    missing = [page for page in toc_files() if not (built_book / f"{page}.html").is_file()]
    assert not missing, f"pages not built: {missing}"


def test_no_solution_or_instructor_file_is_published(built_book):
    """Are solutions/, autograder/ and tests/ absent from the site, and no solution marker in any page?"""
    for folder in ["solutions", "autograder", "tests", "bench", ".grading"]:
        assert not (built_book / folder).exists(), f"{folder}/ was published"
    for page in built_book.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, page


def test_chapters_were_executed_with_static_widgets(built_book):
    """Did the build execute the chapters (figures present) and embed the kernel-free widget views?"""
    page = (built_book / "book" / "02-loss-functions.html").read_text(encoding="utf-8")
    assert "<img" in page and 'class="dlcw"' in page


def test_glued_numbers_are_filled_in(built_book):
    """Did every glue role become its number on the website (chapter 1's validation accuracy, for one)?"""
    for page in sorted((built_book / "book").glob("[0-9]*.html")):
        assert "{glue" not in page.read_text(encoding="utf-8"), f"{page.name} shows an unresolved glue role"
    chapter_1 = re.sub(r"<[^>]+>", "", (built_book / "book" / "01-ml-recipe.html").read_text(encoding="utf-8"))
    assert re.search(r"\d+\.\d%\s+of the validation images right", chapter_1), "chapter 1's glued accuracy is missing"
