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
