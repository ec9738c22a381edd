"""Where everything lives: the course's content folders and every path of the grading pipeline, in one object.

The grading folder (``$DLCOURSE_GRADING_DIR``, by default ``.grading/``; nbgrader's ``CourseDirectory`` in
``autograder/nbgrader_config.py``) holds::

    submitted/<student>/<assignment>/<notebook>.ipynb   collected submissions (nbgrader's layout) + timestamp.txt
    autograded/<student>/<assignment>/...               executed, scored notebooks (nbgrader's layout)
    gradebook.db                                        nbgrader's gradebook: the scores, manual grades included
    release/<assignment>/...                            the release registered in the gradebook (repair reference)
    results/<assignment>/<student>.json                 one record per graded submission (autograder.store)
    results/<assignment>/.registered                    digest of the sources last registered in the gradebook
    collected/<assignment>/...                          superseded and rejected input files, kept
    feedback/<student>/<assignment>/<notebook>.html     what each student receives
    reports/<assignment>/...                            collection report, item analysis, histogram
    exports/<assignment>/...                            grade files for nbgrader, Canvas and Moodle
    grades/<assignment>.csv                             the grades table that `grade` prints
    exchange/<assignment>/...                           submissions collected from nbgrader's exchange
    students.csv                                        names, e-mails and LMS ids found by collect

:func:`current` computes it once per grading folder (running ``nbgrader_config.py`` once); a stage receives it
as an argument or takes the current one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from traitlets.config import Config

from autograder.nbgrader_api import ROOT, load_config


@dataclass(frozen=True)
class Layout:
    """The course's folders and the grading folder's paths."""

    root: Path            # the repository: solutions/ (nbgrader's source), exercises/ (its release)
    grading: Path         # the instructor's grading folder, outside git
    submitted: Path
    autograded: Path
    feedback: Path
    db_url: str           # the gradebook

    @classmethod
    def from_config(cls, config: Config) -> "Layout":
        """The layout an nbgrader configuration describes."""
        course = config.CourseDirectory
        submitted = Path(course.submitted_directory)
        return cls(root=Path(course.root) if "root" in course else ROOT, grading=submitted.parent,
                   submitted=submitted, autograded=Path(course.autograded_directory),
                   feedback=Path(course.feedback_directory), db_url=course.db_url)

    # -- content -----------------------------------------------------------------------------------------------
    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def exercises(self) -> Path:
        return self.root / "exercises"

    # -- grading -----------------------------------------------------------------------------------------------
    @property
    def gradebook(self) -> Path | None:
        """The gradebook's file, when it is an SQLite database."""
        return Path(self.db_url.removeprefix("sqlite:///")) if self.db_url.startswith("sqlite:///") else None

    @property
    def release_root(self) -> Path:
        return self.grading / "release"

    def release(self, assignment: str) -> Path:
        return self.release_root / assignment

    def results(self, assignment: str) -> Path:
        return self.grading / "results" / assignment

    def registered(self, assignment: str) -> Path:
        return self.results(assignment) / ".registered"

    def collected(self, assignment: str) -> Path:
        return self.grading / "collected" / assignment

    def reports(self, assignment: str) -> Path:
        return self.grading / "reports" / assignment

    def exports(self, assignment: str) -> Path:
        return self.grading / "exports" / assignment

    def grades(self, assignment: str) -> Path:
        return self.grading / "grades" / f"{assignment}.csv"

    def exchange(self, assignment: str) -> Path:
        return self.grading / "exchange" / assignment

    @property
    def students(self) -> Path:
        return self.grading / "students.csv"

    def submission(self, student_id: str, assignment: str) -> Path:
        return self.submitted / student_id / assignment

    def graded(self, student_id: str, assignment: str) -> Path:
        return self.autograded / student_id / assignment

    def feedback_pages(self, student_id: str, assignment: str) -> Path:
        return self.feedback / student_id / assignment


@lru_cache(maxsize=8)
def _layout(grading_env: str | None) -> Layout:
    return Layout.from_config(load_config())


def current() -> Layout:
    """The course's layout, from ``nbgrader_config.py`` (run once per value of ``$DLCOURSE_GRADING_DIR``)."""
    return _layout(os.environ.get("DLCOURSE_GRADING_DIR"))
