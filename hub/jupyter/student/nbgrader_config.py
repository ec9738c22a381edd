"""nbgrader's configuration for students on the course's JupyterHub (hub/jupyterhub_config.py puts this folder on
JUPYTER_CONFIG_PATH): the course and the exchange that the Assignments tab fetches from and submits to."""

import os

c = get_config()  # noqa: F821 (provided by traitlets)

c.CourseDirectory.course_id = "dl-ground-up"
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
