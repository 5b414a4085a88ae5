"""
A remote console's far end (an RFC 2217 server) answering, again and
again, what reaches a bug of the gateway's: each traceback counts against
the log limiter's one budget for the gateway's own errors
(logflood.OWN_ERRORS, 20 a minute), as a client's doing does.  They were
logged one traceback an answer, without bound, for as long as the far end
answered.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.comportlink import ComPortLink
from serialgw.devices.remote import RemoteDevice
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION, LINE_PARITY, NOTIFY_LINESTATE, SERVER_OFFSET, SET_BAUDRATE
from tests.clients.test_ownerrors import TIMES, Counting, broken


class FarEndAnswersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = Counting(self)
        self.clock = MemoryReactorClock()
        self.device = RemoteDevice(DeviceSpec("rfc2217", host="127.0.0.1", port=1), self.clock,
                                   settings=SerialSettings(9600))
        self.line = Line("rack4", self.device, clock=self.clock)
        self.device.sink = self.line
        self.link = ComPortLink(self.device)
        self.link.makeConnection(StringTransport())

    def test_lineStateAnswersFailing(self) -> None:
        """30 NOTIFY-LINESTATE answers whose handling fails (comportlink ComPortLink.telnetSubnegotiation): 20 tracebacks naming the device, 10 counted; the link stays."""
        self.patch(self.line, "deviceLineState", broken)
        for _ in range(TIMES):
            self.link.telnetSubnegotiation(COM_PORT_OPTION, bytes([SERVER_OFFSET + NOTIFY_LINESTATE, LINE_PARITY]))
        self.assertEqual({e["device"] for e in self.log.failures("RFC 2217 answer")}, {"rfc2217://127.0.0.1:1"})
        self.log.check("RFC 2217 answer")
        self.assertFalse(self.link.transport.disconnecting)

    def test_settingsAnswersFailing(self) -> None:
        """30 turns each with a SET-BAUDRATE answer other than the last, whose telling the line fails (remote._tellSettings): 20 tracebacks, 10 counted."""
        self.patch(self.line, "deviceSettings", broken)
        for n in range(TIMES):
            self.link.telnetSubnegotiation(COM_PORT_OPTION, bytes([SERVER_OFFSET + SET_BAUDRATE]) + (9601 + n).to_bytes(4, "big"))
            self.clock.advance(0)
        self.log.check("the remote's settings")
