"""The training-test flag (``dlcourse-training``) and the static reading that lets a mutant skip training tests.

A skip must never hide a failure: a mutant that redefines anything a training test uses, directly, through
another definition, through data a top-level statement may modify, or through global state, must run it.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.notebooks import (TRAINING_TAG, ReleasedNotebook, changes_global_state, is_training_test,
                                  reachable_names, source_notebook)
from test_assignments import mutant_files, split_mutant, training_tests_reached


def graded_cell(source: str, grade_id: str, test: bool, tags: list[str] | None = None):
    meta = {"grade": test, "solution": not test, "grade_id": grade_id, "locked": test, "schema_version": 3}
    if test:
        meta["points"] = 1
    cell = new_code_cell(source, metadata={"nbgrader": meta})
    if tags:
        cell.metadata["tags"] = tags
    return cell


def notebook(*cells):
    return new_notebook(cells=[new_code_cell("import numpy as np\nDATA = np.arange(4.0)"), *cells])


TRAIN = graded_cell("checks = 0\nmodel = fit(Net, DATA)\nassert model", "test_training", True, [TRAINING_TAG])


def test_the_flag_is_a_tag_of_test_cells_only_and_the_release_keeps_it():
    answer = graded_cell("def f(): pass", "f", False, [TRAINING_TAG])
    assert is_training_test(TRAIN) and not is_training_test(answer)
    assert ReleasedNotebook.from_node("x.ipynb", notebook(answer, TRAIN)).training == {"test_training"}
    for assignment in ("04-numpy-net", "05-pytorch", "06-cnn"):   # the expensive ones are flagged
        released = ReleasedNotebook.from_notebook(source_notebook(assignment).parents[2] / "exercises" / assignment
                                                  / source_notebook(assignment).name)
        assert released.training, assignment


@pytest.mark.parametrize("cells, reached", [
    # used directly, through a definition, through a class body
    (["def fit(net, data):\n    return step(net(), data)", "def step(m, d):\n    return m", "class Net: pass",
      "def helper(): pass"], {"fit", "step", "Net", "DATA", "np"}),
    # a top-level statement may modify what it touches: prepare(DATA) links DATA to prepare
    (["def fit(net, data):\n    return net", "class Net: pass", "def prepare(x):\n    x *= 2", "prepare(DATA)"],
     {"fit", "Net", "DATA", "prepare", "np"}),
    # a name assigned by the training cell before it is read is not a dependency
    (["def fit(net, data):\n    return net", "class Net: pass", "def checks(): pass"], {"fit", "Net", "DATA", "np"}),
])
def test_reachable_names_follow_definitions_and_top_level_statements(cells, reached):
    nb = notebook(*[graded_cell(c, f"a{i}", False) for i, c in enumerate(cells)], TRAIN)
    assert reachable_names(nb, "test_training") - {"assert"} >= reached
    unreached = {n for c in cells for n in ("helper", "checks") if f"def {n}" in c}
    assert not unreached & reachable_names(nb, "test_training")


def test_a_name_left_by_another_test_cell_reaches_everything():
    earlier = graded_cell("Net = 3\nother = 1", "test_other", True)
    nb = notebook(graded_cell("def fit(n, d): pass\ndef unrelated(): pass", "fit", False), earlier, TRAIN)
    assert "unrelated" in reachable_names(nb, "test_training")


@pytest.mark.parametrize("code, changes", [
    ("def f(x):\n    return x + 1", False),
    ("def f(x):\n    x[0] = 1\n    y = {}\n    y['a'] = 2\n    return x", False),
    ("class M:\n    def __init__(self):\n        self.w = 1", False),
    ("def f(x):\n    global STATE\n    STATE = x", True),
    ("def f(x):\n    np.random.seed(0)\n    return x", True),
    ("def f(x):\n    torch.manual_seed(0)\n    return x", True),
    ("def f(x):\n    torch.set_default_dtype(torch.float64)\n    return x", True),
    ("def f(x):\n    CACHE['last'] = x\n    return x", True),
    ("def f(x):\n    np.pi = 3\n    return x", True),
])
def test_changes_global_state(code, changes):
    assert changes_global_state(code) is changes


@pytest.mark.parametrize("assignment, mutant, reached", [
    ("04-numpy-net", "backward_skips_relu", {"test_train_mlp_fashion_mnist"}),   # train_mlp is built on it
    ("04-numpy-net", "init_zeros", {"test_train_mlp_fashion_mnist"}),
    ("05-pytorch", "mlp_without_relu", {"test_training"}),       # the course's fit trains the student's MLP
    ("05-pytorch", "train_without_zero_grad", set()),            # ... with its own loop, not train_one_epoch
    ("05-pytorch", "square_W_not_transposed", set()),            # MLP is built from nn.Linear
    ("06-cnn", "kernel_flipped", set()),                         # ConvNet is built from torch layers
    ("06-cnn", "maxpool_grad_to_every_element", set()),
])
def test_which_mutants_reach_training(assignment, mutant, reached):
    path = next(p for p in mutant_files(assignment) if p.stem == mutant)
    assert training_tests_reached(assignment, split_mutant(path)[1]) == reached


def test_a_mutant_of_what_training_uses_or_of_global_state_runs_training():
    assert training_tests_reached("06-cnn", {"ConvNet": "class ConvNet(nn.Module):\n    pass"}) == {"test_training"}
    assert training_tests_reached("05-pytorch", {"evaluate": "def evaluate(m, l, d):\n    torch.manual_seed(1)"
                                                 "\n    return 0.0"}) == {"test_training"}


def test_grade_skip_training_replaces_only_flagged_tests():
    """--skip-training: the flag is read from the release, never from the submission."""
    from autograder.outcomes import SKIPPED
    from autograder.steps import skip_training_tests

    plain = graded_cell("assert True", "test_plain", True)
    reference = ReleasedNotebook.from_node("x.ipynb", notebook(plain, TRAIN))
    submitted = nbformat.from_dict(notebook(graded_cell("assert True", "test_plain", True, [TRAINING_TAG]),
                                            graded_cell(TRAIN.source, "test_training", True)))
    skip_training_tests(submitted, reference)
    plain_cell, train_cell = submitted.cells[1:]
    assert plain_cell.source == "assert True" and "autograder" not in plain_cell.metadata
    assert train_cell.source == f"raise RuntimeError({SKIPPED!r})" and train_cell.metadata["autograder"]["skipped"]
