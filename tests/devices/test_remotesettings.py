"""
Settings asked of a line whose device is a console elsewhere that carries
none (C{tcp:}, C{unix:}, C{telnet:}; an C{rfc2217://} port does): refused,
saying why, nothing changed.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink, TelnetLink
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import IAC, WILL
from tests.fakes import observeLog
from tests.telnetpeer import sb

RAW_UNIX = "unix:/run/vm.serial0 is a raw socket: it carries no settings (an rfc2217:// device does)"
TELNET = "telnet:10.0.0.5:23 is a telnet console without RFC 2217: it carries no settings (an rfc2217:// device does)"


class RemoteSettingsTests(SynchronousTestCase):
    """^] B RATE and RFC 2217 SET-BAUDRATE on a line whose remote device carries no settings."""

    def setUp(self) -> None:
        self.events: list[dict[str, object]] = []
        observeLog(self, self.events.append)
        self.clock = MemoryReactorClock()

    def gateway(self, spec: DeviceSpec) -> tuple[RemoteDevice, TelnetClient]:
        device = RemoteDevice(spec, self.clock, settings=SerialSettings(115200))
        line = Line("vm100", device, clock=self.clock)
        device.sink = line
        self.farEnd = StringTransport()
        link = {"telnet": TelnetLink, "rfc2217": ComPortLink}.get(spec.kind, RawLink)
        link(device).makeConnection(self.farEnd)  # type: ignore[arg-type]
        self.farEnd.clear()
        client = TelnetClient(line, listener=parseListener("telnet,escape=^]+4444"), clock=self.clock)
        self.user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(self.user)
        self.user.clear()
        return device, client

    def test_escapeBaudOnRawUnix(self) -> None:
        """^] B 9600 Enter on a unix: raw console: told it carries no settings (no rate that "stays": it has none); nothing sent, nothing changed."""
        device, client = self.gateway(DeviceSpec("unix", "/run/vm.serial0"))
        client.dataReceived(b"\x1dB9600\r")
        self.assertEqual(self.user.value(),
                         b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                         b"\r\n[serialgw: no change: " + RAW_UNIX.encode() + b"]\r\n")
        self.assertEqual((self.farEnd.value(), device.settings), (b"", SerialSettings(115200)))
        self.assertEqual(device.noSettings, RAW_UNIX)

    def test_escapeBaudOnTelnet(self) -> None:
        """A telnet: console without RFC 2217 carries none either; the reason says what would."""
        device, client = self.gateway(DeviceSpec("telnet", host="10.0.0.5", port=23))
        client.dataReceived(b"\x1dB9600\r")
        self.assertTrue(self.user.value().endswith(
            b"\r\n[serialgw: no change: " + TELNET.encode() + b"]\r\n"))
        self.assertEqual((self.farEnd.value(), device.settings), (b"", SerialSettings(115200)))

    def test_escapeBaudOnTcpLogged(self) -> None:
        """On tcp: the same, and the log says the settings were refused and why."""
        device, client = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        client.dataReceived(b"\x1dB9600\r")
        reason = "tcp:10.0.0.5:7000 is a raw socket: it carries no settings (an rfc2217:// device does)"
        self.assertIn(reason.encode(), self.user.value())
        self.assertEqual(device.settings, SerialSettings(115200))
        self.assertEqual([e["reason"] for e in self.events if "refused" in str(e.get("log_format", ""))], [reason])

    def test_rfc2217DeviceTakesBaud(self) -> None:
        """An rfc2217:// device carries them: ^] B 9600 sets it and SET-BAUDRATE goes to the port."""
        device, client = self.gateway(DeviceSpec("rfc2217", host="10.0.0.5", port=2217))
        self.assertEqual(device.noSettings, "")
        client.dataReceived(b"\x1dB9600\r")
        self.assertTrue(self.user.value().endswith(b"\r\n[serialgw: vm100 now at 9600,8N1]\r\n"))
        self.assertEqual(device.settings, SerialSettings(9600))

    def test_rfc2217ClientOnRawDevice(self) -> None:
        """An RFC 2217 client's SET-BAUDRATE 9600 on a raw console: answered with the rate in effect (115200), nothing changed."""
        device, client = self.gateway(DeviceSpec("unix", "/run/vm.serial0"))
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.user.clear()
        client.dataReceived(sb(1, 0, 0, 0x25, 0x80))
        self.assertEqual(self.user.value(), sb(101, 0, 1, 0xC2, 0x00))
        client.dataReceived(sb(2, 7))
        self.assertTrue(self.user.value().endswith(sb(102, 8)))
        self.assertEqual((self.farEnd.value(), device.settings), (b"", SerialSettings(115200)))

    def test_rfc2217ClientModemLinesOnRawDevice(self) -> None:
        """SET-CONTROL DTR off and RTS off on a raw console: answered with the state as it is (on), nothing changed, nothing sent."""
        device, client = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.user.clear()
        client.dataReceived(sb(5, 9) + sb(5, 12))
        self.assertEqual(self.user.value(), sb(105, 8) + sb(105, 11))
        self.assertEqual((self.farEnd.value(), device.modemLines), (b"", {"dtr": True, "rts": True}))

    def test_statusOnRawTcp(self) -> None:
        """^] s on a tcp: raw console says what the line is, not a speed and framing it does not have."""
        device, client = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        client.dataReceived(b"\x1ds")
        self.assertEqual(self.user.value(),
                         b"\r\n[serialgw: vm100: tcp:10.0.0.5:7000 up, remote raw socket: serial settings are the "
                         b"far end's, 0 bytes in, 0 out, 0 breaks, 0 dropped while down, mode shared]\r\n")

    def test_statusOnTelnet(self) -> None:
        """^] s on a telnet: console (no RFC 2217): the same, saying it is a telnet console."""
        device, client = self.gateway(DeviceSpec("telnet", host="10.0.0.5", port=23))
        client.dataReceived(b"\x1ds")
        self.assertEqual(self.user.value(),
                         b"\r\n[serialgw: vm100: telnet:10.0.0.5:23 up, remote telnet console: serial settings are "
                         b"the far end's, 0 bytes in, 0 out, 0 breaks, 0 dropped while down, mode shared]\r\n")

    def test_statusOnRfc2217(self) -> None:
        """An rfc2217:// port carries settings: ^] s shows them."""
        device, client = self.gateway(DeviceSpec("rfc2217", host="10.0.0.5", port=2217))
        client.dataReceived(b"\x1ds")
        self.assertEqual(self.user.value(),
                         b"\r\n[serialgw: vm100: rfc2217://10.0.0.5:2217 up, 115200,8N1, 0 bytes in, 0 out, "
                         b"0 breaks, 0 dropped while down, mode shared]\r\n")

    def test_bannerOnRawUnix(self) -> None:
        """A listener's banner on a unix: raw console says the same, not 115200,8N1."""
        device = RemoteDevice(DeviceSpec("unix", "/run/vm.serial0"), self.clock)
        line = Line("vm100", device, clock=self.clock)
        client = TelnetClient(line, listener=parseListener("telnet,banner+4444"), clock=self.clock)
        user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(user)
        self.assertIn(b"[serialgw: vm100: remote raw socket: serial settings are the far end's, you are writer; ",
                      user.value())

    def test_escapeBaudReadOnlyOnRawUnix(self) -> None:
        """A read-only client's ^] B 9600 on a raw console: told it carries no settings, not that the line 'stays at 115200,8N1'."""
        device, writer = self.gateway(DeviceSpec("unix", "/run/vm.serial0"))
        client = TelnetClient(writer.line, Role.READONLY, listener=parseListener("telnet,ro,escape=^]+4444"),
                              clock=self.clock)
        user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1001))
        client.makeConnection(user)
        user.clear()
        client.dataReceived(b"\x1dB9600\r")
        self.assertEqual(user.value(), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                                       b"\r\n[serialgw: no change: " + RAW_UNIX.encode() + b"]\r\n")

    def refusals(self) -> list[str]:
        return [formatEvent(e) for e in self.events if "refused" in str(e.get("log_format", ""))]

    def test_refusalLogOnRawSaysNoFraming(self) -> None:
        """The log line of a setting refused on a tcp: line ends without a speed and framing it does not have ('stays at 115200,8N1')."""
        device, client = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        client.dataReceived(b"\x1dB9600\r")
        self.assertEqual(self.refusals(), [
            "vm100: settings from 192.0.2.9:1000 refused (baud rate 9600): tcp:10.0.0.5:7000 is a raw socket: it "
            "carries no settings (an rfc2217:// device does); nothing changed (serial settings are the far end's)"])

    def test_readOnlyRefusalLogOnTelnet(self) -> None:
        """A read-only RFC 2217 client's SET-DATASIZE on a telnet: line: refused as read-only, and the log says no framing either."""
        device, writer = self.gateway(DeviceSpec("telnet", host="10.0.0.5", port=23))
        client = TelnetClient(writer.line, Role.READONLY, listener=parseListener("telnet,ro+4444"), clock=self.clock)
        user = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1001))
        client.makeConnection(user)
        client.dataReceived(bytes([IAC, WILL, CPO]) + sb(2, 7))
        self.assertEqual(self.refusals(), [
            "vm100: settings from 192.0.2.9:1001 refused (data bits 7): the client is read-only; nothing changed "
            "(serial settings are the far end's)"])

    def test_refusalLogOnRfc2217KeepsFraming(self) -> None:
        """On an rfc2217:// line, which has settings, a refused one still says what the line stays at."""
        device, writer = self.gateway(DeviceSpec("rfc2217", host="10.0.0.5", port=2217))
        client = TelnetClient(writer.line, Role.READONLY, listener=parseListener("telnet,ro+4444"), clock=self.clock)
        client.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1001)))
        client.dataReceived(bytes([IAC, WILL, CPO]) + sb(2, 7))
        self.assertEqual(self.refusals(), [
            "vm100: settings from 192.0.2.9:1001 refused (data bits 7): the client is read-only; vm100 stays at "
            "115200,8N1"])

    def test_modemLineRefusalLoggedOnRaw(self) -> None:
        """A writer's DTR off on a tcp: line (nothing carries it) is logged as refused, with why, as a setting is; a read-only client's too, neither saying DTR 'stays on'."""
        device, writer = self.gateway(DeviceSpec("tcp", host="10.0.0.5", port=7000))
        writer.dataReceived(bytes([IAC, WILL, CPO]) + sb(5, 9))
        client = TelnetClient(writer.line, Role.READONLY, listener=parseListener("telnet,ro+4444"), clock=self.clock)
        client.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1001)))
        client.dataReceived(bytes([IAC, WILL, CPO]) + sb(5, 12))
        self.assertEqual(self.refusals(), [
            "vm100: DTR off from 192.0.2.9:1000 refused: tcp:10.0.0.5:7000 is a raw socket: it carries no settings "
            "(an rfc2217:// device does); nothing changed",
            "vm100: RTS off from 192.0.2.9:1001 refused: the client is read-only; nothing changed"])
        self.assertEqual((self.farEnd.value(), device.modemLines), (b"", {"dtr": True, "rts": True}))

    def test_statusJsonOnRawAndTelnet(self) -> None:
        """The status page's entry of a tcp:, unix: or telnet: line has no settings nor DTR/RTS (null), where it showed 115200,8N1 and DTR/RTS on."""
        from serialgw.app.status import lineStatus

        for spec in (DeviceSpec("tcp", host="10.0.0.5", port=7000), DeviceSpec("unix", "/run/vm.serial0"),
                     DeviceSpec("telnet", host="10.0.0.5", port=23)):
            device, client = self.gateway(spec)
            status = lineStatus(client.line)
            self.assertEqual((status["settings"], status["modem_lines"]), (None, None), spec)

    def test_statusJsonOnRfc2217(self) -> None:
        """An rfc2217:// line's entry keeps its settings and DTR/RTS."""
        from serialgw.app.status import lineStatus

        device, client = self.gateway(DeviceSpec("rfc2217", host="10.0.0.5", port=2217))
        status = lineStatus(client.line)
        self.assertEqual((status["settings"]["text"], status["modem_lines"]), ("115200,8N1", {"dtr": True, "rts": True}))

    def test_rfc2217BreakLastsBreakDuration(self) -> None:
        """An rfc2217:// device's break is SET-CONTROL BREAK-ON, then BREAK-OFF after the line's break-duration (500 ms here), not sooner."""
        device = RemoteDevice(DeviceSpec("rfc2217", host="10.0.0.5", port=2217), self.clock, breakDuration=0.5)
        device.sink = Line("vm100", device, clock=self.clock)
        farEnd = StringTransport()
        link = ComPortLink(device)
        link.makeConnection(farEnd)
        link.dataReceived(bytes([IAC, WILL, CPO]))
        farEnd.clear()
        self.assertTrue(device.sendBreak())
        self.assertEqual(farEnd.value(), sb(5, 5))
        self.clock.advance(0.499)
        self.assertEqual(farEnd.value(), sb(5, 5))
        self.clock.advance(0.001)
        self.assertEqual(farEnd.value(), sb(5, 5) + sb(5, 6))


class RemoteNameTests(SynchronousTestCase):
    def test_rfc2217IPv6InBrackets(self) -> None:
        """An rfc2217:// device on an IPv6 address is named with the address in brackets, as telnet: and tcp: name theirs ('rfc2217://::1:2217' said neither which colon ends the address nor what pyserial's URL is)."""
        self.assertEqual(DeviceSpec("rfc2217", host="::1", port=2217).describe(), "rfc2217://[::1]:2217")
        self.assertEqual(DeviceSpec("rfc2217", host="10.0.0.5", port=2217).describe(), "rfc2217://10.0.0.5:2217")
