"""The submission corpus of the grading-pipeline tests, generated from assignment 01-losses.

Each :class:`Case` is one student's submission with the score it must get and why. The notebooks are built in
a temporary folder from the released notebook and the reference solutions (``autograder.notebooks``), then
damaged, broken or made hostile the way real submissions are. The points of each test cell (:data:`POINTS`) and
their sum (:data:`FULL`) are read from the source notebook of 01-losses; cross_entropy_grad calls the student's
softmax, but its test counts a wrong softmax against test_softmax only.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from autograder.notebooks import build_submission, nbgrader_meta, source_notebook

ASSIGNMENT = "01-losses"
NOTEBOOK = "losses.ipynb"
POINTS = {meta["grade_id"]: meta["points"] for meta in map(nbgrader_meta, nbformat.read(
    source_notebook(ASSIGNMENT), as_version=4).cells) if meta.get("grade") and not meta.get("solution")}
FULL = float(sum(POINTS.values()))


@dataclass
class Case:
    student_id: str
    why: str
    build: Callable[[Path], bytes]
    score: float | None                     # None: no exact score (it depends on the sandbox, see `isolated`)
    failing: set[str] = field(default_factory=set)   # test cells that must lose their points
    status: str = "graded"
    flags: tuple[str, ...] = ()             # words that must appear in the submission's flags or reason
    isolated: bool = False                  # the expected score assumes bubblewrap isolation


def losing(*tests: str) -> float:
    """The score of a submission that loses all the points of these test cells and keeps the others."""
    return FULL - sum(POINTS[test] for test in tests)


def _notebook(nb: nbformat.NotebookNode) -> bytes:
    return nbformat.writes(nb).encode()


def _cell(nb: nbformat.NotebookNode, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == grade_id)


def correct(extra: dict[str, str] | None = None) -> nbformat.NotebookNode:
    return build_submission(ASSIGNMENT, extra)


MUTANT_MAE = "def mae_loss(y_pred, y):\n    return float(np.mean((np.asarray(y_pred) - np.asarray(y)) ** 2))"
MUTANT_SOFTMAX = ("def softmax(logits):\n"
                  "    import warnings\n"
                  "    warnings.warn('softmax along axis 0')  # stderr in a failing test must not help it\n"
                  "    shifted = logits - np.max(logits, axis=0, keepdims=True)\n"
                  "    e = np.exp(shifted)\n"
                  "    return e / np.sum(e, axis=0, keepdims=True)")
UNSTABLE_SOFTMAX = "def softmax(logits):\n    exp = np.exp(logits)\n    return exp / np.sum(exp, axis=1, keepdims=True)"
STDERR = {
    "mse_loss": ("def mse_loss(y_pred, y):\n    import sys, warnings\n"
                 "    warnings.warn('mse_loss: a UserWarning, as PyTorch emits them')\n"
                 "    print('progress 1/1', file=sys.stderr)\n"
                 "    diff = np.asarray(y_pred, dtype=float) - np.asarray(y, dtype=float)\n"
                 "    return float(np.mean(diff ** 2))"),
    "error_rate": ("def error_rate(labels_pred, labels):\n    from tqdm import tqdm\n"
                   "    for _ in tqdm(range(3), desc='counting'):\n        pass\n"
                   "    return float(np.mean(np.asarray(labels_pred) != np.asarray(labels)))"),
}
ENDLESS = "def mae_loss(y_pred, y):\n    while True:\n        pass"
STUBBORN = ("def cross_entropy_grad(logits, y):\n    import time\n    while True:\n        try:\n"
            "            time.sleep(0.1)\n        except KeyboardInterrupt:\n            pass")
EXIT = "def error_rate(labels_pred, labels):\n    import os\n    os._exit(3)"
MEMORY_HOG = ("def mse_grad(y_pred, y):\n"
              "    blocks = [bytearray(2**28) for _ in range(400)]   # 100 GiB, 256 MiB at a time\n"
              "    return blocks")
FORK_BOMB = ("# A scratch cell left at the end: a fork bomb.\nimport os\nfor _ in range(100000):\n    try:\n"
             "        if os.fork() == 0:\n            while True:\n                try:\n"
             "                    os.fork()\n"
             "                except OSError:\n                    pass\n    except OSError:\n        break")
TAMPER = ("def mse_loss(y_pred, y):\n"
          "    return float(np.sum((np.asarray(y_pred) - np.asarray(y)) ** 2))   # wrong: the sum\n\n"
          "np.allclose = lambda *args, **kwargs: True\n"
          "np.testing.assert_allclose = lambda *args, **kwargs: None\n"
          "import dlcourse.testing\n"
          "setattr(dlcourse.testing, 'assert_close', lambda *args, **kwargs: None)\n"
          "def assert_close(*args, **kwargs):\n    pass\n"
          "assert_scalar = float")
LEAKY = ("def mse_grad(y_pred, y):\n"
         "    # Puts the running test cell's source (from IPython's history) into its error message.\n"
         "    raise AssertionError(globals()['I' + 'n'][-1].replace('\\n', ' | '))")


def snoop(solutions: Path, gradebook: Path) -> str:
    """mae_loss right only if the student can read the solutions or the gradebook, or reach the network."""
    return f'''import os, socket
def _could(action):
    try:
        action()
        return True
    except Exception:
        return False
_found = {{
    "solutions": _could(lambda: open({str(solutions)!r}).read()),
    "solutions nearby": any(_could(lambda p=p: os.listdir(p)) for p in ["../../../solutions", "/work/main/solutions"]),
    "gradebook": _could(lambda: open({str(gradebook)!r}, "rb").read(1)),
    "network": _could(lambda: socket.create_connection(("1.1.1.1", 80), timeout=3)),
    "grading dir variable": "DLCOURSE_GRADING_DIR" in os.environ,
}}
print("SNOOP", _found)
if any(_found.values()):
    def mae_loss(y_pred, y):
        return float(np.mean(np.abs(np.asarray(y_pred, dtype=float) - np.asarray(y, dtype=float))))
else:
    def mae_loss(y_pred, y):
        return 0.0'''


def _colab(nb: nbformat.NotebookNode) -> bytes:
    """As Colab saves it: nbformat 4.0 without cell ids, Colab metadata, a kernelspec without language."""
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 0
    data["metadata"]["colab"] = {"name": "Copy of losses.ipynb", "provenance": [], "toc_visible": True}
    data["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for index, cell in enumerate(data["cells"]):
        cell.pop("id", None)
        cell["metadata"]["id"] = f"colab{index:04d}"
        if cell["cell_type"] == "code":
            cell["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            cell["metadata"]["outputId"] = f"out{index:04d}"
            cell["metadata"]["executionInfo"] = {"status": "ok", "elapsed": 12}
    return json.dumps(data, indent=1).encode()


def _duplicated(path: Path) -> bytes:
    nb = correct()
    test = _cell(nb, "test_mse_loss")
    nb.cells.insert(test + 1, copy.deepcopy(nb.cells[test]))        # a copied test cell, below the original
    answer = _cell(nb, "softmax")
    nb.cells.insert(answer, copy.deepcopy(nb.cells[answer]))        # a copied answer cell, above it
    for cell in nb.cells:
        cell["id"] = nbformat.v4.nbbase.random_cell_id()
    return _notebook(nb)


def _lost_metadata(path: Path) -> bytes:
    nb = correct()
    for grade_id in ("softmax", "test_mae_loss", "imports"):
        del nb.cells[_cell(nb, grade_id)].metadata["nbgrader"]
    return _notebook(nb)


def _deleted_test(path: Path) -> bytes:
    nb = correct()
    del nb.cells[_cell(nb, "test_cross_entropy_grad")]
    del nb.cells[_cell(nb, "test_softmax")]
    return _notebook(nb)


def _kernelspec(kind: str) -> Callable[[Path], bytes]:
    def build(path: Path) -> bytes:
        nb = correct()
        if kind == "missing":
            del nb.metadata["kernelspec"]
        else:
            nb.metadata["kernelspec"] = {"name": "conda-env-dl-py", "display_name": "Python [conda env:dl]",
                                         "language": "python"}
        return _notebook(nb)
    return build


def _with_cell(source: str) -> Callable[[Path], bytes]:
    def build(path: Path) -> bytes:
        nb = correct()
        nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(source))   # before the check cell
        return _notebook(nb)
    return build


def _snooping(paths: dict[str, Path]) -> Callable[[Path], bytes]:
    def build(path: Path) -> bytes:
        nb = correct()
        nb.cells[_cell(nb, "mae_loss")].source = snoop(paths["solutions"], paths["gradebook"])
        return _notebook(nb)
    return build


def _student(path: Path) -> bytes:
    return (path / "exercises" / ASSIGNMENT / NOTEBOOK).read_bytes()


def cases(root: Path, gradebook: Path, fork_bomb: bool = True) -> list[Case]:
    """Every case; ``gradebook`` is where the grading run keeps its gradebook (the snooper tries to read it).

    Args:
        fork_bomb: include the fork bomb (leave it out where nothing could bound it: root without a sandbox).
    """
    paths = {"solutions": root / "solutions" / ASSIGNMENT / NOTEBOOK, "gradebook": gradebook}
    return [case for case in all_cases(paths) if fork_bomb or case.student_id != "fork-bomb"]


def all_cases(paths: dict[str, Path]) -> list[Case]:
    return [
        Case("correct", "the reference solutions", lambda p: _notebook(correct()), FULL),
        Case("blank", "the student notebook as released", _student, 0.0, set(POINTS)),
        Case("partial", "mae_loss squares; softmax normalises along axis 0 and warns on stderr",
             lambda p: _notebook(correct({"mae_loss": MUTANT_MAE, "softmax": MUTANT_SOFTMAX})),
             losing("test_mae_loss", "test_softmax"),
             {"test_mae_loss", "test_softmax"}),   # cross_entropy_grad is right given its softmax: one bug, one test
        Case("hidden-failure", "softmax overflows for huge logits: only a hidden check of test_softmax fails "
             "(partial credit, 6 of its 7 checks; test_cross_entropy_grad is not charged for it)",
             lambda p: _notebook(correct({"softmax": UNSTABLE_SOFTMAX})), FULL - 3 + 2.57,
             {"test_softmax"}),
        Case("stderr", "correct, with a warning, stderr prints and a tqdm bar inside graded functions",
             lambda p: _notebook(correct(STDERR)), FULL),
        Case("duplicated", "a copied test cell and a copied answer cell (duplicate grade_ids)", _duplicated, FULL,
             flags=("appeared 2 times",)),
        Case("lost-metadata", "an answer, a test and the import cell lost their nbgrader metadata",
             _lost_metadata, FULL, flags=("re-identified as 'softmax'", "re-identified as 'test_mae_loss'",
                                          "re-identified as 'imports'")),
        Case("deleted-tests", "two test cells deleted: restored, hidden tests included", _deleted_test, FULL,
             flags=("'test_softmax' was deleted", "'test_cross_entropy_grad' was deleted")),
        Case("colab", "saved by Colab: nbformat 4.0 without ids, Colab metadata, no kernel language",
             lambda p: _colab(correct()), FULL, flags=("nbformat 4.0", "Colab metadata")),
        Case("no-kernelspec", "no kernelspec at all", _kernelspec("missing"), FULL, flags=("no kernelspec",)),
        Case("foreign-kernel", "another environment's kernel", _kernelspec("foreign"), FULL,
             flags=("foreign kernel",)),
        Case("invalid-json", "a truncated download", lambda p: _notebook(correct())[:5000], 0.0, set(POINTS),
             "rejected", ("not valid JSON",)),
        Case("empty", "an empty file", lambda p: b"", 0.0, set(POINTS), "rejected", ("empty",)),
        Case("endless-loop", "mae_loss never returns: only its test times out", lambda p: _notebook(
            correct({"mae_loss": ENDLESS})), losing("test_mae_loss"), {"test_mae_loss"}),
        Case("stubborn-loop", "cross_entropy_grad loops and swallows the interrupt: the kernel is killed",
             lambda p: _notebook(correct({"cross_entropy_grad": STUBBORN})), losing("test_cross_entropy_grad"),
             {"test_cross_entropy_grad"},
             flags=("did not stop",)),
        Case("os-exit", "error_rate calls os._exit: the kernel dies, later tests are lost",
             lambda p: _notebook(correct({"error_rate": EXIT})),
             losing("test_error_rate", "test_softmax", "test_cross_entropy_loss", "test_cross_entropy_grad"),
             {"test_error_rate", "test_softmax", "test_cross_entropy_loss", "test_cross_entropy_grad"},
             flags=("died",)),
        Case("memory-hog", "mse_grad allocates 100 GiB: MemoryError at the limit, only its test lost",
             lambda p: _notebook(correct({"mse_grad": MEMORY_HOG})), losing("test_mse_grad"), {"test_mse_grad"}),
        Case("fork-bomb", "a fork bomb in a scratch cell after the tests: bounded, killed afterwards",
             _with_cell(FORK_BOMB), FULL),
        Case("snooper", "reads solutions/ and the gradebook, opens a connection; right only if any works",
             _snooping(paths), losing("test_mae_loss"), {"test_mae_loss"}, isolated=True),
        Case("tamper", "wrong mse_loss hidden behind patched comparison helpers and redefined assertions",
             lambda p: _notebook(correct({"mse_loss": TAMPER})), FULL - 1.25, {"test_mse_loss"},   # partial credit
             flags=("tampering flagged",)),
        Case("leaky", "mse_grad raises with the running test cell's source, hidden tests included",
             lambda p: _notebook(correct({"mse_grad": LEAKY})), losing("test_mse_grad"), {"test_mse_grad"}),
    ]


def write_submissions(folder: Path, root: Path, gradebook: Path, fork_bomb: bool = True) -> list[Case]:
    """One sub-folder per student holding ``losses.ipynb``; returns the cases."""
    written = cases(root, gradebook, fork_bomb)
    for case in written:
        (folder / case.student_id).mkdir(parents=True, exist_ok=True)
        (folder / case.student_id / NOTEBOOK).write_bytes(case.build(root))
    return written
