"""Sandboxed Jupyter kernels for grading untrusted submissions.

A :class:`Slot` is one long-lived sandbox that runs one submission at a time. Inside it, a kernel factory
(``autograder/zygote.py``) has imported the assignment's heavy modules once and forks a fresh kernel for every
submission. With bubblewrap (``bwrap``) the sandbox has:

- its own mount namespace: read-only system folders, Python and ``dlcourse``; a writable working folder that
  holds only the submission's shipped files; a private ``/tmp``. ``solutions/``, the gradebook, other students'
  files and the rest of the home folders do not exist in it;
- no network (its own network namespace with only a loopback device): the grader talks to the kernel over
  Unix sockets (ZeroMQ ``ipc`` transport) in the slot's folder;
- its own PID namespace: after a submission every process it left behind is killed; bubblewrap dies with the
  grader;
- a scrubbed environment (no variable of the instructor's session reaches the kernel);
- per-kernel limits: address space, CPU time, number of processes (a fork bomb stops there), file size; when
  the grader runs as root, kernels run under an unprivileged user id of their own (one per slot).

Without bubblewrap (``isolation="none"`` or not installed) kernels still get the limits, a scrubbed environment
and a private working folder, and :func:`isolation_warning` says what is not isolated.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import write_connection_file

ZYGOTE = Path(__file__).with_name("zygote.py")
# Where a slot's folder appears inside its sandbox (the kernel sees /sandbox/work as its working folder).
SANDBOX_DIR = "/sandbox"
# Unprivileged user ids of the kernels when grading as root: 2,000,000 and up, one per slot and run.
KERNEL_UID_BASE = 2_000_000


@dataclass
class Limits:
    """Resource limits of one kernel. Zero means no limit."""

    memory_bytes: int = 4 * 2**30       # address space on top of what the preloaded libraries map
    cpu_seconds: int = 3600             # CPU time of the kernel process
    processes: int = 128                # processes and threads of the kernel's user, on top of its own
    file_bytes: int = 256 * 2**20       # largest file it may write
    tmp_bytes: int = 512 * 2**20        # size of its private /tmp (bubblewrap only)

    def as_dict(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpu_seconds": self.cpu_seconds,
                "processes": self.processes, "file_bytes": self.file_bytes}


@dataclass
class KernelEnd:
    """How a kernel ended, as its parent (the factory) saw it."""

    exit: int | None = None
    signal: int | None = None

    def describe(self) -> str:
        if self.signal is not None:
            import signal as signals

            name = signals.Signals(self.signal).name if self.signal in signals.Signals._value2member_map_ else str(self.signal)
            hint = {"SIGKILL": "out of memory or killed", "SIGXCPU": "CPU time limit reached",
                    "SIGSEGV": "a crash in native code", "SIGABRT": "aborted"}.get(name, "")
            return f"killed by {name}" + (f" ({hint})" if hint else "")
        if self.exit is not None:
            return f"exited with code {self.exit} (os._exit or sys.exit in the code?)"
        return "ended"


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
    """The bubblewrap command line of one slot, up to (not including) the program to run."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise FileNotFoundError("bwrap")
    args = [bwrap, "--die-with-parent", "--new-session",
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "grader"]
    if as_root:
        # The factory stays root (it must fork kernels and drop them to the slot's user id, then kill what
        # they leave); bubblewrap drops every other capability.
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
             "--bind", str(slot_dir), SANDBOX_DIR,
             "--chdir", work, "--clearenv"]
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
        (slot / "work").mkdir()
        _write_identity(slot, os.getuid())
        try:
            command = bwrap_command(slot, f"{SANDBOX_DIR}/work", kernel_environment(f"{SANDBOX_DIR}/work"), Limits(),
                                    as_root=os.geteuid() == 0)
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
            "grading user can read (solutions/, the gradebook, other submissions), use the network and leave "
            "processes behind. Install bubblewrap (apt-get install bubblewrap) to isolate it.")
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


class SlotKernelClient(AsyncKernelClient):
    """A kernel client whose liveness check asks the slot (the kernel's parent) instead of a KernelManager."""

    slot: "Slot | None" = None

    async def _async_is_alive(self) -> bool:
        return self.slot is not None and self.slot.kernel_alive()

    is_alive = _async_is_alive


class SlotKernelManager:
    """The few KernelManager methods nbclient calls on a kernel it did not start."""

    def __init__(self, slot: "Slot"):
        self.slot = slot

    @property
    def has_kernel(self) -> bool:
        return self.slot.kernel_pid is not None

    async def interrupt_kernel(self) -> None:
        self.slot.signal_kernel(2)   # SIGINT to the kernel's process group, as ipykernel does itself

    async def is_alive(self) -> bool:
        return self.slot.kernel_alive()


