"""nbgrader configuration of the course.

The course root is the repository root: instructors write assignments in ``solutions/`` (nbgrader's source
folder) and ``python -m autograder release`` generates the student versions into ``exercises/`` (nbgrader's
release folder). Submissions, the gradebook and feedback live in the instructor's working folder, outside git:
``$DLCOURSE_GRADING_DIR``, by default ``.grading/`` in the repository (ignored by git).

Use it with stock nbgrader too: ``nbgrader <command> --NbGrader.config_file=autograder/nbgrader_config.py``.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

ROOT = Path(__file__).resolve().parent.parent
GRADING = Path(os.environ.get("DLCOURSE_GRADING_DIR") or ROOT / ".grading").resolve()

c.CourseDirectory.course_id = "dl-ground-up"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = str(GRADING / "submitted")
c.CourseDirectory.autograded_directory = str(GRADING / "autograded")
c.CourseDirectory.feedback_directory = str(GRADING / "feedback")
# The gradebook: any database URL nbgrader (SQLAlchemy) accepts, e.g. postgresql://user:secret@host/gradebook for
# several graders and teaching assistants at once; by default SQLite in the grading folder.
c.CourseDirectory.db_url = os.environ.get("DLCOURSE_GRADEBOOK_URL") or f"sqlite:///{GRADING / 'gradebook.db'}"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store"]

# What students see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Seconds per cell when grading; the training cells of the PyTorch exercises are the slowest.
c.Execute.timeout = 300
# A deleted test cell is put back from the source notebook, instead of silently scoring 0.
c.OverwriteCells.add_missing_cells = True
