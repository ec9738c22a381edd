"""Execute one prepared notebook in a sandboxed kernel, the way nbgrader's ``Execute`` preprocessor does.

The cells run through nbgrader's own ``Execute`` (an nbclient ``NotebookClient``): same outputs, same
execution counts, same handling of errors (``allow_errors``) and of timeouts (interrupt the kernel, record a
``CellTimeoutError``, carry on with the next cell). Two situations that make stock nbgrader give up on the whole
notebook are contained here instead:

- the kernel dies (``os._exit``, a crash, the memory or CPU limit): the cell that killed it gets an error
  saying so, every later cell is marked as not run (an error output, so a test cell scores 0), and the cells
  before keep their results;
- the kernel ignores the interrupt after a timeout (an infinite loop that catches ``KeyboardInterrupt``): it is
  killed and treated as above.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from autograder.sandbox import Slot

NOT_RUN = "NotRunError"
KERNEL_DIED = "KernelDiedError"


@dataclass
class Outcome:
    """What happened while executing one notebook."""

    nb: NotebookNode
    seconds: float = 0.0
    problem: str = ""                                     # "" when every cell ran
    timeouts: list[int] = field(default_factory=list)     # indices of cells interrupted after the time limit


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as the kernel would have produced it: nbgrader scores a test cell holding one 0."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


def _make_client(nb: NotebookNode, km, kc, timeout: int | None):
    from nbgrader.preprocessors import Execute

    from autograder.nbgrader_api import load_config
    from autograder.sandbox import OutputBudget

    class SandboxExecute(OutputBudget, Execute):   # outputs capped in bytes as they arrive (errors kept)
        # How long output may trail the execute reply (and an interrupted kernel may take to stop): on a busy
        # machine nbgrader's 4 s can fail a whole notebook.
        iopub_timeout = 10

    client = SandboxExecute(config=load_config())
    # A kernel it did not start: nbclient then neither starts nor shuts one down.
    client.nb, client.km, client.kc, client.owns_km = nb, km, kc, False
    client.output_budget = km.slot.limits.output_bytes
    if timeout is not None:
        client.timeout = timeout
    return client


def _stopped(nb: NotebookNode, index: int, reason: str, outcome: Outcome) -> None:
    """The kernel stopped in cell ``index``: say so there, mark every later code cell as not run."""
    nb.cells[index].outputs.append(error_output(KERNEL_DIED, f"the kernel {reason} while running this cell; "
                                                             f"the cells after it were not run"))
    for later in nb.cells[index + 1:]:
        if later.cell_type == "code":
            later.outputs = [error_output(NOT_RUN, "not run: the kernel had stopped earlier")]
    outcome.problem = f"kernel {reason} in cell {index}"


async def _execute(slot: Slot, nb: NotebookNode, timeout: int | None, outcome: Outcome,
                   trusted: dict | None = None) -> None:
    from autograder.verdict import TrustedRunner

    kc, km = await slot.start_kernel()
    client = _make_client(nb, km, kc, timeout)
    client.reset_execution_trackers()
    runner = None
    try:
        info = await client.async_wait_for_reply(kc.kernel_info())
        if info is not None:
            nb.metadata["language_info"] = info["content"]["language_info"]
        if trusted is not None:
            runner = TrustedRunner(slot, kc, trusted["names"], trusted.get("server"))
            await runner.start()
            await runner.install_agent()
        count = 0
        for index, cell in enumerate(nb.cells):
            if runner is not None and index in trusted["tests"]:
                # The test cell runs in the trusted runner; its outputs are the runner's.
                count += 1
                outputs, verdict, stopped = await runner.test(cell, count, timeout)
                cell.outputs = [NotebookNode(o) for o in outputs]
                cell.execution_count = count
                cell.metadata.setdefault("autograder", {})["verdict"] = verdict
                if verdict.get("by") == "timeout":
                    outcome.timeouts.append(index)
                if stopped is not None:
                    if not stopped.timeout:
                        slot.finish_kernel()
                    _stopped(nb, index, stopped.reason, outcome)
                    return
                continue
            try:
                await client.async_execute_cell(cell, index, store_history=True)
                if cell.cell_type == "code" and cell.get("execution_count"):
                    count = cell.execution_count
            except (DeadKernelError, CellTimeoutError) as error:
                if isinstance(error, CellTimeoutError):
                    slot.signal_kernel(9)
                    reason = "did not stop after the time limit, even when interrupted"
                else:
                    end = slot.finish_kernel()
                    reason = end.reason() if end else "died (killed)"
                _stopped(nb, index, reason, outcome)
                return
            if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError"
                   for o in cell.get("outputs", [])):
                outcome.timeouts.append(index)
            if runner is not None and index in trusted["given"]:
                grade_id, source = trusted["given"][index]
                await runner.given(grade_id, source, timeout or 600)
    finally:
        kc.stop_channels()
        if runner is not None:
            await runner.close()


def execute_notebook(slot: Slot, nb: NotebookNode, timeout: int | None = None,
                     trusted: dict | None = None) -> Outcome:
    """Run every code cell of ``nb`` (in place) in a fresh kernel of ``slot``; always leaves the slot clean.

    ``trusted``: the plan of :func:`autograder.verdict.plan`; its test cells then run in the trusted runner
    (:mod:`autograder.verdict`) instead of the kernel.
    """
    outcome = Outcome(nb)
    start = time.perf_counter()
    try:
        asyncio.run(_execute(slot, nb, timeout, outcome, trusted))
    finally:
        slot.finish_kernel()
        outcome.seconds = time.perf_counter() - start
    return outcome
