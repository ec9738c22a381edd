"""The widgets and progress bars work with Colab's ipywidgets 7.7.1 as well as with ipywidgets 8.

Colab ships ipywidgets 7.7.x; pyproject.toml asks for ``ipywidgets>=7.7`` so that installing dlcourse there does not
upgrade the widget library inside a running runtime. The course environment (requirements.txt) has 8. ipywidgets
7.7.1 is installed once, with ``pip install --target``, into ``.venv/ipywidgets-7.7.1`` (``make setup`` does it; so
does the first run of these tests) and put first on ``PYTHONPATH`` of a test process or a kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
COLAB_IPYWIDGETS = "7.7.1"
WIDGETS7 = Path(sys.prefix) / f"ipywidgets-{COLAB_IPYWIDGETS}"
# The same command as the Makefile's: ipywidgets 7 itself and the one dependency the course environment lacks.
INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(WIDGETS7),
           f"ipywidgets=={COLAB_IPYWIDGETS}", "ipython_genutils==0.2.0"]


@pytest.fixture(scope="module")
def widgets7() -> dict[str, str]:
    """Environment variables that make a Python process (or a kernel) import ipywidgets 7.7.1."""
    if not (WIDGETS7 / "ipywidgets").is_dir():
        result = subprocess.run(INSTALL, capture_output=True, text=True)
        assert result.returncode == 0, f"could not install ipywidgets {COLAB_IPYWIDGETS}:\n{result.stderr[-2000:]}"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(WIDGETS7), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("DLCOURSE_STATIC_WIDGETS", None)
    return env


def ipywidgets_version(env: dict[str, str] | None) -> str:
    return subprocess.run([sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_pyproject_accepts_colabs_ipywidgets():
    """Does dlcourse declare ipywidgets>=7.7 (what the code needs), not >=8, which would upgrade Colab's?"""
    import re

    declared = re.findall(r'"(ipywidgets[^"]*)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert [d.replace(" ", "") for d in declared] == ["ipywidgets>=7.7,<9"]


@pytest.mark.book
def test_widget_and_progress_tests_pass_with_ipywidgets_7(widgets7):
    """The widget tests and the progress-bar tests, rerun in a process that imports ipywidgets 7.7.1."""
    assert ipywidgets_version(widgets7) == COLAB_IPYWIDGETS
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_widgets.py",
         "tests/test_nnviz.py", "-k", "widget or static or progress or stepper or slider or choice or states"],
        cwd=ROOT, env=widgets7, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def chapter_widget_notebook() -> nbformat.NotebookNode:
    """Chapter 04's code up to its first interactive figure (NumPy only, a few seconds), then a progress bar and
    the version of ipywidgets the kernel imported."""
    chapter = nbformat.read(ROOT / "book" / "04-gradient-descent.ipynb", as_version=4)
    cells = []
    for cell in chapter.cells:
        if cell.cell_type == "code":
            cells.append(nbformat.v4.new_code_cell(cell.source))
            if "interactive_figure(" in cell.source:
                break
    cells.append(nbformat.v4.new_code_cell(
        "from dlcourse.nnviz import progress\nfor _ in progress(range(3), desc='epochs'):\n    pass"))
    cells.append(nbformat.v4.new_code_cell("import ipywidgets\nprint(ipywidgets.__version__)"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.book
@pytest.mark.parametrize("version", [COLAB_IPYWIDGETS, "8"])
def test_chapter_widget_cell_displays_a_live_widget(version, widgets7):
    """Does a chapter's interactive figure, and a progress bar, display as a live widget (not an error) in a
    kernel with ipywidgets 7.7.1 (Colab) and with ipywidgets 8?"""
    from nbclient import NotebookClient

    nb = chapter_widget_notebook()
    env = widgets7 if version == COLAB_IPYWIDGETS else {k: v for k, v in os.environ.items()
                                                        if k != "DLCOURSE_STATIC_WIDGETS"}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)   # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    *_, figure, bar, printed = nb.cells
    assert printed.outputs[0]["text"].strip().startswith(version)
    for cell in (figure, bar):
        views = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views and views[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"], cell.outputs
        assert not any(o.get("name") == "stderr" or o["output_type"] == "error" for o in cell.outputs), cell.outputs
