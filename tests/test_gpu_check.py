"""bench/gpu_check.py, tested on the CPU with two tiny notebooks (a GPU machine runs it on the real notebooks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
from autograder.heldout import STAND_IN_SIZE  # noqa: E402


def graded(source: str, grade_id: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 1,
                                 "schema_version": 3, "solution": False, "task": False}
    return cell


def write(path: Path, cells) -> Path:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_default_notebooks_are_the_torch_chapters_and_the_pytorch_solutions():
    names = [p.relative_to(ROOT).as_posix() for p in gpu_check.default_notebooks()]
    assert {"book/08-pytorch.ipynb", "book/09-cnn.ipynb", "book/10-practical-tricks.ipynb",
            "solutions/05-pytorch/pytorch.ipynb", "solutions/06-cnn/cnn.ipynb",
            "solutions/09-debugging/debugging.ipynb", "solutions/10-capstone/capstone.ipynb"} <= set(names)
    assert "book/01-ml-recipe.ipynb" not in names   # no torch there


def test_every_assignment_colab_opens_on_a_gpu_is_checked():
    asks_for_gpu = {path.parent.name for path in (ROOT / "exercises").glob("*/*.ipynb")
                    if nbformat.read(path, as_version=4).metadata.get("accelerator") == "GPU"}
    assert asks_for_gpu and asks_for_gpu <= set(gpu_check.ASSIGNMENTS)


@pytest.mark.grading
def test_gpu_check_runs_on_the_cpu_and_reports_each_notebook(tmp_path):
    good = write(tmp_path / "good.ipynb", [
        nbformat.v4.new_code_cell("import torch\nfrom dlcourse.torch_utils import training_budget\n"
                                  "budget = training_budget(10, 500, cpu_epochs=1, cpu_n_train=100)"),
        graded("assert torch.ones(2).sum().item() == 2", "test_sum"),
    ])
    bad = write(tmp_path / "bad.ipynb", [
        nbformat.v4.new_code_cell("import torch"),
        graded("assert False, 'wrong'", "test_wrong"),
        graded("assert True", "test_right"),
    ])
    heldout = write(tmp_path / "heldout.ipynb", [   # the capstone's hidden test reads a held-out set: it gets one
        graded("from dlcourse.heldout import load_heldout\nimages, labels = load_heldout()\n"
               f"assert images.shape == ({STAND_IN_SIZE}, 28, 28) and labels.shape == ({STAND_IN_SIZE},)",
               "test_heldout"),
    ])
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--cpu", "--jobs", "2",
                             str(good), str(bad), str(heldout), "--json", str(out), "--timeout", "120"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "DLCOURSE_DEVICE": "cpu"})
    assert result.returncode == 1, result.stdout + result.stderr          # one notebook failed
    rows = {Path(r["path"]).name: r for r in json.loads(out.read_text())}
    assert list(rows) == ["good.ipynb", "bad.ipynb", "heldout.ipynb"]   # the order given, two run at a time
    assert rows["heldout.ipynb"]["passed"], rows["heldout.ipynb"]["errors"]
    assert rows["good.ipynb"]["passed"] and rows["good.ipynb"]["tests_passed"] == rows["good.ipynb"]["tests"] == 1
    assert rows["good.ipynb"]["device"] == "cpu"
    assert rows["good.ipynb"]["budgets"] == ["CPU detected: training 1 epoch on 100 images; on a GPU this trains "
                                             "10 epochs on all 500 images (set DLCOURSE_FULL_TRAINING=1 to do that "
                                             "here)."]
    assert not rows["bad.ipynb"]["passed"] and "AssertionError: wrong" in rows["bad.ipynb"]["error"]
    assert (rows["bad.ipynb"]["tests_passed"], rows["bad.ipynb"]["tests"]) == (1, 2)
    assert rows["bad.ipynb"]["failed_tests"] == ["test_wrong"]
    assert all(r["seconds"] > 0 for r in rows.values())
    table = result.stdout[result.stdout.index("| notebook |"):]
    assert "| pass | 1/1 | cpu |" in table and "FAIL (cell 1: AssertionError: wrong)" in table


@pytest.mark.grading
def test_without_cuda_it_says_so_and_runs_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: there is nothing to refuse")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), str(tmp_path / "x.ipynb")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "No CUDA GPU on this machine" in result.stdout and "--cpu" in result.stdout


def test_a_missing_heldout_file_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--cpu", "--heldout", str(tmp_path / "missing.npz"), str(tmp_path / "x.ipynb")])
    assert stop.value.code == 2
    assert "missing.npz: no such file" in capsys.readouterr().err
