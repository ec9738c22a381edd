"""Servers that tests and benchmarks start on the loopback interface and stop again: a Dask scheduler with worker
processes (as the README starts them, with the `dask` command), and a private PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def course_environment() -> dict[str, str]:
    """`autograder` is not installed (the course's package is `dlcourse` only): the scheduler (which unpickles
    the tasks) and the workers import it from the repository, as the README says."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@dataclass
class DaskCluster:
    address: str
    folder: Path
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, name: str, threads: int = 1) -> subprocess.Popen:
        """`dask worker ADDRESS` without a nanny: the process killed is the worker itself."""
        # The worker's sandboxes go into the cluster's folder (removed with it).
        env = dict(course_environment(), TMPDIR=str(self.folder))
        log = open(self.folder / f"{name}.log", "ab")
        self.workers[name] = subprocess.Popen(
            [str(BIN / "dask"), "worker", self.address, "--name", name, "--nthreads", str(threads), "--no-nanny",
             "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(self.folder / name)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        return self.workers[name]

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def dask_cluster(workers: int, threads: int = 1, timeout: float = 120):
    """A scheduler and ``workers`` worker processes of ``threads`` threads each, on 127.0.0.1; all stopped after."""
    from distributed import Client

    # Short and traversable: the sandboxes' socket paths are limited to 107 bytes, their kernel user enters them.
    folder = Path(tempfile.mkdtemp(prefix="agdask-"))
    os.chmod(folder, 0o755)
    port = free_port()
    log = open(folder / "scheduler.log", "ab")
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard", "--no-show"], stdout=log, stderr=subprocess.STDOUT,
                                 cwd=folder, env=course_environment())
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", folder, scheduler)
    try:
        for i in range(workers):
            cluster.start_worker(f"w{i + 1}", threads)
        with Client(cluster.address, timeout=timeout) as client:
            client.wait_for_workers(workers, timeout=timeout)
        yield cluster
    finally:
        for process in cluster.workers.values():
            _stop(process)
        _stop(scheduler)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Postgres:
    url: str
    data: Path
    pid: int


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise FileNotFoundError("PostgreSQL is not installed: run .ci/install-system-packages (Debian's "
                                "`postgresql` package)")
    return found[-1].parent


@contextlib.contextmanager
def postgres_server(database: str = "gradebook"):
    """A PostgreSQL server of its own (private data folder, private port on 127.0.0.1, no Unix socket), stopped
    after. PostgreSQL refuses to run as root: as root, it runs as the user ``nobody``."""
    bin_dir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="agpg-"))
    data = folder / "data"
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(folder, 0o755)
        shutil.chown(folder, "nobody")
    port = free_port()
    log = folder / "server.log"
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd=folder, env=env, timeout=120)

    pid = 0
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o",
            f"-h 127.0.0.1 -p {port} -k '' -c fsync=off -c max_connections=50")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", database)
        yield Postgres(f"postgresql://grader@127.0.0.1:{port}/{database}", data, pid)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, cwd=folder, env=env, timeout=120)
        if pid:
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether a process of this id still runs (not a zombie)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
