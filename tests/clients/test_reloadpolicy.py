"""
A reload that changes a listener's C{outbuf=} or C{policy=} in place: the
new bound and policy reach the network clients already connected through
it (L{applyListenerRights}), as they reach a client pty.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.factory import applyListenerRights
from serialgw.clients.guard import OutputGuard
from serialgw.clients.raw import RawClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import BoundedTransport, RecordingDevice


def guardOf(client: RawClient) -> OutputGuard:
    assert client.guard is not None
    return client.guard


class PolicyChangedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("rack4", self.device, clock=Clock())

    def raw(self, listener: str, port: int = 1) -> tuple[RawClient, BoundedTransport]:
        client = RawClient(self.line, Role.WRITER, listener=parseListener(listener))
        transport = BoundedTransport()
        transport.peerAddr = IPv4Address("TCP", "192.0.2.9", port)
        client.makeConnection(transport)
        return client, transport

    def test_blockMadeDropLetsTheDeviceGo(self) -> None:
        """
        A stuck client of a policy=block listener holds the device; the listener made policy=drop by a
        reload lets it go at once (it stayed held until the client left: seen with a real gateway, the
        device program's writes stayed at 0 B/s after the reload), the client then dropping its output.
        """
        stuck, stuckT = self.raw("raw,policy=block,outbuf=1024+4445")
        self.line.deviceDataReceived(b"a" * 2000)
        self.assertEqual(self.device.events, [("pause", None)])
        applyListenerRights(self.line, [parseListener("raw,policy=drop,outbuf=1024+4445")])
        self.assertEqual(self.device.events, [("pause", None), ("resume", None)])
        self.assertEqual((guardOf(stuck).policy, guardOf(stuck).bound), ("drop", 1024))
        self.line.deviceDataReceived(b"b" * 3000)
        self.assertEqual(stuckT.value(), b"a" * 2000)
        self.assertEqual(stuckT.drain(), b"a" * 2000)
        self.assertEqual(stuckT.value(), b"b" * 1024)
        self.assertEqual(guardOf(stuck).dropped, 3000 - 1024)
        self.assertEqual(self.device.events, [("pause", None), ("resume", None)])

    def test_changedBackApplies(self) -> None:
        """
        block, a reload to drop, another back to block: the client (which keeps the spec it came with,
        block again) blocks again; it dropped on (the device read on at 11 MB/s with a real gateway).
        """
        stuck, stuckT = self.raw("raw,policy=block,outbuf=1024+4445")
        self.line.deviceDataReceived(b"a" * 2000)
        applyListenerRights(self.line, [parseListener("raw,policy=drop,outbuf=1024+4445")])
        self.line.deviceDataReceived(b"b" * 100)
        applyListenerRights(self.line, [parseListener("raw,policy=block,outbuf=1024+4445")])
        self.assertEqual(self.device.events, [("pause", None), ("resume", None), ("pause", None)])
        self.assertEqual(guardOf(stuck).policy, "block")
        self.assertEqual(stuckT.drain(), b"a" * 2000 + b"b" * 100)
        self.assertEqual(self.device.events[3:], [("resume", None)])

    def test_dropMadeBlockHoldsTheDevice(self) -> None:
        """Made policy=block, a full client that dropped gets what it held, in order, and the device waits for it."""
        client, transport = self.raw("raw,outbuf=1024+4445")
        self.line.deviceDataReceived(b"a" * 2000)
        self.line.deviceDataReceived(b"b" * 500)
        applyListenerRights(self.line, [parseListener("raw,policy=block,outbuf=1024+4445")])
        self.assertEqual(self.device.events, [("pause", None)])
        self.assertEqual(transport.drain(), b"a" * 2000 + b"b" * 500)
        self.assertEqual(self.device.events, [("pause", None), ("resume", None)])
        self.assertEqual(guardOf(client).dropped, 0)

    def test_madeDisconnectCutsAFullClient(self) -> None:
        """Made policy=disconnect, a client past its bound is cut at once, as it would be at its next write."""
        client, transport = self.raw("raw,policy=block,outbuf=1024+4445")
        self.line.deviceDataReceived(b"a" * 2000)
        applyListenerRights(self.line, [parseListener("raw,policy=disconnect,outbuf=1024+4445")])
        self.assertEqual(self.device.events, [("pause", None), ("resume", None)])
        self.assertTrue(transport.disconnecting)

    def test_newBoundTakesTheNextWrite(self) -> None:
        """A new outbuf= is the client's bound from the next write; a client with no room left is not touched otherwise."""
        client, transport = self.raw("raw,outbuf=4096+4445")
        self.line.deviceDataReceived(b"a" * 2000)
        applyListenerRights(self.line, [parseListener("raw,outbuf=1024+4445")])
        self.assertEqual((transport.bufferSize, guardOf(client).bound), (1024, 1024))
        self.line.deviceDataReceived(b"b" * 100)
        self.assertTrue(guardOf(client).full)
        self.line.deviceDataReceived(b"c" * 2000)
        self.assertEqual(transport.drain(), b"a" * 2000 + b"b" * 100)
        self.assertEqual(transport.value(), b"c" * 1024)
