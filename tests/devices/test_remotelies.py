"""
An rfc2217:// device's far end that lies or refuses: NOTIFY-LINESTATE it
was never asked for, sent without end, costs a bounded log; a far end
that refuses com port control (a plain telnet port given as rfc2217://)
carries no settings, and the line says so instead of answering a
client's settings as set.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.remote import RemoteDevice
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import DONT, IAC, WILL, WONT
from tests.fakes import observeLog
from tests.telnetpeer import sb

REFUSED = ("rfc2217://10.0.0.5:2217 refused com port control (RFC 2217; a plain telnet port? then say "
           "telnet:10.0.0.5:2217): it carries no settings")


class FarEndTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, object]] = []
        observeLog(self, self.events.append)
        self.clock = MemoryReactorClock()
        self.device = RemoteDevice(DeviceSpec("rfc2217", host="10.0.0.5", port=2217), self.clock,
                                   settings=SerialSettings(9600))
        self.line = Line("far", self.device, clock=self.clock)
        self.device.sink = self.line
        self.farEnd = StringTransport()
        self.link = ComPortLink(self.device)
        self.link.makeConnection(self.farEnd)
        self.client = TelnetClient(self.line)
        self.user = StringTransport()
        self.client.makeConnection(self.user)
        self.client.dataReceived(bytes([IAC, WILL, CPO]))

    def said(self, start: str) -> list[str]:
        return [formatEvent(e) for e in self.events if formatEvent(e).startswith(start)]

    def test_lineStateFloodLogBounded(self) -> None:
        """A far port sending NOTIFY-LINESTATE (break seen) 10000 times, never asked to: at most 20 log lines about it a minute, the rest counted in one line (it was a line each: 10000)."""
        self.link.dataReceived(bytes([IAC, WILL, CPO]))
        for _ in range(50):
            self.link.dataReceived(sb(106, 0x10) * 200)
            for _ in range(10):
                self.clock.advance(0)
        self.assertEqual(len(self.said("far: line state 0x10 seen on the device")), 20)

    def test_refusedComPortCarriesNoSettings(self) -> None:
        """The far end refuses COM-PORT-OPTION (DONT, WONT): said once in the log; a client's SET-BAUDRATE 19200 is answered 9600 and refused saying why, nothing sent to the far end; the status page shows no settings."""
        from serialgw.app.status import lineStatus

        self.link.dataReceived(bytes([IAC, DONT, CPO, IAC, WONT, CPO]))
        self.assertEqual(self.device.noSettings, REFUSED)
        self.farEnd.clear()
        self.user.clear()
        self.client.dataReceived(sb(1, 0, 0, 0x4B, 0x00))
        self.assertEqual((self.user.value(), self.farEnd.value()), (sb(101, 0, 0, 0x25, 0x80), b""))
        self.assertEqual(self.device.settings, SerialSettings(9600))
        self.assertEqual(len(self.said("far: settings from")), 1)
        self.assertEqual(self.said("rfc2217://10.0.0.5:2217: the far end refused"), [
            "rfc2217://10.0.0.5:2217: the far end refused com port control (RFC 2217): settings, DTR and RTS do not "
            "reach it, breaks go as IAC BRK (a plain telnet port? then say telnet:10.0.0.5:2217)"])
        self.assertIsNone(lineStatus(self.line)["settings"])

    def test_notAnsweredYetKept(self) -> None:
        """Before the far end answers the offer, a setting asked for is kept and sent once it agrees (as while not connected)."""
        self.assertEqual(self.device.noSettings, "")
        self.client.dataReceived(sb(1, 0, 0, 0x4B, 0x00))
        self.assertEqual(self.device.settings.baudrate, 19200)
        self.farEnd.clear()
        self.link.dataReceived(bytes([IAC, WILL, CPO]))
        self.assertIn(sb(1, 0, 0, 0x4B, 0x00), self.farEnd.value())

    def test_statusLineOfRefusedPort(self) -> None:
        """^] s on a line whose rfc2217:// far end refused com port control: not 115200,8N1 nor 'remote device', but what it is."""
        from twisted.internet.address import IPv4Address

        from serialgw.config.listeners import parseListener

        self.link.dataReceived(bytes([IAC, DONT, CPO, IAC, WONT, CPO]))
        person = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4444"), clock=self.clock)
        user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        person.makeConnection(user)
        user.clear()
        person.dataReceived(b"\x1ds")
        self.assertIn(b"rfc2217://10.0.0.5:2217 up, remote telnet console (it refused RFC 2217): serial settings are "
                      b"the far end's, ", user.value())

    def test_flowAndModemLineAnswersTaken(self) -> None:
        """The far port's SET-CONTROL answers are the truth too: asked for hardware flow, it answers none (105 1): the line has none, its RFC 2217 client told (105 1) once the turn is over; asked DTR off, it answers on (105 8): DTR is on, as a client's query then says (it was taken as set: 'off')."""
        self.link.dataReceived(bytes([IAC, WILL, CPO]))
        self.user.clear()
        self.client.dataReceived(sb(5, 3) + sb(5, 9))
        self.assertEqual(self.user.value(), sb(105, 3) + sb(105, 9))
        self.user.clear()
        self.link.dataReceived(sb(105, 1) + sb(105, 8))
        self.clock.advance(0)
        self.assertEqual((self.device.settings.rtscts, self.device.modemLines["dtr"]), (False, True))
        self.assertEqual(self.user.value(), sb(105, 1))
        self.user.clear()
        self.client.dataReceived(sb(5, 7))
        self.assertEqual(self.user.value(), sb(105, 8))
