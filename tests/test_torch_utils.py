"""dlcourse.torch_utils (device, CPU budget, loaders, training loop, checkpoints) and its test-cell guards."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from dlcourse import torch_utils
from dlcourse.torch_utils import (
    FASHION_MNIST_MEAN, FASHION_MNIST_STD, History, fit, get_device, image_tensors, load_checkpoint, make_loader,
    predict, save_checkpoint, training_budget,
)
from dlcourse.testing import limited_threads, without_training_helpers


def blobs(n=240, seed=0):
    """Three well separated Gaussian clusters in 2-D: a problem any classifier learns in a few epochs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    return (centres[y] + rng.normal(scale=0.5, size=(n, 2))).astype(np.float32), y


def test_importing_dlcourse_does_not_import_torch():
    """Does `import dlcourse` (and its NumPy-only modules) stay free of PyTorch?"""
    code = ("import sys, dlcourse, dlcourse.data, dlcourse.gradcheck, dlcourse.testing, dlcourse.plotting; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_get_device_follows_cuda_and_the_override(monkeypatch):
    """Is the device cuda exactly when a GPU is available, unless DLCOURSE_DEVICE says otherwise?"""
    monkeypatch.delenv("DLCOURSE_DEVICE", raising=False)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    monkeypatch.setenv("DLCOURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_cpu_budget_is_reduced_and_says_so(monkeypatch, capsys):
    """On a CPU, does the budget shrink to the CPU numbers and state both budgets in the output?"""
    monkeypatch.delenv("DLCOURSE_FULL_TRAINING", raising=False)
    budget = training_budget(10, 60_000, cpu_epochs=1, cpu_n_train=20_000, device=torch.device("cpu"))
    assert (budget.epochs, budget.n_train, budget.reduced) == (1, 20_000, True)
    out = capsys.readouterr().out
    assert out.startswith("CPU detected: training 1 epoch on 20,000 images; on a GPU this trains 10 epochs on "
                          "all 60,000 images")


def test_gpu_or_forced_budget_is_full(monkeypatch, capsys):
    """Does a GPU, or DLCOURSE_FULL_TRAINING=1 on a CPU, get the full budget?"""
    monkeypatch.delenv("DLCOURSE_FULL_TRAINING", raising=False)
    budget = training_budget(3, 50_000, cpu_epochs=1, cpu_n_train=5_000, n_available=55_000,
                             device=torch.device("cuda"))
    assert (budget.epochs, budget.n_train, budget.reduced) == (3, 50_000, False)
    assert capsys.readouterr().out.strip() == "GPU detected: training 3 epochs on 50,000 images."
    monkeypatch.setenv("DLCOURSE_FULL_TRAINING", "1")
    budget = training_budget(3, 50_000, cpu_epochs=1, cpu_n_train=5_000, device=torch.device("cpu"),
                             announce=False)
    assert (budget.epochs, budget.n_train) == (3, 50_000)
    assert "full budget requested" in str(budget)


def test_budget_subset_is_random_reproducible_and_aligned():
    """Is the subset of the requested size, the same for the same seed, with labels kept next to their inputs?"""
    budget = training_budget(2, 100, cpu_epochs=1, cpu_n_train=30, device=torch.device("cpu"), announce=False)
    X = np.arange(100) * 10
    y = np.arange(100)
    Xs, ys = budget.subset(X, y, seed=3)
    assert len(Xs) == 30 and np.array_equal(Xs, ys * 10)
    assert np.array_equal(budget.subset(X, y, seed=3)[0], Xs)
    assert not np.array_equal(Xs, X[:30])


def test_image_tensors_shape_dtype_and_standardisation():
    """Do uint8 images become standardised float32 tensors of shape (N, 1, H, W)?"""
    X = np.array([[[0, 255], [128, 0]]], dtype=np.uint8)
    images = image_tensors(X)
    assert images.shape == (1, 1, 2, 2) and images.dtype == torch.float32
    expected = (np.array([[0, 255], [128, 0]]) / 255 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD
    assert torch.allclose(images[0, 0], torch.tensor(expected, dtype=torch.float32))
    with pytest.raises(ValueError):
        image_tensors(X.astype(np.float32))


def test_standardisation_constants_match_fashion_mnist():
    """Are FASHION_MNIST_MEAN and _STD the statistics of the training pixels (to the digits given)?"""
    from dlcourse.data import load_fashion_mnist

    pixels = load_fashion_mnist().X_train / 255.0
    assert abs(pixels.mean() - FASHION_MNIST_MEAN) < 5e-5
    assert abs(pixels.std() - FASHION_MNIST_STD) < 5e-5


def test_make_loader_batches_cover_the_data_once():
    """Does a loader yield every example once per epoch, in batches of the requested size, shuffled if asked?"""
    X, y = np.arange(10, dtype=np.float32).reshape(10, 1), np.arange(10)
    loader = make_loader(X, y, batch_size=4)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 4, 2] and len(loader) == 3
    assert len(loader.dataset) == 10
    inputs, labels = batches[0]
    assert inputs.dtype == torch.float32 and labels.dtype == torch.int64
    assert torch.equal(torch.cat([labels for _, labels in batches]), torch.arange(10))
    shuffled = make_loader(X, y, batch_size=4, shuffle=True, seed=1)
    first = torch.cat([labels for _, labels in shuffled])
    second = torch.cat([labels for _, labels in shuffled])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    again = torch.cat([labels for _, labels in make_loader(X, y, batch_size=4, shuffle=True, seed=1)])
    assert torch.equal(first, again)
    for inputs, labels in shuffled:
        assert torch.equal(inputs[:, 0].long(), labels)   # inputs stay with their labels
    with pytest.raises(ValueError):
        make_loader(X, y[:5])


def test_fit_learns_and_records_history(capsys):
    """Does fit lower the loss, fill one History entry per epoch and keep stderr silent?"""
    X, y = blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    train, val = make_loader(X[:200], y[:200], batch_size=32, shuffle=True), make_loader(X[200:], y[200:])
    history = fit(model, train, torch.optim.Adam(model.parameters(), lr=0.05), epochs=4, val_loader=val,
                  device="cpu")
    assert history.epochs == 4 and len(history.val_accuracy) == 4 and len(history.lr) == 4
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] > 0.95
    assert (predict(model, val, device="cpu") == y[200:]).mean() > 0.95
    captured = capsys.readouterr()
    assert captured.err == "" and "epoch 4" in captured.out


def test_fit_steps_schedulers():
    """Is the epoch scheduler stepped once per epoch and the batch scheduler once per batch?"""
    X, y = blobs(64)
    model = nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    per_epoch = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    per_batch = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.9 ** step)
    history = fit(model, make_loader(X, y, batch_size=16), optimizer, epochs=2, device="cpu",
                  scheduler=per_epoch, batch_scheduler=per_batch, show_progress=False)
    assert per_batch.last_epoch == 8 and per_epoch.last_epoch == 2
    assert history.lr[-1] == pytest.approx(optimizer.param_groups[0]["lr"])


