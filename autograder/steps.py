"""The grading steps: what happens to one submission, in order, each a function ``step(ctx, job) -> None``.

The order is declared once, in :data:`PREPARE`, :data:`EXECUTE` and :data:`SCORE` below (the module docstring of
:mod:`autograder.grade` says what each step does and why it comes where it does); :mod:`autograder.grade` runs
them for a batch, and :mod:`autograder.outcomes` holds the steps that read and record what came out. A step
reads the batch's :class:`Context`, works on the :class:`Job` (its notebooks, in place) and returns nothing; a
notebook that cannot go on (missing, rejected) keeps ``nb = None`` and the later steps pass it by. An exception
fails this submission only (:func:`run_steps`): the batch goes on.

To add a step: write ``def my_step(ctx: Context, job: Job) -> None`` and put it in its place in the list. Steps
of :data:`PREPARE` and :data:`SCORE` run in the grader's process, one submission at a time (the gradebook takes
one writer); :data:`EXECUTE` runs on a worker thread, or on a cluster's worker (:mod:`autograder.cluster`), and
must touch neither the gradebook nor the grading folder.
"""

from __future__ import annotations

import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder import outcomes
from autograder.execute import NOT_RUN, error_output, execute_notebook
from autograder.layout import Layout
from autograder.notebooks import is_test, nbgrader_meta
from autograder.repair import Reference, Rejected, load_submission, repair
from autograder.sandbox import SandboxError, SlotPool
from autograder.store import NotebookResult, Result
from autograder.tampering import neutralize, scan
from autograder.verdict import plan


@dataclass
class PreparedNotebook:
    """One notebook of a submission on its way through the steps."""

    name: str
    result: NotebookResult
    nb: NotebookNode | None = None      # None: nothing to execute (missing or rejected)
    scored: bool = False                # its grades are in the gradebook (step 8, or 0 for a missing one)


@dataclass
class Job:
    """One submission on its way through the steps."""

    student_id: str
    files: dict[str, Path]
    key: str
    notebooks: list[PreparedNotebook] = field(default_factory=list)
    plans: dict[str, dict] = field(default_factory=dict)   # notebook name -> trusted runner plan
    started: float = 0.0
    error: str = ""           # why the pipeline failed on this submission ("" when it did not)
    result: Result | None = None   # set by the last step (outcomes.record)

    def to_run(self) -> list[PreparedNotebook]:
        """The notebooks still on their way (not missing, not rejected)."""
        return [n for n in self.notebooks if n.nb is not None]


@dataclass
class Context:
    """What the steps of one batch read: the assignment, the gradebook, nbgrader's preprocessors, the references."""

    assignment: str
    config: object                      # nbgrader's traitlets config
    layout: Layout
    timeout: int                        # seconds per cell
    trusted: bool                       # test cells in the trusted runner (autograder.verdict)
    roster: dict = field(default_factory=dict)
    restore_preprocessors: list = field(default_factory=list)   # step 4
    score_preprocessors: list = field(default_factory=list)     # steps 7 and 8
    references: dict[str, Reference] = field(default_factory=dict)   # the released notebooks, by name
    runner_path: str | None = None      # the trusted runners' fork server, while a batch runs
    skip_training: bool = False         # grade --skip-training: the training tests only raise (skip_training)
    pool: SlotPool | None = None        # the sandboxes, while a batch runs here (step 6)

    @property
    def db_url(self) -> str:
        return self.config.CourseDirectory.db_url

    def resources(self, student_id: str, name: str) -> dict:
        """nbgrader's resources for one notebook of one student."""
        return {"nbgrader": {"student": student_id, "assignment": self.assignment,
                             "notebook": name.removesuffix(".ipynb"), "db_url": self.db_url}}


