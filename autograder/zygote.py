"""The kernel factory that runs inside a grading sandbox (standard library only; never imported by the grader).

``autograder.sandbox`` starts this file with ``python -c`` inside bubblewrap (or, without bubblewrap, as a plain
subprocess). It imports the heavy modules an assignment needs once (IPython's kernel, NumPy, PyTorch,
``dlcourse``...), then forks one fresh Jupyter kernel per submission. A forked kernel starts in a few
milliseconds with those modules already imported: that, not the number of cores, is where most of the
parallel grader's speed-up comes from (a stock nbgrader run imports PyTorch again for every submission).

Each kernel, before running any student code:

- starts a new session (so it and everything it spawns can be signalled as a group) and waits until the grader
  has put it in the submission's control group (``go``), when there is one;
- drops to the slot's unprivileged user id when the sandbox runs as root;
- enters namespaces of its own, where the system allows it: a user namespace, a PID namespace (the kernel is
  its process 1: it cannot name, hence not signal, the factory, and every process it starts dies with it) and
  an IPC namespace (System V shared memory, semaphores and queues die with the submission); then drops every
  capability that namespace gave it;
- installs a seccomp filter (:func:`seccomp_program`) that refuses new namespaces, mounts, ptrace, keyrings,
  BPF, io_uring, module loading and a few more calls no notebook needs;
- gets resource limits: CPU time, file size, memory per process (``RLIMIT_DATA``; the grader's control group,
  where there is one, bounds all the submission's processes together), processes where no control group does;
- copies the assignment's shipped files into its working folder (a size-limited tmpfs inside the sandbox),
  seeds the global random generators (Python's, NumPy's, PyTorch's) with fixed seeds, so that a notebook is
  graded the same every time, and becomes an IPython kernel.

Protocol: one JSON object per line. The first line read is the configuration; the factory answers
``{"ready": ...}``. Then each request gets one reply: ``spawn`` (fork a kernel, which waits), ``go`` (let it
run), ``poll`` (is it alive, how did it end), ``signal`` (signal its process group), ``log`` (the tail of its
log), ``reap`` (kill every process the submission left behind and empty what it could write). The factory
holds no student data and never runs student code itself.
"""

import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import struct
import sys
import time

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x02000000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWTIME = 0x10000000, 0x20000000, 0x40000000, 0x00000080
NAMESPACE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
                   | CLONE_NEWNET | CLONE_NEWTIME)
EPERM, ENOSYS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)

# -- seccomp ---------------------------------------------------------------------------------------------------
# System calls a kernel is refused (EPERM), per architecture: new namespaces (unshare, setns; clone with a
# namespace flag is checked separately, clone3 answers ENOSYS so that the C library falls back to clone), mounts,
# ptrace and reading other processes' memory, keyrings (not namespaced: a channel to the next submission), BPF,
# perf, userfaultfd, io_uring (its operations bypass seccomp), module and kexec loading, clocks, swap, quotas.
DENIED = ("unshare setns mount umount2 pivot_root chroot open_tree move_mount fsopen fsconfig fsmount fspick "
          "mount_setattr ptrace process_vm_readv process_vm_writev pidfd_getfd kcmp keyctl add_key request_key "
          "bpf perf_event_open userfaultfd io_uring_setup io_uring_enter io_uring_register kexec_load "
          "kexec_file_load init_module finit_module delete_module reboot swapon swapoff acct quotactl "
          "open_by_handle_at name_to_handle_at fanotify_init syslog lookup_dcookie vhangup settimeofday "
          "clock_settime clock_adjtime adjtimex sethostname setdomainname").split()
# System call numbers, one column per architecture: name, x86_64, aarch64 (the kernel's unistd tables).
ARCHITECTURES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}   # and their AUDIT_ARCH values
NUMBERS = """
clone              56 220    clone3            435 435    unshare           272  97    setns             308 268
mount             165  40    umount2           166  39    pivot_root        155  41    chroot            161  51
open_tree         428 428    move_mount        429 429    fsopen            430 430    fsconfig          431 431
fsmount           432 432    fspick            433 433    mount_setattr     442 442    ptrace            101 117
process_vm_readv  310 270    process_vm_writev 311 271    pidfd_getfd       438 438    kcmp              312 272
keyctl            250 219    add_key           248 217    request_key       249 218    bpf               321 280
perf_event_open   298 241    userfaultfd       323 282    io_uring_setup    425 425    io_uring_enter    426 426
io_uring_register 427 427    kexec_load        246 104    kexec_file_load   320 294    init_module       175 105
finit_module      313 273    delete_module     176 106    reboot            169 142    swapon            167 224
swapoff           168 225    acct              163  89    quotactl          179  60    open_by_handle_at 304 265
name_to_handle_at 303 264    fanotify_init     300 262    syslog            103 116    lookup_dcookie    212  18
vhangup           153  58    settimeofday      164 170    clock_settime     227 112    clock_adjtime     305 266
adjtimex          159 171    sethostname       170 161    setdomainname     171 162
"""
_WORDS = NUMBERS.split()
_ROWS = [_WORDS[i:i + 3] for i in range(0, len(_WORDS), 3)]
SYSCALLS = {machine: {"arch": audit, **{row[0]: int(row[1 + column]) for row in _ROWS}}
            for column, (machine, audit) in enumerate(ARCHITECTURES.items())}


