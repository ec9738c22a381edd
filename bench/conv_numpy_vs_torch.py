"""Convolution on the CPU: the course's reference NumPy conv2d (exercise 06) vs PyTorch, forward + backward.

The reference ``conv2d_forward`` and ``conv2d_backward`` are loaded from the solutions (instructors only) and timed
against ``torch.nn.functional.conv2d`` and its autograd backward, on the same float32 data: a batch of shape
(64, 16, 28, 28), 32 filters of 3x3, padding 1, stride 1. Both run on one CPU thread (NumPy's BLAS and
PyTorch), so that the ratio compares the implementations rather than the threading, and is stable on a busy
machine. Each side is timed several times and the fastest run is kept. The gradients are checked to agree first.

Run from the repository root:

    .venv/bin/python bench/conv_numpy_vs_torch.py [--repeats 5]

Prints the two times and their ratio (NumPy / PyTorch); the target is a ratio of at most 4.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPE_X = (64, 16, 28, 28)
SHAPE_W = (32, 16, 3, 3)
PAD = 1


def best_time(function, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``function()``, in seconds, after one warm-up run."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation (default 5)")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits
    import torch
    import torch.nn.functional as F

    from autograder.notebooks import load_solution

    with contextlib.redirect_stdout(io.StringIO()):   # the notebook's import cell prints the device
        solution = load_solution("06-cnn")
    conv2d_forward, conv2d_backward = solution["conv2d_forward"], solution["conv2d_backward"]

    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE_X, dtype=np.float32)
    w = rng.standard_normal(SHAPE_W, dtype=np.float32) * 0.1
    b = rng.standard_normal(SHAPE_W[0], dtype=np.float32)
    out_shape = (SHAPE_X[0], SHAPE_W[0], SHAPE_X[2], SHAPE_X[3])
    dout = rng.standard_normal(out_shape, dtype=np.float32)

    x_t, w_t, b_t = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
    dout_t = torch.from_numpy(dout)

    def numpy_step():
        out, cache = conv2d_forward(x, w, b, stride=1, pad=PAD)
        return out, conv2d_backward(dout, cache)

    def torch_step():
        x_t.grad = w_t.grad = b_t.grad = None
        out = F.conv2d(x_t, w_t, b_t, stride=1, padding=PAD)
        out.backward(dout_t)
        return out

    torch.set_num_threads(1)
    with threadpool_limits(limits=1, user_api="blas"):
        out, (dx, dw, db) = numpy_step()
        out_t = torch_step()
        for name, mine, reference in [("out", out, out_t.detach()), ("dx", dx, x_t.grad), ("dw", dw, w_t.grad),
                                      ("db", db, b_t.grad)]:
            reference = reference.numpy()
            error = np.abs(mine - reference).max() / np.abs(reference).max()
            if not error < 1e-4:
                print(f"{name} disagrees with PyTorch (relative error {error:.2e})", file=sys.stderr)
                return 1
        numpy_seconds = best_time(numpy_step, args.repeats)
        torch_seconds = best_time(torch_step, args.repeats)

    print(f"conv2d forward + backward, x {SHAPE_X}, w {SHAPE_W}, padding {PAD}, float32, one CPU thread, "
          f"best of {args.repeats}")
    print(f"  NumPy reference (exercise 06): {numpy_seconds * 1000:8.1f} ms")
    print(f"  PyTorch F.conv2d + autograd:   {torch_seconds * 1000:8.1f} ms")
    print(f"  ratio NumPy / PyTorch: {numpy_seconds / torch_seconds:.2f} (target: at most 4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