@dataclass
class Slot:
    """One sandbox with its kernel factory; runs one kernel at a time.

    Args:
        index: the slot's number (its user id when grading as root).
        root: a private temporary folder holding every slot's folder.
        preload: modules the factory imports once for all kernels.
        shipped: files of the assignment copied into the working folder of every submission.
        sandboxed: use bubblewrap.
    """

    index: int
    root: Path
    limits: Limits = field(default_factory=Limits)
    preload: tuple[str, ...] = ()
    shipped: dict[str, Path] = field(default_factory=dict)
    sandboxed: bool = True
    process: subprocess.Popen | None = None
    kernel_pid: int | None = None
    kernel_end: KernelEnd | None = None
    ready_info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.dir = self.root / f"s{self.index}"
        self.work = self.dir / "work"
        self.ipc = self.dir / "ipc"
        self.as_root = os.geteuid() == 0
        # Unique per slot and per grading run: RLIMIT_NPROC counts per user id across the whole machine. Without
        # a sandbox, only if that user can reach the interpreter (not when Python lives under /root).
        drop = self.as_root and (self.sandboxed or _others_can_read(_python_paths()))
        self.kernel_uid = KERNEL_UID_BASE + (os.getpid() % 100_000) * 100 + self.index if drop else None
        self._lock = threading.Lock()
        self._kernels = 0

    # -- the factory ---------------------------------------------------------------------------------------
    def start(self, timeout: float = 300) -> None:
        """Create the slot's folders and start its kernel factory; wait until it has imported the preloads."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the kernel factory without waiting for it.

        Call it from a thread that outlives the slot: bubblewrap's ``--die-with-parent`` follows the thread
        that started it.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.work, self.ipc):
            folder.mkdir(exist_ok=True)
        uid = self.kernel_uid if self.kernel_uid is not None else os.getuid()
        _write_identity(self.dir, uid)
        if self.kernel_uid is not None:
            os.chmod(self.dir, 0o755)
            for folder in (self.work, self.ipc):
                os.chown(folder, self.kernel_uid, self.kernel_uid)
                os.chmod(folder, 0o700)
        env = kernel_environment(self.inside(self.work))
        program = [sys.executable, "-c", ZYGOTE.read_text(encoding="utf-8")]
        if self.sandboxed:
            command = [*bwrap_command(self.dir, self.inside(self.work), env, self.limits, self.as_root), *program]
            popen_env = None
        else:
            command, popen_env = program, env
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=open(self.dir / "factory.log", "ab"), env=popen_env,
                                        cwd=self.work, text=True, bufsize=1)
        config = {"preload": list(self.preload), "kernel_uid": self.kernel_uid, "limits": self.limits.as_dict(),
                  "pid_namespace": self.sandboxed, "wipe": ["/tmp", "/dev/shm"] if self.sandboxed else []}
        self.process.stdin.write(json.dumps(config) + "\n")
        self.process.stdin.flush()

    def wait_ready(self, timeout: float = 300) -> None:
        self.ready_info = self._request(None, timeout=timeout)
        if self.ready_info.get("threads", 1) != 1:
            raise SandboxError(f"a preloaded module started threads in the kernel factory, which then cannot "
                               f"fork kernels safely: {self.ready_info}")
        if not self.ready_info.get("ready"):
            raise SandboxError(f"the kernel factory of slot {self.index} did not start: {self.ready_info}")

    def inside(self, path: Path) -> str:
        """Where a path of the slot's folder appears to the processes in the sandbox."""
        if not self.sandboxed:
            return str(path)
        return SANDBOX_DIR + "/" + path.relative_to(self.dir).as_posix()

    def _request(self, message: dict | None, timeout: float = 60) -> dict:
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                raise SandboxError(f"the kernel factory of slot {self.index} is not running "
                                   f"(see {self.dir / 'factory.log'})")
            if message is not None:   # None: only read (the factory's first line)
                self.process.stdin.write(json.dumps(message) + "\n")
                self.process.stdin.flush()
            # One request, one reply line: nothing else can be waiting in the pipe's read buffer.
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            line = self.process.stdout.readline() if ready else ""
            if not line:
                log = (self.dir / "factory.log").read_text(errors="replace")[-2000:]
                raise SandboxError(f"the kernel factory of slot {self.index} did not answer {(message or {}).get('op', 'ready')!r}:"
                                   f"\n{log}")
            return json.loads(line)

    def close(self) -> None:
        """Stop the factory (and with it every process in the sandbox) and remove the slot's folder."""
        if self.process is not None and self.process.poll() is None:
            try:
                self._request({"op": "exit"}, timeout=5)
                self.process.wait(timeout=5)
            except (SandboxError, OSError, ValueError, subprocess.TimeoutExpired):
                self.process.kill()   # bubblewrap takes the whole sandbox with it
                self.process.wait()
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- one kernel per submission --------------------------------------------------------------------------
    def _reset_work(self) -> None:
        for entry in list(self.work.iterdir()) + list(self.ipc.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        for relative, source in self.shipped.items():
            target = self.work / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            if self.kernel_uid is not None:
                os.chown(target, self.kernel_uid, self.kernel_uid)

    async def start_kernel(self, startup_timeout: float = 120) -> tuple[SlotKernelClient, SlotKernelManager]:
        """Fork a fresh kernel in an emptied working folder; return a connected client."""
        self._reset_work()
        self._kernels += 1
        connection_file = self.ipc / f"kernel-{self._kernels}.json"
        ports = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "hb_port": 4, "control_port": 5}
        key = os.urandom(32).hex().encode()
        # The kernel binds its sockets at the sandbox's view of the ipc folder; we connect to the same files.
        write_connection_file(str(connection_file), transport="ipc", ip=self.inside(self.ipc / "k"), key=key,
                              **ports)
        info = {**ports, "transport": "ipc", "ip": str(self.ipc / "k"), "key": key,
                "signature_scheme": "hmac-sha256"}
        if self.kernel_uid is not None:
            os.chown(connection_file, self.kernel_uid, self.kernel_uid)
        reply = self._request({"op": "spawn", "connection_file": self.inside(connection_file),
                               "cwd": self.inside(self.work), "log": self.inside(self.dir / "kernel.log")})
        self.kernel_pid, self.kernel_end = reply["pid"], None
        client = SlotKernelClient()
        client.load_connection_info(info)
        client.slot = self
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=startup_timeout)
        except RuntimeError as error:
            client.stop_channels()
            raise SandboxError(f"the kernel did not start: {error}; {self.kernel_log()}") from None
        client.allow_stdin = False
        return client, SlotKernelManager(self)

    def kernel_log(self) -> str:
        path = self.dir / "kernel.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kernel_alive(self) -> bool:
        if self.kernel_pid is None:
            return False
        if self.kernel_end is not None:
            return False
        try:
            status = self._request({"op": "poll", "pid": self.kernel_pid})
        except SandboxError:   # the whole sandbox is gone (closed on Ctrl-C, or killed): so is the kernel
            self.kernel_end = KernelEnd(signal=9)
            return False
        if status.get("alive"):
            return True
        self.kernel_end = KernelEnd(status.get("exit"), status.get("signal"))
        return False

    def signal_kernel(self, signum: int) -> None:
        if self.kernel_pid is not None:
            self._request({"op": "signal", "pid": self.kernel_pid, "signal": signum})

    def finish_kernel(self) -> KernelEnd | None:
        """Kill the kernel and everything it started; empty the working folder. Returns how it had ended."""
        if self.kernel_pid is not None and self.kernel_end is None:
            self.kernel_alive()
        end = self.kernel_end
        self._request({"op": "reap"})
        self.kernel_pid = None
        self._reset_work()
        return end


