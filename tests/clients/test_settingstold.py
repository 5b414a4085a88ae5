"""
RFC 2217 answers with the settings in effect: a setting asked for while
the device is down is kept for it (the line opens it so) and answered
so; when the device, back, takes less (a pty forces 8 bits, no parity),
or a remote RFC 2217 port answers with other values than the gateway
asked of it, the RFC 2217 clients are told the values now in effect
(the server's reply, unasked, as pyserial and serialgw's own rfc2217://
device read it), and so are the line's client ptys; nothing is told
while a client's output is past its bound (once, when it drains).
"""

from __future__ import annotations

import errno

import attrs
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.guard import OutputGuard
from serialgw.clients.telnet import TelnetClient
from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.device import SerialDevice
from serialgw.devices.remote import RemoteDevice
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import IAC, WILL
from tests.fakes import LogEvents, PausableTransport, RecordingPort
from tests.telnetpeer import sb


class PtyLikePort(RecordingPort):
    """A port that, as a pty, keeps the speed and stop bits and forces 8 bits, no parity."""

    def apply(self, settings: SerialSettings) -> SerialSettings:
        return RecordingPort.apply(self, attrs.evolve(settings, bytesize=8, parity="N"))


class DownThenBackTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.ports = [PtyLikePort(self.clock) for _ in range(3)]
        self.ports[0].settings = SerialSettings(9600)
        opened = list(self.ports[1:])
        self.device = SerialDevice(self.ports[0], self.clock, 0.25, opener=lambda: opened.pop(0),
                                   reopenPolicy=lambda n: 1.0)
        self.line = Line("pty0", self.device, clock=self.clock)
        self.device.sink = self.line
        self.followed: list[SerialSettings] = []
        self.line.settingsFollowers.append(self.followed.append)
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(bytes([IAC, WILL, CPO]))
        self.log = LogEvents(self)

    def lose(self, port: RecordingPort) -> None:
        port.error = OSError(errno.EIO, "hung up")
        self.device.doRead()

    def test_dataSizeAskedWhileDownCorrectedWhenBack(self) -> None:
        """SET-DATASIZE 7 while the device is down: answered 7 (kept for it); back, the pty takes 8: the client hears 102 8, unasked, after carrier, and the line's pty follows; the log says so."""
        self.lose(self.ports[0])
        self.transport.clear()
        self.client.dataReceived(sb(2, 7))
        self.assertEqual(self.transport.value(), sb(102, 7))
        self.transport.clear()
        self.clock.advance(1.0)
        self.assertEqual(self.transport.value(), sb(107, 0xB0 | 0x08) + sb(102, 8))
        self.assertEqual(self.line.settings, SerialSettings(9600))
        self.assertEqual(self.followed, [SerialSettings(9600, 7), SerialSettings(9600)])
        said = [e for e in self.log.events if "RFC 2217" in e.get("log_format", "")]
        self.assertEqual([(e["settings"], e["asked"], e["told"]) for e in said],
                         [("9600,8N1", "9600,7N1", 1)])

    def test_backAsAskedTellsNothing(self) -> None:
        """Asked 19200 while down; back at 19200 as asked: nothing more is said (no unasked replies)."""
        self.lose(self.ports[0])
        self.client.dataReceived(sb(1, 0, 0, 0x4B, 0x00))
        self.transport.clear()
        self.clock.advance(1.0)
        self.assertEqual(self.transport.value(), sb(107, 0xB0 | 0x08))
        self.assertEqual(self.followed, [SerialSettings(19200)])


class FarPortAnswersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.device = RemoteDevice(DeviceSpec("rfc2217", host="10.0.0.5", port=2217), self.clock,
                                   settings=SerialSettings(9600))
        self.line = Line("far", self.device, clock=self.clock)
        self.device.sink = self.line
        self.farEnd = StringTransport()
        self.link = ComPortLink(self.device)
        self.link.makeConnection(self.farEnd)
        self.link.dataReceived(bytes([IAC, WILL, CPO]))
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(bytes([IAC, WILL, CPO]))
        self.farEnd.clear()
        self.transport.clear()

    def test_farPortTakesLess(self) -> None:
        """A client's SET-DATASIZE 7 goes to the far port, which answers 8: the client, answered 7 at once, is then told 8."""
        self.client.dataReceived(sb(2, 7))
        self.assertEqual(self.transport.value(), sb(102, 7))
        self.assertIn(sb(2, 7), self.farEnd.value())
        self.transport.clear()
        self.link.dataReceived(sb(102, 8))
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), sb(102, 8))
        self.assertEqual(self.line.settings.bytesize, 8)

    def test_farPortAgreeingTellsNothing(self) -> None:
        """The far port answers what was asked: nothing more is said."""
        self.client.dataReceived(sb(2, 7))
        self.transport.clear()
        self.link.dataReceived(sb(102, 7))
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"")

    def test_lyingFarPortBounded(self) -> None:
        """A far port answering 7 and 8 in turn, 1000 times in one read: the client is told once, the value at the end of the turn (no reply a flip)."""
        self.link.dataReceived((sb(102, 7) + sb(102, 8)) * 1000 + sb(102, 7))
        for _ in range(10):
            self.clock.advance(0)
        self.assertEqual(self.transport.value(), sb(102, 7))

    def test_heldWhileTheClientIsFull(self) -> None:
        """A client whose output is past its bound is told nothing meanwhile; once it drains, the value then, once."""
        # (Its output past a bound: a guard of its own, as a listener's client has.)
        guard = self.client.guard = OutputGuard(self.client, self.line, 1024, "drop")
        guard.pauseProducing()
        self.link.dataReceived(sb(102, 7))
        self.clock.advance(0)
        self.link.dataReceived(sb(103, 3))
        self.clock.advance(0)
        self.assertEqual(self.transport.value(), b"")
        guard.resumeProducing()
        self.assertEqual(self.transport.value(), sb(102, 7) + sb(103, 3))
