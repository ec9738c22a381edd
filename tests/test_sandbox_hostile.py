"""Hostile kernels against one grading slot (autograder.sandbox), driven directly: no notebook, no gradebook.

Each case runs code a submission could run in its kernel, then checks the host and the next submission in the
same slot: a planted symbolic link never makes the grader delete or write a host file, killing the kernel
factory costs nothing to the next submission, System V shared memory does not reach it, the working folder is
a size-limited tmpfs, memory is counted for all of a submission's processes together (where a control group
can be made), outputs are capped before they reach the grader's memory.

As root the module also runs itself again as an ordinary user (``unshare --user --map-user=1000``), where the
kernels share the grader's user id. About 30 s as root and 20 s more as the ordinary user (quiet machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from autograder.sandbox import BUBBLEWRAP, Limits, OutputBudget, Slot, SubmissionCgroup, bubblewrap_works
from autograder.zygote import seccomp_program
from conftest import ROOT

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap cannot create a sandbox here")]

LIMITS = Limits(memory_bytes=1024 * 2**20, processes=64, cpu_seconds=120, work_bytes=64 * 2**20,
                tmp_bytes=64 * 2**20, output_bytes=4 * 2**20)
SHIPPED_TEXT = "shipped with the assignment\n"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A host folder with a canary file, and a folder of shipped files."""
    base = tmp_path_factory.mktemp("host")
    canary = base / "course"
    canary.mkdir()
    (canary / "canary.txt").write_text("the instructor's file\n")
    (canary / "sub").mkdir()
    (canary / "sub" / "gradebook.db").write_text("grades\n")
    os.chmod(canary, 0o777)   # even writable by anyone: only the grader following a link could touch it
    shipped = base / "shipped.txt"
    shipped.write_text(SHIPPED_TEXT)
    return {"canary": canary, "shipped": shipped, "tree": sorted(p.relative_to(canary) for p in canary.rglob("*"))}


def _slot(host, index: int = 0, **kwargs) -> Slot:
    root = Path(tempfile.mkdtemp(prefix="ag-"))
    os.chmod(root, 0o755)
    slot = Slot(index, root, kwargs.pop("limits", LIMITS), ("ipykernel.kernelapp", "numpy"),
                {"data/shipped.txt": host["shipped"]}, BUBBLEWRAP, **kwargs)
    slot.start()
    slot._test_root = root
    return slot


@pytest.fixture(scope="module")
def slot(host):
    slot = _slot(host)
    yield slot
    slot.close()
    shutil.rmtree(slot._test_root, ignore_errors=True)


async def _run(slot: Slot, code: str, deadline: float) -> str:
    kc, _ = await slot.start_kernel()
    out = []
    try:
        msg_id = kc.execute(code)
        stop = time.monotonic() + deadline
        while time.monotonic() < stop:
            try:
                msg = await kc.get_iopub_msg(timeout=0.5)
            except Exception:   # nothing yet: is the kernel still there, has it replied (its output dropped)?
                if not slot.kernel_alive():
                    out.append("<dead>")
                    break
                try:
                    reply = await kc.get_shell_msg(timeout=0.01)
                except Exception:
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    stop = min(stop, time.monotonic() + 2)   # the rest of its output, if any is still coming
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            content = msg["content"]
            out.append(str(content.get("text") or content.get("evalue") or ""))
        else:
            out.append("<deadline>")
    finally:
        kc.stop_channels()
    return "".join(out)


def run(slot: Slot, code: str, deadline: float = 60) -> tuple[str, object]:
    """Run ``code`` in a fresh kernel of ``slot``; its output and how the kernel ended (None: still alive)."""
    try:
        text = asyncio.run(_run(slot, code, deadline))
    finally:
        end = slot.finish_kernel()
    return text, end


