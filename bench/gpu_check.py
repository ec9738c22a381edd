"""GPU check: execute every notebook that uses PyTorch, and the PyTorch assignments' solutions, on a CUDA machine.

    .venv/bin/python bench/gpu_check.py                    # on a machine with a CUDA GPU
    .venv/bin/python bench/gpu_check.py --cpu              # no GPU: run on the CPU anyway (tests this script)
    .venv/bin/python bench/gpu_check.py --simulate         # no GPU: run under dlcourse.simulated_gpu
    .venv/bin/python bench/gpu_check.py book/08-pytorch.ipynb --json results.json
    .venv/bin/python bench/gpu_check.py --jobs 5           # five notebooks at a time (a GPU machine's many cores)
    .venv/bin/python bench/gpu_check.py --simulate --small-data 1000 --max-train-batches 2   # quick (CI's)

The default notebooks are every chapter of ``book/`` that imports torch and the source notebooks of the assignments
in ``ASSIGNMENTS`` (whose hidden tests run too). Each notebook runs with nbclient in
a fresh kernel, in its own folder, with every cell executed even after an error. For each one the table shows:
pass/fail and the first failing cell; graded test cells passed out of those present (nbgrader cells with points);
the device the notebook reports (``dlcourse.torch_utils.get_device()`` and the GPU's name, asked in a cell added
at the end); the training budgets the notebook printed (:class:`dlcourse.torch_utils.TrainingBudget`); the time.

Without CUDA it says so and exits with status 2, unless ``--cpu`` or ``--simulate`` is given. ``--simulate`` is
meant for the chapters: the assignments' graded device tests record the device each batch is moved to, which the
simulation replaces by the CPU, and ``--max-train-batches`` leaves their accuracy tests too little training. The
exit status is 1 when a notebook fails. Nothing is timed against a target: the times depend on the GPU.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # autograder (the stand-in held-out set), when run as a script
# The assignments that train with PyTorch: 05, 06 and 10 ask Colab for a GPU runtime; 09 trains small networks
# that a student may well run on one.
ASSIGNMENTS = ("05-pytorch", "06-cnn", "09-debugging", "10-capstone")
_BUDGET = re.compile(r"^(?:GPU|CPU|CUDA|MPS|[A-Z]+) detected[:,].*$", re.MULTILINE)
_REPORT_MARK = "DLCOURSE_GPU_CHECK_REPORT "

# The cell added at the end of every notebook: what device the course's helpers chose.
_REPORT_CELL = f"""\
import json as _json, torch as _torch
from dlcourse.torch_utils import get_device as _get_device
_device = _get_device()
print({_REPORT_MARK!r} + _json.dumps({{
    "device": str(_device),
    "name": _torch.cuda.get_device_name() if _device.type == "cuda" else "cpu",
    "torch": _torch.__version__}}))
