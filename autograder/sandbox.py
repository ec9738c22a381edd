"""Sandboxed Jupyter kernels for grading untrusted submissions.

A :class:`Slot` is one long-lived sandbox that runs one submission at a time. Inside it, a kernel factory
(``autograder/zygote.py``) has imported the assignment's heavy modules once and forks a fresh kernel for every
submission. With bubblewrap (``bwrap``) the sandbox has:

- its own mount namespace: read-only system folders, Python and ``dlcourse``; a working folder that is a
  size-limited tmpfs (never the host's disk) filled with the assignment's shipped files for each submission; a
  private ``/tmp`` and ``/dev/shm`` (tmpfs, size-limited). ``solutions/``, the gradebook, other students' files,
  the rest of the home folders, the slot's logs and configuration do not exist in it. The only host folder it
  can write is the slot's ``ipc`` folder (the kernel's sockets); the grader gives each kernel a fresh folder
  there under a random name and removes it with :func:`remove_tree`, which never follows a symbolic link;
- no network (its own network namespace with only a loopback device): the grader talks to the kernel over
  Unix sockets (ZeroMQ ``ipc`` transport), through descriptors of the socket files it opened (without following
  links) once the fresh kernel had bound them, so a kernel that swaps them later cannot redirect the grader;
- its own PID and IPC namespaces; the factory keeps no capability it does not need (``--cap-drop ALL``, then as
  root only setuid/setgid/kill); bubblewrap dies with the grader;
- per kernel (see ``zygote.py``): another user id than the factory's when grading as root; where the system
  allows unprivileged user namespaces, its own user, PID and IPC namespaces (it cannot name the factory, and its
  System V IPC dies with it); a seccomp filter refusing new namespaces, mounts, ptrace, keyrings, BPF, io_uring;
- a scrubbed environment (no variable of the instructor's session reaches the kernel);
- limits per submission: memory and processes of all its processes together in a control group of its own
  (:class:`SubmissionCgroup`, cgroup v2 or v1, where the grader may create one), else per-process rlimits;
  CPU time and file size per process; kernel outputs capped in bytes while they are received
  (:class:`OutputBudget`), and all a kernel sends the grader bounded by a relay (:mod:`autograder.relay`).

:func:`Slot.weaknesses` and :func:`isolation_warning` say what is not guaranteed on this system.

The parts: what a submission may use and its control group (:mod:`autograder.limits`); the bubblewrap command
line and the isolation, a strategy chosen once for a batch by :func:`choose_isolation` (:data:`BUBBLEWRAP`, or
:data:`PLAIN`: the kernel factory as a plain subprocess where bubblewrap is not available or ``--isolation none``)
(:mod:`autograder.isolation`); here, the kernel slot (:class:`Slot`, after the adapters nbclient uses) and the
pool of slots (:class:`SlotPool`). The names of those two modules that the grader uses are importable from here.
"""



import json
import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import write_connection_file

from autograder.isolation import (BUBBLEWRAP, IPC, LOG, PLAIN, SANDBOX_DIR, SHIPPED, WORK,  # noqa: F401 (re-exported)
                                  Isolation, SandboxError, _host_pid, _write_identity, bubblewrap_works,
                                  choose_isolation, empty_folder, isolation_warning, kernel_environment,
                                  processes_can_be_limited, remove_tree)
from autograder.limits import CGROUP_MARGIN, KERNEL_OWN_TASKS, Limits, SubmissionCgroup  # noqa: F401 (re-exported)
from autograder.relay import KernelRelay

ZYGOTE = Path(__file__).with_name("zygote.py")
# Unprivileged user ids of the kernels when grading as root: 2,000,000 and up, one per slot and run.
KERNEL_UID_BASE = 2_000_000


