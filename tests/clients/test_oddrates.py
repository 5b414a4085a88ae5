"""
A baud rate a client sets (RFC 2217 SET-BAUDRATE, the escape menu's
^] B) that is neither standard nor a known odd one is warned of as
C{--baud 11520} is (serialgw.config.baudrates): a named warning in the
log, once a change of rate, and said to the person who typed it.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import DO, IAC, WILL
from tests.fakes import LogEvents, RecordingDevice
from tests.telnetpeer import sb

WARNING = ("baud rate {rate} is neither a standard rate nor a known odd one (such as 74880 or 250000): did you mean "
           "{meant}? (set as given)")


class ClientRateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice(SerialSettings(9600))
        self.line = Line("ttyS0", self.device, clock=Clock())
        self.client = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4444"))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        self.client.makeConnection(self.transport)
        self.log = LogEvents(self)

    def send(self, data: bytes) -> bytes:
        self.transport.clear()
        self.client.dataReceived(data)
        return self.transport.value()

    def warned(self) -> list[tuple[str, str, int, str]]:
        return [(e["line"], e["peer"], e["baud"], e["problem"]) for e in self.log.at(LogLevel.warn)]

    def test_setBaudrateWarned(self) -> None:
        """SET-BAUDRATE 11520: set as asked, one named warning naming 115200; the same rate again, 74880 (an ESP8266's) and 115200: none more."""
        self.send(bytes([IAC, WILL, CPO]))
        for rate in (11520, 11520, 74880, 115200):
            self.assertEqual(self.send(sb(1, *rate.to_bytes(4, "big"))), sb(101, *rate.to_bytes(4, "big")))
        self.assertEqual(self.device.settings.baudrate, 115200)
        self.assertEqual(self.warned(), [("ttyS0", "192.0.2.9:1000", 11520, WARNING.format(rate=11520, meant=115200))])

    def test_escapeMenuSaysIt(self) -> None:
        """^] B 19220 Enter: set, the person told 'did you mean 19200?' after the rate in effect, the log warned; ^] B 9600: nothing more."""
        self.send(bytes([IAC, DO, 1, IAC, DO, 3, IAC, WILL, 3]))
        self.assertEqual(self.send(b"\x1dB19220\r"), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                         b"\r\n[serialgw: ttyS0 now at 19220,8N1; "
                         + WARNING.format(rate=19220, meant=19200).encode() + b"]\r\n")
        self.assertEqual(self.send(b"\x1dB9600\r"), b"\r\n[serialgw: baud rate, then Enter (Esc cancels):]\r\n"
                         b"\r\n[serialgw: ttyS0 now at 9600,8N1]\r\n")
        self.assertEqual(self.warned(), [("ttyS0", "192.0.2.9:1000", 19220, WARNING.format(rate=19220, meant=19200))])
