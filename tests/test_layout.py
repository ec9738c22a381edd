"""The layout (autograder.layout): every grading path in one object, computed once from nbgrader's configuration."""

from __future__ import annotations

from pathlib import Path

import autograder.layout
from autograder.layout import Layout, current
from autograder.nbgrader_api import grading_dir, load_config
from conftest import ROOT


def test_layout_is_nbgraders_course_directory(tmp_path, monkeypatch):
    """Do the layout's folders match the nbgrader configuration that stock nbgrader and formgrader use?"""
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "g"))
    config = load_config()
    layout = current()
    assert layout == Layout.from_config(config)
    assert layout.root == ROOT and layout.solutions == ROOT / "solutions" and layout.exercises == ROOT / "exercises"
    assert layout.grading == tmp_path / "g" == grading_dir() == grading_dir(config)
    assert layout.submitted == Path(config.CourseDirectory.submitted_directory)
    assert layout.autograded == Path(config.CourseDirectory.autograded_directory)
    assert layout.feedback == Path(config.CourseDirectory.feedback_directory)
    assert layout.db_url == config.CourseDirectory.db_url and layout.gradebook == tmp_path / "g" / "gradebook.db"
    assert layout.results("a") == tmp_path / "g" / "results" / "a"
    assert layout.registered("a") == tmp_path / "g" / "results" / "a" / ".registered"
    assert layout.grades("a") == tmp_path / "g" / "grades" / "a.csv"
    assert layout.exports("a") == tmp_path / "g" / "exports" / "a"
    assert layout.students == tmp_path / "g" / "students.csv"
    assert layout.graded("s", "a") == layout.autograded / "s" / "a"


def test_configuration_runs_once_per_grading_folder(tmp_path, monkeypatch):
    """Is nbgrader_config.py run once per grading folder, however often a path is asked for?"""
    calls = []
    original = autograder.layout.load_config
    monkeypatch.setattr(autograder.layout, "load_config", lambda: calls.append(1) or original())
    autograder.layout._layout.cache_clear()
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "one"))
    first = [current().results("a") for _ in range(5)] + [grading_dir() for _ in range(5)]
    assert len(calls) == 1 and first[0] == tmp_path / "one" / "results" / "a"
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path / "two"))
    assert current().grading == tmp_path / "two" and len(calls) == 2
    autograder.layout._layout.cache_clear()
