"""How a sandbox slot's kernel factory is kept from the host: the bubblewrap command line, what this system allows,
and the strategy chosen once for a batch.

- The command line (:func:`bwrap_command`, pure) and the scrubbed environment (:func:`kernel_environment`) of the
  sandbox that :mod:`autograder.sandbox` describes: read-only system folders, Python and ``dlcourse``; tmpfs
  working folder, ``/tmp`` and ``/dev/shm``; no network; its own PID, IPC and UTS namespaces.
- The probes: whether bubblewrap works here (:func:`bubblewrap_works`), whether a kernel's processes can be
  capped (:func:`processes_can_be_limited`), and what is not isolated without it (:func:`isolation_warning`).
- The strategy (:class:`Isolation`): :data:`BUBBLEWRAP`, or :data:`PLAIN` (the factory as a plain subprocess where
  bubblewrap is not available or ``--isolation none``), chosen by :func:`choose_isolation` and given to the pool
  and its slots.
- Removing what a kernel could have touched without following its links (:func:`remove_tree`,
  :func:`empty_folder`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.limits import Limits

if TYPE_CHECKING:
    from autograder.sandbox import Slot

# Where a slot's folders appear inside its sandbox (the kernel sees /sandbox/work as its working folder).
SANDBOX_DIR = "/sandbox"
WORK = f"{SANDBOX_DIR}/work"         # a tmpfs of Limits.work_bytes, emptied by the factory after each kernel
IPC = f"{SANDBOX_DIR}/ipc"           # the only host folder bound writable: one fresh subfolder per kernel
SHIPPED = f"{SANDBOX_DIR}/shipped"   # the assignment's shipped files, read-only, copied into WORK per kernel
LOG = f"{SANDBOX_DIR}/log"           # the kernel's stdout/stderr (a small tmpfs the factory reads back)


# -- removing what a kernel could have touched ------------------------------------------------------------------
def remove_tree(path: Path) -> None:
    """Remove ``path`` (a folder or a file) without following any symbolic link in it or at it.

    ``shutil.rmtree`` on Linux walks with directory file descriptors (``openat`` with ``O_NOFOLLOW``): a link
    planted by a kernel is unlinked, never entered, even if it is swapped in while the walk runs."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    import stat

    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    if not shutil.rmtree.avoids_symlink_attacks:   # not on Linux: refuse rather than risk following a link
        raise SandboxError(f"cannot remove {path} safely on this system (no fd-based rmtree)")
    shutil.rmtree(path, ignore_errors=True)


def empty_folder(path: Path) -> None:
    """Remove everything inside ``path`` (kept itself) without following symbolic links."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in os.listdir(fd):
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            import stat

            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
            else:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
    finally:
        os.close(fd)


# -- the sandbox ---------------------------------------------------------------------------------------------
def _system_binds() -> list[str]:
    """Read-only views of the system folders a Python interpreter needs."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                "/etc/localtime", "/etc/nsswitch.conf"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


def _python_paths() -> set[Path]:
    """The interpreter, the virtual environment and the course's helper package."""
    import dlcourse

    return {Path(sys.base_prefix).resolve(), Path(sys.prefix), Path(sys.prefix).resolve(),
            Path(dlcourse.__file__).resolve().parent}


def _others_can_read(paths: set[Path]) -> bool:
    """Whether any user can reach these folders (every folder on the way is searchable by others)."""
    for path in paths:
        for folder in [path, *path.parents]:
            if not os.stat(folder).st_mode & 0o001:
                return False
    return True


