"""Grade: autograde every collected submission of an assignment, in parallel sandboxes, with nbgrader's scoring.

Each submission goes through these steps, in order. The order is declared once, as lists of functions
``step(ctx, job)`` in :mod:`autograder.steps` (``PREPARE``, ``EXECUTE``, ``SCORE``; the record last, from
:mod:`autograder.outcomes`); this module runs them for a batch (the keys and the resume, the sandboxes, the
scheduling):

1. ``read``: the submitted files and their key (a hash with the assignment's source and the grading settings);
   a submission already graded with the same key is skipped, so an interrupted run resumes where it stopped.
2. ``parse``: an empty file, or one that is not a notebook, is scored 0 with the reason (the batch goes on).
3. ``repair_metadata`` (:mod:`autograder.repair`): grade metadata the released notebook does not have (unknown
   grade ids, extra graded cells, an answer re-marked as a test or locked), duplicated grade ids, lost metadata,
   deleted test cells, old formats. Before 4: nbgrader matches cells by grade id and stops on duplicates.
4. ``restore``: nbgrader's own sanitising preprocessors put back locked cells and hidden tests from the gradebook
   (``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells``, ``CheckCellMetadata``).
5. ``neutralise`` (:mod:`autograder.tampering`): statements that patch the tests' modules or helpers are flagged
   for the instructor and, when the test cells run in the kernel, become ``pass``. After 4, so that the scan
   sees exactly the cells that will run. A static scan cannot be complete: with the trusted runner (6) it is
   only a flag (the statements run, and cannot change a verdict), not the defence. Then ``plan_verdict``: with
   the trusted runner, which cells run where.
6. ``execute`` (:mod:`autograder.execute`) in a sandboxed kernel (:mod:`autograder.sandbox`), on N workers.
   With the trusted test runner (:mod:`autograder.verdict`; the assignments of ``TRUSTED_ASSIGNMENTS``, or
   ``--verdict trusted``) the kernel runs only the non-test cells, and each test cell runs in a separate trusted
   process that calls the student's functions through proxies and gets data back: the outcome of every
   assertion is decided there, and the hidden tests never enter the student's process. Rules that can only be
   checked inside that process stay best-effort. Otherwise (``--verdict kernel``, 02, 04, 05 and 06 today) the
   test cells run in the kernel after the student's code, as in nbgrader, and only the scan of 5 guards them.
7. ``score``, first: stderr streams of test cells move to the cell's metadata (see
   :class:`~autograder.steps.SetAsideStderr`).
8. ``score``, then: nbgrader's ``LimitOutput``, ``SaveAutoGrades``, ``AssignLatePenalties``, and the autograded
   notebook written; ``test_outcomes`` reads each test cell's score, outcome and first error line.
9. ``record``: the result record (:mod:`autograder.store`), the commit point, a failed submission included.

Steps 1-5 and 7-9 run in this process, one submission at a time: the gradebook (SQLite by default) takes one
writer (``register_submission`` enters the student and the submission there first). Step 6 runs concurrently on
the workers: threads of this process, or with ``--cluster`` the worker processes of a Dask cluster
(:mod:`autograder.cluster`), which get the prepared notebooks and send the executed ones back as data. Steps 4
and 8 are the preprocessors of nbgrader's ``Autograde`` converter, in its order, so scores are those of
``nbgrader autograde`` for well-formed submissions. A step that fails fails its submission only.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder import heldout
from autograder.layout import Layout
from autograder.nbgrader_api import NbgraderError, check, load_config, make_api, source_notebooks
from autograder.outcomes import record, write_csv
from autograder.repair import Reference
from autograder.sandbox import Limits, SandboxError, SlotPool, choose_isolation
from autograder.steps import (EXECUTE, PREPARE, RESTORE_STEPS, SCORE, SCORE_STEPS, Context, Job, SetAsideStderr,
                              preprocessors, run_steps)
from autograder.store import PIPELINE_VERSION, Result, file_digest, load_result, load_roster
from autograder.verdict import RunnerServer, uses_trusted_runner

# nbgrader 0.9's gradebook triggers SQLAlchemy autoflush warnings on every autograde; they are not ours to fix.
warnings.filterwarnings("ignore", message=".*not in session.*")


@dataclass
class Settings:
    """How a batch is graded."""

    workers: int = 0                  # 0: one per core
    timeout: int | None = None        # seconds per cell; None: nbgrader's configuration (c.Execute.timeout)
    isolation: str = "auto"           # auto (bubblewrap if it works), bwrap, none
    limits: Limits = field(default_factory=Limits)
    force: bool = False               # regrade unchanged submissions too
    progress: bool = True
    verdict: str = "auto"             # auto, trusted, kernel: where test cells run (autograder.verdict)
    cluster: str | None = None        # a Dask scheduler's address: step 6 runs there (autograder.cluster)

    def fingerprint(self) -> str:
        """What the scores may depend on, besides the files (part of each submission's key)."""
        limits = self.limits
        return (f"pipeline={PIPELINE_VERSION};timeout={self.timeout};memory={limits.memory_bytes};"
                f"cpu={limits.cpu_seconds};processes={limits.processes};files={limits.file_bytes};"
                f"verdict={self.verdict}")


# What a kernel imports while it starts (IPython's shell, the debugger, the history database): imported once in
# each kernel factory, a kernel starts in about a third of the CPU time.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
                  "IPython.core.interactiveshell", "IPython.core.completer", "debugpy", "comm", "sqlite3",
                  "pygments.lexers.python")