def assert_next_submission_is_normal(slot: Slot) -> None:
    text, end = run(slot, "import os; print(sorted(os.listdir('.')), open('data/shipped.txt').read(), 6 * 7)")
    assert text == f"['data'] {SHIPPED_TEXT} 42\n", text
    assert end is None


def assert_host_untouched(host) -> None:
    canary = host["canary"]
    assert (canary / "canary.txt").read_text() == "the instructor's file\n"
    assert sorted(p.relative_to(canary) for p in canary.rglob("*")) == host["tree"]


def test_planted_links_never_make_the_grader_touch_host_files(slot, host):
    """Does replacing /sandbox/work and /sandbox/ipc (or what is in them) with links to a host folder leave
    that folder intact, and the next submission in the slot graded normally?"""
    canary = host["canary"]
    code = f"""
import os, shutil
done = []
def attempt(label, action):
    try:
        action(); done.append(label)
    except OSError as error:
        done.append(label + ':' + error.strerror)
for folder in ('/sandbox/work', '/sandbox/ipc'):
    attempt('rmtree ' + folder, lambda: shutil.rmtree(folder))
    attempt('rename ' + folder, lambda: os.rename(folder, '/tmp/moved'))
    attempt('link ' + folder, lambda: os.symlink({str(canary)!r}, folder))
    for entry in os.listdir(folder):   # the kernel's own sockets folder, the connection file...
        path = os.path.join(folder, entry)
        attempt('swap ' + path, lambda: (shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path)
                                         else os.unlink(path), os.symlink({str(canary)!r}, path)))
    attempt('plant ' + folder, lambda: os.symlink({str(canary)!r}, os.path.join(folder, 'planted')))
    attempt('plant file ' + folder,
            lambda: os.symlink({str(canary / 'canary.txt')!r}, os.path.join(folder, 'kernel.json')))
print(done)
"""
    text, _ = run(slot, code)
    assert "link /sandbox/work:" in text and "link /sandbox/ipc:" in text, text   # mount points: refused
    assert_host_untouched(host)
    assert_next_submission_is_normal(slot)
    assert_host_untouched(host)
    assert list(slot.ipc.iterdir()) == []   # nothing of the kernels is left on the host


def test_swapped_socket_files_never_make_the_grader_connect_elsewhere(slot, tmp_path):
    """Does a kernel that replaces its socket files with links to a host socket leave the grader connecting to the
    kernel it started (a fresh connection, as on a reconnect), and the host socket untouched?"""
    import socket

    from autograder.sandbox import SlotKernelClient

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    target = tmp_path / "host.sock"
    listener.bind(str(target))
    listener.listen(8)
    listener.settimeout(0.5)
    code = f"""
import glob, os
swapped = []
for path in glob.glob('/sandbox/ipc/*/k-*'):
    os.unlink(path)
    os.symlink({str(target)!r}, path)
    swapped.append(os.path.basename(path))
print(sorted(swapped))
"""

    async def scenario():
        kc, _ = await slot.start_kernel()
        try:
            reply = await kc.execute(code, reply=True, timeout=60)
            assert reply["content"]["status"] == "ok", reply
            again = SlotKernelClient()
            again.load_connection_info(kc.get_connection_info())
            again.start_channels()
            try:
                info = await again.kernel_info(reply=True, timeout=30)
                assert info["content"]["status"] == "ok"
            finally:
                again.stop_channels()
        finally:
            kc.stop_channels()

    try:
        asyncio.run(scenario())
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        slot.finish_kernel()
        listener.close()
    assert_next_submission_is_normal(slot)


def test_nothing_a_submission_leaves_reaches_the_next(slot):
    """Are files in the working folder, /tmp and /dev/shm, even in folders made unreadable, gone for the next
    submission?"""
    code = """
import os
for root in ('.', '/tmp', '/dev/shm'):
    os.makedirs(os.path.join(root, 'locked', 'deeper'))
    open(os.path.join(root, 'locked', 'deeper', 'answers.txt'), 'w').write('42')
    os.chmod(os.path.join(root, 'locked', 'deeper'), 0)
    os.chmod(os.path.join(root, 'locked'), 0)
print('left')
"""
    assert run(slot, code)[0] == "left\n"
    text, _ = run(slot, "import os; print([r for r in ('.', '/tmp', '/dev/shm') if 'locked' in os.listdir(r)])")
    assert text == "[]\n", text