@dataclass
class KernelEnd:
    """How a kernel ended, as its parent (the factory) saw it."""

    exit: int | None = None
    signal: int | None = None
    oom: bool = False   # its control group ran out of memory
    flooded: int = 0    # it was stopped for sending the grader more than this many bytes (Limits.message_bytes)

    def reason(self) -> str:
        """How the kernel stopped, as the end of a sentence that starts with "the kernel"."""
        if self.flooded:
            return (f"was stopped after sending the grader more than {self.flooded / 2**20:g} MiB of output and "
                    f"messages (a print in a loop that never ends?)")
        return f"died ({self.describe()})"

    def describe(self) -> str:
        if self.oom:
            return "killed: the submission's processes together reached the memory limit"
        if self.signal is not None:
            import signal as signals

            name = signals.Signals(self.signal).name if self.signal in signals.Signals._value2member_map_ else str(self.signal)
            hint = {"SIGKILL": "out of memory or killed", "SIGXCPU": "CPU time limit reached",
                    "SIGSEGV": "a crash in native code", "SIGABRT": "aborted"}.get(name, "")
            return f"killed by {name}" + (f" ({hint})" if hint else "")
        if self.exit is not None:
            return f"exited with code {self.exit} (os._exit or sys.exit in the code?)"
        return "ended"


class SlotKernelClient(AsyncKernelClient):
    """A kernel client whose liveness check asks the slot (the kernel's parent) instead of a KernelManager."""

    slot: "Slot | None" = None

    async def _async_is_alive(self) -> bool:
        return self.slot is not None and self.slot.kernel_alive()

    is_alive = _async_is_alive


