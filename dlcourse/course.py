"""The course's repository settings and everything derived from them.

``_config.yml``'s ``repository`` block (url, branch) and ``launch_buttons`` block (colab_url, jupyterhub_url) are
the single source; this module derives Colab and JupyterHub (nbgitpuller) links and the first "setup" cell of
every notebook from them. ``python -m autograder sync`` rewrites the setup cells after a change of settings,
and a test checks that they are in sync.
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

    def pip_requirement(self) -> str:
        """What Colab's setup cell installs: the helper package from the course repository."""
        return f"dlcourse @ git+{self.repository_url}@{self.branch}"


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
    return CourseConfig(
        repository_url=repository["url"].rstrip("/"),
        branch=repository.get("branch", "master"),
        colab_url=launch.get("colab_url", "https://colab.research.google.com").rstrip("/"),
        jupyterhub_url=launch.get("jupyterhub_url", "").rstrip("/"),
    )


def setup_cell_source(config: CourseConfig) -> str:
    """Source of the first code cell of every notebook: installs ``dlcourse`` on Colab, nothing elsewhere.

    Colab opens a notebook without the rest of the repository, so the helper package is installed from it.
    During grading (NBGRADER_EXECUTION is set) and on any machine that already has the package, nothing runs.
    """
    requirement = json.dumps(config.pip_requirement())
    return (
        "# Setup: on Google Colab, install the course's helper package `dlcourse`.\n"
        "# Anywhere else (your machine, JupyterHub, the autograder) this cell does nothing.\n"
        "import os, subprocess, sys\n"
        "\n"
        "if \"google.colab\" in sys.modules and not os.environ.get(\"NBGRADER_EXECUTION\"):\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", {requirement}], check=True)"
    )
