"""
A raw client whose output is past its bound: its input is read on, so
typing, a Ctrl-C into a flooding console, reaches the device at once; with
no escape menu nothing it sends is answered but its notices, which wait
with its held output; with one, the menu's answers come out of its answer
budget (test_answerbudget).
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.session import NOT_SENT_INTERVAL
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import BoundedTransport, RecordingDevice


class RawBehindTests(SynchronousTestCase):
    """A raw client past its output bound: what it types, and what that may cost."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)

    def raw(self, listener: str, role: Role = Role.WRITER) -> tuple[RawClient, BoundedTransport]:
        client = RawClient(self.line, role, listener=parseListener(listener), clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        return client, transport

    def test_typingReachesTheDeviceWhileBehind(self) -> None:
        """Past its bound (a flood it does not take), a raw client's Ctrl-C reaches the device at once; it is still read."""
        client, transport = self.raw("raw,outbuf=1024+4444")
        self.line.deviceDataReceived(b"y" * 1100)
        guard = client.guard
        assert guard is not None
        self.assertTrue(guard.full)
        self.line.deviceDataReceived(b"y" * 5000)
        client.dataReceived(b"\x03")
        self.assertEqual(self.device.events, [("write", b"\x03")])
        self.assertEqual((client.inputHeld, transport.producerState), (False, "producing"))
        # Once it drains: the newest output it missed, as before.
        self.assertEqual(transport.drain(), b"y" * 1100)
        self.assertEqual(transport.drain(), b"y" * 1024)
        self.assertFalse(guard.full)

    def test_deviceBehindStillPauses(self) -> None:
        """Read on past its bound, it is still not read while the device takes no input; read again once it does."""
        client, transport = self.raw("raw,outbuf=1024+4444")
        self.line.deviceDataReceived(b"y" * 1100)
        self.line.deviceWritable(False)
        self.assertEqual(transport.producerState, "paused")
        self.line.deviceWritable(True)
        self.assertEqual(transport.producerState, "producing")

    def test_watcherTypingWhileBehindBounded(self) -> None:
        """A raw watcher typing without end past its bound: refused, told at most every NOT_SENT_INTERVAL s, held output bounded."""
        client, transport = self.raw("raw,notices,outbuf=1024+4444", Role.WATCHER)
        self.line.deviceDataReceived(b"y" * 1100)
        before = transport.value()
        for _ in range(1000):
            client.dataReceived(b"x" * 4096)
            self.clock.advance(NOT_SENT_INTERVAL / 10)
        guard = client.guard
        assert guard is not None
        self.assertEqual(self.device.events, [])
        self.assertEqual(transport.value(), before)
        self.assertLessEqual(guard.heldBytes, 1024)
        self.assertEqual(self.line.refused, 1000 * 4096)

    def test_escapeMenuReadOnToo(self) -> None:
        """With an escape menu it is read on too (its answers come out of its answer budget): the Ctrl-C reaches the device at once."""
        client, transport = self.raw("raw,escape=^],outbuf=1024+4444")
        self.line.deviceDataReceived(b"y" * 1100)
        client.dataReceived(b"\x03")
        self.assertEqual(self.device.events, [("write", b"\x03")])
        self.assertEqual((client.inputHeld, transport.producerState), (False, "producing"))
