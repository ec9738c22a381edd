"""Feedback: one HTML file per student and notebook, safe to hand out.

nbgrader's own feedback shows the test cells as they ran, hidden tests included (nbgrader issue 917). This page
is built from parts that cannot contain them:

- the test cells' source comes from the *released* notebook, where nbgrader has removed the hidden tests;
- a test's error message is shown only when the failing line is in the visible part; for a failure in the
  hidden tests the page gives the test's name and its author-written hint (the cell's first comment line,
  which students already see) and, where the test ran in the trusted runner (:mod:`autograder.verdict`), what
  the course's assertion helper said (an ``AssertionError`` raised in ``dlcourse.testing`` or
  ``dlcourse.gradcheck`` outside the student's process, capped in length), never the text of an exception the
  student's code raised (the runner replaces it with "your f raised ValueError");
- the student's own answer cells are shown as graded (with any statement the autograder neutralised, when the
  tests ran in the kernel);
- error messages and outputs are searched for every line of every hidden test, which is replaced by
  ``[hidden test]`` where found: student code can read the cells it runs in and put them into a message.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import nbformat

from autograder.layout import Layout, current
from autograder.nbgrader_api import source_notebooks
from autograder.notebooks import HIDDEN, ReleasedNotebook, is_answer, is_test, nbgrader_meta, secret_lines
from autograder.repair import is_format_only
from autograder.store import NotebookResult, Result, load_results, load_roster

MAX_EXPLANATION = 400   # characters of a course helper's message shown for a hidden failure

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc; padding: .3rem .6rem; }
th { background: #f3f3f3; text-align: left; } .passed { color: #17612c; } .failed { color: #a11; }
pre { background: #f7f7f7; padding: .6rem; overflow-x: auto; border-left: 3px solid #ccc; }
.note { background: #fff6dd; padding: .5rem .8rem; border-left: 3px solid #e0b000; }
"""


def hidden_lines(assignment: str) -> set[str]:
    """Every line of the hidden tests of an assignment (stripped, long enough to be specific)."""
    return {line for path in source_notebooks(assignment)
            for line in secret_lines(nbformat.read(path, as_version=4).cells, kinds=[HIDDEN])}


def redact(text: str, secret: set[str]) -> str:
    """``text`` with every occurrence of a hidden-test line replaced by ``[hidden test]``."""
    for line in sorted(secret, key=len, reverse=True):
        text = text.replace(line, "[hidden test]")
    return text


def _pre(code: str) -> str:
    return f"<pre>{html.escape(code)}</pre>"


def _answer_outputs(cell, secret: set[str]) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"])
    text = redact("".join(parts).strip(), secret)
    return f"<p>Output:</p>{_pre(text[-3000:])}" if text else ""


def render(result: Result, notebook: NotebookResult, reference: ReleasedNotebook, graded: Path | None,
           person: dict, secret: set[str]) -> str:
    """The feedback page of one notebook of one submission."""
    name = " ".join(filter(None, [person.get("first_name"), person.get("last_name")]))
    title = f"Feedback on {result.assignment}/{notebook.name}.ipynb"
    total = sum(t.score for t in notebook.tests)
    possible = sum(t.points for t in notebook.tests)
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<p>Student: <b>{html.escape(result.student_id)}</b>{' (' + html.escape(name) + ')' if name else ''}. "
           f"Score: <b>{total:g} / {possible:g}</b> points.</p>"]
    notes = []
    if notebook.problem:
        notes.append(f"Your notebook could not be graded completely: {notebook.problem}.")
    structural = [note for note in notebook.repairs if not is_format_only(note)]   # format repairs: silent
    if structural:
        notes.append("Before grading, the autograder had to repair your notebook (please avoid this next time: "
                     "do not copy or delete the given cells): " + "; ".join(structural) + ".")
    if notebook.tampering and notebook.tampering_neutralised:
        notes.append("Code that changes the test helpers or the libraries the tests use was removed before "
                     "grading and your instructor was told: " + "; ".join(notebook.tampering) + ".")
    elif notebook.tampering:
        notes.append("Code that changes the test helpers or the libraries the tests use was found and your "
                     "instructor was told (it could not change your grade: the tests ran outside your "
                     "notebook): " + "; ".join(notebook.tampering) + ".")
    out += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    out.append("<table><tr><th>Test</th><th>What it checks</th><th>Points</th><th>Result</th></tr>")
    for test in notebook.tests:
        status = "passed" if test.outcome == "passed" else "failed"
        out.append(f"<tr><td><code>{html.escape(test.grade_id)}</code></td><td>{html.escape(test.hint)}</td>"
                   f"<td>{test.score:g} / {test.points:g}</td><td class='{status}'>{html.escape(test.outcome)}"
                   f"</td></tr>")
    out.append("</table><h2>Your answers and the tests</h2>")
    graded_cells = {}
    if graded is not None and graded.is_file():
        graded_cells = {nbgrader_meta(c).get("grade_id"): c for c in nbformat.read(graded, as_version=4).cells}
    tests = {t.grade_id: t for t in notebook.tests}
    for grade_id, released in reference.cells.items():
        if is_answer(released):
            cell = graded_cells.get(grade_id)
            out.append(f"<h3>Answer <code>{html.escape(grade_id)}</code></h3>")
            out.append(_pre(cell.source) + _answer_outputs(cell, secret) if cell is not None else
                       "<p>This answer cell was missing from your notebook.</p>")
        elif is_test(released) and grade_id in tests:
            test = tests[grade_id]
            out.append(f"<h3>Test <code>{html.escape(grade_id)}</code>: {test.score:g} / {test.points:g} points, "
                       f"<span class='{'passed' if test.outcome == 'passed' else 'failed'}'>"
                       f"{html.escape(test.outcome)}</span></h3>")
            out.append("<p>The visible tests:</p>" + _pre(released.source))
            if test.outcome != "passed":
                if test.hidden:
                    out.append(f"<p>A <b>hidden test</b> of <code>{html.escape(grade_id)}</code> failed. "
                               f"Hint: {html.escape(test.hint or 'check the edge cases the task describes')}. "
                               f"Hidden tests try other shapes, random inputs and extreme values.</p>")
                    if test.explanation:
                        out.append(f"<p>What the check said:</p>"
                                   f"{_pre(redact(test.explanation, secret)[:MAX_EXPLANATION])}")
                else:
                    out.append(f"<p>What went wrong:</p>{_pre(redact(test.message, secret)[:800])}")
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    out.append(f"<p><small>Generated {stamp} by the course's autograder.</small></p></body></html>")
    return "\n".join(out)


def write_feedback(assignment: str, layout: Layout | None = None) -> list[Path]:
    """Write the feedback pages of every graded submission; return their paths."""
    layout = layout or current()
    release = layout.release(assignment)
    references = {p.name: ReleasedNotebook.from_notebook(release / p.name if (release / p.name).is_file() else
                                                         layout.exercises / assignment / p.name)
                  for p in source_notebooks(assignment, layout.root)}
    secret = hidden_lines(assignment)
    roster = load_roster(layout)
    written = []
    for result in load_results(assignment, layout):
        for notebook in result.notebooks:
            reference = references[notebook.name + ".ipynb"]
            graded = layout.graded(result.student_id, assignment) / f"{notebook.name}.ipynb"
            page = render(result, notebook, reference, graded, roster.get(result.student_id, {}), secret)
            path = layout.feedback_pages(result.student_id, assignment) / f"{notebook.name}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(page, encoding="utf-8")
            written.append(path)
    return written