class Grader:
    """A batch: grades the collected submissions of one assignment, resuming where an interrupted run stopped.

    It registers the assignment, keys each submission (step 1: a submission graded with the same key is skipped),
    opens the sandboxes, and runs the steps of :mod:`autograder.steps` on each submission, executing on N workers
    while the next submissions are prepared and the finished ones scored and recorded.
    """

    def __init__(self, assignment: str, settings: Settings):
        self.assignment = assignment
        self.settings = settings
        self.config = load_config()
        self.layout = Layout.from_config(self.config)
        self.db_url = self.config.CourseDirectory.db_url
        self.sources = source_notebooks(assignment)
        self.names = [p.name for p in self.sources]
        self.source_dir = self.sources[0].parent
        self.timeout = settings.timeout if settings.timeout is not None else int(self.config.Execute.timeout)
        self.trusted = uses_trusted_runner(assignment, settings.verdict)
        self.ctx = Context(assignment, self.config, self.layout, self.timeout, self.trusted, roster=load_roster(),
                           restore_preprocessors=preprocessors(RESTORE_STEPS, self.config),
                           score_preprocessors=[SetAsideStderr(), *preprocessors(SCORE_STEPS, self.config)])

    # -- the assignment ----------------------------------------------------------------------------------------
    def shipped_files(self) -> dict[str, Path]:
        """Files the assignment ships next to its notebooks (data, helper modules): copied for every kernel."""
        ignore = {".ipynb_checkpoints", "__pycache__"}
        return {p.relative_to(self.source_dir).as_posix(): p for p in sorted(self.source_dir.rglob("*"))
                if p.is_file() and p.suffix != ".ipynb" and not ignore & set(p.parts)}

    def preload_modules(self) -> tuple[str, ...]:
        """Modules the source notebooks import: each kernel factory imports them once for all kernels."""
        import ast

        from autograder.tampering import _python

        modules = list(KERNEL_MODULES)
        for path in self.sources:
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type != "code":
                    continue
                try:
                    tree = ast.parse(_python(cell.source))
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        modules += [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        modules.append(node.module)
        return tuple(dict.fromkeys(modules))

    def register(self) -> None:
        """Create the assignment, its notebooks and checksums in the gradebook from ``solutions/`` (nbgrader's
        generate_assignment with a database) and keep the release it writes as the repair reference. Skipped
        when the sources have not changed since the last registration."""
        release_dir = self.layout.release_root
        marker = self.layout.registered(self.assignment)
        digest = file_digest(*self.sources, *self.shipped_files().values(), extra=self.db_url)
        released = [release_dir / self.assignment / name for name in self.names]
        if not (marker.is_file() and marker.read_text() == digest and all(p.is_file() for p in released)
                and self.gradebook_exists()):
            config = load_config()
            config.CourseDirectory.release_directory = str(release_dir)
            check(make_api(config).generate_assignment(self.assignment, force=True, create=True),
                  f"registering {self.assignment} in the gradebook")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(digest)
        self.ctx.references = {p.name: Reference.from_notebook(p) for p in released}

    def gradebook_exists(self) -> bool:
        """Whether the gradebook holds this assignment: its file for SQLite, a query for a database server."""
        if self.db_url.startswith("sqlite:///"):
            return Path(self.db_url.removeprefix("sqlite:///")).is_file()
        from nbgrader.api import Gradebook, MissingEntry

        try:
            with Gradebook(self.db_url) as gradebook:
                gradebook.find_assignment(self.assignment)
        except MissingEntry:
            return False
        return True

    # -- the batch and its resume ------------------------------------------------------------------------------
    def find_submitted(self) -> dict[str, dict[str, Path]]:
        """student id -> {notebook name -> file} of the collected submissions."""
        found = {}
        submitted = self.layout.submitted
        if submitted.is_dir():
            for student in sorted(submitted.iterdir()):
                folder = student / self.assignment
                if folder.is_dir():
                    found[student.name] = {name: folder / name for name in self.names}
        return found

    def grade_all(self) -> list[Result]:
        """Grade every collected submission; return every student's result (skipped ones included)."""
        submitted = self.find_submitted()
        if not submitted:
            raise NbgraderError(f"nothing collected for {self.assignment}: run `python -m autograder collect "
                                f"{self.assignment} INPUT...` first")
        settings_key = self.settings.fingerprint()
        source_key = file_digest(*self.sources, *self.shipped_files().values())
        jobs, results = [], {}
        for student_id, files in submitted.items():   # step 1: the key of each submission
            key = file_digest(*files.values(), extra=source_key + settings_key)
            previous = load_result(self.assignment, student_id)
            if previous is not None and previous.key == key and not self.settings.force:
                results[student_id] = previous
            else:
                jobs.append(Job(student_id, files, key))
        if results:
            print(f"{len(results)} submissions unchanged since they were graded: skipped (--force regrades them)",
                  file=sys.stderr)
        if not jobs:
            self.register()
            return [results[s] for s in sorted(results)]
        if self.settings.cluster:   # step 6 on a Dask cluster; steps 1-5 and 7-9 here, as below
            from autograder.cluster import grade_on_cluster

            results.update({r.student_id: r for r in grade_on_cluster(self, jobs, skipped=len(results))})
            return [results[s] for s in sorted(results)]
        workers = min(self.settings.workers or len(os.sched_getaffinity(0)), len(jobs))
        try:
            isolation = choose_isolation(self.settings.isolation)   # once for the batch
        except SandboxError as error:
            raise NbgraderError(f"--isolation bwrap: {error}") from None
        if isolation.weakness():
            print(f"warning: {isolation.weakness()}", file=sys.stderr)
        # The held-out set (autograder.heldout): checked again here, its path for the trusted runner only.
        held_out = heldout.require(self.assignment, "trusted" if self.trusted else "kernel", isolation.isolates)
        # The kernel factories (and the trusted runners' server) import their modules while the gradebook is
        # prepared.
        server = (RunnerServer(tuple(m for m in self.preload_modules() if m not in KERNEL_MODULES),
                               {heldout.ENV: str(held_out)} if held_out else None)
                  if self.trusted else None)
        try:
            with SlotPool(workers, self.settings.limits, self.preload_modules(), self.shipped_files(),
                          isolation) as pool:
                # What the sandbox cannot guarantee here (without one, said above).
                for weakness in pool.weaknesses() if not isolation.weakness() else []:
                    print(f"warning: {weakness}", file=sys.stderr)
                self.register()
                self.ctx.runner_path = server.wait_ready() if server is not None else None
                self.ctx.pool = pool
                results.update({r.student_id: r for r in self.run(jobs, pool, workers, skipped=len(results))})
        finally:
            self.ctx.pool = None
            if server is not None:
                server.close()
        return [results[s] for s in sorted(results)]

    def run(self, jobs: list[Job], pool: SlotPool, workers: int, skipped: int = 0) -> list[Result]:
        done: list[Result] = []
        bar = _progress(len(jobs) + skipped, skipped, self.assignment, self.settings.progress)
        failures = 0
        with ThreadPoolExecutor(workers) as executor:
            queue, running = deque(jobs), {}
            try:
                while queue or running:
                    # Keep every worker busy, with the next submissions already prepared.
                    while queue and len(running) < 2 * workers:
                        job = queue.popleft()
                        self.prepare(job)
                        running[executor.submit(self.execute, job)] = job
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = running.pop(future)
                        result = self.finish(job)
                        done.append(result)
                        failures += result.status != "graded" or any(n.problem for n in result.notebooks)
                        bar.set_postfix(failed=failures, refresh=False)
                        bar.update(1)
            except BaseException:   # Ctrl-C: stop the kernels now; finished results are already recorded
                for future in running:
                    future.cancel()
                pool.close()
                raise
            finally:
                bar.close()
        return done

    # -- the steps of one submission (autograder.steps) --------------------------------------------------------
    def prepare(self, job: Job) -> None:
        """Steps 1-5, in this process."""
        job.started = time.perf_counter()
        run_steps(self.ctx, job, PREPARE, "prepare failed")

    def execute(self, job: Job) -> None:
        """Step 6, on a worker."""
        run_steps(self.ctx, job, EXECUTE, "execute failed")

    def finish(self, job: Job) -> Result:
        """Steps 7-9, in this process: scored (unless it failed), then recorded in any case."""
        run_steps(self.ctx, job, SCORE, "scoring failed")
        record(self.ctx, job)
        return job.result


def _progress(total: int, initial: int, assignment: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"grading {assignment}", unit="submission",
                disable=not enabled, dynamic_ncols=True, file=sys.stderr)


# -- the command ---------------------------------------------------------------------------------------------------
def grade(assignment: str, submissions: Path | None = None, output: Path | None = None,
          settings: Settings | None = None) -> tuple[list[Result], Path]:
    """Autograde the collected submissions (after collecting ``submissions``, a folder, if given).

    Returns every student's result and the path of the grades CSV.
    """
    settings = settings or Settings()
    if settings.cluster and heldout.needs_heldout(assignment):
        # Its hidden test reads the held-out labels in the trusted runner; they never leave this machine.
        raise NbgraderError(f"{assignment} is scored on held-out data, which stays on this machine: grade it "
                            f"without --cluster")
    # Before anything is collected: an assignment scored on held-out data cannot be graded without it.
    try:
        isolated = choose_isolation(settings.isolation).isolates
    except SandboxError:   # --isolation bwrap where it does not work: said by the batch (Grader.grade_all)
        isolated = False
    heldout.require(assignment, "trusted" if uses_trusted_runner(assignment, settings.verdict) else "kernel",
                    isolated)
    if submissions is not None:
        from autograder.collect import collect

        report = collect(assignment, [Path(submissions)])
        if not report.accepted:
            raise NbgraderError(f"no submission of {assignment} found in {submissions}")
    grader = Grader(assignment, settings)
    results = grader.grade_all()
    output = output or grader.layout.grades(assignment)
    return results, write_csv(assignment, results, output, grader.layout)
