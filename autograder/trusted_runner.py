"""The trusted test runner: runs an assignment's test cells outside the student's process.

Started by the grader (:mod:`autograder.verdict`) as a separate Python process, one per graded notebook; it runs
instructor code only: the released notebook's given cells, then each test cell (hidden tests included) in one
namespace, the way nbgrader runs them in a kernel. Every name that the released notebook's answer cells define
is a :class:`Proxy` in that namespace: calling it sends the call, through the grader, to the student's kernel,
which answers with data only (JSON and NumPy arrays read with ``allow_pickle=False``: nothing executes when it is
read). Objects that are not data stay in the kernel behind :class:`Handle` objects. Arrays, lists, dicts and
NumPy generators passed as arguments are updated with the changes the student's code made to them there.

So the test's assertions, its reference computations and the course's helpers run here, with clean NumPy, on
values the student's code produced; no code in the submission runs in this process.

Protocol (JSON lines; this process's stdout is reserved for it, fd 1 is redirected to stderr):
grader -> runner: ``{"op": "names", "names": [...]}``, ``{"op": "given", "source": ...}``,
``{"op": "test", "source", "grade_id", "count"}``, and the replies to calls; runner -> grader:
``{"op": "call", "request": base64 pickle}`` (answered by ``{"ok": true, "answer": ...}`` or
``{"ok": false, "why": "timeout" | "died" | "failed", "detail": ...}``), ``{"op": "done", ...}`` per cell.
"""

from __future__ import annotations

import ast
import base64
import builtins
import io
import json
import linecache
import numbers
import os
import pickle
import sys
import traceback
import types

from dlcourse.testing import ReportedError

if __package__:
    from autograder import codec
else:   # run as a script (``python autograder/trusted_runner.py``, by verdict): its folder is on sys.path
    import codec

HELPER_FILES = (os.sep + os.path.join("dlcourse", "testing.py"), os.sep + os.path.join("dlcourse", "gradcheck.py"))
# Course helpers that can only do their work inside the student's process (best-effort there, and flagged):
# a check is called in the kernel on the student's objects; a context is entered in the kernel around every call
# made inside the test's ``with`` block.
KERNEL_GUARDS = {"assert_torch_free": "check", "without_shortcuts": "context", "single_blas_thread": "context"}
ACTIVE_GUARDS: list[str] = []

# -- PyTorch assignments (05, 06) --------------------------------------------------------------------------------
# Course helpers (dlcourse.torch_testing, dlcourse.torch_utils) that a test cell calls on the student's objects:
# in the trusted runner each is called in the kernel, where those objects live, and its answer comes back as data
# (tensors, numbers, lists, dicts; a model or a loader as a Handle). Their results are the student's results: the
# test checks them here against references it computes itself. Inside a ``with`` block of ``limited_threads`` or
# ``without_training_helpers`` every call runs in the kernel inside the same context.
KERNEL_CALLS = frozenset({"student_side", "function_gradients", "parameter_gradients", "describe_module",
                          "train_fashion_mnist", "seconds_per_batch", "recording_loader",
                          "state_of", "gradients_of", "train_on_batch"})   # the last three: 09-debugging
KERNEL_GUARDS.update({"without_training_helpers": "context", "limited_threads": "context"})
MAX_MESSAGE = 400
MAX_ANSWER = 96 * 2**20


# -- Seeds ---------------------------------------------------------------------------------------------------------
# In a notebook, a test's ``torch.manual_seed(0)`` seeds the one process where the student's code runs too: the
# network the test builds next starts from that seed. Here the test runs in this process and the student's code in
# the kernel, each with its own generators. So every seed this process sets through the global generators
# (``torch.manual_seed``, ``numpy.random.seed``, ``random.seed``) is set in the kernel as well, before the next
# call: what the student's code draws after a test's seed depends on that seed and on the student's code alone,
# never on what the kernel drew before (the student's own cells, the grader's load). The kernel starts from fixed
# seeds too (autograder.zygote), so a notebook is graded the same every time. Draws are not shared: after a call
# this process's generators continue from the test's seed, not from where the kernel's ended, since the kernel's
# generator state never comes back here (it would let a submission choose the test's data).
SEED_FUNCTIONS = {"torch": ("torch.random", "manual_seed"), "numpy": ("numpy.random", "seed"),
                  "random": ("random", "seed")}   # generator -> (module, function) patched in this process
