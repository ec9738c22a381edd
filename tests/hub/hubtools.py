"""Fixtures of the JupyterHub test: local accounts, the course as a git repository, nbgrader's exchange, and a real
JupyterHub (hub/jupyterhub_config.py) with configurable-http-proxy on loopback, all created and removed here.

Needs root (useradd, and the hub starts each user's server as that user), PAM, git, node's proxy
(`npm ci`) and Debian's chromium. Everything this fixture starts or creates is stopped or removed at teardown, and
the teardown checks it: no process of the hub, of the proxy or of a test account, and no test account, is left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROXY = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
ARTIFACTS = ROOT / "tests" / "artifacts" / "hub"
CHROMIUM = Path("/usr/bin/chromium")     # Debian's package, launched as tests/browser/conftest.py does
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
PREFIX = "dlhub"   # every test account's name starts with it


@dataclass
class Account:
    name: str
    password: str
    uid: int = 0

    @property
    def home(self) -> Path:
        return Path("/home") / self.name


@dataclass
class Hub:
    url: str
    instructor: Account
    students: list[Account]
    exchange: Path
    grading: Path
    repo: Path                 # the bare git repository of the course
    repo_url: str              # where the hub's users clone it from (git daemon on loopback, as from GitHub)
    work: Path
    python: Path               # the course environment's Python, as the accounts run it
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""


def missing_requirements() -> str:
    """Why the hub test cannot run on this machine ("" when it can)."""
    if os.geteuid() != 0:
        return "the JupyterHub test creates local accounts and runs the hub as root: run it as root"
    for tool in ("useradd", "userdel", "chpasswd", "runuser", "git"):
        if shutil.which(tool) is None:
            return f"the JupyterHub test needs `{tool}` (Debian: passwd, util-linux, git)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid and (entry / "status").read_text().find("State:\tZ") < 0:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


def _create_account(name: str) -> Account:
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
    uid = int(subprocess.run(["id", "-u", name], check=True, capture_output=True, text=True).stdout)
    return Account(name, password, uid)


def _remove_account(account: Account) -> None:
    for pid in _processes_of(account.uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _processes_of(account.uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["userdel", "--remove", account.name], capture_output=True)


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {process.returncode}:\n{log.read_text()[-6000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except Exception:
            time.sleep(0.25)
    raise RuntimeError(f"JupyterHub did not answer on {url} in {timeout} s:\n{log.read_text()[-6000:]}")


def course_python(work: Path, account: Account) -> Path:
    """A Python of the course's environment that the test accounts can run.

    The virtual environment's interpreter is a link to the Python that created it; where that one is private
    (pyenv under /root, as on the course's own machines), the accounts get the same interpreter through hard
    links (no directory permission is involved): its binary, libpython and standard library under ``work``,
    with the environment's site-packages, share/ and etc/, started by a wrapper that finds libpython there.
    """
    python = VENV_BIN / "python"
    probe = subprocess.run(["runuser", "-u", account.name, "--", str(python), "-c", "pass"], capture_output=True)
    if probe.returncode == 0:
        return python
    real = Path(os.path.realpath(python))
    origin = real.parent.parent
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = work / "python"
    (base / "bin").mkdir(parents=True)
    (base / "lib" / version).mkdir(parents=True)
    try:
        os.link(real, base / "bin" / real.name)
        for library in (origin / "lib").glob("libpython*.so*"):
            if not library.is_symlink():
                os.link(library, base / "lib" / library.name)
        for entry in (origin / "lib" / version).iterdir():
            if entry.name != "site-packages":
                subprocess.run(["cp", "-al", str(entry), str(base / "lib" / version)], check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"{python} is private to root and could not be linked for the test accounts: {error}")
    (base / "lib" / version / "site-packages").symlink_to(VENV_BIN.parent / "lib" / version / "site-packages")
    for shared in ("share", "etc"):
        if (VENV_BIN.parent / shared).is_dir():
            (base / shared).symlink_to(VENV_BIN.parent / shared)
    wrapper = base / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nLD_LIBRARY_PATH={base / "lib"}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}} '
                       f'exec {base / "bin" / real.name} "$@"\n')
    wrapper.chmod(0o755)
    for script in VENV_BIN.iterdir():      # the environment's commands (nbgrader runs `alembic`), on the wrapper
        if script.name.startswith("python") or script.is_symlink() or not script.is_file():
            continue
        first, _, body = script.read_bytes().partition(b"\n")
        if first.startswith(b"#!") and b"python" in first:
            (base / "bin" / script.name).write_bytes(b"#!" + bytes(wrapper) + b"\n" + body)
            (base / "bin" / script.name).chmod(0o755)
    subprocess.run(["chmod", "a+rX", str(base), str(base / "bin"), str(base / "lib")], check=True)
    probe = subprocess.run(["runuser", "-u", account.name, "--", str(base / "bin" / "alembic"), "--version"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, f"the linked course environment does not work:\n{probe.stderr}"
    return wrapper


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Course", "GIT_AUTHOR_EMAIL": "course@example.org",
           "GIT_COMMITTER_NAME": "Course", "GIT_COMMITTER_EMAIL": "course@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def hub() -> Hub:
    """A running JupyterHub with an instructor and two students; everything is removed afterwards."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    if not PROXY.exists():
        pytest.fail("configurable-http-proxy is missing: run `npm ci` (make setup)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    # A folder every test account can read (pytest's tmp_path is kept private, mode 0700, by every pytest run).
    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-", dir="/tmp"))
    work.chmod(0o711)
    for stale in subprocess.run(["getent", "passwd"], capture_output=True, text=True).stdout.splitlines():
        if stale.startswith(PREFIX + "-"):
            pytest.fail(f"a test account of an earlier run is still there: {stale.split(':')[0]}")

    accounts: list[Account] = []
    process = daemon = None
    log = work / "jupyterhub.log"
    try:
        instructor = _create_account(f"{PREFIX}-teacher")
        accounts.append(instructor)
        students = [_create_account(f"{PREFIX}-{name}") for name in ("alice", "bob")]
        accounts += students

        # The course as a git repository the students' servers clone, as nbgitpuller would from GitHub: a bare
        # clone of this checkout's HEAD, named like the repository, served by `git daemon` on loopback (a
        # file:// URL would not do: git refuses a repository owned by another user).
        repo = work / "git" / "deep-learning-from-the-ground-up"
        repo.parent.mkdir()
        _git("clone", "--quiet", "--bare", "--no-local", str(ROOT), str(repo), cwd=work)
        subprocess.run(["chmod", "-R", "a+rX", str(repo.parent)], check=True)
        git_port = _free_port()
        daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={git_port}", "--export-all",
                                   "--reuseaddr", f"--base-path={repo.parent}", str(repo.parent)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        repo_url = f"git://127.0.0.1:{git_port}/{repo.name}"
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", repo_url], capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail("`git daemon` did not start (Debian: the git package has it)")
            time.sleep(0.1)

        exchange = work / "exchange"
        exchange.mkdir()
        exchange.chmod(0o777)
        grading = work / "grading"
        grading.mkdir()
        os.chown(grading, instructor.uid, instructor.uid)
        state = work / "state"
        state.mkdir(mode=0o700)

        python = course_python(work, students[0])
        port = _free_port()
        env = {**os.environ,
               "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
               "DLCOURSE_HUB_BIND_URL": f"http://127.0.0.1:{port}",
               "DLCOURSE_HUB_INTERNAL_URL": f"http://127.0.0.1:{_free_port()}",
               "DLCOURSE_HUB_PROXY_API_URL": f"http://127.0.0.1:{_free_port()}",
               "DLCOURSE_HUB_STATE": str(state),
               "DLCOURSE_INSTRUCTORS": instructor.name,
               "DLCOURSE_STUDENTS": ",".join(s.name for s in students),
               "NBGRADER_EXCHANGE_ROOT": str(exchange),
               "DLCOURSE_GRADING_DIR": str(grading),
               "DLCOURSE_HUB_PYTHON": str(python),
               "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16)}
        with log.open("w") as out:
            process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(ROOT / "hub" / "jupyterhub_config.py")],
                                       cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/hub/api", process, log)
        yield Hub(url, instructor, students, exchange, grading, repo, repo_url, work, python, process, log)
    finally:
        proxy_pid = None
        pid_file = work / "state" / "jupyterhub-proxy.pid"
        if pid_file.is_file():
            proxy_pid = int(pid_file.read_text().strip() or 0) or None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)    # the hub stops the users' servers and its proxy
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if proxy_pid and _alive(proxy_pid):
            os.kill(proxy_pid, signal.SIGKILL)
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=10)
        left = {a.name: _processes_of(a.uid) for a in accounts}
        for account in accounts:
            _remove_account(account)
        if log.is_file():
            shutil.copyfile(log, ARTIFACTS / "jupyterhub.log")
        # Checked last, after everything was cleaned up, so that a failure leaves nothing behind either.
        shutil.rmtree(work, ignore_errors=True)
        assert not (process and process.poll() is None), "JupyterHub is still running"
        assert not (proxy_pid and _alive(proxy_pid)), "configurable-http-proxy is still running"
        assert not (daemon and daemon.poll() is None), "git daemon is still running"
        assert not any(left.values()), f"processes of the test accounts outlived the hub: {left}"
        remaining = [a.name for a in accounts
                     if subprocess.run(["id", a.name], capture_output=True).returncode == 0]
        assert not remaining, f"test accounts left behind: {remaining}"
