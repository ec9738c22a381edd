"""Grade: autograde every collected submission of an assignment, in parallel sandboxes, with nbgrader's scoring.

Each submission goes through these steps, in order:

1. ``read``: the submitted files and their key (a hash with the assignment's source and the grading settings);
   a submission already graded with the same key is skipped, so an interrupted run resumes where it stopped.
2. ``parse``: an empty file, or one that is not a notebook, is scored 0 with the reason (the batch goes on).
3. ``repair`` (:mod:`autograder.repair`): grade metadata the released notebook does not have (unknown grade ids,
   extra graded cells, an answer re-marked as a test or locked), duplicated grade ids, lost metadata, deleted
   test cells, old formats. Before 4: nbgrader matches cells by grade id and stops on duplicates.
4. ``restore``: nbgrader's own sanitising preprocessors put back locked cells and hidden tests from the gradebook
   (``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells``, ``CheckCellMetadata``).
5. ``neutralise`` (:mod:`autograder.tampering`): statements that patch the tests' modules or helpers are flagged
   for the instructor and, when the test cells run in the kernel, become ``pass``. After 4, so that the scan
   sees exactly the cells that will run. A static scan cannot be complete: with the trusted runner (6) it is
   only a flag (the statements run, and cannot change a verdict), not the defence.
6. ``execute`` (:mod:`autograder.execute`) in a sandboxed kernel (:mod:`autograder.sandbox`), on N workers.
   With the trusted test runner (:mod:`autograder.verdict`; the assignments of ``TRUSTED_ASSIGNMENTS``, or
   ``--verdict trusted``) the kernel runs only the non-test cells, and each test cell runs in a separate trusted
   process that calls the student's functions through proxies and gets data back: the outcome of every
   assertion is decided there, and the hidden tests never enter the student's process. Rules that can only be
   checked inside that process stay best-effort. Otherwise (``--verdict kernel``, 02, 04, 05 and 06 today) the
   test cells run in the kernel after the student's code, as in nbgrader, and only the scan of 5 guards them.
7. ``set aside stderr``: stderr streams of test cells move to the cell's metadata (see :class:`SetAsideStderr`).
8. ``score``: nbgrader's ``LimitOutput``, ``SaveAutoGrades``, ``AssignLatePenalties``.
9. ``record``: the autograded notebook, then the result record (:mod:`autograder.store`), the commit point.

Steps 1-5 and 7-9 run in this process, one submission at a time: the gradebook (SQLite by default) takes one
writer. Step 6 runs concurrently on the workers: threads of this process, or with ``--cluster`` the worker
processes of a Dask cluster (:mod:`autograder.cluster`), which get the prepared notebooks and send the executed
ones back as data. Steps 4 and 8 are the preprocessors of nbgrader's ``Autograde``
converter, in its order, so scores are those of ``nbgrader autograde`` for well-formed submissions.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sys
import time
import traceback
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import heldout
from autograder.execute import KERNEL_DIED, NOT_RUN, error_output, execute_notebook
from autograder.layout import Layout
from autograder.nbgrader_api import NbgraderError, check, load_config, make_api, source_notebooks
from autograder.notebooks import MARKERS, is_test, nbgrader_meta
from autograder.repair import Reference, Rejected, load_submission, repair
from autograder.sandbox import Limits, SandboxError, SlotPool, bubblewrap_works, isolation_warning
from autograder.store import (PIPELINE_VERSION, NotebookResult, Result, SafeCsvWriter, TestResult, file_digest,
                              load_result, load_roster, save_result)
from autograder.tampering import neutralize, scan
from autograder.verdict import RunnerServer, plan, uses_trusted_runner
from dlcourse.testing import FAILED_MARK

# nbgrader 0.9's gradebook triggers SQLAlchemy autoflush warnings on every autograde; they are not ours to fix.
warnings.filterwarnings("ignore", message=".*not in session.*")

StudentResult = Result   # the name the first version of this module used

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
MAX_EXPLANATION = 400   # characters of a course helper's message kept for the feedback


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
    skip_training: bool = False       # the training tests (notebooks.TRAINING_TAG) are not run, and score 0

    def fingerprint(self) -> str:
        """What the scores may depend on, besides the files (part of each submission's key)."""
        limits = self.limits
        return (f"pipeline={PIPELINE_VERSION};timeout={self.timeout};memory={limits.memory_bytes};"
                f"cpu={limits.cpu_seconds};processes={limits.processes};files={limits.file_bytes};"
                f"verdict={self.verdict}" + (";skip_training" if self.skip_training else ""))


@dataclass
class PreparedNotebook:
    """One notebook of a submission on its way through the steps."""

    name: str
    result: NotebookResult
    nb: NotebookNode | None = None      # None: nothing to execute (missing or rejected)


@dataclass
class Job:
    student_id: str
    files: dict[str, Path]
    key: str
    notebooks: list[PreparedNotebook] = field(default_factory=list)
    plans: dict[str, dict] = field(default_factory=dict)   # notebook name -> trusted runner plan
    started: float = 0.0
    error: str = ""           # why the pipeline failed on this submission ("" when it did not)


# -- steps 4, 7 and 8 use nbgrader's preprocessors ---------------------------------------------------------------
class SetAsideStderr:
    """Move stderr output of test cells into the cell's metadata before scoring.

    nbgrader scores a test cell 0 when its output holds an error *or any stderr stream*; a correct solution
    that emits a PyTorch ``UserWarning`` or a tqdm progress bar would lose the points. A failing test always
    raises, and the exception is an ``error`` output, which stays: so a genuinely failing test still scores 0,
    while warnings and progress bars no longer count. (If the kernel reported an error that left no ``error``
    output, nbgrader's ``Execute`` has already added one from the execute reply.) The text is kept in
    ``metadata.autograder.stderr`` for the instructor.
    """

    def __call__(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        moved = []
        for cell in nb.cells:
            if cell.cell_type != "code" or not is_test(cell):
                continue
            kept, aside = [], []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    aside.append(output.get("text", ""))
                else:
                    kept.append(output)
            if aside:
                cell.outputs = kept
                cell.metadata.setdefault("autograder", {})["stderr"] = "".join(aside)
                moved.append(nbgrader_meta(cell)["grade_id"])
        resources["stderr_set_aside"] = moved
        return nb, resources


def _preprocessors(names: list[str], config) -> list:
    import nbgrader.preprocessors as nbgrader_preprocessors

    return [getattr(nbgrader_preprocessors, name)(config=config) for name in names]


# What a kernel imports while it starts (IPython's shell, the debugger, the history database): imported once in
# each kernel factory, a kernel starts in about a third of the CPU time.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
                  "IPython.core.interactiveshell", "IPython.core.completer", "debugpy", "comm", "sqlite3",
                  "pygments.lexers.python")
# Steps 4 and 8: nbgrader's Autograde.sanitize_preprocessors and autograde_preprocessors, in nbgrader's order,
# minus Execute (step 6), the disabled-by-default IgnorePattern and ClearMetadataPreprocessor, and the second
# CheckCellMetadata: it validates the nbgrader metadata that the first one validated before execution, which
# changes no metadata, and it cost a third of this process's time per submission (it re-checks the JSON schema
# itself for every cell).
RESTORE_STEPS = ["ClearOutput", "DeduplicateIds", "OverwriteKernelspec", "OverwriteCells", "CheckCellMetadata"]
SCORE_STEPS = ["LimitOutput", "SaveAutoGrades", "AssignLatePenalties"]


class Grader:
    """Grades the collected submissions of one assignment (see the module docstring for the steps)."""

    def __init__(self, assignment: str, settings: Settings):
        self.assignment = assignment
        self.settings = settings
        self.config = load_config()
        self.layout = Layout.from_config(self.config)
        self.db_url = self.config.CourseDirectory.db_url
        self.sources = source_notebooks(assignment)
        self.names = [p.name for p in self.sources]
        self.source_dir = self.sources[0].parent
        self.submitted = self.layout.submitted
        self.autograded = self.layout.autograded
        self.timeout = settings.timeout if settings.timeout is not None else int(self.config.Execute.timeout)
        self.references: dict[str, Reference] = {}
        self.restore = _preprocessors(RESTORE_STEPS, self.config)
        self.score_steps = [SetAsideStderr(), *_preprocessors(SCORE_STEPS, self.config)]
        self.roster = load_roster()
        self.trusted = uses_trusted_runner(assignment, settings.verdict)
        self.runner_path: str | None = None   # the trusted runners' fork server, while a batch runs

    # -- the batch ---------------------------------------------------------------------------------------------
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
        self.references = {p.name: Reference.from_notebook(p) for p in released}

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

    def find_submitted(self) -> dict[str, dict[str, Path]]:
        """student id -> {notebook name -> file} of the collected submissions."""
        found = {}
        if self.submitted.is_dir():
            for student in sorted(self.submitted.iterdir()):
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
        for student_id, files in submitted.items():
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
        sandboxed = self.settings.isolation != "none" and bubblewrap_works()
        if self.settings.isolation == "bwrap" and not sandboxed:
            raise NbgraderError("--isolation bwrap: " + isolation_warning())
        if not sandboxed:
            print(f"warning: {isolation_warning()}", file=sys.stderr)
        # The held-out set (autograder.heldout): checked again here, its path for the trusted runner only.
        held_out = heldout.require(self.assignment, "trusted" if self.trusted else "kernel", sandboxed)
        # The kernel factories (and the trusted runners' server) import their modules while the gradebook is
        # prepared.
        server = (RunnerServer(tuple(m for m in self.preload_modules() if m not in KERNEL_MODULES),
                               {heldout.ENV: str(held_out)} if held_out else None)
                  if self.trusted else None)
        try:
            with SlotPool(workers, self.settings.limits, self.preload_modules(), self.shipped_files(),
                          sandboxed) as pool:
                for weakness in pool.weaknesses() if sandboxed else []:   # what the sandbox cannot guarantee here
                    print(f"warning: {weakness}", file=sys.stderr)
                self.register()
                self.runner_path = server.wait_ready() if server is not None else None
                results.update({r.student_id: r for r in self.run(jobs, pool, workers, skipped=len(results))})
        finally:
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
                        self.guard(job, self.prepare)
                        running[executor.submit(self.guard, job, self.execute, pool)] = job
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

    @staticmethod
    def guard(job: Job, step, *args) -> None:
        """Run one step of one job; an unexpected error fails this submission only."""
        if job.error:
            return
        try:
            step(job, *args)
        except Exception as error:
            job.error = f"{step.__name__} failed: {type(error).__name__}: {error}"
            traceback.print_exc()

    # -- steps 1-5, in this process --------------------------------------------------------------------------------
    def prepare(self, job: Job) -> None:
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory

        job.started = time.perf_counter()
        folder = self.submitted / job.student_id / self.assignment
        timestamp = CourseDirectory(config=self.config).get_existing_timestamp(str(folder))
        person = self.roster.get(job.student_id, {})
        names = {k: person[k] for k in ("first_name", "last_name", "email") if person.get(k)}
        with Gradebook(self.db_url) as gradebook:
            gradebook.update_or_create_student(job.student_id, **names)
            if timestamp:
                gradebook.update_or_create_submission(self.assignment, job.student_id, timestamp=timestamp)
            else:
                gradebook.update_or_create_submission(self.assignment, job.student_id)
        for name, path in job.files.items():
            notebook = PreparedNotebook(name, NotebookResult(name.removesuffix(".ipynb")))
            job.notebooks.append(notebook)
            if not path.is_file():
                notebook.result.problem = "not submitted"
                continue
            try:
                nb, notes = load_submission(path.read_bytes())                          # step 2
            except Rejected as reason:
                notebook.result.problem = f"rejected: {reason}"
                continue
            notes += repair(nb, self.references[name])                                 # step 3
            resources = self.resources(job.student_id, name)
            for preprocessor in self.restore:                                          # step 4
                nb, resources = preprocessor(nb, resources)
            for cell in nb.cells:   # the grader's own metadata comes from this run only, never from the file
                cell.metadata.pop("autograder", None)
            if self.settings.skip_training:
                skip_training_tests(nb, self.references[name])
            findings = scan(nb)                                                        # step 5
            if not self.trusted:   # with the trusted runner the statements cannot change a verdict: flag only
                neutralize(nb, findings)
            notebook.result.tampering_neutralised = not self.trusted
            if self.trusted:
                job.plans[name] = dict(plan(nb, self.references[name]), server=self.runner_path)
            notebook.nb = nb
            notebook.result.repairs = notes
            notebook.result.tampering = [f.describe() for f in findings]

    def resources(self, student_id: str, name: str) -> dict:
        return {"nbgrader": {"student": student_id, "assignment": self.assignment,
                             "notebook": name.removesuffix(".ipynb"), "db_url": self.db_url}}

    # -- step 6, on a worker -----------------------------------------------------------------------------------
    def execute(self, job: Job, pool: SlotPool) -> None:
        execute_prepared(job.notebooks, job.plans, pool, self.timeout)

    # -- steps 7-9, in this process --------------------------------------------------------------------------------
    def finish(self, job: Job) -> Result:
        from nbgrader.api import Gradebook, MissingEntry

        result = Result(job.student_id, self.assignment, key=job.key, notebooks=[n.result for n in job.notebooks])
        if not job.error:
            try:
                for notebook in job.notebooks:
                    self.score(job, notebook)
            except Exception as error:
                job.error = f"scoring failed: {type(error).__name__}: {error}"
                traceback.print_exc()
        with Gradebook(self.db_url) as gradebook:
            try:
                submission = gradebook.find_submission(self.assignment, job.student_id)
                result.score, result.max_score = float(submission.score), float(submission.max_score)
                if submission.timestamp:
                    result.timestamp = submission.timestamp.isoformat()
            except MissingEntry:
                result.max_score = float(gradebook.find_assignment(self.assignment).max_score)
        if job.error:
            result.status, result.reason = "failed", job.error
        elif all(n.nb is None for n in job.notebooks):
            result.status = "rejected"
            result.reason = "; ".join(n.result.problem for n in job.notebooks)
        result.seconds = time.perf_counter() - job.started
        save_result(result)                                                            # step 9 (commit point)
        return result

    def score(self, job: Job, notebook: PreparedNotebook) -> None:
        from nbgrader.api import Gradebook

        resources = self.resources(job.student_id, notebook.name)
        if notebook.nb is None:   # missing or rejected: every grade 0, as nbgrader does for a missing notebook
            with Gradebook(self.db_url) as gradebook:
                submitted = gradebook.find_submission_notebook(notebook.result.name, self.assignment,
                                                               job.student_id)
                for grade in submitted.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gradebook.db.commit()
                notebook.result.tests = self.test_results(job.student_id, notebook.result.name, None, gradebook)
            return
        nb = notebook.nb
        for step in self.score_steps:                                                  # steps 7 and 8
            nb, resources = step(nb, resources)
        notebook.result.stderr_set_aside = resources.get("stderr_set_aside", [])
        target = self.autograded / job.student_id / self.assignment
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target / notebook.name)
        stamp = self.submitted / job.student_id / self.assignment / "timestamp.txt"
        if stamp.is_file():
            shutil.copyfile(stamp, target / "timestamp.txt")
        with Gradebook(self.db_url) as gradebook:
            notebook.result.tests = self.test_results(job.student_id, notebook.result.name, nb, gradebook)

    def test_results(self, student_id: str, notebook_id: str, nb: NotebookNode | None, gradebook) -> list[TestResult]:
        """Score, outcome and first error line of every test cell, in notebook order."""
        grades = {g.name: g for g in gradebook.find_submission_notebook(notebook_id, self.assignment,
                                                                        student_id).grades}
        reference = self.references[notebook_id + ".ipynb"]
        cells = {nbgrader_meta(c).get("grade_id"): c for c in (nb.cells if nb is not None else [])}
        tests = []
        for grade_id, hint in reference.tests.items():
            grade = grades.get(grade_id)
            points = float(grade.max_score) if grade else 0.0
            score = float(grade.score or 0) if grade else 0.0
            explanation = ""
            if grade_id not in cells:
                outcome, message, hidden = "not run", "the notebook could not be graded", False
            elif cells[grade_id].metadata.get("autograder", {}).get("skipped"):
                outcome, message, hidden = "skipped", SKIPPED, False
            elif score >= points:
                outcome, message, hidden = "passed", "", False
            else:
                outcome, message, hidden = describe_failure(cells[grade_id])
                verdict = cells[grade_id].metadata.get("autograder", {}).get("verdict", {}) if self.trusted else {}
                if verdict.get("by") == "helper":   # said by a course assertion helper in the trusted runner
                    explanation = str(verdict.get("message", ""))[:MAX_EXPLANATION]
            tests.append(TestResult(grade_id, points, score, outcome, message, hidden, hint, explanation))
        return tests