"""


def simulation_prelude(simulate: bool = True, n_train: int | None = None, n_test: int = 1000, n_val: int = 500,
                       max_train_batches: int | None = None) -> str:
    """Source of a cell that switches on the simulated GPU and, optionally, cuts the training work.

    Args:
        simulate: switch on :mod:`dlcourse.simulated_gpu` (and run PyTorch on one thread, as the chapters do on a
            CPU: a busy machine is many times slower with two).
        n_train, n_test, n_val: cut Fashion-MNIST to ``n_train + n_val`` training and ``n_test`` test images, and
            hold out at most ``n_val`` of the training images for validation
            (:func:`dlcourse.data.train_val_split`).
        max_train_batches: shuffled loaders of :func:`dlcourse.torch_utils.make_loader` (the training loaders)
            yield at most this many batches per epoch; evaluation loaders are left whole, so that predictions
            still line up with the labels.

    A device bug shows at the first training step, so a run cut this way finds the same bugs as a full one.
    """
    lines = []
    if simulate:
        lines += ["import torch as _torch", "_torch.set_num_threads(1)",
                  "import dlcourse.simulated_gpu as _simulated_gpu", "_simulated_gpu.activate()"]
    if n_train is not None:
        if n_train < 1:
            raise ValueError(f"n_train must be positive, got {n_train}")
        lines += [
            "import dlcourse.data as _data",
            "_full_fashion_mnist = _data.load_fashion_mnist",
            "def _small_fashion_mnist(*args, **kwargs):",
            "    X, y, X_test, y_test = _full_fashion_mnist(*args, **kwargs)",
            f"    return X[:{n_train + n_val}], y[:{n_train + n_val}], X_test[:{n_test}], y_test[:{n_test}]",
            "_data.load_fashion_mnist = _small_fashion_mnist",
            "_full_split = _data.train_val_split",
            "def _small_split(X, y, val_size=0.1, seed=0):",
            f"    return _full_split(X, y, min(val_size, {n_val}) if val_size >= 1 else val_size, seed=seed)",
            "_data.train_val_split = _small_split",
        ]
    if max_train_batches is not None:
        lines += [
            "import dlcourse.torch_utils as _torch_utils",
            "_full_make_loader = _torch_utils.make_loader",
            "def _short_make_loader(X, y, *, batch_size=128, shuffle=False, seed=0):",
            "    if shuffle:",
            f"        X, y = X[:{max_train_batches} * batch_size], y[:{max_train_batches} * batch_size]",
            "    return _full_make_loader(X, y, batch_size=batch_size, shuffle=shuffle, seed=seed)",
            "_torch_utils.make_loader = _short_make_loader",
        ]
    return "\n".join(lines)


@dataclass
class NotebookResult:
    """What one notebook did."""

    path: str
    passed: bool = False
    error: str = ""                      # the first failing cell and its exception
    errors: list[str] = field(default_factory=list)   # every failing cell
    tests_passed: int = 0
    tests: int = 0
    failed_tests: list[str] = field(default_factory=list)
    device: str = "?"
    device_name: str = "?"
    budgets: list[str] = field(default_factory=list)
    seconds: float = 0.0


def uses_torch(path: Path) -> bool:
    """Does a notebook import PyTorch in a code cell?"""
    nb = nbformat.read(path, as_version=4)
    pattern = re.compile(r"^\s*(import torch|from torch[ .])", re.MULTILINE)
    return any(cell.cell_type == "code" and pattern.search(cell.source) for cell in nb.cells)


def default_notebooks(root: Path = ROOT) -> list[Path]:
    """Every chapter that imports torch, then each PyTorch assignment's source notebook."""
    chapters = [p for p in sorted((root / "book").glob("*.ipynb")) if uses_torch(p)]
    solutions = [p for name in ASSIGNMENTS for p in sorted((root / "solutions" / name).glob("*.ipynb"))]
    return chapters + solutions


HELDOUT_ENV = "DLCOURSE_HELDOUT"   # where the capstone's hidden test reads its held-out set (dlcourse.heldout)


def stand_in_heldout(folder: Path) -> Path:
    """The capstone's hidden test needs a held-out set, which the grader alone has in a course: the tests' stand-in
    (:func:`autograder.heldout.stand_in_arrays`), written to ``folder``."""
    from autograder.heldout import npz_bytes, stand_in_arrays

    path = folder / "heldout.npz"
    path.write_bytes(npz_bytes(*stand_in_arrays()))
    return path


def _text(outputs) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _error(outputs) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"[:300]
    return None


def run_notebook(path: Path, *, prelude: str | None = None, timeout: int = 1200,
                 env: dict[str, str] | None = None) -> NotebookResult:
    """Execute one notebook (every cell, errors included) and summarise it.

    Args:
        prelude: code run before the notebook's first cell after its setup cell (e.g. :func:`simulation_prelude`).
        timeout: seconds per cell.
        env: extra environment variables of the kernel.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    graded = {id(c): c.metadata["nbgrader"].get("grade_id", f"cell {i}") for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    if prelude:
        setup = next((i for i, c in enumerate(nb.cells) if "dlcourse-setup" in c.metadata.get("tags", [])), -1)
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(prelude))
    nb.cells.append(nbformat.v4.new_code_cell(_REPORT_CELL))
    result = NotebookResult(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    start = time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except Exception as exc:   # the kernel died or a cell timed out: report it, go on with the next notebook
        result.error = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    result.seconds = time.perf_counter() - start
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = _error(cell.get("outputs", []))
        text = _text(cell.get("outputs", []))
        result.budgets += _BUDGET.findall(text)
        if _REPORT_MARK in text:
            report = json.loads(text.split(_REPORT_MARK, 1)[1].splitlines()[0])
            result.device, result.device_name = report["device"], report["name"]
        if id(cell) in graded:
            result.tests += 1
            if error is None and cell.get("outputs") is not None and cell.get("execution_count"):
                result.tests_passed += 1
            else:
                result.failed_tests.append(graded[id(cell)])
        if error:
            result.errors.append(f"cell {index}: {error}")
            result.error = result.error or result.errors[0]
    result.passed = not result.error
    return result


def _report(result: NotebookResult) -> NotebookResult:
    print(f"  {result.path}: {'pass' if result.passed else 'FAIL'} in {result.seconds:.1f} s", flush=True)
    return result


def run_all(notebooks: list[Path], *, jobs: int = 1, **options) -> list[NotebookResult]:
    """:func:`run_notebook` on each notebook, ``jobs`` at a time (each in a process of its own, since
    ``run_notebook`` sets the kernel's environment through ``os.environ``); the results in the notebooks' order."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        return [_report(run_notebook(path, **options)) for path in notebooks]
    context = multiprocessing.get_context("spawn")   # no forked copy of this process's event loop or ZMQ state
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(run_notebook, path, **options): path for path in notebooks}
        for future in concurrent.futures.as_completed(futures):
            _report(future.result())
        return [future.result() for future in futures]