# -- steps 1-5, in this process --------------------------------------------------------------------------------
def register_submission(ctx: Context, job: Job) -> None:
    """The student and the submission (with its timestamp) in the gradebook; names from the roster."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    folder = ctx.layout.submitted / job.student_id / ctx.assignment
    timestamp = CourseDirectory(config=ctx.config).get_existing_timestamp(str(folder))
    person = ctx.roster.get(job.student_id, {})
    names = {k: person[k] for k in ("first_name", "last_name", "email") if person.get(k)}
    with Gradebook(ctx.db_url) as gradebook:
        gradebook.update_or_create_student(job.student_id, **names)
        if timestamp:
            gradebook.update_or_create_submission(ctx.assignment, job.student_id, timestamp=timestamp)
        else:
            gradebook.update_or_create_submission(ctx.assignment, job.student_id)


def read(ctx: Context, job: Job) -> None:
    """Step 1 (the files; their key is the batch's, :mod:`autograder.grade`): one notebook per released one, a
    missing file marked "not submitted"."""
    for name, path in job.files.items():
        notebook = PreparedNotebook(name, NotebookResult(name.removesuffix(".ipynb")))
        job.notebooks.append(notebook)
        if not path.is_file():
            notebook.result.problem = "not submitted"


def parse(ctx: Context, job: Job) -> None:
    """Step 2: an empty file, or one that is not a notebook, is rejected with the reason."""
    for notebook in job.notebooks:
        if notebook.result.problem:
            continue
        try:
            notebook.nb, notebook.result.repairs = load_submission(job.files[notebook.name].read_bytes())
        except Rejected as reason:
            notebook.result.problem = f"rejected: {reason}"


def repair_metadata(ctx: Context, job: Job) -> None:
    """Step 3 (:mod:`autograder.repair`): grade metadata made to match the released notebook."""
    for notebook in job.to_run():
        notebook.result.repairs += repair(notebook.nb, ctx.references[notebook.name])


def restore(ctx: Context, job: Job) -> None:
    """Step 4: nbgrader's sanitising preprocessors put back locked cells and hidden tests from the gradebook."""
    for notebook in job.to_run():
        nb, resources = notebook.nb, ctx.resources(job.student_id, notebook.name)
        for preprocessor in ctx.restore_preprocessors:
            nb, resources = preprocessor(nb, resources)
        for cell in nb.cells:   # the grader's own metadata comes from this run only, never from the file
            cell.metadata.pop("autograder", None)
        notebook.nb = nb


def skip_training_tests(nb: NotebookNode, reference: Reference) -> None:
    """Each training test (tagged in the source, :data:`autograder.notebooks.TRAINING_TAG`; read from the
    release, never from the submission) only raises, so it scores 0; its record says "skipped"."""
    for cell in nb.cells:
        if is_test(cell) and nbgrader_meta(cell).get("grade_id") in reference.training:
            cell.source = f"raise RuntimeError({outcomes.SKIPPED!r})"
            cell.metadata.setdefault("autograder", {})["skipped"] = True


def skip_training(ctx: Context, job: Job) -> None:
    """With ``grade --skip-training`` only: the training tests left out (:func:`skip_training_tests`). After
    ``restore``, which puts the released test cells back, and before the scan sees the cells that will run."""
    if ctx.skip_training:
        for notebook in job.to_run():
            skip_training_tests(notebook.nb, ctx.references[notebook.name])


def neutralise(ctx: Context, job: Job) -> None:
    """Step 5 (:mod:`autograder.tampering`): statements that patch the tests flagged; with the test cells in the
    kernel, they become ``pass`` (with the trusted runner they cannot change a verdict: flagged only)."""
    for notebook in job.to_run():
        findings = scan(notebook.nb)
        if not ctx.trusted:
            neutralize(notebook.nb, findings)
        notebook.result.tampering_neutralised = not ctx.trusted
        notebook.result.tampering = [f.describe() for f in findings]


def plan_verdict(ctx: Context, job: Job) -> None:
    """With the trusted runner: which cells run in the kernel and which in the runner (:func:`verdict.plan`)."""
    if ctx.trusted:
        for notebook in job.to_run():
            job.plans[notebook.name] = dict(plan(notebook.nb, ctx.references[notebook.name]),
                                            server=ctx.runner_path)


# -- step 6, on a worker -------------------------------------------------------------------------------------------
def execute(ctx: Context, job: Job) -> None:
    """Step 6: the notebooks run in one sandbox of the batch's pool."""
    execute_prepared(job.notebooks, job.plans, ctx.pool, ctx.timeout)


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


# -- steps 7 and 8, in this process ----------------------------------------------------------------------------
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


def preprocessors(names: list[str], config) -> list:
    """nbgrader's preprocessors of these names, configured."""
    import nbgrader.preprocessors as nbgrader_preprocessors

    return [getattr(nbgrader_preprocessors, name)(config=config) for name in names]


# Steps 4 and 8: nbgrader's Autograde.sanitize_preprocessors and autograde_preprocessors, in nbgrader's order,
# minus Execute (step 6), the disabled-by-default IgnorePattern and ClearMetadataPreprocessor, and the second
# CheckCellMetadata: it validates the nbgrader metadata that the first one validated before execution, which
# changes no metadata, and it cost a third of this process's time per submission (it re-checks the JSON schema
# itself for every cell).
RESTORE_STEPS = ["ClearOutput", "DeduplicateIds", "OverwriteKernelspec", "OverwriteCells", "CheckCellMetadata"]
SCORE_STEPS = ["LimitOutput", "SaveAutoGrades", "AssignLatePenalties"]


def score(ctx: Context, job: Job) -> None:
    """Steps 7 and 8 (stderr set aside, then nbgrader's scoring), and the autograded notebook written; a missing
    or rejected notebook gets every grade 0, as nbgrader does for a missing notebook."""
    from nbgrader.api import Gradebook

    for notebook in job.notebooks:
        if notebook.nb is None:
            with Gradebook(ctx.db_url) as gradebook:
                submitted = gradebook.find_submission_notebook(notebook.result.name, ctx.assignment,
                                                               job.student_id)
                for grade in submitted.grades:
                    grade.auto_score = 0
                    grade.needs_manual_grade = False
                gradebook.db.commit()
            notebook.scored = True
            continue
        nb, resources = notebook.nb, ctx.resources(job.student_id, notebook.name)
        for step in ctx.score_preprocessors:
            nb, resources = step(nb, resources)
        notebook.nb = nb
        notebook.result.stderr_set_aside = resources.get("stderr_set_aside", [])
        target = ctx.layout.autograded / job.student_id / ctx.assignment
        target.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target / notebook.name)
        stamp = ctx.layout.submitted / job.student_id / ctx.assignment / "timestamp.txt"
        if stamp.is_file():
            shutil.copyfile(stamp, target / "timestamp.txt")
        notebook.scored = True


# -- the order --------------------------------------------------------------------------------------------------
# Steps 1-5: the submission read, parsed, repaired, restored and scanned (and, with the trusted runner, planned).
PREPARE = (register_submission, read, parse, repair_metadata, restore, skip_training, neutralise, plan_verdict)
# Step 6: the student's code runs.
EXECUTE = (execute,)
# Steps 7 and 8: scored, then each test cell's outcome read. Step 9, the record, always follows
# (outcomes.record): it is the commit point, a failed submission included.
SCORE = (score, outcomes.test_outcomes)


def run_steps(ctx: Context, job: Job, steps: tuple, failure: str) -> None:
    """Run ``steps`` on ``job`` in order, unless it already failed; an unexpected error fails this submission
    only, its reason ``"<failure>: <error>"``."""
    if job.error:
        return
    for step in steps:
        try:
            step(ctx, job)
        except Exception as error:
            job.error = f"{failure}: {type(error).__name__}: {error}"
            traceback.print_exc()
            return