def test_killing_the_factory_costs_the_next_submission_nothing(slot, host):
    """Does a kernel that signals every process it can see (the factory included) leave the next submission
    in the slot graded normally? Where kernels have another user id or PID namespace the factory survives."""
    code = """
import os, signal
hits = []
for name in os.listdir('/proc'):
    if name.isdigit() and int(name) != os.getpid():
        try:
            os.kill(int(name), signal.SIGKILL); hits.append(name)
        except OSError:
            pass
for target in (-1, 1, 2):
    try:
        os.kill(target, signal.SIGKILL); hits.append(str(target))
    except OSError:
        pass
print('tried', len(hits))
"""
    run(slot, code)
    if slot.kernel_uid is not None or slot.ready_info.get("namespaces"):
        assert slot.factory_alive(), "the kernel killed its factory"
    assert_next_submission_is_normal(slot)


def test_a_factory_that_dies_mid_submission_is_replaced(host):
    """If the factory dies while a kernel runs (where a kernel could kill it), is that kernel reported as
    killed and the next submission in the slot graded normally by a new factory?"""
    slot = _slot(host, index=2)
    try:
        async def die_mid_cell():
            kc, _ = await slot.start_kernel()
            try:
                kc.execute("import time; time.sleep(30)")
                await asyncio.sleep(0.5)
                slot.process.kill()   # bubblewrap, and with it the factory and the kernel
                slot.process.wait()
                stop = time.monotonic() + 10
                while slot.kernel_alive() and time.monotonic() < stop:
                    await asyncio.sleep(0.1)
            finally:
                kc.stop_channels()

        asyncio.run(die_mid_cell())
        end = slot.finish_kernel()
        assert end is not None and end.signal == 9, end
        assert_next_submission_is_normal(slot)
    finally:
        slot.close()
        shutil.rmtree(slot._test_root, ignore_errors=True)


def test_the_factory_keeps_no_capability_it_does_not_need(slot):
    """Does the factory hold only setuid, setgid and kill (as root), none as an ordinary user? (Its bounding
    set stays as bubblewrap leaves it: kernels run with no_new_privs, so no program they start gains any.)"""
    from autograder.sandbox import _host_pid

    factory = _host_pid(slot.process.pid, slot.ready_info["pid"])
    status = Path(f"/proc/{factory}/status").read_text()
    caps = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines() if line.startswith("Cap")}
    allowed = (1 << 5 | 1 << 6 | 1 << 7) if os.geteuid() == 0 else 0   # CAP_KILL, CAP_SETGID, CAP_SETUID
    for name in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert caps[name] & ~allowed == 0, f"{name} = {caps[name]:#x}"


def test_a_fork_bomb_is_bounded_and_gone_for_the_next_submission(slot):
    """Does a fork bomb stop at the process limit, and does the next kernel start with none of its processes
    counted (its last children may still be exiting when the factory has reaped)?"""
    bomb = """
import os
for _ in range(100000):
    try:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
    except OSError:
        break
print('stopped')
"""
    assert run(slot, bomb)[0] == "stopped\n"
    assert_next_submission_is_normal(slot)


def test_system_v_shared_memory_does_not_reach_the_next_submission(slot):
    """Is a shared memory segment (System V, and POSIX in /dev/shm) gone for the next submission?"""
    leave = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