class SlotPool:
    """``workers`` slots; :meth:`acquire` / :meth:`release` hand them to worker threads.

    The factories are started at once, from the calling thread (their sandboxes live as long as it does), and
    import their preloads in the background: :meth:`acquire` waits until a slot is ready, so the caller can
    prepare the gradebook meanwhile.
    """

    def __init__(self, workers: int, limits: Limits, preload: tuple[str, ...], shipped: dict[str, Path],
                 sandboxed: bool):
        import queue

        self.root = Path(tempfile.mkdtemp(prefix="ag-"))   # short: Unix socket paths are limited to 107 bytes
        os.chmod(self.root, 0o755)
        self.slots = [Slot(i, self.root, limits, preload, shipped, sandboxed) for i in range(workers)]
        self._free: "queue.Queue[Slot | BaseException]" = queue.Queue()
        try:
            for slot in self.slots:
                slot.launch()
        except BaseException:
            self.close()
            raise
        self._waiter = threading.Thread(target=self._wait_ready, daemon=True)
        self._waiter.start()

    def _wait_ready(self) -> None:
        for slot in self.slots:
            try:
                slot.wait_ready()
                self._free.put(slot)
            except BaseException as error:   # handed to the worker that asks for this slot
                self._free.put(error)

    def acquire(self) -> Slot:
        slot = self._free.get()
        if isinstance(slot, BaseException):
            raise slot
        return slot

    def release(self, slot: Slot) -> None:
        self._free.put(slot)

    def close(self) -> None:
        threads = [threading.Thread(target=slot.close) for slot in self.slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlotPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
