"""Seeds with the trusted runner: a test's seeds reach the student's kernel, and a notebook is graded the same every
time (autograder.trusted_runner, "Seeds"; autograder.zygote, fixed seeds at the kernel's start)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from autograder import trusted_runner as runner
from autograder.notebooks import build_submission
from conftest import ROOT, run_autograder
from test_assignments import split_mutant
from test_verdict_units import DirectChannel

SEED_MODULES = [(torch.random, "manual_seed"), (torch, "manual_seed"), (np.random, "seed"), (random, "seed")]


@pytest.fixture
def mirrored(monkeypatch):
    """The runner's seed functions mirrored, as in a runner process; put back afterwards."""
    for module, name in SEED_MODULES:
        monkeypatch.setattr(module, name, getattr(module, name))   # restored at teardown
    monkeypatch.setattr(runner, "PENDING_SEEDS", [])
    runner._mirror_seeds()
    yield


def test_each_seed_the_test_sets_is_set_in_the_kernel_before_its_next_call(mirrored, monkeypatch):
    """After the test's seed and draws of its own, does the student's code draw what it would right after the seed?
    (Agent and runner share this process here, so the kernel's draws show whether it was seeded again.)"""
    kernel: dict = {}
    channel = DirectChannel(kernel)
    monkeypatch.setattr(runner, "CHANNEL", channel)
    sent = []

    def send(message, send=channel.send):
        sent.append(message)
        send(message)
        runner.PENDING_SEEDS.clear()   # the agent's own seeding, in this process here: not the test's
    monkeypatch.setattr(channel, "send", send)
    exec("import random, numpy as np, torch\n"
         "def draw():\n"
         "    return torch.rand(3), np.random.rand(3), random.random()", kernel)
    expected = []
    for seed in (7, 8):
        torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)
        expected.append((torch.rand(3), np.random.rand(3), random.random()))
    torch.manual_seed(5)                  # superseded before the call: only the last seed counts
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    torch.rand(10), np.random.rand(10), random.random()   # the test's own draws do not shift the kernel's
    mine = runner.Proxy("draw")()
    assert torch.equal(mine[0], expected[0][0]) and np.array_equal(mine[1], expected[0][1])
    assert mine[2] == expected[0][2]
    request = pickle_load(sent[-1]["request"])
    assert sorted(request["seeds"]) == [["numpy", 7], ["random", 7], ["torch", 7]]

    torch.manual_seed(8), np.random.seed(np.int64(8)), random.seed(8)   # NumPy integers are seeds too
    mine = runner.Proxy("draw")()
    assert torch.equal(mine[0], expected[1][0]) and np.array_equal(mine[1], expected[1][1])
    assert mine[2] == expected[1][2]
    runner.Proxy("draw")()                # no new seed: the kernel's generators go on
    assert pickle_load(sent[-1]["request"])["seeds"] == []
    np.random.seed(None)                  # fresh entropy is not a seed the kernel can share
    runner.Proxy("draw")()
    assert pickle_load(sent[-1]["request"])["seeds"] == []


def pickle_load(request: str) -> dict:
    import base64
    import io
    import pickle

    class Loader(pickle.Unpickler):
        def persistent_load(self, pid):
            return pid
    return Loader(io.BytesIO(base64.b64decode(request))).load()


@pytest.mark.grading
def test_a_notebook_is_graded_the_same_whatever_the_kernel_drew_before(tmp_path, grading_env):
    """09's four-bug submission, twice as is and twice with a cell of the student's own that draws random numbers,
    graded on two kernels side by side: are the scores and the numbers in the messages the same for all four?
    Its network with ReLU on the logits passes or fails the overfitting check depending on its initialisation,
    which the student's code draws in the kernel after the test's torch.manual_seed."""
    assignment, notebook = "09-debugging", "debugging.ipynb"
    bugs = {}
    for bug in ("evaluate_leaves_eval_mode", "train_step_zero_grad_after_backward", "init_weights_pytorch_default",
                "mlp_relu_on_logits"):
        bugs.update(split_mutant(ROOT / "tests" / "mutants" / assignment / f"{bug}.py")[1])
    plain = build_submission(assignment, bugs)
    drawing = build_submission(assignment, bugs)
    imports = next(i for i, c in enumerate(drawing.cells) if "import torch" in c.source)
    drawing.cells.insert(imports + 1, nbformat.v4.new_code_cell(
        "import random\nimport numpy as np\nprint(torch.randn(1000).sum(), np.random.rand(5), random.random())"))
    for student, nb in [("plain-1", plain), ("drawing-1", drawing), ("plain-2", plain), ("drawing-2", drawing)]:
        (tmp_path / "in" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "in" / student / notebook)
    env = dict(grading_env, DLCOURSE_GRADING_DIR=str(tmp_path / "grading"))
    result = run_autograder("grade", assignment, str(tmp_path / "in"), "--workers", "2", env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]

    def tests_of(student: str) -> list[dict]:
        record = json.loads((tmp_path / "grading" / "results" / assignment / f"{student}.json").read_text())
        return [{k: v for k, v in t.items() if k != "seconds"} for nb in record["notebooks"] for t in nb["tests"]]
    graded = {student: tests_of(student) for student in os.listdir(tmp_path / "in")}
    assert len(graded["plain-1"]) == 5
    by_id = {t["grade_id"]: t for t in graded["plain-1"]}
    assert 0 < by_id["test_MLP"]["score"] < 2 and "training loss" in by_id["test_MLP"]["explanation"]
    assert "got 0.0" in by_id["test_init_weights"]["message"]   # a standard deviation the kernel drew
    for student, tests in graded.items():
        assert tests == graded["plain-1"], student


def test_kernels_start_from_fixed_seeds():
    """The kernel factory's seeds (autograder/zygote.py): the same draws in two fresh processes."""
    import subprocess
    import sys

    code = ("import random, sys, numpy, torch\n"
            "sys.path.insert(0, 'autograder')\n"
            "import zygote\n"
            "zygote._seed_generators()\n"
            "print(random.random(), numpy.random.rand(), torch.rand(1).item())")
    draws = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(Path(ROOT)))).stdout for _ in range(2)]
    assert draws[0] and draws[0] == draws[1]