ident = libc.shmget(0x5EC2E7, 4096, 0o1666)
address = libc.shmat(ident, None, 0)
ctypes.memmove(address, b'answers', 7)
open('/dev/shm/answers', 'w').write('answers')
print(ident >= 0)
"""
    assert run(slot, leave)[0] == "True\n"
    find = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget(0x5EC2E7, 0, 0), ctypes.get_errno() == 2, os.path.exists('/dev/shm/answers'))
"""
    assert run(slot, find)[0] == "-1 True False\n"


def test_working_folder_is_a_size_limited_tmpfs(slot):
    """Does writing 2 GB into the working folder fail at the cap (ENOSPC), not fill the host's disk?"""
    code = """
import errno, os
written = 0
chunk = b'x' * 2**20
try:
    with open('big', 'wb') as handle:
        while written < 2 * 2**30:
            handle.write(chunk); written += len(chunk)
            handle.flush()
except OSError as error:
    print(errno.errorcode[error.errno], written // 2**20)
"""
    text, end = run(slot, code)
    code_name, mib = text.split()
    assert code_name == "ENOSPC" and int(mib) <= LIMITS.work_bytes // 2**20, text
    assert end is None
    assert_next_submission_is_normal(slot)   # and the next one has its space back (the folder was emptied)


def test_memory_is_bounded_for_all_processes_together(slot):
    """With 1 GiB (+ the control group's margin), can four children holding 500 MiB each not all hold it at
    once? And can an honest kernel use 700 MiB of its 1 GiB (an address-space limit allowed only about 400)?"""
    if slot._group is None:
        pytest.skip("no control group can be made here, memory is bounded per process only: "
                    + SubmissionCgroup.unavailable)
    honest, end = run(slot, "import numpy as np; a = np.ones(700 * 2**20 // 8); print(a.sum() == a.size)")
    assert honest == "True\n" and end is None, honest
    code = """
import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(500 * 2**20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    children.append(pid)
done = sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
print('held', done)
"""
    text, end = run(slot, code)
    assert text in ("held 0\n", "held 1\n", "held 2\n", "<dead>"), text   # never 3 or 4 at once
    assert_next_submission_is_normal(slot)


def test_fallbacks_without_a_control_group_or_kernel_namespaces(host):
    """Without a control group, is each process bounded (RLIMIT_DATA) yet an honest kernel still able to use
    700 MiB of its 1 GiB? Without namespaces per kernel, is System V shared memory still removed, and do the
    weaknesses say so?"""
    slot = _slot(host, index=1, cgroup=False, kernel_namespaces=False)
    try:
        weaknesses = " ".join(slot.weaknesses())
        assert "no control group" in weaknesses and "System V IPC is removed" in weaknesses, weaknesses
        test_system_v_shared_memory_does_not_reach_the_next_submission(slot)
        honest, end = run(slot, "import numpy as np; a = np.ones(700 * 2**20 // 8); print(a.sum() == a.size)")
        assert honest == "True\n" and end is None, honest
        greedy, _ = run(slot, "import numpy as np; a = np.ones(1500 * 2**20 // 8)")
        assert "Unable to allocate" in greedy or greedy == "<dead>", greedy
    finally:
        slot.close()
        shutil.rmtree(slot._test_root, ignore_errors=True)


