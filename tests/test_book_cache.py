"""The local execution cache is keyed like CI's (pages.yml): on the helper package and the requirements too, so a
change to dlcourse/ cannot leave a chapter showing outputs of the old helpers (`make book-cache`)."""

from __future__ import annotations

import shutil
import subprocess

from conftest import ROOT


def test_book_cache_is_dropped_when_dlcourse_or_requirements_change(tmp_path):
    for name in ("Makefile", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "dlcourse", tmp_path / "dlcourse", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "_build" / ".jupyter_cache"

    def book_cache() -> bool:
        """Run `make book-cache`; whether the cache survived."""
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["make", "-s", "book-cache"], cwd=tmp_path, check=True, capture_output=True)
        return cache.is_dir()

    assert not book_cache()            # no key yet: a cache of unknown helpers is dropped
    assert book_cache()                # unchanged: kept
    with (tmp_path / "dlcourse" / "data.py").open("a") as handle:
        handle.write("\n# changed\n")
    assert not book_cache()            # a helper changed
    assert book_cache()
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert not book_cache()            # the requirements changed
    (tmp_path / "dlcourse" / "new_helper.py").write_text("x = 1\n")
    assert not book_cache()            # a new helper module
    assert book_cache()
