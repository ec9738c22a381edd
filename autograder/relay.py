"""A relay between the grader and one kernel's sockets that bounds how much the kernel can send the grader.

The grader's ZeroMQ sockets receive in a thread of their own and queue what arrives while the grader is busy,
whole messages of any size and any number of parts. So no socket option bounds the memory a kernel can make the
grader hold: a kernel that resent one 64 MiB buffer 40 times, which costs it no memory of its own, raised the
grader's by 2.2 GiB in 10 s, and a message never ended (one part after another) grows it without limit.

So the grader never connects to a kernel's socket files itself. For each of the kernel's five sockets the relay
listens on a Unix socket of its own, in a folder of the grader's; each connection the grader's client opens there
is joined to the kernel's socket, and the relay copies the bytes both ways (the ZeroMQ protocol passes through
unchanged). It counts what the kernel sends, on all its sockets together. Past ``budget`` bytes it closes every
connection and refuses new ones, and :attr:`KernelRelay.flooded` tells the slot to stop the kernel. The grader
then holds at most ``budget`` bytes of that kernel's messages, plus one chunk per connection in the relay.

The relay reads from one side only once the other side has taken what it read before, so a peer that reads
slowly slows the sender instead of filling the relay.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
from pathlib import Path

CHUNK = 256 * 1024
CONNECT_SECONDS = 5


class _End:
    """One side of a joined connection: its socket, the other side, and the bytes waiting to be written to it."""

    def __init__(self, sock: socket.socket, counted: bool):
        self.sock = sock
        self.counted = counted      # bytes read from this side count against the budget (the kernel's side)
        self.peer: _End | None = None
        self.pending = b""
        self.registered = False


class KernelRelay:
    """Relay the grader's connections to one kernel's sockets, counting the bytes the kernel sends.

    Args:
        folder: a folder of the grader's, where the relay listens (one Unix socket per name of ``targets``).
        targets: socket name -> the path of the kernel's socket to join each connection to.
        budget: bytes the kernel may send, all sockets together; 0 for no limit.
    """

    def __init__(self, folder: Path, targets: dict[str, str], budget: int):
        self.budget = budget
        self.received = 0
        self.flooded = False
        self._targets: dict[socket.socket, str] = {}
        self._ends: set[_End] = set()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._closing = False
        try:
            for name, target in targets.items():
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._targets[listener] = target
                listener.bind(str(folder / name))
                listener.listen(16)
                listener.setblocking(False)
                self._selector.register(listener, selectors.EVENT_READ, listener)
        except OSError:
            self._shut()
            self._selector.close()
            os.close(self._wake_read)
            os.close(self._wake_write)
            raise
        self._thread = threading.Thread(target=self._run, name=f"relay {folder.name}", daemon=True)
        self._thread.start()

    # -- the loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._closing and not self.flooded:
                for key, events in self._selector.select():
                    if key.data is None:   # close() woke us
                        return
                    if isinstance(key.data, socket.socket):
                        self._accept(key.data)
                    elif key.data in self._ends:
                        self._step(key.data, events)
                    if self.flooded:
                        return
        finally:
            self._shut()

    def _accept(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        kernel.settimeout(CONNECT_SECONDS)   # a local socket connects at once, unless its backlog is full
        try:
            kernel.connect(self._targets[listener])
        except OSError:   # the kernel is gone: the client sees its connection closed, as without the relay
            kernel.close()
            client.close()
            return
        grader_end, kernel_end = _End(client, counted=False), _End(kernel, counted=True)
        grader_end.peer, kernel_end.peer = kernel_end, grader_end
        for end in (grader_end, kernel_end):
            end.sock.setblocking(False)
            self._ends.add(end)
            self._watch(end)

    def _step(self, end: _End, events: int) -> None:
        peer = end.peer
        try:
            if events & selectors.EVENT_WRITE and end.pending:
                sent = end.sock.send(end.pending)
                end.pending = end.pending[sent:]
            if events & selectors.EVENT_READ and not peer.pending:
                data = end.sock.recv(CHUNK)
                if not data:
                    self._drop(end)
                    return
                if end.counted:
                    self.received += len(data)
                    if self.budget and self.received > self.budget:
                        self.flooded = True
                        return
                try:
                    sent = peer.sock.send(data)
                except BlockingIOError:
                    sent = 0
                peer.pending = data[sent:]
        except OSError:   # reset, broken pipe: the connection ends, as it would have without the relay
            self._drop(end)
            return
        self._watch(end)
        self._watch(peer)

    def _watch(self, end: _End) -> None:
        """Read from ``end`` while its peer has nothing pending; write to it while it has something pending."""
        events = (0 if end.peer.pending else selectors.EVENT_READ) | (selectors.EVENT_WRITE if end.pending else 0)
        if events and end.registered:
            self._selector.modify(end.sock, events, end)
        elif events:
            self._selector.register(end.sock, events, end)
        elif end.registered:
            self._selector.unregister(end.sock)
        end.registered = bool(events)

    def _drop(self, end: _End) -> None:
        """Close a joined connection, both sides (the grader's client then reconnects, as ZeroMQ does)."""
        for side in (end, end.peer):
            if side in self._ends:
                self._ends.discard(side)
                if side.registered:
                    self._selector.unregister(side.sock)
                side.sock.close()

    def _shut(self) -> None:
        for listener in self._targets:   # first: once a connection is seen closed, no new one is accepted
            try:
                self._selector.unregister(listener)
            except (KeyError, ValueError):
                pass
            listener.close()
        self._targets.clear()
        for end in list(self._ends):
            if end.registered:
                self._selector.unregister(end.sock)
            end.sock.close()
        self._ends.clear()

    # -- from the grader's thread ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop relaying: close every connection and the listening sockets (again: nothing more to do)."""
        if self._closing:
            return
        self._closing = True
        try:
            os.write(self._wake_write, b"x")
        except OSError:
            pass
        self._thread.join(timeout=10)
        self._selector.close()
        for descriptor in (self._wake_read, self._wake_write):
            os.close(descriptor)