def test_a_huge_printout_is_capped_as_it_arrives(slot):
    """Does printing 300 MB (10 MB at a time) keep the graded notebook small and the grader's memory (peak)
    far below 300 MB, and a failing cell failing, with its message cut, whatever it printed?"""
    import nbformat

    from autograder.execute import execute_notebook

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import sys\nfor _ in range(30):\n    sys.stdout.write('x' * 10 * 2**20)\n"
                                  "    sys.stdout.flush()"),
        nbformat.v4.new_code_cell("raise AssertionError('y' * (12 * 2**20))"),
        nbformat.v4.new_code_cell("print('z' * 1000)\nassert False, 'small'")])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    execute_notebook(slot, nb, timeout=120)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    # Kept outputs would hold the 300 MB printed (286 MiB of text) on top of what any run holds: the 12 MiB error,
    # whose message and traceback arrive twice (output and reply) and are decoded whole, and the 10 MB messages
    # that ZeroMQ queues while the grader is busy. That part measured 132 to 142 MiB on an idle 2-core machine and
    # up to 168 MiB beside two busy loops (CI once saw 165), so the bar leaves room for load, not for kept output.
    assert grown < 250 * 2**20, f"the grader's peak memory grew by {grown // 2**20} MiB"
    assert sum(len(str(o)) for c in nb.cells for o in c.outputs) < 2 * LIMITS.output_bytes
    assert "output truncated" in str(nb.cells[0].outputs)
    for cell in nb.cells[1:]:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert errors and errors[0]["ename"] == "AssertionError", cell.outputs
        assert len(errors[0]["evalue"]) < 10_000
    assert_next_submission_is_normal(slot)


class PeakMemory:
    """The largest resident memory of this process while the block runs, over what it held before (sampled every
    10 ms: a flood holds its memory for seconds). Unlike ru_maxrss, an earlier test's peak cannot hide it."""

    def __enter__(self):
        self.before = self.peak = self._rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    @property
    def grown(self) -> int:
        return self.peak - self.before

    @staticmethod
    def _rss() -> int:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) * 1024

    def _sample(self):
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self._rss())


# A kernel that floods the grader without spending memory of its own: one buffer resent, from the kernel's own
# output thread (where its output socket lives). Signed messages, each resigned (a repeated signature is refused),
# or one message that never ends, part after part (nothing to sign; ZeroMQ queues the parts of a message until
# its last one).
FLOOD_SIGNED = """
import json, threading, uuid
kernel = get_ipython().kernel
session, out = kernel.session, kernel.iopub_socket.io_thread
frames = session.serialize(session.msg('stream', {'name': 'stdout', 'text': ''}, parent=kernel.get_parent('shell')))
frames[5] = b'{"name": "stdout", "text": "' + b'x' * (64 * 2**20) + b'"}'
done = threading.Event()
def flood():
    for _ in range(30):
        header = json.loads(frames[2]); header['msg_id'] = uuid.uuid4().hex; frames[2] = json.dumps(header).encode()
        frames[1] = session.sign(frames[2:6])
        out.socket.send_multipart([b'kernel.flood.stream'] + frames, copy=False)
    done.set()
out.schedule(flood)
done.wait(120)
print('sent')
"""
FLOOD_ENDLESS = """
import threading, zmq
out = get_ipython().kernel.iopub_socket.io_thread
blob = b'x' * (32 * 2**20)
done = threading.Event()
def flood():
    out.socket.send(b'kernel.flood.stream', zmq.SNDMORE)
    for _ in range(60):
        out.socket.send(blob, zmq.SNDMORE, copy=False)
    done.set()
out.schedule(flood)
done.wait(120)
print('sent')
"""


@pytest.mark.parametrize("flood", [FLOOD_SIGNED, FLOOD_ENDLESS], ids=["signed-messages", "endless-message"])
def test_a_kernel_flooding_the_grader_is_stopped_at_its_message_budget(host, flood):
    """Does a kernel that sends the grader 1.9 GiB (60 parts of one 32 MiB buffer, as messages or as one message
    that never ends) get stopped once it has sent its budget (64 MiB here), with the grader's memory growing by
    about that much, the cell saying why, the next cell not run, and the next submission graded normally?"""
    import nbformat

    from autograder.execute import KERNEL_DIED, NOT_RUN, execute_notebook

    budget = 64 * 2**20
    slot = _slot(host, limits=dataclasses.replace(LIMITS, message_bytes=budget))
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(flood),
                                             nbformat.v4.new_code_cell("print('after')")])
        with PeakMemory() as memory:
            outcome = execute_notebook(slot, nb, timeout=120)
        # Measured: 58 to 101 MiB, beside two busy loops too. With the relay's budget off, 333 MiB (messages: the
        # grader decodes some while they come) and 1.9 GiB (the endless message: ZeroMQ queues every part).
        assert memory.grown < 3 * budget, f"the grader's memory grew by {memory.grown // 2**20} MiB"
        died = [o for o in nb.cells[0].outputs if o.get("ename") == KERNEL_DIED]
        assert died and "more than 64 MiB of output and messages" in died[0]["evalue"], nb.cells[0].outputs
        assert nb.cells[1].outputs[0]["ename"] == NOT_RUN
        assert outcome.problem.startswith("kernel was stopped after sending the grader more than 64 MiB")
        assert_next_submission_is_normal(slot)
    finally:
        slot.close()
        shutil.rmtree(slot._test_root, ignore_errors=True)


