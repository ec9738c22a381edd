"""The grading steps as declared lists (autograder.steps), without a kernel or a gradebook."""

from __future__ import annotations

import inspect

from autograder import outcomes
from autograder.steps import EXECUTE, PREPARE, SCORE, Job, run_steps


def test_every_step_has_the_one_signature():
    """Is every declared step, and the record that follows them, a function step(ctx, job)?"""
    for step in (*PREPARE, *EXECUTE, *SCORE, outcomes.record):
        assert list(inspect.signature(step).parameters) == ["ctx", "job"], step.__name__


def test_the_steps_come_in_the_documented_order():
    """Does the numbered list of autograder.grade's docstring name the declared steps in their declared order
    (the gradebook entry aside, said after the list), the record last?"""
    import re

    from autograder import grade

    declared = [step.__name__ for step in (*PREPARE, *EXECUTE, *SCORE)] + ["record"]
    numbered = grade.__doc__[grade.__doc__.index("\n1. "):grade.__doc__.index("\nSteps 1-5")]
    documented = [name for name in re.findall(r"``(\w+)``", numbered) if name in declared]
    assert list(dict.fromkeys(documented)) == [name for name in declared if name != "register_submission"]
    assert "``register_submission``" in grade.__doc__


def test_a_failing_step_fails_its_submission_only():
    """Does an error in a step stop that submission's later steps and say which phase failed, while another
    submission goes through?"""
    ran = []

    def fine(ctx, job):
        ran.append(job.student_id)

    def broken(ctx, job):
        if job.student_id == "bad":
            raise ValueError("no such cell")

    bad, good = Job("bad", {}, "k1"), Job("good", {}, "k2")
    for job in (bad, good):
        run_steps(None, job, (broken, fine), "prepare failed")
    assert bad.error == "prepare failed: ValueError: no such cell" and not good.error
    run_steps(None, bad, (fine,), "execute failed")   # a failed submission runs no further step
    assert ran == ["good"] and bad.error.startswith("prepare failed")


def test_a_scoring_failure_keeps_the_outcomes_of_the_notebooks_scored_before(tmp_path, monkeypatch):
    """A submission of two notebooks whose second one fails in scoring: it is recorded as failed, and the first
    notebook's test outcomes, read from the gradebook, are in the record (nothing of the second one is)."""
    from types import SimpleNamespace

    import nbformat
    import nbgrader.api

    from autograder import steps
    from autograder.store import NotebookResult

    class Gradebook:   # only the totals that record reads
        def __init__(self, url):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def find_submission(self, assignment, student):
            return SimpleNamespace(score=1.0, max_score=4.0, timestamp=None)

    def crash_on_second(nb, resources):
        if resources["nbgrader"]["notebook"] == "second":
            raise KeyError("grade_id")
        return nb, resources

    read, saved = [], []
    monkeypatch.setattr(nbgrader.api, "Gradebook", Gradebook)
    monkeypatch.setattr(outcomes, "test_results", lambda ctx, student, name, nb, gradebook: read.append(name)
                        or [f"outcome of {name}"])
    monkeypatch.setattr(outcomes, "save_result", saved.append)
    layout = SimpleNamespace(autograded=tmp_path / "autograded", submitted=tmp_path / "submitted")
    ctx = SimpleNamespace(assignment="a", db_url="sqlite://", layout=layout, score_preprocessors=[crash_on_second],
                          resources=lambda student, name: {"nbgrader": {"notebook": name.removesuffix(".ipynb")}})
    job = Job("s", {}, "k", notebooks=[
        steps.PreparedNotebook(f"{name}.ipynb", NotebookResult(name), nbformat.v4.new_notebook())
        for name in ("first", "second")])
    run_steps(ctx, job, SCORE, "scoring failed")
    outcomes.record(ctx, job)
    assert job.error == "scoring failed: KeyError: 'grade_id'"
    assert read == ["first"] and saved == [job.result] and job.result.status == "failed"
    assert [n.tests for n in job.result.notebooks] == [["outcome of first"], []]
    assert (layout.autograded / "s" / "a" / "first.ipynb").is_file()