def _python_binds() -> list[str]:
    """Read-only views of the interpreter, the virtual environment and the course's helper package."""
    args = []
    for path in sorted(_python_paths(), key=lambda p: len(p.parts)):
        if str(path).startswith("/usr/") or not path.exists():
            continue
        args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_command(slot_dir: Path, work: str, env: dict[str, str], limits: Limits, as_root: bool) -> list[str]:
    """The bubblewrap command line of one slot, up to (not including) the program to run.

    Of the slot's folder only ``ipc`` (writable, the kernels' sockets), ``shipped`` and ``etc/passwd``,
    ``etc/group`` (read-only) are bound; its logs stay outside."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise FileNotFoundError("bwrap")
    args = [bwrap, "--die-with-parent", "--new-session",
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "grader", "--cap-drop", "ALL"]
    if as_root:
        # The factory forks kernels and drops them to the slot's user id, cleans up as that user and kills
        # what they leave: setuid, setgid and kill, nothing else.
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_KILL"]
    else:
        args += ["--unshare-user"]
    # The private /tmp first: a virtual environment under /tmp (a CI checkout) is bound on top of it, not hidden.
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm"]
    binds = _system_binds() + _python_binds()
    # bubblewrap creates missing parent folders of a bind as root-only (0700): the kernel's user could not
    # reach the interpreter behind /root/... Create them readable first.
    targets = [Path(binds[i + 2]) for i, arg in enumerate(binds) if arg == "--ro-bind"]
    parents = sorted({p for t in targets for p in t.parents} - set(targets) - {Path("/"), Path("/tmp"), Path("/dev")},
                     key=lambda p: len(p.parts))
    for parent in parents:
        if not any(parent == t or t in parent.parents for t in targets):
            args += ["--perms", "0755", "--dir", str(parent)]
    args += binds
    args += ["--ro-bind", str(slot_dir / "etc" / "passwd"), "/etc/passwd",
             "--ro-bind", str(slot_dir / "etc" / "group"), "/etc/group",
             "--perms", "0755", "--dir", SANDBOX_DIR,
             "--perms", "1777", "--size", str(limits.work_bytes), "--tmpfs", WORK,
             "--perms", "0700", "--size", str(16 * 2**20), "--tmpfs", LOG]
    if (slot_dir / "ipc").is_dir():
        args += ["--bind", str(slot_dir / "ipc"), IPC]
    if (slot_dir / "shipped").is_dir():
        args += ["--ro-bind", str(slot_dir / "shipped"), SHIPPED]
    # The sandbox's root (a tmpfs holding /etc, /sandbox...) read-only: nothing written there could outlive a
    # kernel. Only the tmpfs mounts and the ipc folder stay writable.
    args += ["--remount-ro", "/", "--chdir", work, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def kernel_environment(home: str) -> dict[str, str]:
    """The scrubbed environment of the factory and its kernels."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "IPYTHONDIR": "/tmp/ipython",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # One thread per kernel: the grader runs one kernel per core.
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "NBGRADER_EXECUTION": "autograde",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