SKIPPED = "not run: grade --skip-training leaves out the tests that train a network"


def skip_training_tests(nb: NotebookNode, reference: Reference) -> None:
    """``--skip-training``: each training test (tagged in the source, :data:`autograder.notebooks.TRAINING_TAG`;
    read from the release, never from the submission) only raises, so it scores 0; its record says "skipped"."""
    for cell in nb.cells:
        if is_test(cell) and nbgrader_meta(cell).get("grade_id") in reference.training:
            cell.source = f"raise RuntimeError({SKIPPED!r})"
            cell.metadata.setdefault("autograder", {})["skipped"] = True


def execute_prepared(notebooks: list[PreparedNotebook], plans: dict[str, dict], pool: SlotPool,
                     timeout: int) -> None:
    """Step 6 for one submission: run its prepared notebooks in one sandbox of ``pool``, in place.

    The only step that runs the student's code; it touches neither the gradebook nor the grading folder, so a
    worker of a cluster runs it too (:mod:`autograder.cluster`).
    """
    slot = pool.acquire()
    try:
        for notebook in notebooks:
            if notebook.nb is None:
                continue
            try:
                outcome = execute_notebook(slot, notebook.nb, timeout, plans.get(notebook.name))
            except SandboxError as error:   # the kernel or its factory failed: restart the sandbox
                notebook.result.problem = f"the sandbox failed: {error}"
                for cell in notebook.nb.cells:
                    if cell.cell_type == "code":
                        cell.outputs = [error_output(NOT_RUN, "not run: the sandbox failed")]
                slot.close()
                slot.start()
                continue
            notebook.result.seconds = outcome.seconds
            notebook.result.problem = outcome.problem
    finally:
        pool.release(slot)


