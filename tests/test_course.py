"""autograder.course: links and setup cells derived from the one repository setting in _config.yml."""

import re
import subprocess
import sys
import types
from urllib.parse import parse_qs, urlparse

import pytest

from autograder.course import INSTALL_FAILED, CourseConfig, load_config, setup_cell_source
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


def test_setup_cell_installs_the_pinned_tag_not_the_branch():
    """Do the notebooks install dlcourse at _config.yml's course_ref (a tag), so that a push cannot break them?"""
    config = load_config(ROOT)
    assert config.course_ref and config.course_ref != config.branch
    assert config.pip_requirement().endswith(f"@{config.course_ref}")
    pinned = CourseConfig("https://github.com/someone/course", "main", "https://c", "https://h", course_ref="v3")
    assert '"dlcourse @ git+https://github.com/someone/course@v3"' in setup_cell_source(pinned)


def test_course_ref_must_not_be_the_branch(tmp_path):
    """Is a course_ref that names the branch (which moves with every push) refused with a clear error?"""
    import shutil

    shutil.copytree(ROOT / "dlcourse", tmp_path / "dlcourse")
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    (tmp_path / "_config.yml").write_text(re.sub(r"course_ref: .*", "course_ref: main", text), encoding="utf-8")
    with pytest.raises(ValueError, match="must name a tag"):
        load_config(tmp_path)


def test_a_failed_install_prints_one_sentence_and_no_traceback(monkeypatch, capsys):
    """On Colab without network (or with a private repository) does the setup cell say what to do, without a
    CalledProcessError traceback?"""
    config = load_config(ROOT)
    calls = []

    def failing_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version (no network)\n")

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(subprocess, "run", failing_run)
    exec(compile(setup_cell_source(config), "setup", "exec"), {})
    out = capsys.readouterr().out
    assert calls and calls[0][-1] == config.pip_requirement()
    assert out.splitlines()[0] == INSTALL_FAILED.format(ref=config.course_ref)
    assert "no network" in out and "Traceback" not in out
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")   # while grading: nothing at all
    calls.clear()
    exec(compile(setup_cell_source(config), "setup", "exec"), {})
    assert not calls
