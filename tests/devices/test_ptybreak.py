"""
A C{pty:} device (a pty the gateway makes, a local program on its slave)
cannot carry a break (the kernel takes TIOCSBRK on a pty and does nothing)
nor RTS/CTS flow control (a pty has no such lines; the kernel keeps
CRTSCTS in its termios and ignores it).  A break asked of it is refused and
said, as on a raw socket: the escape menu's C{b} and a telnet C{IAC BRK} get
a notice (at most once a second), an RFC 2217 BREAK-ON is answered with the
break off (the state in effect, as RFC 2217 answers any request), the log
says why; RTS/CTS asked of it is answered with it off.
"""

from __future__ import annotations

import os
import termios

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.parsers import parseSendString
from serialgw.config.specs import SerialSettings
from serialgw.devices.device import SerialDevice
from serialgw.devices.ports import PtyPort
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import IAC, WILL
from tests.fakes import LogEvents
from tests.telnetpeer import sb

REASON = "pty:/tmp/x-vm0 is a pty: it cannot carry a break (the program on it is never told of one)"


class PtyBreakTests(SynchronousTestCase):
    """Breaks asked of a pty: device: refused and said, never pretended."""

    def setUp(self) -> None:
        self.log = LogEvents(self)
        self.port = PtyPort("", SerialSettings(9600))
        self.port.name = "pty:/tmp/x-vm0"  # (as a linked one is named; no link made here)
        self.device = SerialDevice(self.port, MemoryReactorClock())
        self.addCleanup(self.device.close)
        self.clock = Clock()
        self.line = Line("vm0", self.device, clock=self.clock)
        self.device.sink = self.line
        # What reaches the pty, as written (read back from its slave, it comes a kernel worker's moment later).
        self.written: list[bytes] = []
        write = self.port.write

        def recorded(data: bytes | bytearray) -> int:
            self.written.append(bytes(data))
            return write(data)

        self.patch(self.port, "write", recorded)

    def client(self, listener: str = "telnet,escape=^]+4444") -> tuple[TelnetClient, StringTransport]:
        client = TelnetClient(self.line, listener=parseListener(listener), clock=self.clock)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(transport)
        transport.clear()
        return client, transport

    def refusals(self) -> list[object]:
        return [e["reason"] for e in self.log.events if "refused" in str(e.get("log_format", ""))
                and "BREAK" in str(e.get("log_format", "")).upper()]

    def test_reasonSaid(self) -> None:
        """The device says why it takes no break: it is a pty."""
        self.assertEqual(self.device.noBreak, REASON)

    def test_escapeMenuBreakRefusedSaid(self) -> None:
        """^] b on a pty: device: the person is told why, nothing is held, no break counted, the log says it."""
        client, transport = self.client()
        client.dataReceived(b"\x1db")
        self.assertEqual(transport.value(), f"\r\n[serialgw: no break: {REASON}]\r\n".encode())
        self.assertEqual((self.device.breaks, self.device.breaking), (0, False))
        self.assertEqual(self.refusals(), [REASON])

    def test_telnetBreakRefusedBounded(self) -> None:
        """5000 IAC BRK in a second: one notice and one log line; the typing around them reaches the device."""
        client, transport = self.client()
        client.dataReceived(b"a" + b"\xff\xf3" * 5000 + b"b")
        for _ in range(40):
            self.clock.advance(0)  # (256 telnet commands a turn: 20 turns)
        self.assertEqual(transport.value(), f"\r\n[serialgw: no break: {REASON}]\r\n".encode())
        self.assertEqual((self.device.breaks, self.refusals()), (0, [REASON]))
        self.assertEqual(b"".join(self.written), b"ab")

    def test_rfc2217BreakOnAnsweredOff(self) -> None:
        """An RFC 2217 BREAK-ON on a pty: device is answered BREAK-OFF (105 6), the state in effect; the log says why."""
        client, transport = self.client("telnet+4444")
        client.dataReceived(bytes([IAC, WILL, CPO]))
        transport.clear()
        client.dataReceived(sb(5, 5))
        self.assertEqual(transport.value(), sb(105, 6))
        self.assertEqual((self.device.breaks, self.device.breaking, self.refusals()), (0, False, [REASON]))

    def test_openStringBreakNotSent(self) -> None:
        """An open-string's \\b on a pty: device: the data around it goes, the log gives the pty's reason."""
        self.line.openString = parseSendString(r"a\bb")
        self.client()
        self.clock.advance(1)
        self.assertEqual((b"".join(self.written), self.device.breaks), (b"ab", 0))
        (event,) = [e for e in self.log.events if "break not sent" in str(e.get("log_format", ""))]
        self.assertEqual(event["reason"], REASON)


class PtyStatusTests(SynchronousTestCase):
    def test_statusShowsNoModemLines(self) -> None:
        """The status page's entry of a pty: line has no DTR/RTS (null, as a raw socket's), where it showed both on: a pty has none; its settings stay."""
        from serialgw.app.status import lineStatus

        port = PtyPort("", SerialSettings(9600))
        device = SerialDevice(port, MemoryReactorClock())
        self.addCleanup(device.close)
        status = lineStatus(Line("vm0", device, clock=Clock()))
        self.assertEqual((status["settings"]["text"], status["modem_lines"]), ("9600,8N1", None))


class PtyFlowControlTests(SynchronousTestCase):
    """RTS/CTS on a pty: device: not set, said once, answered as off."""

    def test_rtsctsNotPretended(self) -> None:
        """A pty: device opened or asked with rtscts: the settings in effect say off, and the pty's termios has no CRTSCTS."""
        log = LogEvents(self)
        port = PtyPort("", SerialSettings(9600, rtscts=True))
        self.addCleanup(port.close)
        self.assertFalse(port.settings.rtscts)
        self.assertFalse(port.apply(SerialSettings(9600, rtscts=True)).rtscts)
        self.assertTrue(port.apply(SerialSettings(9600, xonxoff=True)).xonxoff)
        fd = os.open(port.slaveName, os.O_RDWR | os.O_NOCTTY)
        try:
            self.assertFalse(termios.tcgetattr(fd)[2] & termios.CRTSCTS)
        finally:
            os.close(fd)
        warned = [e for e in log.events if "rejected" in str(e.get("log_format", ""))]
        self.assertEqual([(e["field"], e["value"]) for e in warned], [("rtscts", True)])