_CHECK_NAME = re.compile(r"""checks\((["'])(.*?)\1""")


def describe_partial_credit(cell: NotebookNode) -> tuple[str, str, bool]:
    """(outcome, message, hidden) of a test cell that scored partial credit with dlcourse.testing.Checks.

    Its failed checks are the stdout lines that start with FAILED_MARK. A failure counts as visible only when its
    check is named literally in the visible part of the cell (before the hidden tests); the message is that of
    the first visible failure, and the failure is hidden (only the hint is shown) when no visible check failed.
    """
    failed = [line[len(FAILED_MARK):].strip() for output in cell.get("outputs", [])
              if output.get("output_type") == "stream" and output.get("name") == "stdout"
              for line in output.get("text", "").splitlines() if line.startswith(FAILED_MARK)]
    if not failed:
        return "failed", "the cell's last value was read as partial credit", False
    visible_part = MARKERS.visible_tests(cell.source)
    visible_names = [match.group(2) for match in _CHECK_NAME.finditer(visible_part)]
    visible = [line for line in failed if any(line.startswith(f"{name}: ") for name in visible_names)]
    return "failed", (visible or failed)[0], not visible   # like an error: the first failure decides


def describe_failure(cell: NotebookNode) -> tuple[str, str, bool]:
    """(outcome, first line of the error, whether it happened in the hidden tests) of an executed test cell."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:   # called for cells that lost points: a value read as partial credit
        return describe_partial_credit(cell)
    names = {e.get("ename") for e in errors}
    error = errors[0]
    if "CellTimeoutError" in names:
        return "timeout", "timed out: the cell ran longer than the time limit (an endless loop?)", False
    if NOT_RUN in names:
        return "not run", "not run: the kernel had stopped earlier", False
    if KERNEL_DIED in names:
        died = next(e for e in errors if e.get("ename") == KERNEL_DIED)
        return "kernel died", _ANSI.sub("", died.get("evalue", "")), False
    message = f"{error.get('ename')}: {_ANSI.sub('', str(error.get('evalue', ''))).strip()}".splitlines()[0]
    traceback_text = _ANSI.sub("", "\n".join(error.get("traceback", [])))
    match = _CELL_LINE.search(traceback_text)
    hidden = True   # when the failing line is unknown, treat it as hidden: never show what we cannot place
    if match:
        hidden = MARKERS.in_hidden_tests(cell.source, int(match.group(1)))
    return "failed", message, hidden


def _progress(total: int, initial: int, assignment: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"grading {assignment}", unit="submission",
                disable=not enabled, dynamic_ncols=True, file=sys.stderr)


# -- the command ---------------------------------------------------------------------------------------------------
def write_csv(assignment: str, results: list[Result], path: Path, layout: Layout | None = None) -> Path:
    """One row per student: totals, status and one column per test cell.

    The scores are the gradebook's (:func:`autograder.export.gradebook_rows`, the source of truth of every grades
    table), so manual grades entered in formgrader show here as in the export; a submission the gradebook does not
    hold (a rejected file) keeps its record's.
    """
    from autograder.export import gradebook_scores

    scores = gradebook_scores(assignment, layout)
    tests = list(dict.fromkeys(name for r in results for name in r.tests))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvWriter(handle, quoting=csv.QUOTE_MINIMAL)   # no spreadsheet formula in a cell
        writer.writerow(["assignment", "student_id", "score", "max_score", "status", "notes", *tests])
        for r in results:
            notes = "; ".join(([r.reason] if r.reason else []) + r.flags)
            score, max_score, by_test = scores.get(r.student_id, (r.score, r.max_score, {}))
            by_test = {**r.tests, **{t: s for t, s in by_test.items() if t in r.tests}}
            writer.writerow([assignment, r.student_id, f"{score:g}", f"{max_score:g}", r.status, notes,
                             *(f"{by_test[t]:g}" if t in by_test else "" for t in tests)])
    return path


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
    heldout.require(assignment, "trusted" if uses_trusted_runner(assignment, settings.verdict) else "kernel",
                    settings.isolation != "none" and bubblewrap_works())
    if submissions is not None:
        from autograder.collect import collect

        report = collect(assignment, [Path(submissions)])
        if not report.accepted:
            raise NbgraderError(f"no submission of {assignment} found in {submissions}")
    grader = Grader(assignment, settings)
    results = grader.grade_all()
    output = output or grader.layout.grades(assignment)
    return results, write_csv(assignment, results, output, grader.layout)
