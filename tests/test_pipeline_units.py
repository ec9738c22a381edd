"""The grading pipeline's single-purpose steps on their own: repairs, the tampering scan, setting stderr aside.

Nothing here starts a kernel; tests/test_pipeline_grade.py runs the same cases end to end. The repairs are tried
on the frozen fixture assignment (tests/fixtures), the tampering scan on 01-losses (its names are the course's).
"""

from __future__ import annotations

import copy
import json

import nbformat
import pytest
from nbgrader.utils import determine_grade

from autograder.outcomes import describe_failure
from autograder.nbgrader_api import alembic_head, assignments, load_config, make_api
from autograder.notebooks import build_submission, nbgrader_meta
from autograder.repair import Reference, Rejected, load_submission, repair
from autograder.steps import SetAsideStderr
from autograder.tampering import neutralize, scan
from fixtures import ANSWERS, ASSIGNMENT, NOTEBOOK, POINTS
from test_assignments import mutant_files, split_mutant


@pytest.fixture(scope="module")
def released(fixture_course):
    return fixture_course / "exercises" / ASSIGNMENT / NOTEBOOK


@pytest.fixture(scope="module")
def reference(released) -> Reference:
    return Reference.from_notebook(released)


@pytest.fixture
def submission(fixture_course):
    """A correct submission of the fixture assignment."""
    return build_submission(ASSIGNMENT, root=fixture_course)


def ids(nb) -> list[str]:
    return [nbgrader_meta(c).get("grade_id", "") for c in nb.cells]


@pytest.mark.parametrize("raw, reason", [(b"", "empty"), (b"  \n", "whitespace"), (b"{\"cells\": [", "not valid JSON"),
                                         (b"\xff\xfe\x00", "not a text file"), (b"[1, 2]", "not a Jupyter notebook"),
                                         (b"{\"a\": 1}", "not a Jupyter notebook")])
def test_files_that_are_not_notebooks_are_rejected_with_a_reason(raw, reason):
    """Does each unreadable file get a reason an instructor can pass on?"""
    with pytest.raises(Rejected, match=reason):
        load_submission(raw)


def test_a_well_formed_submission_needs_no_repair(reference, submission):
    """Is a submission straight from the released notebook left exactly as it was?"""
    nb = submission
    before = copy.deepcopy(nb)
    assert repair(nb, reference) == []
    assert nb == before


def test_duplicates_keep_the_cell_in_its_place(reference, submission):
    """Of a test cell copied above its answer cell, is the copy after the answer the one kept?"""
    nb = submission
    name = ANSWERS[0]
    test = f"test_{name}"
    assert test in POINTS and ids(nb).index(test) == ids(nb).index(name) + 1   # the fixture's order
    answer = ids(nb).index(name)
    nb.cells.insert(answer, copy.deepcopy(nb.cells[answer + 1]))    # the test cell, copied above its answer
    done = repair(nb, reference)
    assert any("appeared 2 times" in d for d in done)
    assert ids(nb).count(test) == 1
    assert ids(nb).index(test) == ids(nb).index(name) + 1


def test_lost_metadata_is_given_back_and_deleted_cells_restored_in_place(reference, released, submission):
    """Are cells recognised by content, and deleted ones put back where the released notebook has them?"""
    nb = submission
    first, second = ANSWERS[:2]
    del nb.cells[ids(nb).index(second)].metadata["nbgrader"]
    del nb.cells[ids(nb).index(f"test_{first}")]
    del nb.cells[ids(nb).index(first)]
    done = repair(nb, reference)
    expected = [gid for gid in ids(nbformat.read(released, as_version=4)) if gid]
    assert [gid for gid in ids(nb) if gid] == expected
    assert "raise NotImplementedError" in nb.cells[ids(nb).index(first)].source   # the empty stub
    assert len(done) == 3, done


def test_colab_and_kernelspec_repairs(reference, submission):
    """Are a Colab save (4.0, no ids, Colab metadata) and a foreign kernel made gradable?"""
    data = json.loads(nbformat.writes(submission))
    data["nbformat_minor"] = 0
    data["metadata"]["kernelspec"] = {"name": "ir", "display_name": "R"}
    for cell in data["cells"]:
        del cell["id"]
        cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
    nb, done = load_submission(json.dumps(data).encode())
    done += repair(nb, reference)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec == reference.kernelspec
    assert all("colab" not in c.metadata for c in nb.cells)
    assert any("foreign kernel 'ir'" in d for d in done) and any("4.0" in d for d in done)


@pytest.mark.parametrize("assignment", assignments())
def test_honest_submissions_are_never_flagged_as_tampering(assignment):
    """Are the reference solutions and every wrong-but-honest mutant of every assignment left untouched?"""
    assert scan(build_submission(assignment)) == []
    for path in mutant_files(assignment):
        findings = scan(build_submission(assignment, split_mutant(path)[1]))
        assert findings == [], f"{path.name}: {[f.describe() for f in findings]}"