PENDING_SEEDS: list[list] = []   # [generator, seed] set here since the last call to the kernel


def _mirror_seeds() -> None:
    """Have each seed function of :data:`SEED_FUNCTIONS` whose module is imported record the seeds it sets."""
    for generator, (module_name, function_name) in SEED_FUNCTIONS.items():
        module = sys.modules.get(module_name)
        function = getattr(module, function_name, None)
        if function is None or getattr(function, "_ag_mirrored", False):
            continue

        def seed(value=None, *args, _function=function, _generator=generator, **kwargs):
            result = _function(value, *args, **kwargs)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):   # not None (fresh entropy)
                PENDING_SEEDS.append([_generator, int(value)])
            return result
        seed._ag_mirrored = True
        seed.__doc__, seed.__name__ = function.__doc__, function_name
        setattr(module, function_name, seed)
        if generator == "torch":   # torch.manual_seed is torch.random.manual_seed, imported into torch
            setattr(sys.modules["torch"], function_name, seed)


# A timeout and a dead kernel stop the test cell (BaseException: the soft checks of dlcourse.testing.Checks let
# them through), as a KeyboardInterrupt or a dead kernel does in nbgrader: the cell scores 0.
class CellTimeoutError(BaseException):
    """The student's code did not return within the cell's time limit."""


class KernelDiedError(BaseException):
    """The student's kernel died while running a call."""


class SubmissionError(ReportedError):
    """The student's code raised an exception of its own class (its message is never read); the message of this
    error is the runner's own report."""


class GuardError(AssertionError, ReportedError):
    """A course check that runs in the student's kernel (``assert_torch_free``) failed there."""


class _Channel:
    def __init__(self, connection=None):
        if connection is None:   # a process of its own: the protocol on stdin and stdout
            self.input = sys.stdin.buffer
            self.output = os.fdopen(os.dup(1), "wb")
        else:                    # forked by the server: the protocol on the grader's connection
            self.input, self.output = connection.makefile("rb"), connection.makefile("wb")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)      # native libraries writing to fd 1 must not corrupt the protocol
        os.close(devnull)

    def send(self, message: dict) -> None:
        self.output.write(json.dumps(message).encode() + b"\n")
        self.output.flush()

    def receive(self) -> dict:
        line = self.input.readline()
        if not line:
            raise SystemExit(0)
        return json.loads(line)


CHANNEL: _Channel | None = None


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Handle):
            return ("h", object.__getattribute__(obj, "_key"))
        if isinstance(obj, Proxy):
            return ("n", object.__getattribute__(obj, "_name"))
        return _callback_or_given_id(obj)


def _install_kernel_calls(namespace: dict) -> None:
    """Replace the course's helpers of :data:`KERNEL_CALLS` in the runner's namespace by calls to the kernel."""
    for name in KERNEL_CALLS:
        helper = namespace.get(name)
        if helper is None or not str(getattr(helper, "__module__", "")).startswith("dlcourse"):
            continue

        def call(*args, _name=name, **kwargs):
            return _request("call", ("n", _name), args, kwargs, what=f"your code (run by {_name})")
        namespace[name] = call


def _apply(obj, new) -> None:
    """Make a trusted argument look like the student's code left its copy."""
    import numpy

    if isinstance(obj, numpy.ndarray):
        if isinstance(new, numpy.ndarray) and new.shape == obj.shape:
            obj[...] = new
        elif isinstance(new, numpy.ndarray) and obj.flags.owndata and obj.base is None:
            try:
                obj.resize(new.shape, refcheck=False)
                obj[...] = new
            except (ValueError, TypeError):
                pass
    elif isinstance(obj, list) and isinstance(new, list):
        obj[:] = new
    elif isinstance(obj, dict) and isinstance(new, dict):
        obj.clear()
        obj.update(new)
    elif isinstance(obj, numpy.random.Generator) and isinstance(new, dict):
        obj.bit_generator.state = new


