"""
Console logs: lines stamped with the time, events marked, rotation by
size and by day under a Clock.
"""

from __future__ import annotations

import os
import time

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config import LogSpec
from serialgw.consolelog import ConsoleLog
from serialgw.endpoints import parseListener
from serialgw.line import Line
from serialgw.raw import RawClient
from serialgw.telnet import TelnetClient
from tests.fakes import RecordingDevice


class ConsoleLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        old = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"
        time.tzset()

        def restore() -> None:
            if old is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old
            time.tzset()

        self.addCleanup(restore)
        self.clock = Clock()
        self.clock.advance(1_800_000_000)  # 2027-01-15T08:00:00Z
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.path = self.mktemp()

    def read(self, path: str = "") -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()

    def test_stampedLinesAndEvents(self) -> None:
        """Each line gets the time; a line cut across reads is stamped once; events stand on their own line."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S "), self.clock)
        self.line.deviceDataReceived(b"Booting\r\nlog")
        self.clock.advance(2)
        self.line.deviceDataReceived(b"in: ")
        client = TelnetClient(self.line)
        client.makeConnection(StringTransport())
        client.dataReceived(b"\xff\xf3")
        log.close()
        self.assertEqual(
            self.read(),
            b"08:00:00 Booting\r\n08:00:00 login: \n08:00:02 [serialgw: 192.168.1.1:54321 attached as writer]\n"
            b"08:00:02 [serialgw: BREAK from 192.168.1.1:54321]\n",
        )

    def test_rotateBySize(self) -> None:
        """Past max size the log moves to .1, .1 to .2, and only keep files stay."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=100, daily=False, keep=2), self.clock)
        for i in range(5):
            self.line.deviceDataReceived(b"%d" % i * 60 + b"\n")
        log.close()
        self.assertEqual(self.read(), b"4" * 60 + b"\n")
        self.assertEqual(self.read(self.path + ".1"), b"3" * 60 + b"\n")
        self.assertEqual(self.read(self.path + ".2"), b"2" * 60 + b"\n")
        self.assertFalse(os.path.exists(self.path + ".3"))

    def test_rotateDaily(self) -> None:
        """At the first write of a new day the log rotates."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%d %H:%M ", keep=3), self.clock)
        self.line.deviceDataReceived(b"monday\n")
        self.clock.advance(24 * 3600)
        self.line.deviceDataReceived(b"tuesday\n")
        log.close()
        self.assertEqual(self.read(self.path + ".1"), b"15 08:00 monday\n")
        self.assertEqual(self.read(), b"16 08:00 tuesday\n")

    def test_rotateAfterTheFileWasRemoved(self) -> None:
        """
        The log file removed by someone else (an external logrotate): the
        rotation starts a new file, the line keeps its log and its clients.
        """
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=1), self.clock)
        self.line.deviceDataReceived(b"first\n")
        os.unlink(self.path)
        self.line.deviceDataReceived(b"second line\n")
        self.line.recordEvent("still here")
        self.assertIn(log, self.line.logs)
        log.close()
        self.assertEqual(self.read(self.path + ".1"), b"second line\n")
        self.assertEqual(self.read(), b"[serialgw: still here]\n")


class AttachTests(SynchronousTestCase):
    """A client whose attach goes wrong is fully attached or fully gone, never half."""

    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("web1", self.device, clock=Clock())

    def connect(self, listener: str = "raw+4444") -> tuple[RawClient, StringTransport]:
        client = RawClient(self.line, listener=parseListener(listener))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(transport)
        return client, transport

    def test_failingLogLeavesClientAttached(self) -> None:
        """A log that fails on the attach event is cut off; the client is on the list, reads and writes."""
        log = ConsoleLog(self.line, LogSpec(self.mktemp(), format=""), self.line.clock)
        self.addCleanup(log.close)

        def broken(text: str) -> None:
            raise TypeError("a log that cannot stamp")

        log.event = broken  # type: ignore[method-assign]
        client, transport = self.connect()
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.assertEqual((self.line.clients, self.line.logs), ([client], []))
        self.line.deviceDataReceived(b"login: ")
        client.dataReceived(b"root\r")
        self.assertEqual((transport.value(), self.device.events), (b"login: ", [("write", b"root\r")]))
        self.assertFalse(transport.disconnecting)

    def test_failedStartLeavesClientGone(self) -> None:
        """A session whose start fails after it joined the line (replay here) is detached and disconnected."""
        def broken() -> bytes:
            raise RuntimeError("no backlog")

        self.line.backlog = broken  # type: ignore[method-assign]
        client, transport = self.connect("raw,replay+4444")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.line.clients, [])
        self.assertTrue(transport.disconnecting)
        self.line.deviceDataReceived(b"login: ")
        self.assertEqual(transport.value(), b"")