def test_checkpoint_round_trip_resumes_training(tmp_path):
    """Does a saved model, optimizer and history load back into fresh objects, so training can resume?"""
    X, y = blobs()
    loader = make_loader(X, y, batch_size=32, shuffle=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = fit(model, loader, optimizer, epochs=1, device="cpu", show_progress=False)
    path = save_checkpoint(tmp_path / "run" / "ckpt.pt", model, optimizer, epoch=1, history=history.as_dict())

    restored = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=0.01)
    extra = load_checkpoint(path, restored, restored_optimizer, device="cpu")
    assert extra["epoch"] == 1 and extra["history"]["train_loss"] == history.train_loss
    for a, b in zip(model.state_dict().values(), restored.state_dict().values()):
        assert torch.equal(a, b)
    assert restored_optimizer.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    resumed = fit(restored, loader, restored_optimizer, epochs=1, device="cpu", show_progress=False,
                  history=History(**extra["history"]))
    assert resumed.epochs == 2
    save_checkpoint(tmp_path / "model-only.pt", model)
    with pytest.raises(KeyError):
        load_checkpoint(tmp_path / "model-only.pt", restored, restored_optimizer, device="cpu")


def test_guard_switches_fit_and_predict_off_and_back_on():
    """Inside without_training_helpers, do fit and predict (even imported references) refuse to run?"""
    X, y = blobs(32)
    model, loader = nn.Linear(2, 3), make_loader(X, y)
    with without_training_helpers("write the loop yourself"):
        with pytest.raises(AssertionError, match="write the loop yourself"):
            fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, device="cpu")
        with pytest.raises(AssertionError):
            torch_utils.predict(model, loader, device="cpu")
    assert predict(model, loader, device="cpu").shape == (32,)


def test_limited_threads_restores_the_setting():
    """Is the thread count changed inside the block and restored after it, even on an error?"""
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with limited_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError
    assert torch.get_num_threads() == before