def _errstate() -> dict | None:
    """NumPy's floating-point error handling of the test when it is not NumPy's default (an ``np.errstate``
    block): the kernel applies it around the call."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    state = numpy.geterr()
    return state if state != {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"} else None


def _request(op: str, target: tuple, args=(), kwargs=None, guard: bool = False, **extra):
    if CHANNEL is None:
        raise RuntimeError("no channel to the student's kernel")
    kwargs = dict(kwargs or {})
    _mirror_seeds()   # a module a test cell imported since the last call
    seeds = list({generator: [generator, value] for generator, value in PENDING_SEEDS}.values())   # the last ones
    PENDING_SEEDS.clear()
    extra.update(guards=list(ACTIVE_GUARDS), errstate=_errstate(), seeds=seeds)
    received: list = []   # the mutable arguments, in the order the kernel's agent walks them
    codec.walk([*args, *kwargs.values()], received, set(), _is_given_data)   # given data: never synced
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=4).dump({"op": op, "target": target, "args": tuple(args), "kwargs": kwargs,
                                           **extra})
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise TypeError(f"this test cannot pass {error} to the submission's kernel") from None
    CHANNEL.send({"op": "call", "request": base64.b64encode(buffer.getvalue()).decode()})
    reply = CHANNEL.receive()
    if not reply.get("ok"):
        why = reply.get("why")
        if why == "timeout":
            raise CellTimeoutError(reply.get("detail", "the submission's code ran longer than the time limit"))
        if why == "died":
            raise KernelDiedError(reply.get("detail", "the kernel died"))
        raise SubmissionError(f"the submission's kernel did not answer ({str(reply.get('detail', ''))[:200]})")
    answer = reply["answer"]
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER:
        raise SubmissionError("the submission's kernel gave an answer that is not data")
    try:
        tree, build = codec.decode(answer, received, Handle)
        if not isinstance(tree, dict):
            raise ValueError("not a dict")
        for index, new in tree.get("sync", []):
            _apply(received[int(index)], build(new))
        status = tree.get("status")
        if status == "raised":
            error = tree.get("error", {})
            name = "".join(c for c in str(error.get("name", "")) if c.isalnum() or c == "_")[:60] or "Exception"
            base = getattr(builtins, str(error.get("builtin", "")), None)
            what = _label(target, op, extra)
            if guard and error.get("builtin") == "AssertionError":
                why = ("PyTorch is used, which this assignment does not allow" if target[1] == "assert_torch_free"
                       else "see the task")
                exception = GuardError(f"the check {target[1]} failed in your kernel: {why}")
                exception._ag_guard = True
                raise exception
            text = f"{what} raised {name} (the submission's own error message is not shown)"
            if isinstance(base, type) and issubclass(base, Exception) and base not in (Exception, AssertionError):
                try:
                    exception = base(text)
                except Exception:
                    exception = SubmissionError(text)
            else:
                exception = SubmissionError(text)
            exception._ag_from_submission = True
            raise exception
        if status != "ok":
            raise ValueError("unknown status")
        return build(tree.get("value"))
    except Exception as error:   # noqa: BLE001 - anything the kernel sends that is not a well-formed answer
        if getattr(error, "_ag_from_submission", False) or getattr(error, "_ag_guard", False):
            raise
        raise SubmissionError(f"the submission's kernel gave an answer that could not be read: "
                              f"{type(error).__name__}") from None


def _label(target: tuple, op: str, extra: dict) -> str:
    kind, key = target
    if extra.get("what"):   # a course helper run in the kernel (KERNEL_CALLS)
        return str(extra["what"])
    name = key if kind == "n" else "an object of the submission"
    if op == "getattr":
        return f"reading {extra.get('name')!r} of {name}"
    return f"your {name}" if kind == "n" else name


class _GuardContext:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        ACTIVE_GUARDS.append(self.name)
        return self

    def __exit__(self, *exc):
        ACTIVE_GUARDS.reverse()
        ACTIVE_GUARDS.remove(self.name)
        ACTIVE_GUARDS.reverse()
        return False


def _install_guards(namespace: dict) -> None:
    """Replace the course's kernel-side helpers in the runner's namespace by their kernel-side shims."""
    for name, kind in KERNEL_GUARDS.items():
        helper = namespace.get(name)
        if helper is None or not str(getattr(helper, "__module__", "")).startswith("dlcourse"):
            continue
        if kind == "check":
            def check(*args, _name=name, **kwargs):
                _request("call", ("n", _name), args, kwargs, guard=True)
            namespace[name] = check
        else:
            namespace[name] = lambda *args, _name=name, **kwargs: _GuardContext(_name)


class Proxy:
    """A name defined by an answer cell: operations go to the student's kernel."""

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __call__(self, *args, **kwargs):
        return _request("call", ("n", object.__getattribute__(self, "_name")), args, kwargs)

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _request("getattr", ("n", object.__getattribute__(self, "_name")), name=attribute)

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_name')} of the submission>"


