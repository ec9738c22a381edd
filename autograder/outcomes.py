"""What came out of grading a submission: each test cell's outcome, the result record, the grades table.

The last steps of :mod:`autograder.steps` (same signature, ``step(ctx, job) -> None``): :func:`test_outcomes`
reads the score, outcome and first error line of every test cell (what feedback and the report show), and
:func:`record` writes the result record (:mod:`autograder.store`), the commit point of a submission. The
functions that read an executed test cell (:func:`describe_failure`) and the grades CSV (:func:`write_csv`) are
here too.
"""

from __future__ import annotations

import csv
import re
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from nbformat import NotebookNode

from autograder.execute import KERNEL_DIED, NOT_RUN
from autograder.layout import Layout
from autograder.notebooks import MARKERS, nbgrader_meta
from autograder.store import Result, SafeCsvWriter, TestResult, save_result
from dlcourse.testing import FAILED_MARK

if TYPE_CHECKING:
    from autograder.steps import Context, Job

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
_CHECK_NAME = re.compile(r"""checks\((["'])(.*?)\1""")
MAX_EXPLANATION = 400   # characters of a course helper's message kept for the feedback

SKIPPED = "not run: grade --skip-training leaves out the tests that train a network"  # steps.skip_training


# -- steps ---------------------------------------------------------------------------------------------------------
def test_outcomes(ctx: Context, job: Job) -> None:
    """Score, outcome and first error line of every test cell of every scored notebook (after step 8)."""
    from nbgrader.api import Gradebook

    for notebook in job.notebooks:
        if notebook.scored:
            with Gradebook(ctx.db_url) as gradebook:
                notebook.result.tests = test_results(ctx, job.student_id, notebook.result.name, notebook.nb,
                                                     gradebook)


def record(ctx: Context, job: Job) -> None:
    """Step 9: the totals from the gradebook, the status, then the result record saved (the commit point)."""
    from nbgrader.api import Gradebook, MissingEntry

    if job.error and any(n.scored and not n.result.tests for n in job.notebooks):
        try:   # scoring failed on a later notebook: the ones scored before keep their outcomes
            test_outcomes(ctx, job)
        except Exception:
            traceback.print_exc()
    result = Result(job.student_id, ctx.assignment, key=job.key, notebooks=[n.result for n in job.notebooks])
    with Gradebook(ctx.db_url) as gradebook:
        try:
            submission = gradebook.find_submission(ctx.assignment, job.student_id)
            result.score, result.max_score = float(submission.score), float(submission.max_score)
            if submission.timestamp:
                result.timestamp = submission.timestamp.isoformat()
        except MissingEntry:
            result.max_score = float(gradebook.find_assignment(ctx.assignment).max_score)
    if job.error:
        result.status, result.reason = "failed", job.error
    elif all(n.nb is None for n in job.notebooks):
        result.status = "rejected"
        result.reason = "; ".join(n.result.problem for n in job.notebooks)
    result.seconds = time.perf_counter() - job.started
    save_result(result)
    job.result = result


# -- reading a test cell ---------------------------------------------------------------------------------------
def test_results(ctx: Context, student_id: str, notebook_id: str, nb: NotebookNode | None,
                 gradebook) -> list[TestResult]:
    """Score, outcome and first error line of every test cell of one notebook, in notebook order."""
    grades = {g.name: g for g in gradebook.find_submission_notebook(notebook_id, ctx.assignment,
                                                                    student_id).grades}
    reference = ctx.references[notebook_id + ".ipynb"]
    cells = {nbgrader_meta(c).get("grade_id"): c for c in (nb.cells if nb is not None else [])}
    tests = []
    for grade_id, hint in reference.tests.items():
        grade = grades.get(grade_id)
        points = float(grade.max_score) if grade else 0.0
        score = float(grade.score or 0) if grade else 0.0
        explanation = ""
        if grade_id not in cells:
            outcome, message, hidden = "not run", "the notebook could not be graded", False
        elif cells[grade_id].metadata.get("autograder", {}).get("skipped"):   # steps.skip_training
            outcome, message, hidden = "skipped", SKIPPED, False
        elif score >= points:
            outcome, message, hidden = "passed", "", False
        else:
            outcome, message, hidden = describe_failure(cells[grade_id])
            verdict = cells[grade_id].metadata.get("autograder", {}).get("verdict", {}) if ctx.trusted else {}
            if verdict.get("by") == "helper":   # said by a course assertion helper in the trusted runner
                explanation = str(verdict.get("message", ""))[:MAX_EXPLANATION]
        tests.append(TestResult(grade_id, points, score, outcome, message, hidden, hint, explanation))
    return tests


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


# -- the grades table ------------------------------------------------------------------------------------------
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
