"""The verdict out of the student's reach: test cells run in a trusted process, not in the student's kernel.

With the trusted runner (assignments in :data:`TRUSTED_ASSIGNMENTS`), grading one notebook works like this:

- the sandboxed kernel runs the non-test cells of the repaired submission (given cells and answer cells, the
  student's own cells), in order; before them it gets the grader's agent (:mod:`autograder.kernel_side`);
- at each test cell, the trusted runner (:mod:`autograder.trusted_runner`, a separate Python process that runs
  instructor code only) executes the cell's source, hidden tests included, in a namespace where the released
  notebook's given cells ran and every name the released answer cells define is a proxy; a proxy's call is
  relayed here to the kernel, which answers with data only;
- the test cell's outputs in the autograded notebook are the runner's (an error output when the cell raised, the
  value of a last expression for nbgrader's partial credit), so nbgrader's ``SaveAutoGrades`` scores it exactly as
  it would have scored the cell run in a kernel.

Hidden test source never enters the student's process, so no exception raised there can carry it out, and no
hook, tracer, input transformer or patched helper there can change how an assertion turns out: the assertions
run here on the values the student's code returned. What the student's process can still decide is only what it
returns, i.e. doing the work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from nbformat import NotebookNode

from autograder.notebooks import is_answer, is_test, nbgrader_meta

# Assignments whose tests run in the trusted runner: their test cells call the student's functions with data
# (arrays, numbers, lists, dicts, NumPy generators) and check what comes back; the "NumPy only" guards (03, 04,
# 08) and 02's switched-off gradient checkers run in the kernel around the calls. 02 passes callbacks (lambdas)
# into the student's code: they run in the kernel, rebuilt from their source (trusted_runner, "Callbacks and
# given data"); 04's Fashion-MNIST arrays come from a given cell that both sides run, and are never sent. In 05
# and 06 (PyTorch objects) tensors cross as data, models and loaders stay in the kernel behind handles, and the
# helpers of dlcourse.torch_testing run there on the student's objects (trusted_runner.KERNEL_CALLS), returning
# outputs, gradients and parameters that the test checks here. 09-debugging too: its tests keep their models in
# the kernel (student_side) and read back what the student's code left there (state_of, gradients_of) to compare
# with references of their own; the mode evaluate leaves a model in is read from the kernel. 10's hidden test must
# run here: it scores the student's predictions on held-out labels (autograder.heldout).
TRUSTED_ASSIGNMENTS = frozenset({"01-losses", "02-gradient-descent", "03-backprop", "04-numpy-net", "05-pytorch",
                                 "06-cnn", "07-optimizers", "08-regularization", "09-debugging", "10-capstone"})
AGENT = Path(__file__).with_name("kernel_side.py")
CODEC = Path(__file__).with_name("codec.py")
RUNNER = Path(__file__).with_name("trusted_runner.py")
MAX_ANSWER = 96 * 2**20     # characters of one answer of the kernel's agent (its arrays: 64 MiB at most)
STREAM_LIMIT = 100_000      # characters of the kernel's output kept per test cell


def agent_source() -> str:
    """The program run in each kernel before the submission: the data format's code (:mod:`autograder.codec`, as a
    string the agent executes as a module of its own), then the agent (:mod:`autograder.kernel_side`)."""
    codec = CODEC.read_text(encoding="utf-8")
    return f"__ag_codec_source = {codec!r}\n" + AGENT.read_text(encoding="utf-8")


def uses_trusted_runner(assignment: str, mode: str = "auto") -> bool:
    """Whether the test cells of ``assignment`` run in the trusted runner (``mode``: auto, trusted, kernel)."""
    if mode == "trusted":
        return True
    if mode == "kernel":
        return False
    return assignment in TRUSTED_ASSIGNMENTS


def plan(nb: NotebookNode, reference) -> dict:
    """What the trusted runner needs for one repaired, restored notebook: the answer names (from the released
    notebook, never from the student's metadata) and, per cell index, the given source it replays."""
    names = sorted({name for defined in reference.answers.values() for name in defined})
    given = {}
    for index, cell in enumerate(nb.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        released = reference.cells.get(grade_id)
        if (released is None or released.cell_type != "code" or is_answer(released) or is_test(released)
                or "check_submission" in released.source):
            continue
        given[index] = (grade_id, released.source)
    tests = {i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and is_test(c) and nbgrader_meta(c).get("grade_id") in reference.tests}
    return {"names": names, "given": given, "tests": tests}


class KernelStopped(Exception):
    """The kernel died or had to be killed during a call (``reason`` says how)."""

    def __init__(self, reason: str, timeout: bool):
        super().__init__(reason)
        self.reason, self.timeout = reason, timeout


class TrustedRunner:
    """One trusted runner process for one notebook, and the relay of its calls to the student's kernel."""

    grace = 30.0   # seconds a test cell's own (trusted) work may take beyond the cell's time limit

    def __init__(self, slot, kc, names: list[str], server: str | None = None):
        self.slot, self.kc, self.names, self.server = slot, kc, names, server
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer = None
        self.pid: int | None = None
        self.folder = tempfile.mkdtemp(prefix="ag-trusted-")
        self.calls = 0
        self.stream_chars = 0
        self.given_cells: list[tuple[str, str]] = []   # replayed if the runner has to be replaced
        self.dead = False

    async def start(self) -> None:
        """Fork a runner from the server (:class:`RunnerServer`) or, without one, start a process of its own."""
        if self.server is not None:
            self.reader, self.writer = await asyncio.open_unix_connection(self.server, limit=MAX_ANSWER + 2**20)
        else:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(RUNNER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, cwd=self.folder, env=runner_environment(),
                limit=MAX_ANSWER + 2**20)
            self.reader, self.writer = self.process.stdout, self.process.stdin
        hello = await self._receive(120)
        self.pid = int(hello.get("pid", 0)) or None
        await self._send({"op": "names", "names": self.names})

    async def install_agent(self, timeout: float = 60) -> None:
        """Define the agent in the kernel, before any cell of the submission runs."""
        msg_id = self.kc.execute(agent_source(), silent=True, store_history=False,
                                 allow_stdin=False)
        await self._reply(msg_id, timeout)

    async def _send(self, message: dict) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def _receive(self, timeout: float) -> dict:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise RuntimeError("the trusted test runner stopped")
        return json.loads(line)

    async def given(self, grade_id: str, source: str, timeout: float, replay: bool = False) -> None:
        if not replay:
            self.given_cells.append((grade_id, source))
        await self._send({"op": "given", "grade_id": grade_id, "source": source, "names": self.names})
        await self._receive(timeout)

    async def restart(self, timeout: float) -> None:
        """A fresh runner after one was stopped (a test cell that ran too long): the given cells again, the
        variables of earlier test cells are lost."""
        self.kill()
        if self.writer is not None:
            self.writer.close()
        self.process = self.reader = self.writer = self.pid = None
        await self.start()
        for grade_id, source in self.given_cells:
            await self.given(grade_id, source, timeout, replay=True)
        self.dead = False

    async def test(self, cell: NotebookNode, count: int, timeout: float | None
                   ) -> tuple[list, dict, KernelStopped | None]:
        """Run one test cell; return its outputs, its verdict and, when the kernel died or was killed during one
        of its calls, how (the caller then stops the notebook as for a kernel that died in a cell)."""
        limit = timeout or 3600
        if self.dead:
            await self.restart(limit)
        deadline = time.monotonic() + limit
        streams: list[dict] = []
        self.stream_chars = 0
        stopped = None
        message = {"op": "test", "source": cell.source, "grade_id": nbgrader_meta(cell).get("grade_id"),
                   "count": count}
        while True:
            left = deadline - time.monotonic() + self.grace   # the runner's own work after the kernel's answers
            try:
                if message is not None:
                    await self._send(message)
                message = await self._receive(max(left, 1))
            except (asyncio.TimeoutError, RuntimeError, ValueError, OSError) as error:
                self.kill()
                self.dead = True
                if isinstance(error, asyncio.TimeoutError):
                    outputs = [_error("CellTimeoutError", f"the test cell ran longer than {limit} s")]
                    return _merge(streams, outputs), {"by": "timeout"}, stopped
                outputs = [_error("TrustedRunnerError", f"the trusted test runner failed: {error}"[:300])]
                return _merge(streams, outputs), {"by": "error"}, stopped
            if message.get("op") == "done":
                outputs = _merge(streams, message.get("outputs", []))
                verdict = message.get("verdict", {})
                return outputs, verdict, stopped
            if message.get("op") != "call":
                message = None
                continue
            if stopped is not None:   # the kernel is gone: every later call fails the same way
                message = {"ok": False, "why": "timeout" if stopped.timeout else "died", "detail": stopped.reason}
                continue
            try:
                answer = await self.call(message["request"], max(deadline - time.monotonic(), 0.1), streams)
                message = {"ok": True, "answer": answer}
            except KernelStopped as error:
                stopped = error
                message = {"ok": False, "why": "timeout" if error.timeout else "died", "detail": error.reason}
            except _CallTimeout:
                message = {"ok": False, "why": "timeout",
                           "detail": f"the submission's code ran longer than the time limit ({limit} s)"}
                deadline = time.monotonic()   # later calls of this cell get no more time
            except _NoAnswer as error:
                message = {"ok": False, "why": "failed", "detail": str(error)}

    async def call(self, request: str, timeout: float, streams: list) -> str:
        """Relay one call to the kernel's agent; return its answer (a string, never evaluated here)."""
        self.calls += 1
        # user_expressions are evaluated directly (no input transformers, no pre/post_run_cell hooks: silent).
        msg_id = self.kc.execute("", silent=True, store_history=False, allow_stdin=False,
                                 user_expressions={"r": f"__ag__({request!r})"})
        reply = await self._reply(msg_id, timeout, streams)
        expression = reply.get("content", {}).get("user_expressions", {}).get("r", {})
        if expression.get("status") != "ok":
            raise _NoAnswer(f"{str(expression.get('ename', 'no answer'))[:80]}")
        text = expression.get("data", {}).get("text/plain", "")
        if not isinstance(text, str) or len(text) > MAX_ANSWER:
            raise _NoAnswer("an answer that is not data")
        try:
            return str_literal(text)
        except ValueError:
            raise _NoAnswer("an answer that is not data") from None

    async def _reply(self, msg_id: str, timeout: float, streams: list | None = None) -> dict:
        """Wait for the shell reply of ``msg_id`` (interrupting, then killing, the kernel after ``timeout``),
        collecting the kernel's stream output of that request."""
        deadline = time.monotonic() + timeout
        interrupted = False
        reply = None
        while reply is None:
            now = time.monotonic()
            if now > deadline and not interrupted:
                self.slot.signal_kernel(2)   # SIGINT, as nbclient interrupts a cell that runs too long
                interrupted, deadline = True, now + 10
            elif now > deadline:
                self.slot.signal_kernel(9)
                self.slot.kernel_alive()
                raise KernelStopped("did not stop after the time limit, even when interrupted", timeout=True)
            try:
                message = await self.kc.get_shell_msg(timeout=0.5)
            except Exception:   # queue.Empty: nothing yet; is the kernel still there?
                if not self.slot.kernel_alive():
                    end = self.slot.kernel_end
                    raise KernelStopped(end.reason() if end else "died (killed)", timeout=False) from None
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                reply = message
        # The output of this request (the student's prints and warnings), until the kernel is idle again.
        idle_deadline = time.monotonic() + 10
        while time.monotonic() < idle_deadline:
            try:
                message = await self.kc.get_iopub_msg(timeout=0.2)
            except Exception:
                if not self.slot.kernel_alive():
                    break
                continue
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message.get("msg_type")
            if kind == "stream" and streams is not None:
                text = str(message["content"].get("text", ""))[:4 * STREAM_LIMIT - self.stream_chars]
                if text:   # a printout of any size costs the grader a bounded amount
                    self.stream_chars += len(text)
                    streams.append({"output_type": "stream", "name": message["content"].get("name", "stdout"),
                                    "text": text})
            elif kind == "status" and message["content"].get("execution_state") == "idle":
                break
        if interrupted:
            raise _CallTimeout()
        return reply

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass

    async def close(self) -> None:
        try:
            await self._send({"op": "exit"})
            if self.process is not None:
                await asyncio.wait_for(self.process.wait(), 5)
            else:
                await asyncio.wait_for(self.reader.read(), 5)   # the runner closes its end when it exits
        except Exception:   # noqa: BLE001 - it is gone or stuck: make sure it is gone
            self.kill()
        if self.writer is not None:
            self.writer.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def runner_environment() -> dict[str, str]:
    # Held-out data reaches a runner only when the grader names it (RunnerServer's extra_env).
    env = {k: v for k, v in os.environ.items() if not k.startswith("JPY") and k != "DLCOURSE_HELDOUT"}
    env.update(NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return env


class RunnerServer:
    """One fork server of trusted runners for a grading run: it imports the assignment's modules once (as the
    kernel factories do), and forks a fresh runner for every notebook."""

    def __init__(self, modules: tuple[str, ...], extra_env: dict[str, str] | None = None):
        import subprocess

        self.folder = tempfile.mkdtemp(prefix="ag-runner-")
        os.chmod(self.folder, 0o700)
        self.path = os.path.join(self.folder, "runner.sock")
        self.process = subprocess.Popen([sys.executable, str(RUNNER), "--server", self.path, json.dumps(modules)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        cwd=self.folder, env={**runner_environment(), **(extra_env or {})})

    def wait_ready(self, timeout: float = 300) -> str:
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready or self.process.stdout.readline().strip() != b"ready":
            self.close()
            raise RuntimeError("the trusted test runner's server did not start")
        return self.path

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except Exception:   # noqa: BLE001
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def str_literal(text: str) -> str:
    """The str whose ``repr()`` is ``text``; ValueError for anything else. Evaluates nothing.

    Not ``ast.literal_eval``: this runs on the workers' threads while the grader's thread parses notebooks, and
    CPython 3.11's AST constructor is not thread-safe ("SystemError: AST constructor recursion depth mismatch",
    CPython issue gh-106905: a submission failed in prepare that way).
    """
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        raise ValueError("not a str literal")
    body, index = text[1:-1], 0
    while index < len(body):   # repr() escapes its quote inside: an unescaped one ends the literal early
        if body[index] == text[0] or (body[index] == "\\" and index == len(body) - 1):
            raise ValueError("not one str literal")
        index += 2 if body[index] == "\\" else 1
    try:   # repr() escapes backslashes, the quote and unprintable characters; printable ones stay as they are
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as error:
        raise ValueError(str(error)) from None


class _NoAnswer(Exception):
    pass


class _CallTimeout(Exception):
    """The call ran past the time limit and was interrupted; the kernel lives on."""


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def _merge(streams: list[dict], outputs: list[dict]) -> list[dict]:
    """The kernel's streams (in order, merged per name and capped), then the runner's outputs."""
    merged: list[dict] = []
    for stream in streams:
        if merged and merged[-1]["name"] == stream["name"]:
            merged[-1]["text"] = (merged[-1]["text"] + stream["text"])[-STREAM_LIMIT:]
        else:
            merged.append(dict(stream, text=stream["text"][-STREAM_LIMIT:]))
    for stream in merged:
        stream["text"] = _defuse_check_lines(stream["text"])
    return merged + outputs


def _defuse_check_lines(text: str) -> str:
    """The kernel's printout with no line that reads as a failed check of dlcourse.testing: the grader takes the
    message of a partially passed test cell from those lines, and the student's code must not write it (it could
    print what it saw of a hidden test, e.g. a callback's source)."""
    from dlcourse.testing import FAILED_MARK

    return "\n".join(f"(printed by the submission) {line}" if line.lstrip().startswith(FAILED_MARK) else line
                     for line in text.split("\n"))
