"""What one submission may use (:class:`Limits`), and the control group that bounds all its processes together.

:class:`SubmissionCgroup` is a control group of one sandbox slot (cgroup v2, or v1 as root) that holds only the
processes of the submission running in it: memory and number of processes of all of them together. Where none can
be made, the kernel factory (``zygote.py``) sets per-process resource limits instead, and the grader says so
(:meth:`autograder.sandbox.Slot.weaknesses`). Used by :mod:`autograder.sandbox`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# On top of Limits.memory_bytes in the control group: the interpreter pages a kernel copies from its factory,
# its tmpfs files. Each process also gets RLIMIT_DATA = memory_bytes, so one process asking for too much gets a
# MemoryError first; several together are killed by the control group.
CGROUP_MARGIN = 256 * 2**20
# Threads of the kernel itself (ipykernel's), allowed on top of Limits.processes in a control group.
KERNEL_OWN_TASKS = 64


@dataclass
class Limits:
    """Resource limits of one submission (all its processes together where a control group is available).
    Zero means no limit."""

    memory_bytes: int = 4 * 2**30       # per process (RLIMIT_DATA), and of all its processes (cgroup, + margin)
    cpu_seconds: int = 3600             # CPU time of each process
    processes: int = 128                # processes and threads, on top of the kernel's own
    file_bytes: int = 256 * 2**20       # largest file it may write
    tmp_bytes: int = 512 * 2**20        # size of its private /tmp and of /dev/shm (bubblewrap only)
    work_bytes: int = 512 * 2**20       # size of its working folder, a tmpfs (bubblewrap only)
    output_bytes: int = 16 * 2**20      # outputs kept per notebook (errors always kept, cut short)
    message_bytes: int = 512 * 2**20    # all a kernel may send the grader (outputs, replies); past it, it is stopped

    def as_dict(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpu_seconds": self.cpu_seconds,
                "processes": self.processes, "file_bytes": self.file_bytes}



# -- control groups: memory and processes of a submission as a whole -------------------------------------------
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_cgroups() -> dict[str, str]:
    """This process's control groups: {"": v2 path, "memory": v1 path, "pids": v1 path, ...}."""
    found = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        ident, controllers, path = line.split(":", 2)
        if ident == "0" and not controllers:
            found[""] = path
        for name in controllers.split(","):
            if name:
                found[name] = path
    return found