def table(results: list[NotebookResult]) -> str:
    """The results as a Markdown table (the README's CPU/GPU section shows the latest one)."""
    rows = ["| notebook | result | graded tests | device | training budget | seconds |",
            "|---|---|---|---|---|---|"]
    for r in results:
        outcome = "pass" if r.passed else f"FAIL ({r.error})"
        tests = f"{r.tests_passed}/{r.tests}" if r.tests else "-"
        if r.failed_tests:
            tests += f" (failed: {', '.join(r.failed_tests)})"
        device = r.device if r.device_name in ("cpu", "?") else f"{r.device} ({r.device_name})"
        budget = "; ".join(dict.fromkeys(b.rstrip(".") for b in r.budgets)) or "-"
        rows.append(f"| {r.path} | {outcome.replace('|', '/')} | {tests} | {device} | {budget.replace('|', '/')} "
                    f"| {r.seconds:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: every torch notebook)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--cpu", action="store_true", help="run on the CPU when there is no GPU (tests the script)")
    mode.add_argument("--simulate", action="store_true",
                      help="run under dlcourse.simulated_gpu (a GPU simulated on the CPU)")
    parser.add_argument("--small-data", type=int, metavar="N",
                        help="cut Fashion-MNIST to N training, 500 validation and 1000 test images")
    parser.add_argument("--max-train-batches", type=int, metavar="B",
                        help="training loaders of make_loader yield at most B batches per epoch")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell (default 1200)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    from autograder.heldout import STAND_IN_SIZE

    parser.add_argument("--heldout", type=Path, metavar="FILE",
                        help="the capstone's held-out set, an .npz of images and labels (default: a stand-in, "
                             f"{STAND_IN_SIZE:,} images of Fashion-MNIST's test set, as the tests use)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="notebooks run at a time, each with its own kernel (default 1; the times then overlap)")
    args = parser.parse_args(argv)
    if args.heldout is not None and not args.heldout.is_file():
        parser.error(f"--heldout {args.heldout}: no such file (an .npz of images and labels)")

    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not (args.cpu or args.simulate):
        print("No CUDA GPU on this machine (torch.cuda.is_available() is False): nothing was run. "
              "Run this on a GPU machine, or pass --cpu (or --simulate) to test the script here.")
        return 2
    env = {}
    prelude = simulation_prelude(args.simulate, args.small_data, max_train_batches=args.max_train_batches) or None
    if args.cpu and cuda:
        env["DLCOURSE_DEVICE"] = "cpu"
    notebooks = [p.resolve() for p in args.notebooks] or default_notebooks()
    # The capstone's hidden test scores predictions on a held-out set that only the grader has: give it one.
    with tempfile.TemporaryDirectory() as scratch:
        if args.heldout or any("dlcourse.heldout" in path.read_text(encoding="utf-8") for path in notebooks):
            env[HELDOUT_ENV] = str((args.heldout or stand_in_heldout(Path(scratch))).resolve())
        return _check(notebooks, args, cuda, prelude, env)


def _check(notebooks: list[Path], args: argparse.Namespace, cuda: bool, prelude: str | None,
           env: dict[str, str]) -> int:
    import torch

    where = ("a simulated GPU (dlcourse.simulated_gpu)" if args.simulate else
             f"CUDA ({torch.cuda.get_device_name()})" if cuda and not args.cpu else "the CPU")
    print(f"Running {len(notebooks)} notebooks on {where}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    results = run_all(notebooks, jobs=args.jobs, prelude=prelude, timeout=args.timeout, env=env)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n", encoding="utf-8")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
