"""The notebook model (autograder.notebooks): each course concept defined once, and the copies that must stay
copies (the standard-library hint rule of dlcourse.submission) agree with it."""

from __future__ import annotations

import ast

import nbformat
import pytest
from traitlets.config import Config

from autograder.notebooks import (DELIMITERS, HIDDEN, MARKERS, SOLUTION, Markers, ReleasedNotebook, hint,
                                  secret_lines)
from conftest import ROOT
from dlcourse import submission

NOTEBOOKS = sorted([*(ROOT / "solutions").rglob("*.ipynb"), *(ROOT / "exercises").rglob("*.ipynb")])
AUTOGRADER = ROOT / "autograder"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_submission_check_reads_the_same_hints_as_the_model(path):
    """Does dlcourse.submission's copy of the hint rule give the model's hint for every code cell?"""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells
    for cell in cells:
        assert submission._first_comment(cell.source) == hint(cell.source), cell.source[:80]


@pytest.mark.parametrize("source, expected", [
    ("# mse_loss: a single float\nassert True", "mse_loss: a single float"),
    ("\n  ## twice  \nx = 1", "twice"),
    ("### BEGIN HIDDEN TESTS\n# not this", ""),
    ("x = 1\n# too late", ""),
    ("", ""),
])
def test_hint_rule_on_edge_cases(source, expected):
    """Do both parsers give the first comment line, without '#', and nothing for code or a ### marker?"""
    assert hint(source) == expected
    assert submission._first_comment(source) == expected


def test_default_delimiters_are_nbgrader_defaults():
    """Are the delimiters the model falls back on those of nbgrader's ClearSolutions and ClearHiddenTests?"""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    classes = {"ClearSolutions": ClearSolutions, "ClearHiddenTests": ClearHiddenTests}
    for (section, key), default in DELIMITERS.items():
        assert getattr(classes[section], key).default_value == default
    assert Markers.from_config(Config()) == Markers()


def test_markers_follow_nbgrader_configuration():
    """A course that configures other delimiters gets regions, secrets and the visible part from them."""
    config = Config()
    config.ClearHiddenTests.begin_test_delimeter = "## SECRET START"
    config.ClearHiddenTests.end_test_delimeter = "## SECRET END"
    markers = Markers.from_config(config)
    source = "# f: ok\nassert f(1) == 1\n## SECRET START\nassert f(123456) == 123456\n## SECRET END\n"
    assert markers.regions(source) == [type(markers.regions(source)[0])(HIDDEN, ("assert f(123456) == 123456",))]
    assert markers.visible_tests(source) == "# f: ok\nassert f(1) == 1"
    assert markers.in_hidden_tests(source, 4) and not markers.in_hidden_tests(source, 2)
    assert MARKERS.regions(source) == []   # the course's default markers do not see these


def test_regions_public_part_and_secret_lines():
    """Solution and hidden regions are told apart; an unclosed region stays secret; short lines are not secret."""
    source = ("def f(x):\n    ### BEGIN SOLUTION\n    return x * 2 + 1000\n    ### END SOLUTION\n"
              "### BEGIN HIDDEN TESTS\nassert f(0) == 1000\nok = 1\n")
    kinds = [r.kind for r in MARKERS.regions(source)]
    assert kinds == [SOLUTION, HIDDEN]
    assert MARKERS.public(source) == "def f(x):"
    cell = nbformat.v4.new_code_cell(source)
    assert secret_lines([cell]) == ["return x * 2 + 1000", "assert f(0) == 1000"]
    assert secret_lines([cell], kinds=[HIDDEN]) == ["assert f(0) == 1000"]


def test_released_notebook_is_read_once_by_every_stage():
    """Do repair, feedback, export, the pages and release all use ReleasedNotebook, and does no grading module
    import the website generator?"""
    users = {"repair", "feedback", "export", "site", "release"}
    for name in users:
        tree = ast.parse((AUTOGRADER / f"{name}.py").read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "autograder.notebooks" for alias in node.names}
        assert "ReleasedNotebook" in imported, name
    for name in ("repair", "grade", "feedback", "export", "store", "collect", "verdict", "tampering", "execute"):
        text = (AUTOGRADER / f"{name}.py").read_text(encoding="utf-8")
        assert "autograder.site" not in text, f"{name} imports the website generator"
        if name in ("feedback", "export"):
            assert "from autograder.repair import Reference" not in text


def test_released_notebook_tasks_and_check_table():
    """The tasks of 01-losses' released notebook cover every test cell and its points, and the check table
    lists the graded code cells."""
    path = next((ROOT / "exercises" / "01-losses").glob("*.ipynb"))
    released = ReleasedNotebook.from_notebook(path)
    tested = [t.grade_id for task in released.tasks() for t in task.tests]
    assert tested == list(released.tests)
    table = released.code_cells(skip=["check"])
    assert "check" not in table and all(table[g] > 0 for g in released.tests)
    assert all(table[g] == "answer" for g in released.answers)
