"""The release of a debugging exercise: `### GIVEN` lines in a source notebook become the defective code that the
student receives in place of the solution (autograder.release.insert_given). No nbgrader run: under a second."""

from __future__ import annotations

import pytest

from autograder.release import insert_given, name_stubs

# What nbgrader's ClearSolutions leaves of a solution region: the stub, then the lines after `### END SOLUTION`.
STUB = "# YOUR CODE HERE\n{indent}raise NotImplementedError()"


def released(source: str) -> str:
    return name_stubs(insert_given(source))


def test_given_lines_replace_the_stub_at_its_indentation():
    """Does a stub followed by `### GIVEN` lines become their code, markers removed, other lines kept?"""
    source = ("def f(x):\n    y = x + 1\n    " + STUB.format(indent="    ") +
              "\n    ### GIVEN y = y * 2\n    ### GIVEN return y\n\nprint(f(1))")
    assert released(source) == "def f(x):\n    y = x + 1\n    y = y * 2\n    return y\n\nprint(f(1))"


def test_a_bare_given_line_releases_nothing_in_place_of_the_solution():
    """Does `### GIVEN` alone remove the stub (a defect that is a missing line, e.g. zero_grad)?"""
    source = "def step(opt, loss):\n    " + STUB.format(indent="    ") + \
        "\n    ### GIVEN\n    loss.backward()\n    opt.step()"
    assert released(source) == "def step(opt, loss):\n    loss.backward()\n    opt.step()"


def test_a_stub_without_given_lines_stays_a_named_stub():
    """Does an ordinary exercise keep its stub, which says what to write?"""
    source = "def g():\n    " + STUB.format(indent="    ")
    assert released(source) == 'def g():\n    # YOUR CODE HERE\n    raise NotImplementedError("write g here")'


def test_a_given_line_away_from_a_solution_is_an_error():
    """Is a misplaced `### GIVEN` line (it would reach students as a comment) reported?"""
    with pytest.raises(ValueError, match="must follow `### END SOLUTION`"):
        insert_given("x = 1\n### GIVEN x = 2")
