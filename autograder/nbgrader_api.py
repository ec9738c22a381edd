"""Thin access to nbgrader: the course configuration, an API object, and errors that carry nbgrader's log."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

AUTOGRADER_DIR = Path(__file__).resolve().parent
ROOT = AUTOGRADER_DIR.parent


class AutograderError(RuntimeError):
    """A fault the instructor can fix (a missing assignment or folder, a bad option, a failed nbgrader step): its
    message says what to do. The command line prints it as one line (``-v`` adds the traceback)."""


NbgraderError = AutograderError   # the name of earlier versions (raised when an nbgrader step fails)


def load_config(**overrides: dict[str, Any]) -> Config:
    """The course's nbgrader configuration (autograder/nbgrader_config.py), with per-call overrides.

    Example:
        >>> config = load_config(GenerateAssignment={"no_database": True})
    """
    config = PyFileConfigLoader("nbgrader_config.py", path=str(AUTOGRADER_DIR)).load_config()
    for section, values in overrides.items():
        for key, value in values.items():
            config[section][key] = value
    return config


def grading_dir(config: Config | None = None) -> Path:
    """The instructor's working folder (submissions, gradebook, feedback), outside git: see
    :class:`autograder.layout.Layout`."""
    if config is None:
        from autograder.layout import current

        return current().grading
    return Path(config.CourseDirectory.submitted_directory).parent


def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, read from nbgrader's migration scripts in this process.

    nbgrader stamps every gradebook it creates with it, and finds it by running ``alembic heads`` in a
    subprocess (``nbgrader.api.get_alembic_version``), which imports nbgrader again: 2 to 4 s of CPU for each new
    gradebook, a third of a small batch's time. :func:`make_api` has nbgrader use this function instead
    (tests/test_pipeline_units.py checks that both give the same revision).
    """
    import nbgrader
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    settings = AlembicConfig()
    settings.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(settings).get_current_head()


def make_api(config: Config):
    """An ``NbGraderAPI`` for the given configuration."""
    import nbgrader.api
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    nbgrader.api.get_alembic_version = alembic_head   # a new gradebook's stamp, without a subprocess
    # nbgrader runs the `alembic` executable to migrate the gradebook: it must be on PATH.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    grading_dir(config).mkdir(parents=True, exist_ok=True)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def check(result: dict, what: str) -> dict:
    """Raise :class:`AutograderError` unless an NbGraderAPI call succeeded; the message keeps the end of the log."""
    if not result.get("success"):
        log = (result.get("log") or "").strip().splitlines()
        raise AutograderError(f"{what} failed. nbgrader's log ends with:\n" + "\n".join(log[-25:]))
    return result


def assignments(root: Path = ROOT) -> list[str]:
    """Names of the assignments: the folders of ``solutions/`` that hold a notebook."""
    source = root / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def source_notebooks(assignment: str, root: Path = ROOT) -> list[Path]:
    """The source notebooks of one assignment."""
    folder = root / "solutions" / assignment
    if not folder.is_dir():
        known = ", ".join(assignments(root)) or "none"
        raise AutograderError(f"unknown assignment {assignment!r} (known: {known}); `python -m autograder list` "
                              f"lists them")
    return sorted(folder.glob("*.ipynb"))
