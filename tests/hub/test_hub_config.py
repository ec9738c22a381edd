"""The hub configurations load and point at files that exist (cheap; the hub itself runs in test_hub_term.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[2]


def test_jupyterhub_config_reads_its_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_INSTRUCTORS", "teacher")
    monkeypatch.setenv("DLCOURSE_STUDENTS", "alice, bob")
    monkeypatch.setenv("DLCOURSE_HUB_STATE", str(tmp_path))
    monkeypatch.setenv("DLCOURSE_HUB_BIND_URL", "http://127.0.0.1:9000")
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(ROOT / "hub")).load_config()
    assert config.JupyterHub.bind_url == "http://127.0.0.1:9000"
    assert config.Authenticator.allowed_users == {"teacher", "alice", "bob"}
    assert config.Authenticator.admin_users == {"teacher"}
    assert config.JupyterHub.spawner_class == "localprocess"
    assert config.Spawner.cmd == [sys.executable, "-m", "jupyterhub.singleuser"]
    assert config.JupyterHub.db_url == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    proxy = Path(config.ConfigurableHTTPProxy.command[0])
    assert proxy == ROOT / "node_modules" / ".bin" / "configurable-http-proxy" or proxy.name == str(proxy)


def test_instructor_nbgrader_config_is_the_pipelines(monkeypatch, tmp_path):
    monkeypatch.setenv("DLCOURSE_GRADING_DIR", str(tmp_path))
    monkeypatch.setenv("NBGRADER_EXCHANGE_ROOT", str(tmp_path / "exchange"))
    monkeypatch.delenv("DLCOURSE_COURSE_ROOT", raising=False)
    instructor = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "hub/jupyter/instructor")).load_config()
    assert instructor.CourseDirectory.root == str(ROOT)
    assert instructor.CourseDirectory.db_url == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert instructor.Exchange.root == str(tmp_path / "exchange")
    student = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "hub/jupyter/student")).load_config()
    assert student.CourseDirectory.course_id == instructor.CourseDirectory.course_id
    assert student.Exchange.root == str(tmp_path / "exchange")


def test_zero_to_jupyterhub_values_name_the_course_files():
    values = yaml.safe_load((ROOT / "hub/z2jh/config.yaml").read_text(encoding="utf-8"))
    env = values["singleuser"]["extraEnv"]
    mount = values["singleuser"]["storage"]["extraVolumeMounts"][0]["mountPath"]
    assert env["NBGRADER_EXCHANGE_ROOT"] == mount
    configs = [env["JUPYTER_CONFIG_PATH"], *[line.split('"')[-2] for line in
               values["hub"]["extraConfig"]["dlcourse-roles"].splitlines() if "JUPYTER_CONFIG_PATH" in line]]
    assert len(configs) == 2
    for folder in configs:   # the image has the checkout in /opt/dlcourse (hub/z2jh/Dockerfile)
        assert (ROOT / Path(folder).relative_to("/opt/dlcourse") / "nbgrader_config.py").is_file(), folder
    assert "COPY --chown=${NB_UID}:${NB_GID} . /opt/dlcourse" in (ROOT / "hub/z2jh/Dockerfile").read_text()
