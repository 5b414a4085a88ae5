"""
Replayed device output (escape r / R, a replay listener, the early output)
for a client that does not read stays within its output bound, and finding
the last lines does not cost the backlog again as one object a line.
"""

from __future__ import annotations

import tracemalloc

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import BoundedTransport, RecordingDevice

ESC = b"\x1d"


class ReplayBoundTests(SynchronousTestCase):
    """A replay is at most the client's outbuf (the newest bytes); the last lines are found from the end."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)
        self.line.backlogSize = 64 * 1024 * 1024

    def client(self, listener: str) -> tuple[RawClient, BoundedTransport]:
        client = RawClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        transport.clear()
        return client, transport

    def test_replayWithinOutbuf(self) -> None:
        """^]r on a backlog of one 1 MiB line: the client is sent the notice and the newest 1024 bytes, nothing more."""
        client, transport = self.client("raw,escape=^],outbuf=1024+4444")
        self.line.deviceDataReceived(b"a" * (1024 * 1024 - 1024) + b"b" * 1024)
        transport.drain()
        client.dataReceived(ESC + b"r")
        self.assertEqual(transport.value(), b"\r\n[serialgw: last 20 lines of t:]\r\n" + b"b" * 1024)

    def test_replayListenerWithinOutbuf(self) -> None:
        """A replay listener's client gets the newest outbuf bytes of a larger backlog on connect."""
        self.line.deviceDataReceived(b"a" * 5000 + b"b" * 2048)
        client = RawClient(self.line, Role.WRITER, listener=parseListener("raw,replay,outbuf=2048+4444"),
                           clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        self.assertEqual(transport.value(), b"b" * 2048)

    def test_lastLines(self) -> None:
        """^]R 2 gives the last two lines, the final newline kept; an unterminated last line counts as one."""
        client, transport = self.client("raw,escape=^]+4444")
        self.line.deviceDataReceived(b"one\ntwo\nthree\n")
        transport.drain()
        client.dataReceived(ESC + b"R2\r")
        self.assertTrue(transport.value().endswith(b"two\nthree\n"), transport.value())
        self.assertNotIn(b"one", transport.value())
        self.line.deviceDataReceived(b"fo")
        transport.drain()
        client.dataReceived(ESC + b"R2\r")
        self.assertTrue(transport.value().endswith(b"]\r\nthree\nfo"), transport.value())
        transport.drain()
        client.dataReceived(ESC + b"R99\r")
        self.assertTrue(transport.value().endswith(b"]\r\none\ntwo\nthree\nfo"), transport.value())

    def test_replayCostsNoObjectPerLine(self) -> None:
        """^]r on 4 MiB of 3-byte lines allocates about the backlog's size, not an object per line (was 60 MiB)."""
        client, transport = self.client("raw,escape=^]+4444")
        self.line.deviceDataReceived(b"ab\n" * (4 * 1024 * 1024 // 3))
        transport.drain()
        tracemalloc.start()
        try:
            client.dataReceived(ESC + b"r")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertTrue(transport.value().endswith(b"ab\n" * 20))
        self.assertLess(peak, 10 * 1024 * 1024)

    def test_replayStartsOnACharacter(self) -> None:
        """A replay cut by outbuf or by the backlog's size inside a UTF-8 character starts at the next whole one."""
        euro = "\u20ac".encode()
        self.line.deviceDataReceived(euro * 1000)
        client, transport = self.client("raw,escape=^],outbuf=1024+4444")
        client.dataReceived(ESC + b"r")
        self.assertEqual(transport.value(), b"\r\n[serialgw: last 20 lines of t:]\r\n" + euro * 341)
        self.line.backlogSize = 1000
        self.line.deviceDataReceived(euro * 1000)
        replayed = RawClient(self.line, Role.WRITER, listener=parseListener("raw,replay+4444"), clock=self.clock)
        transport = BoundedTransport()
        replayed.makeConnection(transport)
        self.assertEqual(transport.value(), euro * 333)
