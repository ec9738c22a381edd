"""nbgrader's configuration for instructors on the course's JupyterHub: the grading pipeline's own configuration
(autograder/nbgrader_config.py: the course root, `solutions/` as source, the gradebook and submissions in
$DLCOURSE_GRADING_DIR), so formgrader shows and edits the gradebook that `python -m autograder grade` fills, and
the exchange that `python -m autograder exchange` releases to and collects from."""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets)

ROOT = Path(os.environ.get("DLCOURSE_COURSE_ROOT") or Path(__file__).resolve().parents[3])
load_subconfig(str(ROOT / "autograder" / "nbgrader_config.py"))  # noqa: F821 (provided by traitlets)
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