class Handle:
    """An object that stays in the student's kernel (not data): call it, read its attributes, index it."""

    def __init__(self, key: int, type_name: str):
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_type", type_name)

    def _target(self):
        return ("h", object.__getattribute__(self, "_key"))

    def __call__(self, *args, **kwargs):
        return _request("call", self._target(), args, kwargs)

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _request("getattr", self._target(), name=attribute)

    def __getitem__(self, key):
        return _request("getitem", self._target(), (key,))

    def __len__(self):
        value = _request("len", self._target())
        if type(value) is not int or value < 0:
            raise TypeError("len() of a submission's object is not a non-negative integer")
        return value

    def __iter__(self):
        value = _request("list", self._target())
        return iter(value if isinstance(value, list) else [])

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} object of the submission>"


# ---- Callbacks and given data (02-gradient-descent's callbacks, 04-numpy-net's Fashion-MNIST) -------------------
#
# A test may pass a function of its own into the student's code (``gradient_descent(lambda x: a * (x - c), ...)``):
# the student's code calls it many times, so it runs in the kernel. Every lambda of a test or given cell is
# tagged with its source text (an AST rewrite here, the cell's text is unchanged); when one is passed to the kernel,
# the kernel's agent rebuilds it from that text with the values of the names it uses (data, modules by name, the
# student's own functions by name). Whatever the kernel makes of it can only change what the student's code
# returns, which is checked here. Its behaviour was observable by calling it anyway; its text reaches the kernel,
# never the feedback.
#
# Arrays a given cell binds (the Fashion-MNIST training set) are never sent: the kernel ran the same given cell and
# has its own copies, named by the name the cell bound them to. The trusted copies are made read-only and are never
# updated from the kernel, so a test's own checks on them (validation accuracy of the returned parameters) use the
# data this process loaded itself.

KERNEL_FUNCTION = "__ag_kernel_function__"
GIVEN_DATA: dict[int, tuple[str, object]] = {}   # id -> (name in the given cell, the array, kept alive)


def _kernel_function(function, source: str):
    """Tag a lambda of a test or given cell with its source (the rewritten cell calls this around each lambda)."""
    try:
        function._ag_source = source
    except (AttributeError, TypeError):
        pass
    return function


class _TagCallbacks(ast.NodeTransformer):
    def __init__(self, source: str):
        self.source = source

    def visit_Lambda(self, node: ast.Lambda):
        segment = ast.get_source_segment(self.source, node)
        self.generic_visit(node)
        if segment is None:
            return node
        call = ast.Call(func=ast.Name(KERNEL_FUNCTION, ast.Load()), args=[node, ast.Constant(segment)],
                        keywords=[])
        return ast.copy_location(call, node)


