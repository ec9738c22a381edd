"""Device bugs found without a GPU: dlcourse.simulated_gpu, the training helpers and the torch chapters under it.

On a CPU a model left behind while its batches move, or an optimizer whose state stays on the CPU, runs fine; on
Colab's GPU it crashes. These tests run the helpers and chapters 07 and 09 on a GPU simulated on the CPU
(dlcourse.simulated_gpu), where such code raises the error CUDA raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.simulated_gpu import on_simulated_gpu, simulated_gpu
from dlcourse.torch_utils import fit, load_checkpoint, make_loader, predict, save_checkpoint, three_blobs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402

MIXED = "Expected all tensors to be on the same device"


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 3))


def blob_loader():
    X, y = three_blobs(64)
    return make_loader(X, y.numpy(), batch_size=16, shuffle=True)


def train_step(model, optimizer, device):
    X, y = three_blobs(16, seed=1)
    loss = F.cross_entropy(model(X.to(device)), y.to(device))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# ---------------------------------------------------------------------------------------------------------------
# The simulation itself: it must reject what CUDA rejects, and accept what CUDA accepts.


def test_a_model_left_on_the_cpu_while_batches_move_raises():
    with simulated_gpu():
        model = small_model()
        with pytest.raises(RuntimeError, match=MIXED):
            model(torch.randn(4, 2).to("cuda"))


def test_optimizer_state_left_on_the_cpu_raises_at_the_first_step(tmp_path):
    """The 07 bug at the level of PyTorch: load the optimizer's state, then move the model."""
    with simulated_gpu():
        model = small_model().to("cuda")
        optimizer = torch.optim.Adam(model.parameters())
        train_step(model, optimizer, "cuda")
        state = optimizer.state_dict()
        fresh = small_model()
        fresh_optimizer = torch.optim.Adam(fresh.parameters())
        fresh_optimizer.load_state_dict(state)        # the state goes to the parameters' device: the CPU
        fresh.to("cuda")
        with pytest.raises(RuntimeError, match=MIXED):
            train_step(fresh, fresh_optimizer, "cuda")


def test_a_correct_training_loop_runs_and_reports_the_gpu():
    original = torch.cuda.is_available, torch.load
    with simulated_gpu():
        assert torch.cuda.is_available()
        model = small_model().to("cuda")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = [train_step(model, optimizer, "cuda") for _ in range(3)]
        parameter = next(model.parameters())
        assert parameter.device == torch.device("cuda", 0) and parameter.is_cuda
        assert parameter.grad.device.type == "cuda"
        assert all(on_simulated_gpu(v) for s in optimizer.state.values() for v in s.values())
        with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
            parameter.detach().numpy()
        assert parameter.detach().cpu().numpy().shape == (16, 2)
        assert not on_simulated_gpu(parameter.cpu())
        created = torch.zeros(3, device="cuda")
        assert created.device.type == "cuda" and nn.Linear(2, 2, device="cuda").weight.is_cuda
    assert losses[-1] < losses[0]
    assert (torch.cuda.is_available, torch.load) == original              # the patches are undone


def test_training_on_the_cpu_while_a_gpu_is_present_raises():
    with simulated_gpu():
        model = nn.Linear(784, 256)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.randn(2, 784)).sum().backward()     # a forward (and backward) pass on the CPU is fine
        with pytest.raises(RuntimeError, match="on the CPU while a GPU is available"):
            optimizer.step()
        small = nn.Linear(3, 2)                          # so is a small demonstration
        small(torch.randn(2, 3)).sum().backward()
        torch.optim.SGD(small.parameters(), lr=0.1).step()
    optimizer.step()                                     # the check ends with the simulation


# ---------------------------------------------------------------------------------------------------------------
# The training helpers, whatever the order of calls.


@pytest.mark.parametrize("order", ["model on the CPU, load, fit", "model moved, load, fit",
                                   "load onto the CPU, fit on the GPU"])
def test_checkpoint_then_fit_keeps_model_and_optimizer_on_one_device(tmp_path, order):
    with simulated_gpu():
        model = small_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        history = fit(model, blob_loader(), optimizer, epochs=1, device="cuda", show_progress=False)
        path = save_checkpoint(tmp_path / "run.pt", model, optimizer, history=history.as_dict())

        resumed = small_model()
        resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
        if order == "model moved, load, fit":
            resumed.to("cuda")
        load_device = "cpu" if order.startswith("load onto the CPU") else "cuda"
        load_checkpoint(path, resumed, resumed_optimizer, device=load_device)
        if load_device == "cuda":
            assert all(p.is_cuda for p in resumed.parameters())
            assert all(v.is_cuda for s in resumed_optimizer.state.values() for k, v in s.items() if k != "step")
        history = fit(resumed, blob_loader(), resumed_optimizer, epochs=1, device="cuda", show_progress=False)
        assert all(v.is_cuda for s in resumed_optimizer.state.values() for k, v in s.items() if k != "step")
        assert predict(resumed, blob_loader(), "cuda").shape == (64,)
    assert history.epochs == 1


# ---------------------------------------------------------------------------------------------------------------
# The torch chapters, executed on the simulated GPU.

# Every training loader yields 2 batches per epoch: a device bug shows at the first step, and the two chapters
# then run in about 20 s of CPU time instead of minutes (evaluation loaders are left whole).
CHAPTER_PRELUDE = gpu_check.simulation_prelude(simulate=True, max_train_batches=2)


@pytest.mark.book
@pytest.mark.parametrize("chapter", ["08-pytorch", "10-practical-tricks"])
def test_torch_chapter_runs_on_the_simulated_gpu(chapter):
    result = gpu_check.run_notebook(ROOT / "book" / f"{chapter}.ipynb", prelude=CHAPTER_PRELUDE, timeout=600)
    assert result.passed, f"{chapter} fails on a (simulated) GPU: " + "; ".join(result.errors or [result.error])
    assert result.device == "cuda" and "Simulated GPU" in result.device_name
    assert any(b.startswith("GPU detected") for b in result.budgets), result.budgets
