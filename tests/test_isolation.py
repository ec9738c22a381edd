"""Isolation as a strategy (autograder.isolation): chosen once from --isolation, then what each strategy gives a slot,
and the bubblewrap command line on its own. One test starts a kernel without bubblewrap (the fallback)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder import isolation
from autograder.isolation import (BUBBLEWRAP, IPC, PLAIN, SANDBOX_DIR, WORK, SandboxError, bwrap_command,
                                  choose_isolation, isolation_warning, kernel_environment)
from autograder.limits import Limits
from autograder.sandbox import Slot


@pytest.mark.parametrize("works", [True, False])
def test_isolation_is_chosen_once_from_the_setting(monkeypatch, works):
    """Does auto take bubblewrap only where it works, none never, and bwrap refuse (saying why) where it does not?"""
    monkeypatch.setattr(isolation, "bubblewrap_works", lambda: works)
    assert choose_isolation("auto") is (BUBBLEWRAP if works else PLAIN)
    assert choose_isolation("none") is PLAIN
    if works:
        assert choose_isolation("bwrap") is BUBBLEWRAP
    else:
        with pytest.raises(SandboxError, match="bubblewrap"):
            choose_isolation("bwrap")


def test_each_strategy_gives_a_slot_its_folders_and_factory_settings(tmp_path):
    """Does a bubblewrap slot work in the sandbox's tmpfs, name its folders as the sandbox sees them and have the
    factory wipe them, while a plain slot works in a host folder of its own, said weak?"""
    boxed, plain = Slot(0, tmp_path, isolation=BUBBLEWRAP), Slot(1, tmp_path, isolation=PLAIN)
    assert boxed.work == Path(WORK) and plain.work == tmp_path / "s1" / "work"
    assert boxed.inside(boxed.ipc / "k1") == f"{IPC}/k1" and boxed.inside(Path(WORK)) == WORK
    assert plain.inside(plain.ipc / "k1") == str(tmp_path / "s1" / "ipc" / "k1")
    boxed_config, plain_config = BUBBLEWRAP.factory_config(boxed), PLAIN.factory_config(plain)
    assert boxed_config["pid_namespace"] and boxed_config["isolate_kernels"] and WORK in boxed_config["wipe"]
    assert not plain_config["pid_namespace"] and not plain_config["isolate_kernels"] and not plain_config["wipe"]
    assert BUBBLEWRAP.isolates and BUBBLEWRAP.weakness() is None
    assert not PLAIN.isolates and PLAIN.weakness() == isolation_warning()
    assert plain.weaknesses() == [isolation_warning()]


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap is not installed")
@pytest.mark.parametrize("as_root", [True, False])
def test_the_bubblewrap_command_line(tmp_path, as_root):
    """Does the sandbox die with the grader, get no network, a clean environment, read-only system folders, and
    only the slot's ipc folder writable (its logs and everything else of the host absent)?"""
    (tmp_path / "ipc").mkdir()
    (tmp_path / "etc").mkdir()
    env = kernel_environment(WORK)
    command = bwrap_command(tmp_path, WORK, env, Limits(), as_root=as_root)
    text = " ".join(command)
    for option in ("--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid", "--unshare-ipc",
                   "--clearenv", "--cap-drop ALL", "--remount-ro /"):
        assert option in text, option
    assert ("--unshare-user" in command) is not as_root
    assert ("CAP_SETUID" in command) is as_root
    writable = [command[i + 1] for i, arg in enumerate(command) if arg == "--bind"]
    assert writable == [str(tmp_path / "ipc")]
    assert command[command.index("--chdir") + 1] == WORK
    assert f"--setenv HOME {WORK}" in text and all(f"--setenv {key} " in text for key in env)
    assert str(Path.cwd()) not in [command[i + 1] for i, arg in enumerate(command) if arg == "--ro-bind"]
    assert f"--dir {SANDBOX_DIR}" in text


async def _output(slot: Slot, code: str) -> str:
    kc, _ = await slot.start_kernel()
    out: list[str] = []
    try:
        await kc.execute_interactive(code, timeout=120, store_history=False,
                                     output_hook=lambda msg: out.append(str(msg["content"].get("text", ""))))
    finally:
        kc.stop_channels()
    return "".join(out)


@pytest.mark.grading
def test_without_bubblewrap_a_kernel_runs_in_the_slots_own_folder():
    """Does the fallback start kernels in the slot's host working folder with the shipped files, emptied for the
    next submission?"""
    root = Path(tempfile.mkdtemp(prefix="ag-"))
    os.chmod(root, 0o755)
    shipped = root / "shipped.txt"
    shipped.write_text("shipped\n")
    slot = Slot(0, root, Limits(), ("ipykernel.kernelapp",), {"data/shipped.txt": shipped}, PLAIN)
    try:
        slot.start()
        code = "import os; print(os.getcwd(), sorted(os.listdir('.')), open('data/shipped.txt').read().strip())"
        first = asyncio.run(_output(slot, code + "; open('left.txt', 'w').write('x')"))
        assert slot.finish_kernel() is None
        second = asyncio.run(_output(slot, code))
        slot.finish_kernel()
        assert first == second == f"{root / 's0' / 'work'} ['data'] shipped\n", (first, second)
    finally:
        slot.close()
        shutil.rmtree(root, ignore_errors=True)
