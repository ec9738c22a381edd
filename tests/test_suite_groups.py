"""Does pytest-xdist keep a group on one worker with the pytest installed here?

`make test` relies on it (tests/conftest.py): the book and browser tests share one book build, the hub tests one
JupyterHub. When the installed pytest and pytest-xdist stop agreeing on how a group is named (pytest 9.2 and
pytest-xdist 3.8 did), the tests still pass but spread over the workers, and each worker builds the book.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

GROUPED = '''
import os, pytest

@pytest.mark.parametrize("i", range(6))
@pytest.mark.xdist_group("together")
def test_grouped(i):
    with open(os.environ["WORKERS_FILE"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


def test_an_xdist_group_runs_on_one_worker(tmp_path: Path):
    """Six tests of one xdist_group, run with `-n 2 --dist loadgroup` beside six free tests: one worker only?"""
    (tmp_path / "test_grouped.py").write_text(GROUPED, encoding="utf-8")
    workers = tmp_path / "workers.txt"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
                          "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull,
                          str(tmp_path / "test_grouped.py")],
                         cwd=tmp_path, env={**os.environ, "WORKERS_FILE": str(workers)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = workers.read_text(encoding="utf-8").split()
    assert len(seen) == 6
    assert len(set(seen)) == 1, (f"the grouped tests ran on {sorted(set(seen))}: pytest-xdist's --dist loadgroup does "
                                 f"not work with this pytest (see requirements.txt)")
