"""
A console log whose write never returns (a hard-mounted NFS server gone):
the real reactor, a pty pair as each line's device, real TCP clients on
loopback, and the log's writes going into a pipe nobody reads (a real
write, blocked in the kernel).  The other line, and the log's own line,
go on; the stop ends in bounded time.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from serialgw.clients import consolelog
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.hung import Held
from tests.realio import Clients, listenerPort, ptyLine, startedPty, startGateway

ALL = bytes(range(256))


class StuckPipe(Held):
    """A pipe whose buffer is full and whose reader does not read: a blocking write into it waits in the kernel until L{release}."""

    def __init__(self, case: TestCase) -> None:
        super().__init__(case, "the log's write")
        self.reader, self.writer = os.pipe()
        os.set_blocking(self.writer, False)
        try:
            while True:
                os.write(self.writer, b"\0" * 65536)
        except BlockingIOError:
            pass
        os.set_blocking(self.writer, True)

    def write(self, fd: int, data: bytes) -> int:
        """What the log's os.write does instead: into the pipe, waiting there (not on the reactor's thread: see L{Held})."""
        if not self.enter():
            return len(data)
        return os.write(self.writer, data)

    def release(self) -> None:
        """Read the pipe until it is closed: the stuck write returns."""
        if self.released.is_set():
            return
        Held.release(self)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        try:
            while os.read(self.reader, 1 << 20):
                pass
        except OSError:
            pass
        finally:
            os.close(self.reader)

    def close(self) -> None:
        self.release()
        os.close(self.writer)  # (the drain then reads to the end and closes the reader)


class HungLogTests(TestCase):
    timeout = 60

    async def test_hungWriteHoldsNoLine(self) -> None:
        """A console log stuck in a real write: the other line's client round-trips every byte value, the log's own line's client gets all its output; what the log cannot hold is counted exactly; the stop ends within CLOSE_WAIT."""
        await self.hung(lambda line, path: {"log": LogSpec(path, format="", events="off")},
                        lambda line: line.logs[0])

    async def test_hungFileListenerHoldsNoLine(self) -> None:
        """A file: listener's regular file stuck in a real write: the same (its output dropped past the bound, counted exactly)."""
        await self.hung(lambda line, path: {"listeners": (f"file:{path}",)},
                        lambda line: next(c for c in line.clients if isinstance(c, FileClient)))

    async def hung(self, config: Callable[[str, str], dict[str, Any]], writer: Callable[[Line], Any]) -> None:
        """Line a's file (what C{config} gives it, the one C{writer} finds) stuck in a write; line b beside it."""
        self.patch(consolelog, "CLOSE_WAIT", 0.5)
        a, b = startedPty(self), startedPty(self)
        path = os.path.abspath(self.mktemp())
        keys = config("a", path)
        listeners = ("raw+tcp:0:interface=127.0.0.1",) + keys.pop("listeners", ())
        service = startGateway(self, ptyLine(a, *listeners, name="a", **keys),
                               ptyLine(b, "raw+tcp:0:interface=127.0.0.1", name="b"))
        stuck = StuckPipe(self)
        self.addCleanup(stuck.close)
        stuckOne = writer(service.lines["a"])
        stuckOne._osWrite = stuck.write
        clients = Clients()
        self.addCleanup(lambda: defer.ensureDeferred(clients.close()))
        onA = await clients.connect(listenerPort(service, 0))
        onB = await clients.connect(listenerPort(service, 1))
        onA.transport.write(b"a")  # type: ignore[union-attr]
        onB.transport.write(b"b")  # type: ignore[union-attr]
        await a.received.contains(b"a")
        await b.received.contains(b"b")
        a.write(b"first\n")
        self.assertEqual(await onA.received.length(6), b"first\n")
        await stuck.whenEntered()
        # The writer is in its write; the lines go on.
        onB.transport.write(ALL * 16)  # type: ignore[union-attr]
        self.assertEqual(await b.received.length(1 + 4096), b"b" + ALL * 16)
        b.write(ALL * 16)
        self.assertEqual(await onB.received.length(4096), ALL * 16)
        flood = b"".join(b"%07d\n" % i for i in range(300000))  # (2.4 MB: past the writer's bound)
        for start in range(0, len(flood), 2048):  # (what the pty takes at once)
            a.write(flood[start:start + 2048])
            await onA.received.length(6 + min(start + 2048, len(flood)))
        self.assertEqual(onA.received.data, b"first\n" + flood)
        self.assertFalse(stuck.released.is_set())
        dropped = stuckOne.dropped if isinstance(stuckOne, ConsoleLog) else stuckOne.behindDropped
        self.assertEqual(dropped + stuckOne._writes.waiting, 6 + len(flood))
        self.assertGreater(dropped, 0)
        await service.stopService()
        self.assertFalse(stuck.released.is_set())