TAMPERING = [
    "np.allclose = lambda *a, **k: True",
    "import numpy\nnumpy.testing.assert_allclose = None",
    "setattr(np, 'isclose', None)",
    "import sys\nsys.modules['dlcourse.testing'] = None",
    "def assert_close(*a, **k):\n    pass",
    "assert_shape = print",
    "exec('np.allclose = 1')",
    "get_ipython().events.register('pre_run_cell', print)",
    "%%time\nnp.allclose = 2",
    "def f(x):\n    np.asarray = abs\n    return x",
    "import ctypes",
    "if True: np.max = min\nelse:\n    pass",
    "frame = __import__('sys')._getframe(0).f_back",
    "globals()['assert_close'] = print",
    "import builtins\nbuiltins.abs = lambda x: 0",
    "source = In[-1]",
]
HONEST = [
    "import numpy as np\nfrom dlcourse.testing import assert_close",
    "%timeit x = 1\n!ls",
    "def f(x):\n    np = 3\n    return np",
    "class M:\n    def __init__(self):\n        setattr(self, 'a', 1)\n        super().__setattr__('b', 2)",
    "import sys, gc\ngc.collect()\nprint(sys.float_info.epsilon, 'torch' in sys.modules)",
    "for _ in range(3):\n    pass",
]


@pytest.mark.parametrize("code", TAMPERING)
def test_tampering_is_found_and_neutralised(code):
    """Is each way of changing the tests' world found, and replaced by `pass` in a cell that still runs?"""
    nb = build_submission("01-losses")
    index = ids(nb).index("mse_loss")
    nb.cells[index].source += "\n\n" + code
    findings = scan(nb)
    assert findings and all(f.cell == index for f in findings), code
    neutralize(nb, findings)
    assert scan(nb) == [], nb.cells[index].source
    assert "pass  # removed by the autograder" in nb.cells[index].source
    assert "def mse_loss" in nb.cells[index].source   # the honest part of the cell stays


@pytest.mark.parametrize("code", HONEST)
def test_ordinary_code_is_not_tampering(code):
    nb = build_submission("01-losses")
    nb.cells[ids(nb).index("mse_loss")].source += "\n\n" + code
    assert scan(nb) == [], code


def _test_cell(outputs: list[dict]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("# f: checks f\nassert f() == 1\n### BEGIN HIDDEN TESTS\nassert f(2) == 2\n"
                                     "### END HIDDEN TESTS")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test_f", "points": 2, "locked": True,
                                 "solution": False, "schema_version": 3, "task": False}
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


STDERR = {"output_type": "stream", "name": "stderr", "text": "UserWarning: careful\n"}


def _error(line: int) -> dict:
    return {"output_type": "error", "ename": "AssertionError", "evalue": "",
            "traceback": ["\x1b[0;31mAssertionError\x1b[0m Traceback", f"Cell \x1b[0;32mIn[7], line {line}\x1b[0m"]}


def test_stderr_no_longer_costs_points_but_errors_still_do():
    """Does stock scoring give 0 for stderr alone, and does setting it aside restore the points but not for an
    error?"""
    nb = nbformat.v4.new_notebook(cells=[_test_cell([STDERR]), _test_cell([STDERR, _error(2)])])
    assert determine_grade(nb.cells[0])[0] == 0     # nbgrader's own rule, the reason for this step
    nb, resources = SetAsideStderr()(nb, {})
    assert determine_grade(nb.cells[0])[0] == 2
    assert determine_grade(nb.cells[1])[0] == 0
    assert nb.cells[0].metadata["autograder"]["stderr"] == STDERR["text"]
    assert resources["stderr_set_aside"] == ["test_f", "test_f"]


def test_failures_are_placed_in_the_visible_or_hidden_part():
    """Is a failure on a visible line shown with its message, and one in the hidden tests marked hidden?"""
    assert describe_failure(_test_cell([_error(2)]))[2] is False
    assert describe_failure(_test_cell([_error(4)]))[2] is True
    unknown = {"output_type": "error", "ename": "X", "evalue": "", "traceback": []}
    assert describe_failure(_test_cell([unknown]))[2] is True   # unplaceable: treated as hidden


def test_new_gradebooks_get_the_revision_nbgrader_itself_reads(tmp_path):
    """make_api stamps a new gradebook with alembic_head, read in-process: the revision nbgrader's own
    get_alembic_version (`alembic heads` in a subprocess) gives in a fresh interpreter, and the one a gradebook
    made after make_api holds."""
    import subprocess
    import sys

    import nbgrader.api
    import sqlalchemy

    stock = subprocess.run([sys.executable, "-c", "from nbgrader.api import get_alembic_version as v; print(v())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert stock and alembic_head() == stock
    make_api(load_config())
    assert nbgrader.api.get_alembic_version is alembic_head
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with nbgrader.api.Gradebook(db):
        pass
    with sqlalchemy.create_engine(db).connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar() == stock
