"""
A client told to go (idle timeout, escape d) that does not read what waits
for it is cut after CLOSE_GRACE seconds: loseConnection waits for the output
to drain, so it stayed connected for ever, attached and counted under
max-clients, after the log had said 'disconnected'.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import BoundedTransport, RecordingDevice


class CloseGraceTests(SynchronousTestCase):
    """Closing a client that does not read: cut after CLOSE_GRACE s; one that reads leaves at once, and no timer is left."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)

    def client(self, listener: str) -> tuple[TelnetClient, BoundedTransport]:
        client = TelnetClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        return client, transport

    def test_idleNonReaderCut(self) -> None:
        """idle=2 on a client whose output never drains: closed at 2 s, cut at 2 + CLOSE_GRACE s."""
        client, transport = self.client("telnet,idle=2,outbuf=1024+4444")
        self.line.deviceDataReceived(b"x" * 4096)
        self.clock.advance(2)
        self.assertEqual((transport.disconnecting, transport.disconnected), (True, False))
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)
        client.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_escapeDisconnectNonReaderCut(self) -> None:
        """^]d then 100 ^]? in the same read: nothing after ^]d is handled; not all read: cut after CLOSE_GRACE s."""
        client, transport = self.client("telnet,escape=^],outbuf=1024+4444")
        client.dataReceived(b"\x1dd" + b"\x1d?" * 100)
        self.assertTrue(transport.disconnecting)
        # Nothing after ^]d is handled.
        self.assertTrue(transport.value().endswith(b"[serialgw: bye]\r\n"), transport.value()[-200:])
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)

    def test_readerLeavesNoTimer(self) -> None:
        """A client that goes in time (its connection lost) leaves no timer behind."""
        client, transport = self.client("telnet,escape=^]+4444")
        client.dataReceived(b"\x1dd")
        client.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(transport.disconnected)

    def test_toldToGoSeesNoMore(self) -> None:
        """A person whose right is taken away by a reload is off the line at once: no more device output while the connection closes."""
        client, transport = self.client("telnet+4444")
        client.user = "bob"
        self.line.applyRights(Rights(write=("alice",), read=()))
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"[serialgw: bob may no longer use t]", transport.value())
        self.assertEqual(self.line.clients, [])
        self.line.deviceDataReceived(b"root password: hunter2")
        self.assertNotIn(b"hunter2", transport.value())
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)

    def test_streamNotCut(self) -> None:
        """Telling a stdio or pipe: client to go: off the line, closing, and no timer (such a transport cannot be cut)."""
        from twisted.internet import stdio

        from serialgw.clients.raw import RawClient

        class Stream(stdio.StandardIO):
            def __init__(self) -> None:
                self.closing = False

            def loseConnection(self) -> None:
                self.closing = True

            def pauseProducing(self) -> None:
                pass

        client = RawClient(self.line, Role.WRITER, listener=parseListener("raw,escape=^]+4444"), clock=self.clock)
        stream = Stream()
        client.transport = stream
        self.line.attach(client)
        client.disconnect()
        self.assertEqual((stream.closing, self.line.clients, self.clock.getDelayedCalls()), (True, [], []))


class _ClosingDevice(RecordingDevice):
    """A RecordingDevice a service can close."""

    def close(self) -> None:
        self.events.append(("close", None))


class RemovedLineTests(SynchronousTestCase):
    """A line removed by a reload: its clients are told, off the line at once, and one that does not read is cut."""

    def test_removedLineNonReaderCut(self) -> None:
        """closeLine: a telnet client that never reads is told, detached at once, and cut after CLOSE_GRACE s."""
        from serialgw.app.service import GatewayService

        clock = Clock()
        service = GatewayService([], reactor=clock)
        line = Line("t", _ClosingDevice(), clock=clock)
        service.lines["t"] = line
        client = TelnetClient(line, Role.WRITER, listener=parseListener("telnet,outbuf=1024+4444"), clock=clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        line.deviceDataReceived(b"login: ")
        service.closeLine("t")
        self.assertTrue(transport.value().endswith(b"login: \r\n[serialgw: this line was removed from the configuration]\r\n"),
                        transport.value()[-100:])
        self.assertEqual((line.clients, transport.disconnecting, transport.disconnected), ([], True, False))
        self.assertEqual(line.device.events[-1], ("close", None))  # type: ignore[attr-defined]
        clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)
        client.connectionLost(None)  # type: ignore[arg-type]
        self.assertEqual(clock.getDelayedCalls(), [])
