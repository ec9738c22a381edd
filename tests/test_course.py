"""dlcourse.course: links and setup cells derived from the one repository setting in _config.yml."""

from urllib.parse import parse_qs, urlparse

from dlcourse.course import CourseConfig, load_config, setup_cell_source
from conftest import ROOT


def test_links_come_from_the_repository_setting():
    """Are Colab and nbgitpuller links built from _config.yml's repository url and branch?"""
    config = load_config(ROOT)
    assert config.branch == "main"
    colab = config.colab_link("exercises/01-losses/losses.ipynb")
    assert colab == (f"https://colab.research.google.com/github/{config.repo_slug}/blob/main/"
                     f"exercises/01-losses/losses.ipynb")
    hub = urlparse(config.jupyterhub_link("book/02-loss-functions.ipynb"))
    query = parse_qs(hub.query)
    assert hub.path == "/hub/user-redirect/git-pull"
    assert query["repo"] == [config.repository_url] and query["branch"] == ["main"]
    assert query["urlpath"] == [f"lab/tree/{config.repo_name}/book/02-loss-functions.ipynb"]


def test_setup_cell_installs_only_on_colab_and_never_while_grading():
    """Does the setup cell install from the configured repository, guarded by Colab and NBGRADER_EXECUTION?"""
    config = CourseConfig("https://github.com/someone/course", "spring", "https://colab.example", "https://hub.x")
    source = setup_cell_source(config)
    assert '"dlcourse @ git+https://github.com/someone/course@spring"' in source
    assert '"google.colab" in sys.modules' in source and 'NBGRADER_EXECUTION' in source
    namespace = {}
    exec(compile(source, "setup", "exec"), namespace)   # off Colab it must do nothing (and not fail)