def seccomp_program(machine=None):
    """The kernels' seccomp filter as classic BPF (bytes of ``struct sock_filter``), or None on an
    architecture this file has no system call numbers for."""
    table = SYSCALLS.get(machine or platform.machine())
    if table is None:
        return None
    ld_w, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    refuse, absent = 0x00050000 | EPERM, 0x00050000 | ENOSYS
    code = [(ld_w, 0, 0, 4),                       # seccomp_data.arch
            (jeq, 1, 0, table["arch"]), (ret, 0, 0, kill),   # another ABI (i386 on x86_64): refused
            (ld_w, 0, 0, 0)]                       # seccomp_data.nr
    if table["arch"] == 0xC000003E:
        code += [(jge, 0, 1, 0x40000000), (ret, 0, 0, refuse)]   # the x32 ABI
    for name in DENIED:
        code += [(jeq, 0, 1, table[name]), (ret, 0, 0, refuse)]
    code += [(jeq, 0, 1, table["clone3"]), (ret, 0, 0, absent),
             (jeq, 0, 4, table["clone"]),
             (ld_w, 0, 0, 16),                     # clone's flags: args[0], low 32 bits
             (jset, 0, 1, NAMESPACE_FLAGS), (ret, 0, 0, refuse),
             (ret, 0, 0, allow),
             (ret, 0, 0, allow)]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


def _install_seccomp(program):
    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program)
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


# -- namespaces of one kernel ----------------------------------------------------------------------------------
def _unshare(flags):
    if _libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")


def _enter_kernel_namespaces():
    """Enter a new user, PID and IPC namespace with the same user id (mapped onto itself)."""
    uid, gid = os.geteuid(), os.getegid()
    _unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as handle:
            handle.write(text)