@lru_cache(maxsize=None)
def bubblewrap_works() -> bool:
    """Whether bubblewrap can start a sandbox here (installed, and namespaces allowed)."""
    if not shutil.which("bwrap"):
        return False
    with tempfile.TemporaryDirectory(prefix="ag-probe-") as tmp:
        slot = Path(tmp)
        os.chmod(slot, 0o755)
        _write_identity(slot, os.getuid())
        try:
            command = bwrap_command(slot, WORK, kernel_environment(WORK), Limits(), as_root=os.geteuid() == 0)
            result = subprocess.run([*command, sys.executable, "-c", "import socket; socket.socket()"],
                                    capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


def processes_can_be_limited(sandboxed: bool) -> bool:
    """Whether a kernel's number of processes can be capped: RLIMIT_NPROC does not apply to root, and without
    a sandbox a root grader can only drop kernels to another user if that user can reach Python."""
    return sandboxed or os.geteuid() != 0 or _others_can_read(_python_paths())


def isolation_warning() -> str:
    """What is not isolated when grading without bubblewrap."""
    text = ("bubblewrap (bwrap) is not available or cannot create namespaces here: student code runs with "
            "resource limits, a scrubbed environment and its own working folder, but it CAN read files the "
            "grading user can read (solutions/, the gradebook, other submissions), write or delete them, use "
            "the network and leave processes behind. Install bubblewrap (apt-get install bubblewrap) to isolate it.")
    if not processes_can_be_limited(False):
        text += (" Grading as root with Python in a folder other users cannot read: kernels run as root, so "
                 "the limit on processes does not apply either (a fork bomb is not stopped).")
    return text


def _write_identity(slot_dir: Path, uid: int) -> None:
    """Minimal /etc/passwd and /etc/group for the sandbox (some libraries look the user up)."""
    etc = slot_dir / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(f"grader:x:0:0::/tmp:/bin/false\nstudent:x:{uid}:{uid}::/tmp:/bin/false\n")
    (etc / "group").write_text(f"grader:x:0:\nstudent:x:{uid}:\n")


class SandboxError(RuntimeError):
    """The sandbox or its kernel factory could not be started or stopped responding."""


# -- isolation: how a slot's kernel factory is kept from the host ----------------------------------------------
def _host_pid(root: int, inner: int) -> int | None:
    """The host's pid of the descendant of ``root`` whose pid in its innermost PID namespace is ``inner``."""
    parents, inners = {}, {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        parents[int(name)] = int(fields.get("PPid", "0"))
        nspid = fields.get("NSpid", name).split()
        inners[int(name)] = int(nspid[-1])
    for pid, value in inners.items():
        if value != inner:
            continue
        ancestor = parents.get(pid)
        while ancestor:
            if ancestor == root:
                return pid
            ancestor = parents.get(ancestor)
    return None


class Isolation:
    """How a slot's kernel factory and its kernels are kept from the host: a strategy chosen once for a batch
    (:func:`choose_isolation`) and given to the pool and its slots. :data:`BUBBLEWRAP` runs the factory inside
    the sandbox described in the module docstring; :data:`PLAIN` (no bubblewrap) runs it as a plain subprocess
    with limits, a scrubbed environment and a working folder of its own."""

    name = ""
    isolates = False       # whether student code is kept from the host's files, network and processes

    def work_folder(self, slot: "Slot") -> Path:
        """The kernels' working folder, as the grader names it."""
        raise NotImplementedError

    def can_drop_user(self) -> bool:
        """Whether, grading as root, the kernels can run under another user id (that user must reach Python)."""
        raise NotImplementedError

    def factory_command(self, slot: "Slot", program: list[str], env: dict[str, str]) -> tuple[list, dict | None, Path]:
        """(command line, environment for Popen, working folder) that start the slot's kernel factory."""
        raise NotImplementedError

    def factory_config(self, slot: "Slot") -> dict:
        """The factory's settings (``zygote.py``) that depend on the isolation."""
        raise NotImplementedError

    def inside(self, slot: "Slot", path: Path) -> str:
        """Where a path of the slot's folder appears to the factory and its kernels."""
        return str(path)

    def reset_work(self, slot: "Slot") -> None:
        """Empty the working folder between two submissions and put the shipped files back in it."""

    def host_pid(self, slot: "Slot", kernel_pid: int) -> int | None:
        """The host's pid of the kernel whose pid the factory reported."""
        return kernel_pid

    def kernel_log(self, slot: "Slot") -> str:
        """The end of the current kernel's stdout and stderr."""
        raise NotImplementedError

    def weakness(self) -> str | None:
        """What this isolation does not guarantee at all (None: see :meth:`Slot.weaknesses` for the details)."""
        return None


class Bubblewrap(Isolation):
    """The factory in a bubblewrap sandbox (:func:`bwrap_command`); its kernels' folders are tmpfs inside it."""

    name = "bwrap"
    isolates = True

    def work_folder(self, slot: "Slot") -> Path:
        return Path(WORK)

    def can_drop_user(self) -> bool:
        return True

    def factory_command(self, slot, program, env):
        return [*bwrap_command(slot.dir, WORK, env, slot.limits, slot.as_root), *program], None, slot.dir

    def factory_config(self, slot: "Slot") -> dict:
        return {"pid_namespace": True, "isolate_kernels": True, "wipe": [WORK, LOG, "/tmp", "/dev/shm"],
                "shipped": SHIPPED, "kernel_log": f"{LOG}/kernel.log"}

    def inside(self, slot: "Slot", path: Path) -> str:
        if str(path).startswith(SANDBOX_DIR + "/"):
            return str(path)
        return SANDBOX_DIR + "/" + path.relative_to(slot.dir).as_posix()

    def host_pid(self, slot: "Slot", kernel_pid: int) -> int | None:
        return _host_pid(slot.process.pid, kernel_pid)

    def kernel_log(self, slot: "Slot") -> str:
        try:
            return slot._request({"op": "log"}).get("log", "")[-2000:]
        except SandboxError:
            return ""


class PlainProcess(Isolation):
    """The factory as a plain subprocess (no bubblewrap): the working folder is a host folder of the slot (the
    kernel could do anything anyway), emptied by the grader without following links."""

    name = "none"

    def work_folder(self, slot: "Slot") -> Path:
        return slot.dir / "work"

    def can_drop_user(self) -> bool:
        return _others_can_read(_python_paths())

    def factory_command(self, slot, program, env):
        slot.work.mkdir(exist_ok=True)
        return program, env, slot.work

    def factory_config(self, slot: "Slot") -> dict:
        return {"pid_namespace": False, "isolate_kernels": False, "wipe": [], "shipped": None,
                "kernel_log": str(slot.dir / "kernel.log")}

    def reset_work(self, slot: "Slot") -> None:
        empty_folder(slot.work)
        for relative, source in slot.shipped.items():
            target = slot.work / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

    def kernel_log(self, slot: "Slot") -> str:
        path = slot.dir / "kernel.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def weakness(self) -> str | None:
        return isolation_warning()


BUBBLEWRAP, PLAIN = Bubblewrap(), PlainProcess()


def choose_isolation(setting: str) -> Isolation:
    """The isolation of ``--isolation`` (auto, bwrap, none) on this system: bubblewrap where it works (auto,
    bwrap), else the plain process (auto, none); :class:`SandboxError` (why) for bwrap where it does not work."""
    if setting != "none" and bubblewrap_works():
        return BUBBLEWRAP
    if setting == "bwrap":
        raise SandboxError(isolation_warning())
    return PLAIN
