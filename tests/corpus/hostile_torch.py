"""Cheats on the PyTorch exercises (issue 10, item 2, for 05-pytorch, 06-cnn and 09-debugging).

Every submission does the honest work for some functions and leaves the others as the released stubs (which raise
``NotImplementedError``; a stubbed network also makes the training test fail at once, which keeps the batch
cheap; in 09-debugging the released code with its defects), then tries one way to make every test pass from
inside its kernel. The test cells run in the trusted
runner, so each cheat gets exactly the score of the same honest work without the cheat (``honest-partial``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import nbformat

from autograder.notebooks import build_submission, nbgrader_meta
from corpus import Case, _notebook
from corpus.hostile import LEAK_FUNCTION, POST_RUN_HOOK, PRE_RUN_HOOK, SETTRACE, TRANSFORMER_ALIAS

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
    "09-debugging": {
        "notebook": "debugging.ipynb",
        "points": {"test_make_loader": 2, "test_init_weights": 2, "test_MLP": 2, "test_train_step": 2,
                   "test_evaluate": 2},
        # Only init_weights fixed; the other four as released, with their defects (they meet the requirement
        # checks, which earn nothing alone: 0 points each).
        "stubs": {
            "make_loader": "def make_loader(X, y, batch_size, seed=0):\n"
                           "    dataset = TensorDataset(X, y)\n"
                           "    generator = torch.Generator().manual_seed(seed)\n"
                           "    return DataLoader(dataset, batch_size=batch_size, generator=generator)",
            "MLP": "class MLP(nn.Module):\n"
                   "    def __init__(self, in_features=784, hidden=128, n_classes=10):\n"
                   "        super().__init__()\n"
                   "        self.flatten = nn.Flatten()\n"
                   "        self.hidden = nn.Linear(in_features, hidden)\n"
                   "        self.output = nn.Linear(hidden, n_classes)\n\n"
                   "    def forward(self, x):\n"
                   "        return torch.softmax(self.output(torch.relu(self.hidden(self.flatten(x)))), dim=1)",
            "train_step": "def train_step(model, batch, optimizer, loss_fn):\n"
                          "    inputs, labels = batch\n"
                          "    model.train()\n"
                          "    loss = loss_fn(model(inputs), labels)\n"
                          "    loss.backward()\n"
                          "    optimizer.step()\n"
                          "    return loss.item()",
            "evaluate": "def evaluate(model, loader):\n"
                        "    was_training = model.training\n"
                        "    device = next(model.parameters()).device\n"
                        "    correct, count = 0, 0\n"
                        "    with torch.no_grad():\n"
                        "        for inputs, labels in loader:\n"
                        "            inputs, labels = inputs.to(device), labels.to(device)\n"
                        "            correct += (model(inputs).argmax(dim=1) == labels).sum().item()\n"
                        "            count += len(labels)\n"
                        "    model.train(was_training)\n"
                        "    return correct / count",
        },
        "undone": {"test_make_loader", "test_MLP", "test_train_step", "test_evaluate"},
        "honest": 2.0,
        "full": 10.0,   # an honest control with every defect fixed is graded in the same batch
        "first_answer": "make_loader",
        "cheats": ("cheat-transformer-alias", "cheat-pre-run-hook", "cheat-settrace", "cheat-checks-score",
                   "cheat-debugging-helpers", "cheat-rebind-torch", "cheat-lying-tensor", "cheat-leak-source"),
        # Graded again as an ordinary user: the controls and the cheats aimed at this exercise's own code.
        "as_user": ("honest-partial", "honest-control", "cheat-debugging-helpers", "cheat-rebind-torch",
                    "cheat-lying-tensor"),
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

# 09-debugging's kernel-side helpers made to report fake values for the undone work: no gradient ever adds up
# (zeros), the overfitting loop does nothing, and a batch-norm model's statistics read back as they were when it
# entered the kernel (evaluate "changed nothing").
DEBUGGING_HELPERS = '''
import sys as _s
import torch as _torch
_tt = getattr(_s, "mod" + "ules")["dlcourse" + ".torch_testing"]
_snapshots, _real_state = {}, _tt.state_of
def _side(obj):
    for model in obj if isinstance(obj, tuple) else (obj,):
        if isinstance(model, _torch.nn.Module) and any(isinstance(m, _torch.nn.BatchNorm1d) for m in model.modules()):
            _snapshots[id(model)] = _real_state(model)
    return obj
_tt.student_side = _side
_tt.state_of = lambda model: _snapshots.get(id(model)) or _real_state(model)
_tt.gradients_of = lambda model: {name: _torch.zeros_like(p) for name, p in model.named_parameters()}
_tt.train_on_batch = lambda *a, **k: None
import __main__
__main__.state_of, __main__.gradients_of = _tt.state_of, _tt.gradients_of
__main__.train_on_batch, __main__.student_side = _tt.train_on_batch, _tt.student_side
__main__.assert_close = lambda *a, **k: None
'''
# Names the tests use rebound in the kernel: the loss, the comparisons and the helpers (as a kernel-run test would
# see them).
REBIND_TORCH = '''
import torch as _torch
import torch.nn.functional as _F
_F.cross_entropy = lambda *a, **k: _torch.tensor(0.0, requires_grad=True)
_torch.equal = lambda *a, **k: True
_torch.count_nonzero = lambda *a, **k: _torch.tensor(0)
import __main__
__main__.F = _F
__main__.assert_close = __main__.assert_scalar = lambda *a, **k: None
class _Full:
    def __call__(self, *a, **k):
        import contextlib
        return contextlib.suppress(Exception)
    def score(self, points):
        return float(points)
__main__.Checks = _Full
'''
# Fake values: the released MLP's softmax returns a tensor whose __torch_function__ makes every cross-entropy (and
# log-softmax) of it 0: the overfitting and confidence checks would pass on probabilities.
LYING_TENSOR = '''
import torch as _torch
class _Liar(_torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("cross_entropy", "nll_loss", "log_softmax"):
            return (args[0] * 0).sum()
        return super().__torch_function__(func, types, args, kwargs or {})
_softmax = _torch.softmax
_torch.softmax = lambda *a, **k: _softmax(*a, **k).as_subclass(_Liar)
'''
# train_step's (defective) code raises an AssertionError carrying every source it can find from its caller's frames.
LEAK_SOURCE = LEAK_FUNCTION + '''
import torch as _torch
_backward = _torch.Tensor.backward
def _leaky_backward(self, *a, **k):
    _leak()
_torch.Tensor.backward = _leaky_backward
'''

CHEATS = {
    "cheat-transformer-alias": ("an input transformer that turns every test cell into `pass`", TRANSFORMER_ALIAS),
    "cheat-post-run-hook": ("a post_run_cell hook clearing error_in_exec", POST_RUN_HOOK),
    "cheat-settrace": ("sys.settrace rewriting `expected` inside assert_close", SETTRACE),
    "cheat-checks-score": ("dlcourse.testing.Checks made to award full points and swallow every failure",
                           CHECKS_SCORE),
    "cheat-torch-helpers": ("the PyTorch test helpers and assertions replaced in the kernel", TORCH_HELPERS),
    "cheat-pre-run-hook": ("a pre_run_cell hook rebinding the assertion helpers", PRE_RUN_HOOK),
    "cheat-debugging-helpers": ("09's kernel-side helpers (state_of, gradients_of, train_on_batch) made to report "
                                "fake values", DEBUGGING_HELPERS),
    "cheat-rebind-torch": ("F.cross_entropy, torch.equal, Checks and the assertions rebound in the kernel",
                           REBIND_TORCH),
    "cheat-lying-tensor": ("a tensor subclass whose cross-entropy is always 0", LYING_TENSOR),
    "cheat-leak-source": ("backward raises the sources of the calling frames, encoded", LEAK_SOURCE),
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
    if "full" in spec:
        cases.append(Case("honest-control", "every function done, no cheat",
                          lambda p: _notebook(build_submission(assignment)), spec["full"], set()))
    if assignment == "05-pytorch":   # 1 of the 17 checks of the 3-point test fails: 3 * 16 / 17 = 2.82 points
        stubs = dict(spec["stubs"], LinearFunction=SQUARE_W)
        cases.append(Case("hidden-failure", "dx forgets the transpose only for a square W (a hidden check)",
                          lambda p: _notebook(build_submission(assignment, stubs)), spec["honest"] - 3 + 2.82,
                          set(spec["undone"]) | {"test_LinearFunction_backward"}))
    return cases


def write_torch_hostile(assignment: str, folder: Path, only: tuple[str, ...] | None = None) -> list[Case]:
    written = [case for case in torch_cases(assignment) if only is None or case.student_id in only]
    for case in written:
        (folder / case.student_id).mkdir(parents=True, exist_ok=True)
        (folder / case.student_id / ASSIGNMENTS[assignment]["notebook"]).write_bytes(case.build(folder))
    return written