class SubmissionCgroup:
    """A control group of one slot, holding only the processes of the submission running in it.

    cgroup v2 (``memory.max``, ``pids.max``, ``memory.swap.max``) where the grader may create one: as root under
    the hierarchy's root, as an ordinary user under its own cgroup when that is delegated to it (e.g. run by
    ``systemd-run --user --scope -p Delegate=yes``); else cgroup v1 (``memory``, ``pids`` hierarchies) as root.
    :meth:`create` returns None, with the reason in ``SubmissionCgroup.unavailable``, where none can be made.
    """

    unavailable = ""

    def __init__(self, dirs: dict[str, Path], version: int):
        self.dirs, self.version = dirs, version   # {"memory": dir, "pids": dir} (one dir for both in v2)

    @staticmethod
    def _remove_stale(parent: Path) -> None:
        """Remove empty groups left by a grader that was killed (``ag-<pid>-...`` of a process that is gone)."""
        try:
            names = [p.name for p in parent.iterdir() if p.name.startswith("ag-") and p.is_dir()]
        except OSError:
            return
        for name in names:
            pid = name.split("-")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                try:
                    (parent / name).rmdir()
                except OSError:
                    pass

    @classmethod
    def create(cls, name: str, limits: Limits) -> "SubmissionCgroup | None":
        reasons = []
        for make in (cls._v2, cls._v1):
            try:
                group = make(name, reasons)
            except OSError as error:
                reasons.append(f"{make.__name__.strip('_')}: {error}")
                group = None
            if group is not None:
                try:
                    group.set_limits(limits)
                    return group
                except OSError as error:
                    reasons.append(f"{make.__name__.strip('_')} limits: {error}")
                    group.remove()
        cls.unavailable = "; ".join(reasons) or "no cgroup file system"
        return None

    @classmethod
    def _v2(cls, name: str, reasons: list[str]) -> "SubmissionCgroup | None":
        own = _own_cgroups().get("")
        mount = next((m for m in (CGROUP_ROOT, CGROUP_ROOT / "unified") if (m / "cgroup.controllers").exists()), None)
        if own is None or mount is None:
            reasons.append("v2: not mounted")
            return None
        if os.geteuid() == 0:
            parent = mount
        else:   # an ordinary user: only under its own cgroup, if delegated to it
            parent = mount / own.lstrip("/")
            if not os.access(parent / "cgroup.subtree_control", os.W_OK):
                reasons.append(f"v2: {parent} is not delegated to this user")
                return None
        if not {"memory", "pids"} <= set((parent / "cgroup.controllers").read_text().split()):
            reasons.append(f"v2: the memory and pids controllers are not available in {parent}")
            return None
        if os.geteuid() != 0:
            # No process may stay in a cgroup whose controllers are handed to children: the grader moves into
            # a leaf of its own first.
            leaf = parent / "grader"
            leaf.mkdir(exist_ok=True)
            for pid in (parent / "cgroup.procs").read_text().split():
                (leaf / "cgroup.procs").write_text(pid)
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        cls._remove_stale(parent)
        group = parent / name
        group.mkdir(exist_ok=True)
        return cls({"memory": group, "pids": group}, 2)

    @classmethod
    def _v1(cls, name: str, reasons: list[str]) -> "SubmissionCgroup | None":
        own = _own_cgroups()
        dirs = {}
        for controller in ("memory", "pids"):
            mount = CGROUP_ROOT / controller
            v1 = (mount / "cgroup.procs").exists() and not (mount / "cgroup.controllers").exists()
            if controller not in own or not v1:
                reasons.append(f"v1: no {controller} hierarchy")
                for made in dirs.values():
                    made.rmdir()
                return None
            cls._remove_stale(mount / own[controller].lstrip("/"))
            try:
                (mount / own[controller].lstrip("/") / name).mkdir(exist_ok=True)
            except OSError:
                for made in dirs.values():
                    made.rmdir()
                raise
            dirs[controller] = mount / own[controller].lstrip("/") / name
        return cls(dirs, 1)

    def set_limits(self, limits: Limits) -> None:
        memory, pids = self.dirs["memory"], self.dirs["pids"]
        if self.version == 2:
            if limits.memory_bytes:
                (memory / "memory.max").write_text(str(limits.memory_bytes + CGROUP_MARGIN))
                if (memory / "memory.swap.max").exists():
                    (memory / "memory.swap.max").write_text("0")
            if limits.processes:
                (pids / "pids.max").write_text(str(limits.processes + KERNEL_OWN_TASKS))
        else:
            if limits.memory_bytes:
                (memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes + CGROUP_MARGIN))
                try:   # with swap accounting: no swapping out of the limit either
                    (memory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes + CGROUP_MARGIN))
                except OSError:
                    pass
            if limits.processes:
                (pids / "pids.max").write_text(str(limits.processes + KERNEL_OWN_TASKS))

    def add(self, pid: int) -> None:
        for folder in {*self.dirs.values()}:
            (folder / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes the kernel killed in it for lack of memory (so far)."""
        memory = self.dirs["memory"]
        try:
            if self.version == 2:
                text = (memory / "memory.events").read_text()
                return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")), 0)
            text = (memory / "memory.oom_control").read_text()
            return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")), 0)
        except (OSError, ValueError):
            return 0

    def processes(self) -> list[int]:
        found = set()
        for folder in {*self.dirs.values()}:
            try:
                found.update(int(pid) for pid in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def empty(self, timeout: float = 10) -> bool:
        """Kill whatever is left in it and wait until it holds no process (a fork bomb's last children are still
        exiting when the factory has reaped): the next kernel must not start with its processes counted."""
        import signal
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = self.processes()
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        for folder in {*self.dirs.values()}:
            try:
                folder.rmdir()
            except OSError:
                pass
