"""Submissions that try to forge their grade or leak the hidden tests (issue 10, items 2, 3 and 6's metadata).

Every cheat does the honest work for mse_loss, mse_grad, mae_loss and error_rate (6 of 15 points) and returns
wrong placeholders from softmax, cross_entropy_loss and cross_entropy_grad (9 points), then tries one way to make
the tests of those pass anyway from inside the kernel. With the verdict computed outside the kernel, each must get
exactly its honest part: 6 points, plus the partial credit its placeholders earn on their own (the score of the
same work without the cheat, `honest-partial`); the honest control in the same batch gets 15.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import nbformat

from corpus import FULL, NOTEBOOK, Case, _cell, _notebook, correct

HONEST = 6.0
UNDONE = {"test_softmax", "test_cross_entropy_loss", "test_cross_entropy_grad"}
PLACEHOLDERS = {
    "softmax": "def softmax(logits):\n    return np.zeros_like(logits)",
    "cross_entropy_loss": "def cross_entropy_loss(logits, y):\n    return 0.0",
    "cross_entropy_grad": "def cross_entropy_grad(logits, y):\n    return np.zeros_like(logits)",
}

# Makes every later cell that holds an assertion a no-op: through an alias of get_ipython.
TRANSFORMER_ALIAS = '''
_g = get_ipython
_shell = _g()
def _skip_tests(lines):
    return ["pass\\n"] if any("assert" in line for line in lines) else lines
_shell.input_transformers_post.append(_skip_tests)
'''
# The same through the shell singleton, without get_ipython at all.
SHELL_INSTANCE = '''
from IPython.core.interactiveshell import InteractiveShell as _IS
_IS.instance().input_transformers_cleanup.append(
    lambda lines: ["pass\\n"] if any("assert" in line for line in lines) else lines)
'''
# Before every cell: the assertion helpers in the namespace become no-ops.
PRE_RUN_HOOK = '''
import contextlib as _contextlib
def _rebind(*args):
    space = globals()
    space["assert_close"] = lambda *a, **k: None
    space["assert_shape"] = lambda *a, **k: None
    space["assert_scalar"] = lambda value, *a, **k: 0.0
    space["inputs_unchanged"] = lambda **k: _contextlib.nullcontext()
_g = get_ipython
getattr(_g(), "ev" + "ents").register("pre_run_cell", _rebind)
'''
# After every cell: the error is forgotten (the reply says "ok").
POST_RUN_HOOK = '''
def _forget(result):
    result.error_in_exec = None
    result.error_before_exec = None
_g = get_ipython
getattr(_g(), "ev" + "ents").register("post_run_cell", _forget)
'''
# Code hidden in a %time argument (the static scan parses Python, not magics).
TIME_MAGIC = '''
%time getattr(get_ipython(), "input_transformers_post").append(lambda c: ["pass\\n"] if "assert" in "".join(c) else c)
'''
# A module written by the notebook and imported: it patches the helpers of __main__ and dlcourse.testing.
WRITTEN_MODULE = '''
with open("course_patch.py", "w") as _handle:
    _handle.write(
        "import __main__, dlcourse.testing as t\\n"
        "for name in ('assert_close', 'assert_shape'):\\n"
        "    setattr(__main__, name, lambda *a, **k: None)\\n"
        "    setattr(t, name, lambda *a, **k: None)\\n"
        "__main__.assert_scalar = lambda value, *a, **k: 0.0\\n")
import course_patch
'''
# The helpers' code objects swapped through an alias of sys.modules.
CODE_SWAP_MODULES = '''
import sys as _s
_modules = getattr(_s, "mod" + "ules")
_testing = _modules["dlcourse" + ".testing"]
_testing.assert_close.__code__ = (lambda actual, expected, name="result", rtol=1e-6, atol=1e-9: None).__code__
_testing.assert_shape.__code__ = (lambda value, shape, name="result": None).__code__
_testing.assert_scalar.__code__ = (lambda value, name="result": 0.0).__code__
'''
# The same found through gc.get_objects via getattr.
CODE_SWAP_GC = '''
import gc as _gc
_blank = {"assert_close": (lambda actual, expected, name="result", rtol=1e-6, atol=1e-9: None).__code__,
          "assert_shape": (lambda value, shape, name="result": None).__code__,
          "assert_scalar": (lambda value, name="result": 0.0).__code__}
for _obj in getattr(_gc, "get_" + "objects")():
    if type(_obj).__name__ == "function" and getattr(_obj, "__name__", "") in _blank \\
            and getattr(_obj, "__module__", "") == "dlcourse.testing":
        _obj.__code__ = _blank[_obj.__name__]
'''
# A tracer that makes `expected` equal to `actual` inside the comparison.
SETTRACE = '''
import sys as _s
def _tracer(frame, event, arg):
    # CPython writes a trace function's changes to f_locals back into the frame.
    if event == "call" and frame.f_code.co_name == "assert_close":
        space = getattr(frame, "f_" + "locals")
        space["expected"] = space["actual"]
    return None
getattr(_s, "set" + "trace")(_tracer)
'''
# The plain spelling the static scan does catch, in an answer cell marked "locked": true (which once switched
# the scan off for that cell).
LOCKED_TAMPER = '''
import dlcourse.testing
assert_close = lambda *a, **k: None
assert_shape = lambda *a, **k: None
assert_scalar = lambda value, *a, **k: 0.0
'''
# An exception carrying every source its callers' frames can reach (the calling test cell's, through linecache),
# compressed and base64-encoded: _leak() below, raised by whichever function of the submission a test calls.
LEAK_FUNCTION = '''
import base64 as _b64, zlib as _zlib
def _leak():
    import sys
    lines = getattr(sys, "mod" + "ules")["line" + "cache"]
    sources = [str(getattr(getattr(sys, "mod" + "ules")["__main__"], "I" + "n", [""])[-1])]
    frame = getattr(sys, "_get" + "frame")(1)
    while frame is not None:
        sources.append("".join(lines.getlines(frame.f_code.co_filename)) or frame.f_code.co_filename)
        frame = getattr(frame, "f_" + "back")
    raise AssertionError("ENCODED:" + _b64.b64encode(_zlib.compress("\\n".join(sources).encode())).decode())
'''
LEAK_ENCODED = LEAK_FUNCTION + '''
def mse_grad(y_pred, y):
    _leak()
'''

CHEATS = {
    "cheat-transformer-alias": ("an input transformer installed through an alias of get_ipython",
                                TRANSFORMER_ALIAS),
    "cheat-shell-instance": ("an input transformer through InteractiveShell.instance()", SHELL_INSTANCE),
    "cheat-pre-run-hook": ("a pre_run_cell hook rebinding the assertion helpers", PRE_RUN_HOOK),
    "cheat-post-run-hook": ("a post_run_cell hook clearing error_in_exec", POST_RUN_HOOK),
    "cheat-time-magic": ("a transformer installed from inside a %time argument", TIME_MAGIC),
    "cheat-written-module": ("a module the notebook writes and imports, patching the helpers", WRITTEN_MODULE),
    "cheat-code-swap-modules": ("the helpers' __code__ swapped through an alias of sys.modules",
                                CODE_SWAP_MODULES),
    "cheat-code-swap-gc": ("the helpers' __code__ swapped, found through gc.get_objects via getattr", CODE_SWAP_GC),
    "cheat-settrace": ("sys.settrace via getattr rewriting `expected` inside assert_close", SETTRACE),
}


def _partial_work() -> nbformat.NotebookNode:
    return correct(PLACEHOLDERS)


def _cheat(code: str) -> Callable[[Path], bytes]:
    def build(path: Path) -> bytes:
        nb = _partial_work()
        # In the first answer cell, after the honest mse_loss: it runs before every test cell.
        index = _cell(nb, "mse_loss")
        nb.cells[index].source += "\n" + code
        return _notebook(nb)
    return build


def _locked_answer(path: Path) -> bytes:
    nb = _partial_work()
    cell = nb.cells[_cell(nb, "mse_loss")]
    cell.source += "\n" + LOCKED_TAMPER
    cell.metadata["nbgrader"]["locked"] = True
    return _notebook(nb)


def _unknown_grade_id(path: Path) -> bytes:
    nb = correct()
    nb.cells[_cell(nb, "mae_loss")].metadata["nbgrader"]["grade_id"] = "mae_loss_mine"
    return _notebook(nb)


def _extra_grade_cell(path: Path) -> bytes:
    nb = correct()
    extra = nbformat.v4.new_code_cell("bonus = 42")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "my_bonus", "locked": False, "points": 10,
                                  "schema_version": 3, "solution": False, "task": False}
    nb.cells.insert(_cell(nb, "check"), extra)
    return _notebook(nb)


def _answer_as_test(path: Path) -> bytes:
    nb = correct()
    meta = nb.cells[_cell(nb, "softmax")].metadata["nbgrader"]
    meta.update(grade=True, solution=False, locked=True, points=3)
    return _notebook(nb)


def _leak(path: Path) -> bytes:
    return _notebook(correct({"mse_grad": LEAK_ENCODED}))


def hostile_cases() -> list[Case]:
    """The cheats, the leak, the metadata edits and an honest control: one batch."""
    cases = [Case("honest-control", "the reference solutions, in the same batch as the cheats",
                  lambda p: _notebook(correct()), FULL),
             Case("honest-partial", "the cheats' honest work without any cheat",
                  lambda p: _notebook(_partial_work()), HONEST, set(UNDONE))]
    cases += [Case(student, why, _cheat(code), HONEST, set(UNDONE)) for student, (why, code) in CHEATS.items()]
    cases += [
        Case("cheat-locked-answer", '"locked": true on an answer cell holding a plain helper redefinition',
             _locked_answer, HONEST, set(UNDONE), flags=("differs from the released", "tampering")),
        Case("leak-encoded-source", "mse_grad raises an AssertionError carrying the test source, base64",
             _leak, FULL - 2, {"test_mse_grad"}),
        Case("meta-unknown-grade-id", "the mae_loss answer cell's grade_id renamed", _unknown_grade_id, FULL,
             flags=("grade_id the assignment does not have", "re-identified as 'mae_loss'")),
        Case("meta-extra-grade-cell", "an extra graded cell worth 10 points", _extra_grade_cell, FULL,
             flags=("'my_bonus'",)),
        Case("meta-answer-as-test", "the softmax answer cell re-marked as a test cell", _answer_as_test, FULL,
             flags=("('softmax') had nbgrader metadata",)),
    ]
    return cases


def write_hostile(folder: Path, root: Path) -> list[Case]:
    written = hostile_cases()
    for case in written:
        (folder / case.student_id).mkdir(parents=True, exist_ok=True)
        (folder / case.student_id / NOTEBOOK).write_bytes(case.build(root))
    return written


# ---- 02-gradient-descent and 04-numpy-net (their tests pass callbacks and given data into the kernel) ----------
# Per assignment: the unfinished functions' placeholders (fast: no training), the test cells they lose, and the
# answer cell the cheats are appended to (the first one: it runs before every test cell). A cheat that wins in
# the kernel (`--verdict kernel`) makes every test cell of its notebook pass; in the trusted runner it must score,
# test by test, what the same work without it scores.
NUMPY_PARTIAL = {
    "02-gradient-descent": (
        {"numerical_gradient": "def numerical_gradient(f, x, h=1e-5):\n"
                               "    return np.zeros_like(np.asarray(x, dtype=np.float64))",
         "gradient_descent": "def gradient_descent(grad_f, x0, lr, num_steps):\n"
                             "    return np.zeros((num_steps + 1, *np.shape(x0)))"},
        {"test_numerical_gradient", "test_gradient_descent"}, "numerical_gradient"),
    "04-numpy-net": (
        {"train_mlp": "def train_mlp(X_train, y_train, X_val, y_val, layer_sizes, lr, epochs, batch_size, seed=0):\n"
                      "    return init_params(layer_sizes, seed), {'train_loss': [], 'val_acc': []}"},
        {"test_train_mlp_small", "test_train_mlp_fashion_mnist"}, "init_params"),
}
# Before every cell: the test cells' Checks become a class whose checks swallow every failure and whose score is
# always full (04's unfinished tests fail on plain asserts and missing keys, which rebound helpers do not hide).
CHECKS_REBIND = '''
import contextlib as _contextlib
class _AllPassed:
    outcomes = []
    def __init__(self, *args, **kwargs):
        pass
    def __call__(self, *args, **kwargs):
        return _contextlib.suppress(Exception)
    def discount(self, *args, **kwargs):
        pass
    def score(self, points):
        return points
def _rebind_checks(*args):
    import sys as _s
    setattr(getattr(_s, "mod" + "ules")["__main__"], "Che" + "cks", _AllPassed)
_g = get_ipython
getattr(_g(), "ev" + "ents").register("pre_run_cell", _rebind_checks)
'''
NUMPY_ONLY_CHEATS = {"cheat-checks-rebound": ("a pre_run_cell hook replacing Checks by one that always gives full "
                                              "points", CHECKS_REBIND)}
# Each wins in the kernel on that assignment (measured with --verdict kernel: 02's honest part 7/13, each cheat
# 12.5 or 13; 04's honest part 13/20, the cheats 20).
NUMPY_CHEATS = {"02-gradient-descent": ("cheat-transformer-alias", "cheat-pre-run-hook", "cheat-code-swap-gc"),
                "04-numpy-net": ("cheat-transformer-alias", "cheat-shell-instance", "cheat-checks-rebound")}


def numpy_hostile_cases(assignment: str) -> list[tuple[str, str, nbformat.NotebookNode, bool]]:
    """``(student, why, notebook, is_cheat)`` for one batch of ``assignment``: the honest control, the honest part
    alone (``honest-partial``), and its cheats of NUMPY_CHEATS added to that honest part."""
    from autograder.notebooks import build_submission

    placeholders, _, first = NUMPY_PARTIAL[assignment]
    cases = [("honest-control", "the reference solutions", build_submission(assignment), False),
             ("honest-partial", "the cheats' honest work without any cheat",
              build_submission(assignment, placeholders), False)]
    for student in NUMPY_CHEATS[assignment]:
        why, code = {**CHEATS, **NUMPY_ONLY_CHEATS}[student]
        nb = build_submission(assignment, placeholders)
        nb.cells[_cell(nb, first)].source += "\n" + code
        cases.append((student, why, nb, True))
    return cases


# ---- 04-numpy-net: editing the data the test scores against ----------------------------------------------------
# A train_mlp that does not train, reports a falling loss and accuracy 1.0, and makes that accuracy true by writing
# its predictions into y_val from its second call on (the first is the one whose inputs the visible test guards):
# the test's own validation labels, which the trusted runner syncs back from the kernel (in-place changes of
# arguments are applied to the trusted copies, as sgd_step needs), so later checks would score against them. Its
# baseline is the same code writing them into a copy of y_val: the inputs untouched. Editing the inputs must not
# score more than that.
_NO_TRAINING = '''_CALLS = []
def train_mlp(X_train, y_train, X_val, y_val, layer_sizes, lr, epochs, batch_size, seed=0):
    _CALLS.append(1)
    params = init_params(layer_sizes, seed)
    out = X_val
    for k in range(1, len(params) // 2 + 1):
        out = out @ params[f"W{k}"] + params[f"b{k}"]
        out = np.maximum(out, 0) if k < len(params) // 2 else out
    predicted = out.argmax(axis=1)
    labels = %s
    labels[...] = predicted
    history = {"train_loss": [1.0 / (epoch + 1) for epoch in range(epochs)],
               "val_acc": [float(np.mean(predicted == labels))] * epochs}
    return params, history'''
Y_VAL_EDITS = {"cheat-edits-y-val": ("train_mlp untrained, its predictions written into the test's y_val "
                                     "(from its 2nd call)",
                                     _NO_TRAINING % "y_val if len(_CALLS) > 1 else y_val.copy()"),
               "baseline-y-val-copy": ("the same, its predictions written into a copy of y_val",
                                       _NO_TRAINING % "y_val.copy()")}


def y_val_edit_cases() -> list[tuple[str, str, nbformat.NotebookNode]]:
    """``(student, why, notebook)``: 04's honest part with train_mlp replaced by the y_val cheat and its baseline."""
    from autograder.notebooks import build_submission

    return [(student, why, build_submission("04-numpy-net", {"train_mlp": code}))
            for student, (why, code) in Y_VAL_EDITS.items()]