def _drop_capabilities():
    """Drop every capability (a new user namespace gives its creator all of them inside it)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    if _libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _drop_to(uid):
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        _prctl_dumpable(1)   # changing user ids made it undumpable: its /proc/self/uid_map would be root's


def _probe_namespaces(uid):
    """Whether a kernel can get namespaces of its own here (a forked child tries, as the kernels' user)."""
    pid = os.fork()
    if pid == 0:
        try:
            _drop_to(uid)
            _enter_kernel_namespaces()
            _drop_capabilities()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


class _NotBeforeTheKernel:
    """Blocks, while preloading, modules that hook into the running kernel when imported: matplotlib's pyplot
    and inline backend (they register display hooks only if IPython is already running) and ipywidgets.
    A preloaded module that needs them is simply imported later, by the notebook."""

    PREFIXES = ("matplotlib.pyplot", "matplotlib_inline", "ipywidgets", "tqdm.notebook", "tqdm.auto")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.startswith(cls.PREFIXES):
            raise ImportError(f"{name} is imported only once the kernel runs")
        return None


def _prctl_dumpable(value):
    try:
        _libc.prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _tasks_of(uid):
    """Number of threads of all processes of ``uid`` visible here (RLIMIT_NPROC counts threads)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return count


def _status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))


def _set_limits(limits, cgroup):
    def cap(kind, value):
        if value:
            value = int(value)
            soft, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(kind, (value, value))

    if limits.get("memory_bytes"):
        # Per process, also under a control group (whose limit is a little higher): a single process that asks
        # for too much gets a MemoryError (only its test lost) rather than the kill of the whole kernel.
        # RLIMIT_DATA counts the private writable memory a process maps (heap, arrays), on top of what the
        # preloaded libraries already hold; unlike RLIMIT_AS it does not count reserved address space, so an
        # honest NumPy kernel can use its whole allowance.
        cap(resource.RLIMIT_DATA, _status_kib("VmData") + limits["memory_bytes"])
    cap(resource.RLIMIT_CPU, limits.get("cpu_seconds"))
    cap(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    if limits.get("processes") and not cgroup.get("pids"):
        # RLIMIT_NPROC counts every task of the user id, threads included: allow the kernel's own on top.
        cap(resource.RLIMIT_NPROC, _tasks_of(os.getuid()) + limits["processes"])


KERNEL_SEED = 0


def _seed_generators():
    """Fixed seeds for the global generators a kernel starts with. A forked kernel would otherwise inherit this
    factory's states, which differ from one factory to the next (PyTorch, like NumPy, seeds itself afresh in every
    interpreter): two kernels of one grading run could then grade the same notebook differently. A test's own
    seeds reach the kernel too (the trusted test runner's "Seeds")."""
    import random

    random.seed(KERNEL_SEED)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(KERNEL_SEED)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(KERNEL_SEED)


def _copy_shipped(source, target):
    """Copy the assignment's shipped files (read-only in the sandbox) into the kernel's working folder."""
    if not source or not os.path.isdir(source):
        return
    for dirpath, dirnames, filenames in os.walk(source):
        relative = os.path.relpath(dirpath, source)
        destination = os.path.normpath(os.path.join(target, relative))
        os.makedirs(destination, exist_ok=True)
        for name in filenames:
            shutil.copyfile(os.path.join(dirpath, name), os.path.join(destination, name), follow_symlinks=False)


def _mirror_exit(pid):
    """In the kernel's outer process: wait for the kernel (process 1 of its PID namespace) and end as it did."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(0)
    if os.WIFSIGNALED(status):
        try:
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        except (OSError, ValueError):   # SIGKILL, SIGSTOP: no handler to reset
            pass
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _run_kernel(request, config, go):
    """In the forked child: become the submission's kernel. Never returns."""
    try:
        os.setsid()
        log = os.open(config["kernel_log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.set_inheritable(go, True)
        os.closerange(3, go)   # the control channel and anything else inherited stays with the factory
        os.closerange(go + 1, 4096)
        if os.read(go, 1) != b"g":   # the grader has put this process in the submission's control group
            os._exit(71)
        os.close(go)
        _drop_to(config.get("kernel_uid"))
        if config.get("namespaces"):
            _enter_kernel_namespaces()
            # Signals: the outer process only waits and mirrors the kernel's end; the kernel gets SIGINT.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
            pid = os.fork()
            if pid:
                _mirror_exit(pid)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            _drop_capabilities()
        # No program it starts gains privileges (setuid binaries, file capabilities), filtered or not.
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        program = config.get("seccomp")
        if program:
            _install_seccomp(bytes.fromhex(program))
        _set_limits(config.get("limits", {}), config.get("cgroup", {}))
        _prctl_dumpable(1)
        _copy_shipped(config.get("shipped"), request["cwd"])
        os.chdir(request["cwd"])
        os.environ["HOME"] = request["cwd"]
        _seed_generators()
        argv = ["-f", request["connection_file"], "--HistoryManager.hist_file=:memory:"]
        sys.argv = [sys.executable, "-m", "ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
    except BaseException as error:   # report on the kernel log; the grader sees a dead kernel
        import traceback

        # To the log itself: by now sys.stderr may be the kernel's output stream.
        text = traceback.format_exc() + f"kernel failed to start: {error!r}\n"
        try:
            os.write(2, text.encode(errors="replace"))
        except OSError:
            pass
        os._exit(70)
    os._exit(0)


def _wipe(root, keep=()):
    """Empty a folder without following symbolic links (what a submission left in it)."""
    try:
        entries = os.listdir(root)
    except OSError:
        return
    for entry in entries:
        if entry in keep:   # the sandbox's own folders (a virtual environment bound under /tmp)
            continue
        _remove_all(os.path.join(root, entry))


def _remove_all(path):
    """Remove a file or a folder tree, never following a symbolic link; folders a submission made unreadable
    (mode 000) are opened up first (it runs as their owner, after every process of the submission is gone)."""
    import stat

    try:
        info = os.lstat(path)
    except OSError:
        return
    if not stat.S_ISDIR(info.st_mode):
        _remove(path, os.unlink)
        return
    if info.st_mode & 0o700 != 0o700:
        _remove(path, lambda p: os.chmod(p, 0o700))
    try:
        entries = os.listdir(path)
    except OSError:
        entries = []
    for entry in entries:
        _remove_all(os.path.join(path, entry))
    _remove(path, os.rmdir)


def _remove_sysv_ipc():
    """Remove every System V shared memory segment, semaphore set and message queue visible here."""
    for kind, call, rmid in (("shm", "shmctl", 0), ("sem", "semctl", 0), ("msg", "msgctl", 0)):
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            ident = int(row.split()[1])
            if kind == "sem":
                _libc.semctl(ident, 0, rmid)
            else:
                getattr(_libc, call)(ident, rmid, None)


def _clean(config):
    """Empty what a submission could write (working folder, /tmp, /dev/shm, System V IPC), as its user id."""
    pid = os.fork()
    if pid == 0:
        try:
            _drop_to(config.get("kernel_uid"))
            for root, keep in config.get("wipe", {}).items():
                _wipe(root, keep)
            _remove_sysv_ipc()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _reap(config, children):
    """Kill every process left in the sandbox except this factory (and bubblewrap's init, pid 1)."""
    me = os.getpid()
    killed = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:   # a fork bomb may spawn while we kill; each round leaves fewer survivors
        victims = []
        if config.get("pid_namespace"):
            victims = [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) not in (1, me)]
        else:
            for pid in children:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        while True:   # collect zombies of our own children
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not victims:
            break
        time.sleep(0.01)
    children.clear()
    if config.get("pid_namespace"):
        _clean(config)
    return killed


def _remove(path, how):
    try:
        how(path)
    except OSError:
        pass


def _status(pid, exits):
    if pid in exits:
        return exits[pid]
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return {"alive": False, "exit": None, "signal": None}
    if done == 0:
        return {"alive": True}
    exits[pid] = {"alive": False, "exit": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
                  "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
    return exits[pid]


def _log_tail(path, size=4000):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, max(0, end - size), os.SEEK_SET)
        return os.read(fd, size).decode(errors="replace")
    finally:
        os.close(fd)


def main():
    # The control channel is our stdin/stdout; nothing else may write to it (imports print, children inherit).
    control_in = os.fdopen(os.dup(0), "r")
    control_out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)
    _prctl_dumpable(0)   # a kernel of the same user id may not inspect or alter this process

    def reply(message):
        control_out.write(json.dumps(message) + "\n")
        control_out.flush()

    config = json.loads(control_in.readline())
    # Folders to empty after each submission, and what they held before any kernel ran (kept).
    config["wipe"] = {root: set(os.listdir(root)) for root in config.get("wipe", []) if os.path.isdir(root)}
    if config.get("isolate_kernels"):
        config["namespaces"] = config.get("kernel_namespaces", True) and _probe_namespaces(config.get("kernel_uid"))
        program = seccomp_program()
        config["seccomp"] = program.hex() if program else None
    loaded, failed = [], []
    sys.meta_path.insert(0, _NotBeforeTheKernel)
    for module in config.get("preload", []):
        try:
            __import__(module)
            loaded.append(module)
        except Exception as error:   # not installed here, or it needs a running kernel
            failed.append(f"{module}: {error!r}")
    sys.meta_path.remove(_NotBeforeTheKernel)
    threads = len(os.listdir("/proc/self/task"))   # forking is only safe from a single-threaded process
    reply({"ready": threads == 1, "loaded": loaded, "failed": failed, "pid": os.getpid(), "threads": threads,
           "namespaces": bool(config.get("namespaces")), "seccomp": bool(config.get("seccomp"))})
    if threads != 1:
        return

    children, exits, waiting = [], {}, {}
    for line in control_in:
        request = json.loads(line)
        op = request.get("op")
        if op == "spawn":
            go_read, go_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                _run_kernel(request, config, go_read)
            os.close(go_read)
            waiting[pid] = go_write
            children.append(pid)
            reply({"pid": pid})
        elif op == "go":
            go = waiting.pop(request["pid"], None)
            if go is not None:
                try:
                    os.write(go, b"g")
                except OSError:
                    pass
                os.close(go)
            reply({"ok": go is not None})
        elif op == "poll":
            reply(_status(request["pid"], exits))
        elif op == "signal":
            try:
                os.killpg(request["pid"], request["signal"])
                reply({"ok": True})
            except OSError as error:
                reply({"ok": False, "error": str(error)})
        elif op == "log":
            reply({"log": _log_tail(config["kernel_log"])})
        elif op == "reap":
            for go in waiting.values():
                os.close(go)
            waiting.clear()
            for pid in children:
                _status(pid, exits)
            reply({"killed": _reap(config, children)})
            exits.clear()
        elif op == "exit":
            _reap(config, children)
            reply({"bye": True})
            os._exit(0)   # nothing to clean up: skip the interpreter's slow teardown of the preloaded modules
        else:
            reply({"error": f"unknown request {op!r}"})


if __name__ == "__main__":
    main()
