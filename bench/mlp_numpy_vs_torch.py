"""Speed of the course's NumPy MLP against PyTorch on the CPU: the same network, data, batches and initialisation.

Trains a 784-256-10 ReLU network for one epoch of Fashion-MNIST (60,000 images, batch 128, lr 0.1, plain SGD on
the softmax cross-entropy) twice: with the reference solution of exercise 04 (NumPy, float32) and with PyTorch
(float32, CPU). Both start from the same parameters and see the mini-batches in the same order, so their test
accuracies agree to within noise. Prints the median time of each over a few repeats, the ratio NumPy/PyTorch
(target: at most 1.5) and both accuracies on the 10,000 test images.

    python bench/mlp_numpy_vs_torch.py [--repeats 3] [--threads N]

On a machine that other programs keep busy, pass ``--threads 1``: multi-threaded BLAS and PyTorch kernels then
slow down by an order of magnitude, erratically, as their threads wait for each other, and the ratio means little.

Instructor-only: it reads the reference solution from solutions/ (autograder.notebooks.load_solution).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.notebooks import load_solution, solution_code  # noqa: E402
from dlcourse.data import load_fashion_mnist  # noqa: E402

LAYER_SIZES = [784, 256, 10]
LR = 0.1
BATCH_SIZE = 128
SEED = 0
TARGET_RATIO = 1.5


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as float32 vectors, normalised with the training set's mean image and standard deviation."""
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32) / 255
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32) / 255
    mean_image, std = X_train.mean(axis=0), X_train.std()
    return (X_train - mean_image) / std, y_train, (X_test - mean_image) / std, y_test


def numpy_reference() -> dict:
    """The reference implementation of exercise 04 and the layers of exercise 03 that its notebook gives."""
    # load_solution reads the import and answer cells only; the layers are a locked "given" cell of 04,
    # copied from exercise 03's solution, so they are taken from there.
    namespace = load_solution("03-backprop")
    exec(compile(solution_code("04-numpy-net"), "<solution 04-numpy-net>", "exec"), namespace)
    return namespace


def run_numpy(solution: dict, data) -> tuple[float, float]:
    """Seconds for one epoch with the NumPy reference (its train_mlp also evaluates on the test set)."""
    X_train, y_train, X_test, y_test = data
    start = time.perf_counter()
    _, history = solution["train_mlp"](X_train, y_train, X_test, y_test, LAYER_SIZES, lr=LR, epochs=1,
                                       batch_size=BATCH_SIZE, seed=SEED)
    return time.perf_counter() - start, history["val_acc"][-1]


def run_torch(solution: dict, data) -> tuple[float, float]:
    """Seconds for the same epoch in PyTorch: same initial parameters, same order of mini-batches."""
    import torch

    X_train, y_train, X_test, y_test = data
    initial = solution["init_params"](LAYER_SIZES, SEED)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    with torch.no_grad():
        for k, layer in ((1, model[0]), (2, model[2])):
            layer.weight.copy_(torch.from_numpy(initial[f"W{k}"].T.astype(np.float32)))
            layer.bias.copy_(torch.from_numpy(initial[f"b{k}"].astype(np.float32)))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    X, y = torch.from_numpy(X_train), torch.from_numpy(y_train)
    # The order train_mlp uses: np.random.default_rng(seed).permutation(n) at the start of the epoch.
    order = torch.from_numpy(np.random.default_rng(SEED).permutation(len(X_train)))
    start = time.perf_counter()
    for begin in range(0, len(X), BATCH_SIZE):
        batch = order[begin:begin + BATCH_SIZE]
        loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(X_test)).argmax(dim=1) == torch.from_numpy(y_test)).float().mean()
    return time.perf_counter() - start, float(accuracy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per implementation (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both NumPy's BLAS and PyTorch (default: their defaults)")
    args = parser.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(limits=args.threads, user_api="blas")
    data = load_data()
    solution = numpy_reference()
    blas_threads = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    print(f"MLP {'-'.join(map(str, LAYER_SIZES))}, batch {BATCH_SIZE}, one epoch of {len(data[0])} Fashion-MNIST "
          f"images, float32, CPU; NumPy BLAS threads {blas_threads}, PyTorch threads {torch.get_num_threads()}")

    run_numpy(solution, data)   # warm-up: first touches of memory, BLAS thread start-up
    run_torch(solution, data)
    results = {"NumPy": [], "PyTorch": []}
    for _ in range(args.repeats):   # interleaved, so that a change of machine load affects both alike
        results["NumPy"].append(run_numpy(solution, data))
        results["PyTorch"].append(run_torch(solution, data))
    median = {name: statistics.median(t for t, _ in runs) for name, runs in results.items()}
    for name, runs in results.items():
        print(f"{name:8s} {median[name]:6.2f} s per epoch (runs: {', '.join(f'{t:.2f}' for t, _ in runs)}), "
              f"test accuracy {runs[-1][1]:.4f}")
    ratio = median["NumPy"] / median["PyTorch"]
    verdict = "within" if ratio <= TARGET_RATIO else "above"
    print(f"time ratio NumPy/PyTorch: {ratio:.2f} ({verdict} the target of {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