def _tag_callbacks(tree: ast.Module, source: str, namespace: dict) -> ast.Module:
    namespace[KERNEL_FUNCTION] = _kernel_function
    return ast.fix_missing_locations(_TagCallbacks(source).visit(tree))


def _callback_bindings(function, source: str) -> dict:
    """The values of the names a tagged lambda's text uses: its closure's, then its cell's globals."""
    names = {node.id for node in ast.walk(ast.parse(f"(\n{source}\n)", mode="eval")) if isinstance(node, ast.Name)}
    closure = {}
    for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ()):
        try:
            closure[name] = cell.cell_contents
        except ValueError:   # an empty cell
            pass
    space = function.__globals__
    return {name: closure[name] if name in closure else space[name] for name in sorted(names)
            if (name in closure or name in space) and name != KERNEL_FUNCTION}


def _is_given_data(obj) -> bool:
    entry = GIVEN_DATA.get(id(obj))
    return entry is not None and entry[1] is obj


def _callback_or_given_id(obj):
    """The persistent id of a tagged lambda (its source and bindings), of given data (its name) or of a module
    (its name); None for anything else (pickled by value, or refused)."""
    if isinstance(obj, types.FunctionType) and isinstance(getattr(obj, "_ag_source", None), str):
        return ("f", obj._ag_source, _callback_bindings(obj, obj._ag_source))
    if _is_given_data(obj):
        return ("g", GIVEN_DATA[id(obj)][0])
    if isinstance(obj, types.ModuleType):
        return ("m", obj.__name__)
    return None


def _register_given_data(namespace: dict, before: dict) -> None:
    """Record the NumPy arrays a given cell bound (new or rebound names) and make them read-only here."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return
    for name, value in namespace.items():
        if isinstance(value, numpy.ndarray) and before.get(name) is not value and not value.dtype.hasobject:
            for key in [k for k, (bound, _) in GIVEN_DATA.items() if bound == name]:
                del GIVEN_DATA[key]   # the kernel's name now holds the new array
            value.flags.writeable = False
            GIVEN_DATA[id(value)] = (name, value)


def _run(source: str, filename: str, namespace: dict):
    """Execute a cell as IPython does: the value of a last expression is returned (None otherwise)."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    tree = _tag_callbacks(ast.parse(source, filename), source, namespace)
    last = None
    # IPython shows the value of a last expression, unless the cell ends with a semicolon.
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        return eval(compile(last, filename, "eval"), namespace)
    return None


def _verdict(error: BaseException, filename: str) -> tuple[str, int | None]:
    """Who raised ``error`` ("helper", "test", "submission", "timeout", "kernel", "error") and the line of the
    test cell that was running."""
    frames = traceback.extract_tb(error.__traceback__)
    line = None
    for frame in frames:
        if frame.filename == filename:
            line = frame.lineno
    if getattr(error, "_ag_from_submission", False) or isinstance(error, SubmissionError):
        return "submission", line
    if isinstance(error, CellTimeoutError):
        return "timeout", line
    if isinstance(error, GuardError):
        return "guard", line
    if isinstance(error, KernelDiedError):
        return "kernel", line
    if isinstance(error, AssertionError) and frames:
        innermost = frames[-1].filename
        if any(innermost.endswith(h) for h in HELPER_FILES):
            return "helper", line
        if innermost == filename:
            return "test", line
    return "error", line


def _failed_checks() -> list[str]:
    """The messages of the checks that failed (and were not discounted) since the last call.

    They are written by the course (dlcourse.testing never echoes text raised by student code), and recorded in
    this process: a submission cannot add to them.
    """
    testing = sys.modules.get("dlcourse.testing")
    if testing is None:
        return []
    return [o.message or o.check for o in testing.take_outcomes() if not o.passed and not o.discounted]


