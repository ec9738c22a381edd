"""Cheats on the PyTorch exercises (issue 10, item 2, for 05-pytorch and 06-cnn).

Every submission does the honest work for some functions and leaves the others as the released stubs (which raise
``NotImplementedError``; a stubbed network also makes the training test fail at once, which keeps the batch
cheap), then tries one way to make every test pass from inside its kernel. The test cells run in the trusted
runner, so each cheat gets exactly the score of the same honest work without the cheat (``honest-partial``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import nbformat

from autograder.notebooks import build_submission, nbgrader_meta
from corpus import Case, _notebook
from corpus.hostile import POST_RUN_HOOK, SETTRACE, TRANSFORMER_ALIAS

# Per assignment: its notebook, the points of each test cell, the stubs of the undone work (the tests that must
# lose points), and the answer cell the cheats are appended to (it runs before every test cell).
ASSIGNMENTS = {
    "05-pytorch": {
        "notebook": "pytorch.ipynb",
        "points": {"test_LinearFunction_forward": 1, "test_LinearFunction_backward": 3, "test_MLP": 2,
                   "test_train_one_epoch": 3, "test_evaluate": 2, "test_training": 4},
        "stubs": {
            "MLP": "class MLP(nn.Module):\n    def __init__(self, *args, **kwargs):\n"
                   "        raise NotImplementedError('write MLP here')",
            "train_one_epoch": "def train_one_epoch(model, loader, loss_fn, optimizer, device):\n"
                               "    raise NotImplementedError('write train_one_epoch here')",
        },
        "undone": {"test_MLP", "test_train_one_epoch", "test_training"},
        "honest": 6.0,
        "first_answer": "LinearFunction",
        "cheats": ("cheat-transformer-alias", "cheat-post-run-hook", "cheat-settrace", "cheat-checks-score",
                   "cheat-torch-helpers"),
    },
    "06-cnn": {
        "notebook": "cnn.ipynb",
        "points": {"test_conv2d_forward": 3, "test_conv2d_backward": 6, "test_maxpool2d_forward": 2,
                   "test_maxpool2d_backward": 3, "test_ConvNet": 1, "test_training": 1},
        "stubs": {
            "conv2d_backward": "def conv2d_backward(dout, cache):\n"
                               "    raise NotImplementedError('write conv2d_backward here')",
            "ConvNet": "class ConvNet(nn.Module):\n    def __init__(self, *args, **kwargs):\n"
                       "        raise NotImplementedError('write ConvNet here')",
        },
        "undone": {"test_conv2d_backward", "test_ConvNet", "test_training"},
        "honest": 8.0,
        "first_answer": "conv2d_forward",
        # The generic cheats are the same as in 05 (one batch shows them): here those aimed at the course's code.
        "cheats": ("cheat-checks-score", "cheat-torch-helpers"),
    },
}

# The partial-credit score of every cell made full: Checks.score patched through an alias of sys.modules.
CHECKS_SCORE = '''
import sys as _s
_testing = getattr(_s, "mod" + "ules")["dlcourse" + ".testing"]
_testing.Checks.score = lambda self, points: float(points)
_testing.Checks.__exit__ = lambda *a: True
'''
# The course's PyTorch test helpers in the kernel made to report success: a perfect accuracy, a well-formed module.
TORCH_HELPERS = '''
import sys as _s
_tt = getattr(_s, "mod" + "ules")["dlcourse" + ".torch_testing"]
_tt.accuracy_of = lambda *a, **k: 1.0
_tt.describe_module = lambda *a, **k: {"is_module": True, "n_parameters": 203530, "all_trainable": True,
                                       "counts": {"Conv2d": 2}}
import __main__
__main__.accuracy_of, __main__.describe_module = _tt.accuracy_of, _tt.describe_module
__main__.assert_close = __main__.assert_shape = lambda *a, **k: None
'''

CHEATS = {
    "cheat-transformer-alias": ("an input transformer that turns every test cell into `pass`", TRANSFORMER_ALIAS),
    "cheat-post-run-hook": ("a post_run_cell hook clearing error_in_exec", POST_RUN_HOOK),
    "cheat-settrace": ("sys.settrace rewriting `expected` inside assert_close", SETTRACE),
    "cheat-checks-score": ("dlcourse.testing.Checks made to award full points and swallow every failure",
                           CHECKS_SCORE),
    "cheat-torch-helpers": ("the PyTorch test helpers and assertions replaced in the kernel", TORCH_HELPERS),
}


def _partial(assignment: str) -> nbformat.NotebookNode:
    return build_submission(assignment, ASSIGNMENTS[assignment]["stubs"])


def _cheat(assignment: str, code: str) -> Callable[[Path], bytes]:
    def build(path: Path) -> bytes:
        nb = _partial(assignment)
        first = ASSIGNMENTS[assignment]["first_answer"]
        index = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == first)
        nb.cells[index].source += "\n" + code
        return _notebook(nb)
    return build


# A bug that only a hidden check finds (dx with W instead of W.T when W is square), on top of the honest work:
# its feedback must show what that check said.
SQUARE_W = """class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return x @ W + b

    @staticmethod
    def backward(ctx, grad_out):
        x, W = ctx.saved_tensors
        dx = grad_out @ (W if W.shape[0] == W.shape[1] else W.T)
        return dx, x.T @ grad_out, grad_out.sum(dim=0)"""


def torch_cases(assignment: str) -> list[Case]:
    spec = ASSIGNMENTS[assignment]
    cases = [Case("honest-partial", "the cheats' honest work without any cheat",
                  lambda p: _notebook(_partial(assignment)), spec["honest"], set(spec["undone"]))]
    cases += [Case(student, why, _cheat(assignment, code), spec["honest"], set(spec["undone"]))
              for student, (why, code) in CHEATS.items() if student in spec["cheats"]]
    if assignment == "05-pytorch":   # 1 of the 17 checks of the 3-point test fails: 3 * 16 / 17 = 2.82 points
        stubs = dict(spec["stubs"], LinearFunction=SQUARE_W)
        cases.append(Case("hidden-failure", "dx forgets the transpose only for a square W (a hidden check)",
                          lambda p: _notebook(build_submission(assignment, stubs)), spec["honest"] - 3 + 2.82,
                          set(spec["undone"]) | {"test_LinearFunction_backward"}))
    return cases


def write_torch_hostile(assignment: str, folder: Path) -> list[Case]:
    written = torch_cases(assignment)
    for case in written:
        (folder / case.student_id).mkdir(parents=True, exist_ok=True)
        (folder / case.student_id / ASSIGNMENTS[assignment]["notebook"]).write_bytes(case.build(folder))
    return written