def test_the_output_budget_keeps_only_so_many_bytes_per_notebook():
    """Does OutputBudget (for nbgrader's Execute) drop outputs past its budget, with one note?"""
    class Collector:
        def output(self, outs, msg, display_id, cell_index):
            outs.append(msg["content"]["text"] if "text" in msg["content"] else msg)
            return outs[-1]

    class Capped(OutputBudget, Collector):
        output_budget = 10 * 2**16

    client, outs = Capped(), []
    for _ in range(100):
        client.output(outs, {"content": {"name": "stdout", "text": "y" * 2**16}}, None, 0)
    kept = [o for o in outs if isinstance(o, str)]
    assert len(kept) == 10 and len(outs) == 11 and "output truncated" in outs[-1]["text"]
    # An error past the budget is kept (a failing test stays failing), its message cut.
    error = {"msg_type": "error", "content": {"ename": "AssertionError", "evalue": "z" * 2**20, "traceback": []}}
    client.output(outs, error, None, 0)
    assert outs[-1]["content"]["ename"] == "AssertionError" and len(outs[-1]["content"]["evalue"]) < 10_000


def test_kernels_run_filtered_and_under_their_own_user_id(slot):
    """Is a kernel refused new namespaces and mounts (seccomp), and (as root) under another user id?"""
    if seccomp_program() is None:
        pytest.skip("no seccomp filter for this processor architecture")
    code = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
print(libc.unshare(0x10000000), ctypes.get_errno(), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),
      ctypes.get_errno(), status['NoNewPrivs'].strip(), int(status['CapEff'], 16), os.getuid())
"""
    text, _ = run(slot, code)
    unshare, errno1, mount, errno2, no_new_privs, caps, uid = text.split()
    assert (unshare, errno1, mount, errno2, no_new_privs, caps) == ("-1", "1", "-1", "1", "1", "0"), text
    if os.geteuid() == 0:
        assert int(uid) == slot.kernel_uid != 0


def test_hostile_kernels_as_an_ordinary_user():
    """The same cases with the grader as an ordinary user (emulated with a user namespace when run as root)."""
    if os.environ.get("AG_HOSTILE_INNER"):
        pytest.skip("already running as the emulated ordinary user")
    if os.geteuid() != 0:
        pytest.skip("this run already is an ordinary user's")
    probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --user is not available here: {probe.stderr.decode(errors='replace')}")
    result = subprocess.run(
        ["unshare", "--user", "--map-user=1000", "--map-group=1000", sys.executable, "-m", "pytest", "-q", "-x",
         "-p", "no:cacheprovider", str(Path(__file__)), "-rs", "-k",
         # The cases where an ordinary user's grader differs: one user id for the factory and its kernels, no
         # control group unless delegated (the memory case then says why it is skipped). Not the fork bomb:
         # emulated, the "ordinary user" is root outside, which RLIMIT_NPROC does not bound.
         "planted or swapped or leaves or killing or shared_memory or memory_is_bounded or filtered or capability"],
        cwd=ROOT, env={**os.environ, "AG_HOSTILE_INNER": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