class OutputBudget:
    """A mixin for nbclient's ``NotebookClient`` (nbgrader's ``Execute``): keeps at most ``output_budget`` bytes
    of outputs per notebook while they arrive, then one note saying the rest was dropped.

    Errors are never dropped (a failing test must stay failing): each is kept, its message and traceback cut to
    ``ERROR_BYTES``. An error the kernel reported in its reply but whose output never arrived is added from
    the reply. Each message is still received whole before it is dropped, and ZeroMQ's receiving thread queues
    the next ones while the grader is busy: a 300 MB printout in 10 MB writes raised the grader's peak memory by
    130 to 170 MiB (tests/test_sandbox_hostile.py), never by what was printed. What a kernel sends in all is
    bounded by the relay (:mod:`autograder.relay`, ``Limits.message_bytes``), which stops the kernel.

    Use: ``class SandboxExecute(OutputBudget, Execute)``; set ``client.output_budget`` (``Limits.output_bytes``)."""

    output_budget: int = Limits.output_bytes
    ERROR_BYTES = 8192
    _output_used: int = 0
    _output_noted: bool = False

    @classmethod
    def _short_error(cls, content: dict) -> dict:
        def cut(text):
            text = str(text)
            return text if len(text) <= cls.ERROR_BYTES else text[:cls.ERROR_BYTES] + " [cut]"

        traceback = [cut(line) for line in list(content.get("traceback") or [])[:50]]
        return {"ename": cut(content.get("ename", "Error"))[:200], "evalue": cut(content.get("evalue", "")),
                "traceback": traceback}

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "error" or "ename" in content:
            msg = {**msg, "content": {**content, **self._short_error(content)}}
            return super().output(outs, msg, display_id, cell_index)
        size = sum(len(v) if isinstance(v, (str, bytes)) else len(json.dumps(v))
                   for key, v in content.items() if key in ("text", "data"))
        self._output_used += size
        if self.output_budget and self._output_used > self.output_budget:
            if not self._output_noted:
                from nbformat import NotebookNode

                self._output_noted = True
                outs.append(NotebookNode(output_type="stream", name="stderr",
                                         text=f"[output truncated: this notebook printed more than "
                                              f"{self.output_budget} bytes; the rest was dropped]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        content = (exec_reply or {}).get("content", {})
        if content.get("status") == "error" and not any(o.get("output_type") == "error"
                                                        for o in cell.get("outputs", [])):
            from nbformat import NotebookNode

            cell.setdefault("outputs", []).append(NotebookNode(output_type="error", **self._short_error(content)))
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)


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
        isolation: how the kernel factory is kept from the host (:data:`BUBBLEWRAP`, :data:`PLAIN`).
        cgroup: bound memory and processes per submission with a control group where one can be made.
        kernel_namespaces: give each kernel its own user, PID and IPC namespaces where the system allows it.
    """

    index: int
    root: Path
    limits: Limits = field(default_factory=Limits)
    preload: tuple[str, ...] = ()
    shipped: dict[str, Path] = field(default_factory=dict)
    isolation: Isolation = BUBBLEWRAP
    process: subprocess.Popen | None = None
    kernel_pid: int | None = None
    kernel_end: KernelEnd | None = None
    ready_info: dict = field(default_factory=dict)
    cgroup: bool = True
    kernel_namespaces: bool = True

    def __post_init__(self):
        self.dir = self.root / f"s{self.index}"
        self.ipc = self.dir / "ipc"
        self.work = self.isolation.work_folder(self)
        self.as_root = os.geteuid() == 0
        # Unique per slot and per grading run: RLIMIT_NPROC counts per user id across the whole machine. Without
        # a sandbox, only if that user can reach the interpreter (not when Python lives under /root).
        drop = self.as_root and self.isolation.can_drop_user()
        self.kernel_uid = KERNEL_UID_BASE + (os.getpid() % 100_000) * 100 + self.index if drop else None
        self._lock = threading.Lock()
        self._kernels = 0
        self._kernel_ipc: Path | None = None
        self._group: SubmissionCgroup | None = None
        self._oom_before = 0
        self._restart = False
        self._pinned: list[int] = []       # O_PATH descriptors of the current kernel's socket files
        self._pin_dir: Path | None = None  # the grader's own folder where the relay listens (see _pin_sockets)
        self._relay: KernelRelay | None = None

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
        os.chmod(self.dir, 0o755)
        self.ipc.mkdir(exist_ok=True)
        os.chmod(self.ipc, 0o755 if self.kernel_uid is not None else 0o700)
        shipped = self.dir / "shipped"
        if self.shipped and not shipped.exists():
            for relative, source in self.shipped.items():
                target = shipped / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            for dirpath, _, filenames in os.walk(shipped):
                os.chmod(dirpath, 0o755)
                for name in filenames:
                    os.chmod(os.path.join(dirpath, name), 0o644)
        uid = self.kernel_uid if self.kernel_uid is not None else os.getuid()
        _write_identity(self.dir, uid)
        if self.cgroup and self._group is None and self.limits and (self.limits.memory_bytes or self.limits.processes):
            self._group = SubmissionCgroup.create(f"ag-{os.getpid()}-{self.root.name}-s{self.index}", self.limits)
        env = kernel_environment(self.inside(self.work))
        program = [sys.executable, "-c", ZYGOTE.read_text(encoding="utf-8")]
        command, popen_env, cwd = self.isolation.factory_command(self, program, env)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=open(self.dir / "factory.log", "ab"), env=popen_env,
                                        cwd=cwd, text=True, bufsize=1)
        cgroup = {"memory": bool(self._group and self.limits.memory_bytes),
                  "pids": bool(self._group and self.limits.processes)}
        config = {"preload": list(self.preload), "kernel_uid": self.kernel_uid, "limits": self.limits.as_dict(),
                  "cgroup": cgroup, "kernel_namespaces": self.kernel_namespaces,
                  **self.isolation.factory_config(self)}
        self.process.stdin.write(json.dumps(config) + "\n")
        self.process.stdin.flush()
        self._restart = False

    def wait_ready(self, timeout: float = 300) -> None:
        self.ready_info = self._request(None, timeout=timeout)
        if self.ready_info.get("threads", 1) != 1:
            raise SandboxError(f"a preloaded module started threads in the kernel factory, which then cannot "
                               f"fork kernels safely: {self.ready_info}")
        if not self.ready_info.get("ready"):
            raise SandboxError(f"the kernel factory of slot {self.index} did not start: {self.ready_info}")

    def weaknesses(self) -> list[str]:
        """What this slot does not guarantee here (empty when everything described in the module holds)."""
        found = []
        if self.isolation.weakness():   # no sandbox: that says it all
            return [self.isolation.weakness()]
        if self._group is None:
            found.append("no control group could be made (" + (SubmissionCgroup.unavailable or "disabled") +
                         "): memory is bounded per process (RLIMIT_DATA), not for a submission as a whole, and "
                         "processes per user id (RLIMIT_NPROC)")
        if self.kernel_uid is None:
            found.append("grading as an ordinary user: kernels run under the grader's own user id (mapped in a "
                         "user namespace; another id would need newuidmap and an /etc/subuid range, not used "
                         "here); they can write no host folder but their sockets folder, and only their own PID "
                         "namespace keeps them from signalling the kernel factory")
        if self.ready_info and not self.ready_info.get("namespaces"):
            found.append("unprivileged user namespaces are not allowed inside the sandbox: kernels share the "
                         "slot's PID and IPC namespaces (System V IPC is removed after each submission instead)"
                         + ("; as an ordinary user a kernel can kill the kernel factory (the slot restarts)"
                            if self.kernel_uid is None else ""))
        if self.ready_info and not self.ready_info.get("seccomp"):
            found.append("no seccomp filter for this processor architecture: kernels may call unshare, mount, "
                         "ptrace, keyctl, bpf, io_uring (each still bounded by the namespaces)")
        return found

    def inside(self, path: Path) -> str:
        """Where a path of the slot's folder appears to the processes in the sandbox."""
        return self.isolation.inside(self, path)

    def factory_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _request(self, message: dict | None, timeout: float = 60) -> dict:
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                raise SandboxError(f"the kernel factory of slot {self.index} is not running "
                                   f"(see {self.dir / 'factory.log'})")
            try:
                if message is not None:   # None: only read (the factory's first line)
                    self.process.stdin.write(json.dumps(message) + "\n")
                    self.process.stdin.flush()
                # One request, one reply line: nothing else can be waiting in the pipe's read buffer.
                ready, _, _ = select.select([self.process.stdout], [], [], timeout)
                line = self.process.stdout.readline() if ready else ""
            except (OSError, ValueError):
                line = ""
            if not line:
                log = self._factory_log()
                raise SandboxError(f"the kernel factory of slot {self.index} did not answer {(message or {}).get('op', 'ready')!r}:"
                                   f"\n{log}")
            return json.loads(line)

    def _factory_log(self) -> str:
        try:
            with open(self.dir / "factory.log", "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 2000))
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the factory (and with it every process in the sandbox) and remove the slot's folder."""
        if self.process is not None and self.process.poll() is None:
            try:
                self._request({"op": "exit"}, timeout=5)
                self.process.wait(timeout=5)
            except (SandboxError, OSError, ValueError, subprocess.TimeoutExpired):
                self.process.kill()   # bubblewrap takes the whole sandbox with it
                self.process.wait()
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        self.process = None
        self.kernel_pid = None
        self._unpin()
        if self._pin_dir is not None:
            remove_tree(self._pin_dir)
            self._pin_dir = None
        if self._group is not None:
            self._group.remove()
            self._group = None
        remove_tree(self.dir)

    # -- one kernel per submission --------------------------------------------------------------------------
    def _reset_work(self) -> None:
        """Between two submissions (without a sandbox; with one, the factory empties its tmpfs)."""
        self.isolation.reset_work(self)

    def _clear_ipc(self) -> None:
        """Remove every kernel's folder from the slot's ipc folder (never following a link planted there)."""
        self._kernel_ipc = None
        if self.ipc.is_dir() and not self.ipc.is_symlink():
            empty_folder(self.ipc)

    async def start_kernel(self, startup_timeout: float = 120) -> tuple[SlotKernelClient, SlotKernelManager]:
        """Fork a fresh kernel in an emptied working folder; return a connected client."""
        if self._restart or not self.factory_alive():   # the last submission took the factory down
            self.close()
            self.start()
        self._reset_work()
        self._clear_ipc()
        self._kernels += 1
        # A fresh folder under a name the last kernel could not guess: nothing in it was planted.
        folder = self.ipc / f"k{self._kernels}-{os.urandom(8).hex()}"
        folder.mkdir(mode=0o700)
        self._kernel_ipc = folder
        connection_file = folder / "kernel.json"
        ports = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "hb_port": 4, "control_port": 5}
        key = os.urandom(32).hex().encode()
        # The kernel binds its sockets at the sandbox's view of the ipc folder; we connect to the same files.
        write_connection_file(str(connection_file), transport="ipc", ip=self.inside(folder / "k"), key=key,
                              **ports)
        info = {**ports, "transport": "ipc", "ip": str(folder / "k"), "key": key,
                "signature_scheme": "hmac-sha256"}
        if self.kernel_uid is not None:
            os.chown(folder, self.kernel_uid, self.kernel_uid)
            os.chown(connection_file, self.kernel_uid, self.kernel_uid)
        reply = self._request({"op": "spawn", "connection_file": self.inside(connection_file),
                               "cwd": self.inside(self.work)})
        self.kernel_pid, self.kernel_end = reply["pid"], None
        if self._group is not None:
            self._oom_before = self._group.oom_kills()
            host = self.isolation.host_pid(self, self.kernel_pid)
            try:
                if host is None:
                    raise OSError("the kernel's process was not found")
                self._group.add(host)
            except OSError as error:
                self._request({"op": "reap"})
                self.kernel_pid = None
                raise SandboxError(f"could not put the kernel in its control group: {error}") from None
        self._request({"op": "go", "pid": self.kernel_pid})
        info = await self._pin_sockets(folder, info, ports, startup_timeout)
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

    # -- the kernel's socket files, pinned and relayed ---------------------------------------------------------
    # The kernel can write in its sockets' folder (it binds them there; as an ordinary user, or owning the folder
    # as root, it may also replace them). Were the grader to connect by path, a socket file swapped for a link to
    # a host socket would make it connect there on its next (re)connection. So, once the fresh kernel has bound
    # its five sockets (before any cell runs), the grader opens each file without following links (O_PATH) and
    # connects to /proc/<its pid>/fd/<that descriptor>: every later connection reaches the socket the kernel
    # bound, whatever the folder holds then. It connects through a relay (autograder/relay.py) listening in a
    # folder of the grader's, outside the sandbox, which stops the kernel past Limits.message_bytes sent.

    async def _pin_sockets(self, folder: Path, info: dict, ports: dict, timeout: float) -> dict:
        import asyncio

        self._unpin()
        if self._pin_dir is None:
            self._pin_dir = Path(tempfile.mkdtemp(prefix="ag-sockets-"))
        names = [f"k-{port}" for port in ports.values()]
        deadline = time.monotonic() + timeout
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        targets: dict[str, str] = {}
        try:
            pending = list(names)
            while pending:
                for name in list(pending):
                    try:
                        descriptor = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=directory)
                    except FileNotFoundError:
                        continue
                    except OSError as error:   # ELOOP: a link, not the kernel's socket
                        raise SandboxError(f"the kernel's socket file {name} is not a socket: {error}") from None
                    self._pinned.append(descriptor)
                    if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                        raise SandboxError(f"the kernel's socket file {name} is not a socket")
                    targets[name] = f"/proc/{os.getpid()}/fd/{descriptor}"
                    pending.remove(name)
                if pending:
                    if time.monotonic() > deadline or not self.kernel_alive():
                        raise SandboxError(f"the kernel did not start (it bound no sockets); {self.kernel_log()}")
                    await asyncio.sleep(0.02)
        finally:
            os.close(directory)
        try:
            self._relay = KernelRelay(self._pin_dir, targets, self.limits.message_bytes)
        except OSError as error:
            raise SandboxError(f"could not relay the kernel's sockets: {error}") from None
        return {**info, "ip": str(self._pin_dir / "k")}

    def _unpin(self) -> None:
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        for descriptor in self._pinned:
            try:
                os.close(descriptor)
            except OSError:
                pass
        self._pinned = []
        if self._pin_dir is not None and self._pin_dir.is_dir():
            empty_folder(self._pin_dir)

    def kernel_log(self) -> str:
        return self.isolation.kernel_log(self)

    def _ended(self, status: dict) -> KernelEnd:
        oom = self._group is not None and self._group.oom_kills() > self._oom_before
        return KernelEnd(status.get("exit"), status.get("signal"), oom=oom and status.get("signal") == 9)

    def kernel_alive(self) -> bool:
        if self.kernel_pid is None:
            return False
        if self.kernel_end is not None:
            return False
        if self._relay is not None and self._relay.flooded:   # the relay cut it off: stop it
            self.signal_kernel(9)
            self.kernel_end = KernelEnd(signal=9, flooded=self._relay.budget)
            return False
        try:
            status = self._request({"op": "poll", "pid": self.kernel_pid})
        except SandboxError:   # the whole sandbox is gone (closed on Ctrl-C, or killed): so is the kernel
            self.kernel_end = KernelEnd(signal=9)
            self._restart = True
            return False
        if status.get("alive"):
            return True
        self.kernel_end = self._ended(status)
        return False

    def signal_kernel(self, signum: int) -> None:
        if self.kernel_pid is not None:
            try:
                self._request({"op": "signal", "pid": self.kernel_pid, "signal": signum})
            except SandboxError:   # the factory is gone, and the kernel with it
                self.kernel_end = self.kernel_end or KernelEnd(signal=9)
                self._restart = True

    def finish_kernel(self) -> KernelEnd | None:
        """Kill the kernel and everything it started; empty the working folder. Returns how it had ended.

        If the submission took the kernel factory down, the kernel is reported as killed and the slot starts a
        new factory for the next submission."""
        if self.kernel_pid is not None and self.kernel_end is None:
            self.kernel_alive()
        end = self.kernel_end
        try:
            if self.factory_alive():
                self._request({"op": "reap"})
            elif self.process is not None:
                self._restart = True
        except SandboxError:
            self._restart = True
        if self._group is not None and not self._group.empty():
            self._restart = True   # processes that would not die: start the next submission in a new sandbox
        self.kernel_pid = None
        self._unpin()
        if self._restart:
            self.close()   # the next start_kernel starts a fresh factory
        else:
            self._clear_ipc()
            self._reset_work()
        return end


class SlotPool:
    """``workers`` slots; :meth:`acquire` / :meth:`release` hand them to worker threads.

    The factories are started at once, from the calling thread (their sandboxes live as long as it does), and
    import their preloads in the background: :meth:`acquire` waits until a slot is ready, so the caller can
    prepare the gradebook meanwhile.
    """

    def __init__(self, workers: int, limits: Limits, preload: tuple[str, ...], shipped: dict[str, Path],
                 isolation: Isolation):
        import queue

        self.root = Path(tempfile.mkdtemp(prefix="ag-"))   # short: Unix socket paths are limited to 107 bytes
        os.chmod(self.root, 0o755)
        self.slots = [Slot(i, self.root, limits, preload, shipped, isolation) for i in range(workers)]
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

    def weaknesses(self) -> list[str]:
        """What the sandboxes do not guarantee on this system (known once the first slot is ready)."""
        return self.slots[0].weaknesses() if self.slots else []

    def close(self) -> None:
        threads = [threading.Thread(target=slot.close) for slot in self.slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        remove_tree(self.root)

    def __enter__(self) -> "SlotPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
