"""The relay between the grader and a kernel's sockets (autograder/relay.py), on plain Unix sockets: bytes pass
both ways unchanged, a slow reader slows the sender, and a sender past its budget is cut off for good.

The relay on a real kernel that floods the grader: tests/test_sandbox_hostile.py."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from autograder.relay import CHUNK, KernelRelay


class Kernel:
    """A stand-in for a kernel's socket: echoes what it receives, or sends ``send`` bytes when a client connects."""

    def __init__(self, folder: Path, send: int = 0):
        self.path = folder / "kernel-socket"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(self.path))
        self.server.listen(4)
        self.send = send
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.server.accept()
        with connection:
            try:
                if self.send:
                    block = os.urandom(CHUNK)
                    while self.sent < self.send:
                        connection.sendall(block)
                        self.sent += len(block)
                    return
                while data := connection.recv(65536):
                    connection.sendall(data)
            except OSError:   # the relay cut the connection
                pass

    def close(self):
        self.server.close()


@pytest.fixture
def relay_to(tmp_path):
    """relay_to(send=0, budget=0) -> (kernel, relay, the relay's folder), all closed after the test."""
    made = []

    def make(send: int = 0, budget: int = 0, kernel: bool = True):
        relay_folder, kernel_folder = tmp_path / f"r{len(made)}", tmp_path / f"k{len(made)}"
        relay_folder.mkdir()
        kernel_folder.mkdir()
        stand_in = Kernel(kernel_folder, send) if kernel else None
        target = stand_in.path if stand_in else kernel_folder / "nothing-there"
        relay = KernelRelay(relay_folder, {"shell": str(target)}, budget=budget)
        made.append((stand_in, relay))
        return stand_in, relay, relay_folder

    yield make
    for stand_in, relay in made:
        relay.close()
        if stand_in:
            stand_in.close()


def connect(relay_folder: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(relay_folder / "shell"))
    client.settimeout(10)
    return client


def test_bytes_pass_both_ways_unchanged(relay_to):
    _, relay, folder = relay_to(budget=64 * 2**20)
    client = connect(folder)
    data = os.urandom(5 * CHUNK + 123)   # more than a chunk: several reads and partial writes
    received = bytearray()

    def read():
        while len(received) < len(data):
            received.extend(client.recv(65536))

    reader = threading.Thread(target=read)
    reader.start()
    client.sendall(data)
    reader.join(timeout=30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    assert relay.received == len(data) and not relay.flooded   # only what the kernel sent counts
    client.close()


def test_a_slow_reader_slows_the_sender_instead_of_filling_the_relay(relay_to):
    """The relay holds one chunk per direction: while the grader does not read, the kernel's sends block."""
    kernel, relay, folder = relay_to(send=256 * 2**20, budget=0)
    client = connect(folder)
    time.sleep(1)   # the grader reads nothing meanwhile
    # What left the kernel sits in the socket buffers (a few MiB at most) and one chunk of the relay.
    assert kernel.sent < 32 * 2**20, kernel.sent
    assert relay.received < 32 * 2**20
    total = 0
    while total < 256 * 2**20:
        chunk = client.recv(2**20)
        assert chunk
        total += len(chunk)
    assert total == 256 * 2**20 and not relay.flooded   # no budget: nothing is cut off
    client.close()


def test_a_kernel_past_its_budget_is_cut_off_and_refused(relay_to):
    _, relay, folder = relay_to(send=64 * 2**20, budget=4 * 2**20)
    client = connect(folder)
    total = 0
    while chunk := client.recv(2**20):
        total += len(chunk)
    assert total <= 4 * 2**20 < relay.received and relay.flooded
    with pytest.raises(OSError):   # no new connection: the listening sockets are gone
        connect(folder)


def test_a_gone_kernel_closes_the_connection_and_close_stops_the_relay(relay_to):
    _, relay, folder = relay_to(kernel=False)
    client = connect(folder)
    assert client.recv(1) == b""   # joined to nothing: closed, as a refused connection would be
    before = threading.active_count()
    relay.close()
    assert threading.active_count() == before - 1
    with pytest.raises(OSError):
        connect(folder)
