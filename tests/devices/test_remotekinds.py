"""
A remote device given the wrong kind: rfc2217:// or telnet: on a raw
socket (QEMU's -serial tcp:...,server: no telnet answer ever comes; our
negotiation bytes are typed into the console), tcp: on a telnet server
(its negotiation is console output).  Said once, naming what to write;
an rfc2217:// far end that never answers carries no settings meanwhile.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink, TelnetLink
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import BINARY, DO, IAC, SGA, WILL
from tests.fakes import RecordingClient, observeLog
from tests.telnetpeer import sb


class WrongKindTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, object]] = []
        observeLog(self, self.events.append)
        self.clock = MemoryReactorClock()

    def connect(self, kind: str) -> tuple[RemoteDevice, object, StringTransport]:
        spec = DeviceSpec(kind, host="10.0.0.5", port=7000)
        device = RemoteDevice(spec, self.clock, settings=SerialSettings(9600))
        device.sink = Line("vm", device, clock=self.clock)
        link = {"telnet": TelnetLink, "rfc2217": ComPortLink}.get(kind, RawLink)(device)
        farEnd = StringTransport()
        link.makeConnection(farEnd)  # type: ignore[attr-defined]
        return device, link, farEnd

    def said(self) -> list[str]:
        """The device's own words (its name first) telling what to say instead."""
        return [text for text in map(formatEvent, self.events)
                if text.startswith(("rfc2217://10.0.0.5", "telnet:10.0.0.5", "tcp:10.0.0.5")) and "say" in text]

    def test_rfc2217OnRawSocket(self) -> None:
        """rfc2217:// whose far end answers nothing for 10 s: said once, and settings asked then are refused (it carries none); an answer later ends that."""
        device, link, farEnd = self.connect("rfc2217")
        self.clock.advance(9.9)
        self.assertEqual((self.said(), device.noSettings), ([], ""))
        self.clock.advance(0.1)
        self.assertEqual(self.said(), [
            "rfc2217://10.0.0.5:7000: no answer to the telnet negotiation in 10 s (a raw socket? then say "
            "tcp:10.0.0.5:7000): settings, DTR and RTS do not reach it, and our negotiation went to it as data"])
        self.assertEqual(device.noSettings, "rfc2217://10.0.0.5:7000 has not answered com port control (RFC 2217) in 10 "
                                            "s (a raw socket? then say tcp:10.0.0.5:7000): it carries no settings")
        client = TelnetClient(device.sink)  # type: ignore[arg-type]
        user = StringTransport()
        client.makeConnection(user)
        client.dataReceived(bytes([IAC, WILL, CPO]))
        user.clear()
        client.dataReceived(sb(1, 0, 0, 0x4B, 0x00))
        self.assertEqual((user.value(), device.settings.baudrate), (sb(101, 0, 0, 0x25, 0x80), 9600))
        link.dataReceived(bytes([IAC, DO, CPO]))  # type: ignore[attr-defined]
        self.assertEqual(device.noSettings, "")
        self.assertEqual(len(self.said()), 1)

    def test_answeredInTimeSaysNothing(self) -> None:
        """A far end that answers (here refusing BINARY only and taking COM-PORT-OPTION) within 10 s: nothing said."""
        device, link, farEnd = self.connect("rfc2217")
        link.dataReceived(bytes([IAC, DO, CPO, IAC, WILL, SGA]))  # type: ignore[attr-defined]
        self.clock.advance(30)
        self.assertEqual((self.said(), device.noSettings), ([], ""))

    def test_telnetOnRawSocket(self) -> None:
        """telnet: whose far end answers no negotiation in 10 s: said once (its settings were never carried)."""
        device, link, farEnd = self.connect("telnet")
        link.dataReceived(b"login: ")  # type: ignore[attr-defined]
        self.clock.advance(10)
        self.assertEqual(self.said(), [
            "telnet:10.0.0.5:7000: no answer to the telnet negotiation in 10 s (a raw socket? then say "
            "tcp:10.0.0.5:7000): our negotiation went to it as data, and its 0xff bytes are read as telnet commands"])

    def test_tcpOnTelnetServer(self) -> None:
        """tcp: whose far end opens with telnet negotiation (IAC DO ...): said once, naming telnet:; the bytes still reach the line as they came."""
        device, link, farEnd = self.connect("tcp")
        watcher = RecordingClient()
        device.sink.attach(watcher)  # type: ignore[attr-defined]
        link.dataReceived(bytes([IAC, DO, BINARY, IAC, WILL, SGA]) + b"login: ")  # type: ignore[attr-defined]
        link.dataReceived(bytes([IAC, DO, BINARY]))  # type: ignore[attr-defined]
        self.assertEqual(self.said(), [
            "tcp:10.0.0.5:7000: the far end speaks telnet (it began with IAC DO BINARY): then say "
            "telnet:10.0.0.5:7000 (or rfc2217://10.0.0.5:7000); as tcp: its negotiation is console output"])
        self.assertEqual(b"".join(watcher.received), bytes([IAC, DO, BINARY, IAC, WILL, SGA]) + b"login: "
                         + bytes([IAC, DO, BINARY]))
