"""``grade --cluster tcp://HOST:8786``: step 6 of :mod:`autograder.grade` (the sandboxed execution) as tasks of a
Dask distributed cluster; every other step stays in the coordinating process.

The coordinator (the process that runs ``python -m autograder grade``) reads, parses, repairs, restores and
scans each submission (steps 1-5), exactly as without a cluster, and submits one task per submission: the
prepared notebooks (hidden tests included, and the trusted runner's plan) travel to a worker as data. The worker
runs them with :func:`autograder.steps.execute_prepared`, the function local grading uses, in a
:class:`~autograder.sandbox.SlotPool` of its own (bubblewrap, the same limits, one sandbox per worker thread) and,
for the assignments graded by the trusted runner, a :class:`~autograder.verdict.RunnerServer` of its own. The
executed notebooks come back as data; the coordinator alone scores them, writes the autograded notebooks, the
gradebook and the result records (steps 7-9). So the scores are those of local grading, and a worker needs
neither the gradebook nor the grading folder nor ``solutions/``: only the course environment (the same commit of
this repository installed, ``make setup``) and bubblewrap. The assignment's shipped files (data, helper modules)
travel with each task.

Fault tolerance comes from Dask: a task whose worker dies is scheduled again on another worker (the scheduler
gives up after ``distributed.scheduler.allowed-failures`` deaths of the same task, 3 by default, and the
submission is then recorded as failed). Only the coordinator records results, once per submission, when its task
returns: a submission whose worker died is graded exactly once. An interrupted coordinator resumes from the
result records, as without a cluster.

On each worker the sandboxes and the runner server are started by the first task of a batch (with the
batch's limits) and kept for the following ones; the coordinator closes them at the end of the batch, and a
worker closes them itself after :data:`IDLE_SECONDS` without a task (a coordinator that was killed).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from autograder.nbgrader_api import ROOT, NbgraderError
from autograder.sandbox import Limits, SandboxError, SlotPool, choose_isolation

IDLE_SECONDS = 600   # a worker closes the sandboxes of a batch that sent no task for this long
CONNECT_SECONDS = 30
WORKERS_SECONDS = 60   # how long the coordinator waits for a first worker


@functools.lru_cache(maxsize=1)
def environment_digest() -> str:
    """What a worker must share with the coordinator for identical scores: the grading code, the course helpers
    the kernels import, and the versions of Python and of the packages that run or judge the notebooks (read
    once per process, close to when it imported them)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(sys.version.encode())
    for package in ("numpy", "torch", "nbgrader", "nbclient", "ipykernel", "scikit-learn"):
        try:
            digest.update(f"{package}={version(package)};".encode())
        except PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    for folder in ("autograder", "dlcourse"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BatchSpec:
    """What a worker needs to execute the notebooks of one batch (sent with every task; small)."""

    assignment: str
    environment: str                          # environment_digest() of the coordinator
    isolation: str                            # auto, bwrap, none (Settings.isolation)
    limits: Limits
    timeout: int
    preload: tuple[str, ...]
    shipped: tuple[tuple[str, bytes], ...]    # the assignment's shipped files: (relative path, content)
    runner_modules: tuple[str, ...] | None    # the trusted runners' preloads; None: test cells run in the kernel
    batch: str = ""                           # identifies the batch (its sandboxes on the workers)

    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass
class Executed:
    """A task's answer: the submission's notebooks after step 6, and where and how they ran."""

    notebooks: list
    worker: str
    host: str
    sandboxed: bool
    weaknesses: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- on a worker ---------------------------------------------------------------------------------------------------
class WorkerSandboxes:
    """The sandboxes (and trusted runner server) of one batch in one worker process.

    They are started and owned by a thread of their own: bubblewrap's ``--die-with-parent`` follows the thread
    that started a sandbox, and a task's thread belongs to Dask. If the worker process dies, so do they.
    """

    def __init__(self, spec: BatchSpec, slots: int):
        self.spec = spec
        self.slots = slots
        self.pool: SlotPool | None = None
        self.server = None
        self.runner_path: str | None = None
        self.isolation = None    # chosen on this worker (autograder.sandbox.choose_isolation)
        self.sandboxed = False
        self.weaknesses: list[str] | None = None
        self.error: BaseException | None = None
        self.busy = 0
        self.last_used = time.monotonic()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self.folder = Path(tempfile.mkdtemp(prefix="ag-batch-"))
        self.thread = threading.Thread(target=self._own, name=f"autograder-sandboxes-{spec.key()}", daemon=True)
        self.thread.start()
        self._ready.wait()
        if self.error is not None:
            raise self.error

    def _own(self) -> None:
        from autograder.verdict import RunnerServer

        spec = self.spec
        try:
            shipped = {}
            for relative, content in spec.shipped:
                path = self.folder / "shipped" / relative
                if not path.resolve().is_relative_to(self.folder.resolve()):
                    raise ValueError(f"a shipped file outside the assignment: {relative}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                shipped[relative] = path
            try:
                self.isolation = choose_isolation(spec.isolation)
            except SandboxError as error:
                raise SandboxError(f"--isolation bwrap on {socket.gethostname()}: {error}") from None
            self.sandboxed = self.isolation.isolates
            if spec.runner_modules is not None:
                self.server = RunnerServer(spec.runner_modules)
            self.pool = SlotPool(self.slots, spec.limits, spec.preload, shipped, self.isolation)
            if self.server is not None:
                self.runner_path = self.server.wait_ready()
        except BaseException as error:   # handed to the task that started us
            self.error = error
            self._release()
            self._ready.set()
            return
        self._ready.set()
        while not self._stop.wait(10):
            if self.busy == 0 and time.monotonic() - self.last_used > IDLE_SECONDS:
                with _LOCK:
                    if self.busy == 0:   # no task can take us any more
                        _SANDBOXES.pop(spec.key(), None)
                        break
        self._release()

    def _release(self) -> None:
        try:
            if self.pool is not None:
                self.pool.close()
            if self.server is not None:
                self.server.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self._closed.set()

    def close(self) -> None:
        """Close them in their own thread (not waiting: Dask calls this on the worker's event loop)."""
        self._stop.set()


_SANDBOXES: dict[str, WorkerSandboxes] = {}
_LOCK = threading.Lock()


def _sandboxes(spec: BatchSpec, slots: int) -> WorkerSandboxes:
    with _LOCK:
        found = _SANDBOXES.get(spec.key())
        if found is None:
            found = _SANDBOXES[spec.key()] = WorkerSandboxes(spec, slots)   # the other tasks wait meanwhile
        found.busy += 1
        return found


def execute_task(spec: BatchSpec, notebooks: list, plans: dict[str, dict]) -> Executed:
    """The Dask task of one submission: step 6 on this worker; returns the executed notebooks."""
    from distributed import get_worker

    from autograder.steps import execute_prepared

    started = time.perf_counter()
    here = environment_digest()
    if here != spec.environment:
        raise RuntimeError(f"the course environment of worker {socket.gethostname()} differs from the "
                           f"coordinator's ({here} != {spec.environment}): install the same commit there")
    worker = get_worker()
    slots = int(getattr(worker, "nthreads", 0) or getattr(worker.state, "nthreads", 1))
    sandboxes = _sandboxes(spec, slots)
    try:
        plans = {name: dict(plan, server=sandboxes.runner_path) for name, plan in plans.items()}
        execute_prepared(notebooks, plans, sandboxes.pool, spec.timeout)
        if sandboxes.weaknesses is None:   # known once a sandbox is ready
            sandboxes.weaknesses = sandboxes.pool.weaknesses()   # without a sandbox: the isolation warning
        return Executed(notebooks, worker.address, socket.gethostname(), sandboxes.sandboxed,
                        list(sandboxes.weaknesses), time.perf_counter() - started)
    finally:
        with _LOCK:
            sandboxes.busy -= 1
            sandboxes.last_used = time.monotonic()


def close_batch(batch: str) -> int:
    """Close this worker's sandboxes of one batch (run on every worker at the end of the batch); returns how
    many were open."""
    with _LOCK:
        found = [s for key, s in list(_SANDBOXES.items()) if s.spec.batch == batch and not s.busy]
        for sandboxes in found:
            _SANDBOXES.pop(sandboxes.spec.key(), None)
    for sandboxes in found:
        sandboxes.close()
    return len(found)


# -- in the coordinator --------------------------------------------------------------------------------------------
def connect(address: str):
    """A Dask client of the scheduler at ``address``, once at least one worker is there."""
    try:
        from distributed import Client
    except ImportError as error:
        raise NbgraderError("--cluster needs dask.distributed: pip install -r requirements.txt") from error
    try:
        client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise NbgraderError(f"cannot reach the Dask scheduler at {address}: {error}. Start it with "
                            f"`dask scheduler` (see the README, 'Grading on a cluster')") from error
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except (OSError, TimeoutError) as error:
        client.close()
        raise NbgraderError(f"no Dask worker joined the scheduler at {address} within {WORKERS_SECONDS} s: start "
                            f"workers with `dask worker {address}`") from error
    return client


def check_workers(client, environment: str) -> None:
    """Refuse workers whose course environment differs from this one (their scores could differ)."""
    found = client.run(environment_digest)
    different = sorted(address for address, digest in found.items() if digest != environment)
    if different:
        raise NbgraderError(f"{len(different)} of {len(found)} Dask workers run another version of the course "
                            f"environment ({', '.join(different)}): install this commit (`make setup`) there")


def batch_spec(grader, batch: str) -> BatchSpec:
    from autograder.grade import KERNEL_MODULES

    settings = grader.settings
    preload = grader.preload_modules()
    return BatchSpec(
        assignment=grader.assignment, environment=environment_digest(), isolation=settings.isolation,
        limits=settings.limits, timeout=grader.timeout, preload=preload,
        shipped=tuple((name, path.read_bytes()) for name, path in grader.shipped_files().items()),
        runner_modules=tuple(m for m in preload if m not in KERNEL_MODULES) if grader.trusted else None,
        batch=batch)


class _Threads:
    """The cluster's worker threads, asked again at most every few seconds (workers come and go)."""

    def __init__(self, client):
        self.client, self.value, self.when = client, 1, 0.0

    def __call__(self) -> int:
        if time.monotonic() - self.when > 5:
            self.value = max(1, sum(self.client.nthreads().values()))
            self.when = time.monotonic()
        return self.value


def grade_on_cluster(grader, jobs: list, skipped: int = 0) -> list:
    """Steps 1-5 and 7-9 of ``jobs`` here (after registering the assignment), step 6 on the cluster at
    ``grader.settings.cluster``."""
    from distributed import as_completed

    from autograder.grade import _progress

    client = connect(grader.settings.cluster)   # first: a wrong address fails at once
    try:
        grader.register()
        batch = f"{grader.assignment}-{os.getpid()}-{time.time_ns()}"
        spec = batch_spec(grader, batch)
        check_workers(client, spec.environment)
    except BaseException:
        client.close()
        raise
    threads = _Threads(client)
    done, running, queue = [], {}, list(reversed(jobs))
    completed = as_completed(loop=client.loop)
    reported: set[str] = set()
    bar = _progress(len(jobs) + skipped, skipped, grader.assignment, grader.settings.progress)
    failures = 0

    def record(job) -> None:
        nonlocal failures
        result = grader.finish(job)
        done.append(result)
        failures += result.status != "graded" or any(n.problem for n in result.notebooks)
        bar.set_postfix(failed=failures, refresh=False)
        bar.update(1)

    def refill() -> None:
        # Keep every worker thread busy, with the next submissions already prepared.
        while queue and len(running) < 2 * threads():
            job = queue.pop()
            grader.prepare(job)
            if job.error or all(n.nb is None for n in job.notebooks):   # nothing to run: record it now
                record(job)
                continue
            future = client.submit(execute_task, spec, job.notebooks, job.plans, pure=False,
                                   key=f"autograder-{grader.assignment}-{job.student_id}-{job.key[:12]}")
            running[future] = job
            completed.add(future)

    try:
        refill()
        for future in completed:
            job = running.pop(future)
            try:
                executed: Executed = future.result()
            except Exception as error:   # noqa: BLE001 (the task failed on every try: this submission only)
                job.error = f"execute failed on the cluster: {type(error).__name__}: {error}"
                traceback.print_exception(error)
            else:
                job.notebooks = executed.notebooks
                for weakness in executed.weaknesses:
                    if f"{executed.host}: {weakness}" not in reported:
                        reported.add(f"{executed.host}: {weakness}")
                        bar.write(f"warning ({executed.host}): {weakness}", file=sys.stderr)
            future.release()
            record(job)
            refill()
    except BaseException:   # Ctrl-C: stop the tasks; finished results are already recorded
        client.cancel(list(running))
        raise
    finally:
        bar.close()
        try:
            client.run(close_batch, batch)
        except Exception as error:   # noqa: BLE001 (the workers close them when idle)
            print(f"warning: the workers' sandboxes were not closed now ({error}); they close after "
                  f"{IDLE_SECONDS} s idle", file=sys.stderr)
        client.close()
    return done
