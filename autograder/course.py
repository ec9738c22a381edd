"""The course's repository settings and everything derived from them.

``_config.yml``'s ``repository`` block (url, branch, course_ref) and ``launch_buttons`` block (colab_url,
jupyterhub_url) are the single source; this module derives Colab and JupyterHub (nbgitpuller) links and the first
"setup" cell of every notebook from them. ``python -m autograder sync`` rewrites the setup cells after a change of
settings, and a test checks that they are in sync.

The setup cell installs the helper package at ``course_ref``, a git tag, not at the branch: a notebook a student
saved last month keeps installing the ``dlcourse`` it was written for, whatever is pushed to the branch since. A tag
(rather than a commit hash) because a notebook cannot hold the hash of the commit that contains it, and a tag is
named before it is created, never moves, and survives squash merges and rebases. Tag the commit whose ``dlcourse``
the notebooks need (``git tag v2026.1 && git push origin v2026.1``) and name the tag in ``_config.yml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

__all__ = ["CourseConfig", "load_config", "find_root", "SETUP_TAG", "setup_cell_source"]

SETUP_TAG = "dlcourse-setup"


@dataclass(frozen=True)
class CourseConfig:
    """Repository and launch settings read from ``_config.yml``."""

    repository_url: str
    branch: str
    colab_url: str
    jupyterhub_url: str
    course_ref: str | None = None   # the tag (or commit) the setup cells install dlcourse from

    @property
    def repo_slug(self) -> str:
        """``owner/name`` of a GitHub repository URL."""
        return urlparse(self.repository_url).path.strip("/").removesuffix(".git")

    @property
    def repo_name(self) -> str:
        return self.repo_slug.split("/")[-1]

    def github_url(self, path: str) -> str:
        """Link to a file of the repository on GitHub."""
        return f"{self.repository_url}/blob/{self.branch}/{quote(path)}"

    def colab_link(self, path: str) -> str:
        """'Open in Colab' link for a notebook of the repository (path relative to the repository root)."""
        return f"{self.colab_url}/github/{self.repo_slug}/blob/{self.branch}/{quote(path)}"

    def jupyterhub_link(self, path: str) -> str:
        """nbgitpuller link: clones or updates the repository on the hub, then opens the notebook."""
        query = urlencode({
            "repo": self.repository_url,
            "branch": self.branch,
            "urlpath": f"lab/tree/{self.repo_name}/{path}",
        })
        return f"{self.jupyterhub_url}/hub/user-redirect/git-pull?{query}"

    @property
    def package_ref(self) -> str:
        """The git ref the setup cells install ``dlcourse`` from: ``course_ref``, else the branch."""
        return self.course_ref or self.branch

    def pip_requirement(self) -> str:
        """What Colab's setup cell installs: the helper package from the course repository, at ``course_ref``."""
        return f"dlcourse @ git+{self.repository_url}@{self.package_ref}"


def find_root(start: Path | None = None) -> Path:
    """The course repository root: the nearest folder upwards holding ``_config.yml`` and ``dlcourse/``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "dlcourse").is_dir():
            return folder
    package_root = Path(__file__).resolve().parent.parent
    if (package_root / "_config.yml").is_file():
        return package_root
    raise FileNotFoundError(f"no course repository (a folder with _config.yml and dlcourse/) above {here}")


def load_config(root: Path | None = None) -> CourseConfig:
    """Read the repository and launch settings from ``<root>/_config.yml``."""
    import yaml

    root = root or find_root()
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repository = config.get("repository", {})
    launch = config.get("launch_buttons", {})
    branch = repository.get("branch", "master")
    course_ref = repository.get("course_ref")
    if course_ref is not None and (not isinstance(course_ref, str) or not course_ref.strip()
                                   or course_ref == branch):
        raise ValueError(f"_config.yml: repository.course_ref must name a tag (or a commit), not the branch "
                         f"{branch!r}: notebooks pinned to a branch break when it moves; got {course_ref!r}")
    return CourseConfig(
        repository_url=repository["url"].rstrip("/"),
        branch=branch,
        colab_url=launch.get("colab_url", "https://colab.research.google.com").rstrip("/"),
        jupyterhub_url=launch.get("jupyterhub_url", "").rstrip("/"),
        course_ref=course_ref.strip() if course_ref else None,
    )


# What the setup cell prints when pip fails, instead of a CalledProcessError traceback.
INSTALL_FAILED = ("Could not install the course's helper package dlcourse from GitHub: connect this runtime to the "
                  "internet and run this cell again (if it still fails, tell your instructor that the repository "
                  "must be public and hold the tag {ref}).")


def setup_cell_source(config: CourseConfig) -> str:
    """Source of the first code cell of every notebook: installs ``dlcourse`` on Colab, nothing elsewhere.

    Colab opens a notebook without the rest of the repository, so the helper package is installed from it, at
    ``course_ref`` (see the module's documentation). During grading (NBGRADER_EXECUTION is set) and anywhere but
    Colab nothing runs. When pip fails, the cell prints :data:`INSTALL_FAILED` and pip's last message, not a
    traceback.
    """
    requirement = json.dumps(config.pip_requirement())
    return (
        f"# Setup: on Google Colab, install the course's helper package `dlcourse` (version {config.package_ref}).\n"
        "# Anywhere else (your machine, JupyterHub, the autograder) this cell does nothing.\n"
        "import os, subprocess, sys\n"
        "\n"
        "if \"google.colab\" in sys.modules and not os.environ.get(\"NBGRADER_EXECUTION\"):\n"
        f"    pip = subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", {requirement}],\n"
        "                         capture_output=True, text=True)\n"
        "    if pip.returncode != 0:\n"
        f"        print({json.dumps(INSTALL_FAILED.format(ref=config.package_ref))})\n"
        "        print(\"pip said:\", (pip.stderr.strip().splitlines() or [\"nothing\"])[-1])"
    )
