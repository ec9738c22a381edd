"""JupyterHub configuration of the course: one machine, local accounts, the course's environment for everyone.

Run it from the course's virtual environment, as root (the hub starts each user's server as that user)::

    sudo DLCOURSE_INSTRUCTORS=teacher DLCOURSE_STUDENTS=alice,bob \\
        .venv/bin/jupyterhub -f hub/jupyterhub_config.py

Everything site-specific comes from environment variables (README, "Running the course on your JupyterHub"):

- ``DLCOURSE_HUB_BIND_URL``: where the hub listens (default ``http://127.0.0.1:8000``; put it behind your
  HTTPS reverse proxy, and set the same URL as ``launch_buttons.jupyterhub_url`` in ``_config.yml``);
- ``DLCOURSE_HUB_INTERNAL_URL``, ``DLCOURSE_HUB_PROXY_API_URL``: the hub's and the proxy's own ports on
  loopback (default ``http://127.0.0.1:8081`` and ``:8001``);
- ``DLCOURSE_HUB_STATE``: the hub's own files, its database and cookie secret (default ``/srv/jupyterhub``);
- ``DLCOURSE_INSTRUCTORS``, ``DLCOURSE_STUDENTS``: comma-separated local user names allowed to log in
  (passwords are the accounts' own, checked with PAM);
- ``NBGRADER_EXCHANGE_ROOT``: nbgrader's exchange, a folder every user can write (default
  ``/srv/nbgrader/exchange``, mode 0777);
- ``DLCOURSE_HUB_PYTHON``: the Python of the users' servers (default: the hub's own, i.e. the course's
  virtual environment; every user must be able to run it);
- ``DLCOURSE_GRADING_DIR``: the instructors' grading folder (gradebook, submissions, feedback), owned by them.

Each user's server is the course's environment (JupyterLab with nbgrader's extensions, ipywidgets and
nbgitpuller), started with ``python -m jupyterhub.singleuser`` from this virtual environment. Students get nbgrader's
*Assignments* tab; instructors also get formgrader, on the pipeline's gradebook (``hub/jupyter/instructor``).
"""

import os
import pwd
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)

HUB_DIR = Path(__file__).resolve().parent
ROOT = HUB_DIR.parent
STATE = Path(os.environ.get("DLCOURSE_HUB_STATE", "/srv/jupyterhub"))
EXCHANGE = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
GRADING = os.environ.get("DLCOURSE_GRADING_DIR", "")
# The Python of the users' servers: the course's environment (by default the one running the hub; every user must
# be able to run it, so not under a private home such as /root).
PYTHON = Path(os.environ.get("DLCOURSE_HUB_PYTHON") or sys.executable)
VENV_BIN = PYTHON.parent


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


INSTRUCTORS = _names("DLCOURSE_INSTRUCTORS")
STUDENTS = _names("DLCOURSE_STUDENTS")

c.JupyterHub.bind_url = os.environ.get("DLCOURSE_HUB_BIND_URL", "http://127.0.0.1:8000")
c.JupyterHub.hub_bind_url = os.environ.get("DLCOURSE_HUB_INTERNAL_URL", "http://127.0.0.1:8081")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.api_url = os.environ.get("DLCOURSE_HUB_PROXY_API_URL", "http://127.0.0.1:8001")
proxy = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"     # `npm ci` installs it (package.json)
c.ConfigurableHTTPProxy.command = [str(proxy) if proxy.exists() else "configurable-http-proxy"]

# Local accounts, their own passwords (PAM); only the course's people.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS
c.Authenticator.admin_users = set(INSTRUCTORS)

# Each user's server runs as that user, in their home, from the course's environment.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(PYTHON), "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.LocalProcessSpawner.shell_cmd = []


def course_environment(spawner) -> None:
    """The student's or instructor's Jupyter configuration (nbgrader's exchange and course; formgrader and the
    gradebook for instructors), and the course environment's tools first on PATH (nbgrader runs `alembic`)."""
    role = "instructor" if spawner.user.name in INSTRUCTORS else "student"
    spawner.environment.update({
        "JUPYTER_CONFIG_PATH": str(HUB_DIR / "jupyter" / role),
        "NBGRADER_EXCHANGE_ROOT": EXCHANGE,
        "PATH": os.pathsep.join([str(VENV_BIN), "/usr/local/bin", "/usr/bin", "/bin"]),
        "DLCOURSE_COURSE_ROOT": str(ROOT),
    })
    if role == "instructor":
        if GRADING:
            spawner.environment["DLCOURSE_GRADING_DIR"] = GRADING
        home = Path(pwd.getpwnam(spawner.user.name).pw_dir)
        if not ROOT.is_relative_to(home):
            # formgrader only works on a course inside the server's root folder
            spawner.notebook_dir = str(ROOT)


c.Spawner.pre_spawn_hook = course_environment

if shutil.which("git") is None:
    raise SystemExit("nbgitpuller links need git on the hub machine: apt-get install git")
