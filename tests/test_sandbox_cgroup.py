"""Control groups of a submission (autograder.limits.SubmissionCgroup) against a fake cgroup file system.

The machine that runs the suite may offer no cgroup v2 at all (a v1 hierarchy, or no writable one in a
container), so the v2 code paths are exercised here on a temporary folder shaped like one: as root (the group
under the hierarchy's root), as an ordinary user whose cgroup is delegated (the grader moves into a leaf of its
own first), and the fallbacks whose reason the grader prints. The real kernel's behaviour (memory counted for all
of a submission's processes) is tested in tests/test_sandbox_hostile.py where a group can be made.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder import limits
from autograder.limits import CGROUP_MARGIN, KERNEL_OWN_TASKS, Limits, SubmissionCgroup
from autograder.sandbox import Slot

LIMITS = Limits(memory_bytes=2**30, processes=64)


def _v2_folder(folder: Path, controllers: str = "cpu io memory pids", procs: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cgroup.controllers").write_text(controllers + "\n")
    (folder / "cgroup.subtree_control").write_text("")
    (folder / "cgroup.procs").write_text(procs)
    return folder


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake /sys/fs/cgroup: returns a function that sets this process's v2 path and effective user id."""
    root = tmp_path / "cgroup"
    root.mkdir()
    monkeypatch.setattr(limits, "CGROUP_ROOT", root)
    monkeypatch.setattr(SubmissionCgroup, "unavailable", "")

    def configure(own: dict[str, str], euid: int) -> Path:
        monkeypatch.setattr(limits, "_own_cgroups", lambda: dict(own))
        monkeypatch.setattr(limits.os, "geteuid", lambda: euid)
        return root

    return configure


def test_v2_as_root_limits_the_group_at_the_root(fake):
    """As root with cgroup v2: is the group made under the hierarchy's root, memory.max = --memory + the margin,
    pids.max = --processes + the kernel's own threads, the controllers enabled for it, and are a pid added and
    the kernel's OOM kills read back?"""
    root = _v2_folder(fake({"": "/"}, 0))
    stale = root / "ag-999999999-old-s0"   # left by a grader that was killed: its pid is gone
    stale.mkdir()
    live = root / f"ag-{os.getpid()}-other-s0"
    live.mkdir()
    group = SubmissionCgroup.create("ag-1-run-s0", LIMITS)
    assert group is not None and group.version == 2, SubmissionCgroup.unavailable
    assert group.dirs == {"memory": root / "ag-1-run-s0", "pids": root / "ag-1-run-s0"}
    assert (root / "ag-1-run-s0" / "memory.max").read_text() == str(2**30 + CGROUP_MARGIN)
    assert (root / "ag-1-run-s0" / "pids.max").read_text() == str(64 + KERNEL_OWN_TASKS)
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert not stale.exists() and live.exists()
    group.add(4321)
    assert (root / "ag-1-run-s0" / "cgroup.procs").read_text() == "4321"
    assert group.processes() == [4321]
    (root / "ag-1-run-s0" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n")
    assert group.oom_kills() == 2


def test_v2_delegated_to_an_ordinary_user(fake):
    """As an ordinary user whose cgroup is delegated (systemd-run --user --scope -p Delegate=yes): is the group
    made under the grader's own cgroup, after the grader's processes moved into a leaf of their own (no process
    may stay in a group that hands controllers to its children)?"""
    own = "/user.slice/user-1000.slice/run-1.scope"
    root = fake({"": own}, 1000)
    _v2_folder(root, "cpu memory pids")
    parent = _v2_folder(root / own.lstrip("/"), "memory pids", procs="111\n")
    group = SubmissionCgroup.create("ag-1-run-s1", LIMITS)
    assert group is not None and group.version == 2, SubmissionCgroup.unavailable
    assert group.dirs["memory"] == parent / "ag-1-run-s1"
    assert (parent / "grader" / "cgroup.procs").read_text() == "111"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (parent / "ag-1-run-s1" / "memory.max").read_text() == str(2**30 + CGROUP_MARGIN)


def test_without_delegation_the_grader_says_what_is_not_bounded(fake, monkeypatch, tmp_path):
    """As an ordinary user whose cgroup is not delegated, and with no v1 hierarchy: is no group made, and does the
    slot's warning say why and what is then bounded per process only?"""
    own = "/user.slice/user-1000.slice/session-2.scope"
    root = fake({"": own}, 1000)
    _v2_folder(root)
    _v2_folder(root / own.lstrip("/"), "memory pids")
    real_access = os.access
    monkeypatch.setattr(limits.os, "access",
                        lambda path, mode: False if str(path).startswith(str(root)) else real_access(path, mode))
    assert SubmissionCgroup.create("ag-1-run-s2", LIMITS) is None
    reason = SubmissionCgroup.unavailable
    assert "is not delegated to this user" in reason and "v1: no memory hierarchy" in reason, reason
    slot = Slot(0, tmp_path / "slots", LIMITS)   # not started: what it would warn about here
    warnings = slot.weaknesses()
    assert any(line.startswith("no control group could be made (v2: ") and "is not delegated" in line
               and "memory is bounded per process (RLIMIT_DATA)" in line for line in warnings), warnings
    assert any(line.startswith("grading as an ordinary user: kernels run under the grader's own user id")
               for line in warnings), warnings
    assert all("\n" not in line for line in warnings)   # one line each, as grade prints them


def test_v2_without_the_memory_controller_falls_back(fake):
    """cgroup v2 whose root offers no memory or pids controller (a hybrid system's unified hierarchy): no v2
    group, the reason said; cgroup v1's memory and pids hierarchies used instead where present."""
    root = _v2_folder(fake({"": "/", "memory": "/job", "pids": "/"}, 0), controllers="")
    for controller in ("memory", "pids"):
        (root / controller).mkdir()
        (root / controller / "cgroup.procs").write_text("")
    (root / "memory" / "job").mkdir()
    group = SubmissionCgroup.create("ag-1-run-s3", LIMITS)
    assert group is not None and group.version == 1
    assert group.dirs == {"memory": root / "memory" / "job" / "ag-1-run-s3", "pids": root / "pids" / "ag-1-run-s3"}
    assert (root / "memory" / "job" / "ag-1-run-s3" / "memory.limit_in_bytes").read_text() == str(2**30 + CGROUP_MARGIN)
    assert (root / "pids" / "ag-1-run-s3" / "pids.max").read_text() == str(64 + KERNEL_OWN_TASKS)
