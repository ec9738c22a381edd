"""The kernel factory that runs inside a grading sandbox (standard library only; never imported by the grader).

``autograder.sandbox`` starts this file with ``python -c`` inside bubblewrap (or, without bubblewrap, as a plain
subprocess). It imports the heavy modules an assignment needs once (IPython's kernel, NumPy, PyTorch,
``dlcourse``...), then forks one fresh Jupyter kernel per submission. A forked kernel starts in a few
milliseconds with those modules already imported: that, not the number of cores, is where most of the
parallel grader's speed-up comes from (a stock nbgrader run imports PyTorch again for every submission).

Each kernel, before running any student code: starts a new session (so it and everything it spawns can be
signalled as a group), gets resource limits (address space, CPU time, processes, file size), drops to the
slot's unprivileged user id when the sandbox runs as root, moves to the submission's working directory and
re-seeds NumPy's global generator, as a fresh interpreter would.

Protocol: one JSON object per line. The first line read is the configuration; the factory answers
``{"ready": ...}``. Then each request gets one reply: ``spawn`` (fork a kernel), ``poll`` (is it alive, how did
it end), ``signal`` (signal its process group), ``reap`` (kill every process the submission left behind).
The factory holds no student data and never runs student code itself.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

PR_SET_DUMPABLE = 4


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
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
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


def _set_limits(limits, vmsize):
    def cap(kind, value):
        if value:
            value = int(value)
            soft, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(kind, (value, value))

    # The address space limit comes on top of what the preloaded libraries already map.
    cap(resource.RLIMIT_AS, vmsize + limits.get("memory_bytes", 0) if limits.get("memory_bytes") else 0)
    cap(resource.RLIMIT_CPU, limits.get("cpu_seconds"))
    cap(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    if limits.get("processes"):
        # RLIMIT_NPROC counts every task of the user id, threads included: allow the kernel's own on top.
        cap(resource.RLIMIT_NPROC, _tasks_of(os.getuid()) + limits["processes"])


def _run_kernel(request, config, vmsize):
    """In the forked child: become the submission's kernel. Never returns."""
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.closerange(3, 4096)   # the control channel and anything else inherited stays with the factory
        uid = config.get("kernel_uid")
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        _set_limits(config.get("limits", {}), vmsize)
        _prctl_dumpable(1)
        os.chdir(request["cwd"])
        os.environ["HOME"] = request["cwd"]
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()   # fresh entropy, like a newly started interpreter
        argv = ["-f", request["connection_file"], "--HistoryManager.hist_file=:memory:"]
        sys.argv = [sys.executable, "-m", "ipykernel_launcher", *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
    except BaseException as error:   # report on the kernel log; the grader sees a dead kernel
        import traceback

        traceback.print_exc()
        print(f"kernel failed to start: {error!r}", file=sys.stderr, flush=True)
        os._exit(70)
    os._exit(0)


def _reap(config, children):
    """Kill every process left in the sandbox except this factory (and bubblewrap's init, pid 1)."""
    me = os.getpid()
    killed = 0
    for _ in range(50):   # a fork bomb may spawn while we kill; each round leaves fewer survivors
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
    for root, keep in config.get("wipe", {}).items():   # what the submission left in the private /tmp
        for entry in os.listdir(root):
            if entry in keep:   # the sandbox's own folders (a virtual environment bound under /tmp)
                continue
            top = os.path.join(root, entry)
            if os.path.isdir(top) and not os.path.islink(top):
                for dirpath, dirnames, filenames in os.walk(top, topdown=False):
                    for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                        _remove(os.path.join(dirpath, name), os.unlink)
                    for name in dirnames:
                        _remove(os.path.join(dirpath, name), os.rmdir)
                _remove(top, os.rmdir)
            else:
                _remove(top, os.unlink)
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
    loaded, failed = [], []
    sys.meta_path.insert(0, _NotBeforeTheKernel)
    for module in config.get("preload", []):
        try:
            __import__(module)
            loaded.append(module)
        except Exception as error:   # not installed here, or it needs a running kernel
            failed.append(f"{module}: {error!r}")
    sys.meta_path.remove(_NotBeforeTheKernel)
    with open("/proc/self/status") as status:
        vmsize = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    threads = len(os.listdir("/proc/self/task"))   # forking is only safe from a single-threaded process
    reply({"ready": threads == 1, "loaded": loaded, "failed": failed, "vmsize": vmsize, "pid": os.getpid(),
           "threads": threads})
    if threads != 1:
        return

    children, exits = [], {}
    for line in control_in:
        request = json.loads(line)
        op = request.get("op")
        if op == "spawn":
            pid = os.fork()
            if pid == 0:
                _run_kernel(request, config, vmsize)
            children.append(pid)
            reply({"pid": pid})
        elif op == "poll":
            reply(_status(request["pid"], exits))
        elif op == "signal":
            try:
                os.killpg(request["pid"], request["signal"])
                reply({"ok": True})
            except OSError as error:
                reply({"ok": False, "error": str(error)})
        elif op == "reap":
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


main()