def _test(message: dict, namespace: dict) -> dict:
    count = int(message.get("count") or 0)
    filename = f"<test cell {message.get('grade_id')}>"
    stdout, stderr = io.StringIO(), io.StringIO()
    real = sys.stdout, sys.stderr
    outputs, verdict = [], {"by": "passed"}
    _failed_checks()   # forget what a given cell or an earlier test cell recorded
    sys.stdout, sys.stderr = stdout, stderr
    try:
        value = _run(message["source"], filename, namespace)
        error = None
    except BaseException as caught:   # noqa: BLE001 - a test cell may raise anything, SystemExit included
        value, error = None, caught
    finally:
        sys.stdout, sys.stderr = real
    for name, buffer in (("stdout", stdout), ("stderr", stderr)):
        if buffer.getvalue():
            outputs.append({"output_type": "stream", "name": name, "text": buffer.getvalue()[-100_000:]})
    if error is not None:
        by, line = _verdict(error, filename)
        ename = {"timeout": "CellTimeoutError", "kernel": "KernelDiedError"}.get(by, type(error).__name__)
        evalue = str(error) if by != "submission" else str(error)[:300]
        evalue = evalue[:4000]
        outputs.append({"output_type": "error", "ename": ename, "evalue": evalue,
                        "traceback": [f"Cell In[{count}], line {line}" if line else "(line unknown)",
                                      f"{ename}: {evalue}"]})
        verdict = {"by": by, "line": line}
        if by == "helper":
            verdict["message"] = evalue.splitlines()[0][:MAX_MESSAGE] if evalue else ""
    else:
        failed = _failed_checks()
        if failed:   # partial credit: what dlcourse.testing.Checks recorded for each failed check, in this process
            verdict = {"by": "helper", "message": " | ".join(failed)[:MAX_MESSAGE]}
    if error is None and value is not None:
        try:
            text = repr(value)[:10_000]
        except Exception:   # a handle whose repr fails
            text = "<value>"
        outputs.append({"output_type": "execute_result", "execution_count": count, "metadata": {},
                        "data": {"text/plain": text}})
    return {"op": "done", "outputs": outputs, "verdict": verdict}


def main(connection=None) -> None:
    global CHANNEL

    CHANNEL = _Channel(connection)
    CHANNEL.send({"op": "hello", "pid": os.getpid()})
    import random  # noqa: F401 - its seed function is mirrored from the start, like the preimported modules'
    _mirror_seeds()
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    while True:
        message = CHANNEL.receive()
        op = message.get("op")
        if op == "names":
            for name in message["names"]:
                namespace[name] = Proxy(name)
        elif op == "given":
            # The released notebook's given cells (imports, helpers): their errors are not graded, as in nbgrader.
            out, err = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = io.StringIO()
            bound = dict(namespace)
            try:
                _run(message["source"], f"<given cell {message.get('grade_id')}>", namespace)
            except BaseException:   # noqa: BLE001
                pass
            finally:
                sys.stdout, sys.stderr = out, err
            _register_given_data(namespace, bound)
            for name in message.get("names", []):   # answer names the given cell might have shadowed
                namespace[name] = Proxy(name)
            _install_guards(namespace)
            _install_kernel_calls(namespace)
            CHANNEL.send({"op": "done"})
        elif op == "test":
            CHANNEL.send(_test(message, namespace))
        elif op == "exit":
            return


def serve(path: str, modules: list[str]) -> None:
    """A fork server: import the assignment's modules once, then fork one runner per connection on ``path``.

    It stops when its stdin closes (the grader ended). Each runner is a fresh copy of this process: the state a
    test cell leaves (seeds, patched helpers, the namespace) never reaches the next notebook.
    """
    import importlib
    import select
    import signal
    import socket

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:   # noqa: BLE001 - a module the runner does not need (or cannot import) is skipped
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # children are reaped by the system
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        ready, _, _ = select.select([server, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1024):
            return
        if server in ready:
            connection, _ = server.accept()
            if os.fork() == 0:
                import shutil
                import tempfile

                server.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                folder = tempfile.mkdtemp(prefix="ag-trusted-")
                os.chdir(folder)
                try:
                    main(connection)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                    os._exit(0)
            connection.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--server":
        serve(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else [])
    else:
        main()
