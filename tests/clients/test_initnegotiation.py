"""
A telnet program (no escape menu: pyserial's rfc2217://, a script) on a
line whose init-command runs: its negotiation and RFC 2217 commands are
read and answered (pyserial's open waits for them: it gave up before the
command ended), what it types waits, bounded, and goes once the command has
ended, in order with its commands; one that hangs up meanwhile leaves
nothing behind unsent.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ProcessDone
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import reading
from serialgw.clients.telnet import COM_PORT_WAIT, TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import BRK, DO, IAC, WILL
from tests.app.test_initreload import Processes
from tests.fakes import BoundedTransport, RecordingDevice, observeLog
from tests.telnetpeer import sb

# What pyserial's rfc2217:// sends at open (serial/rfc2217.py): its options, then the port's settings.
PYSERIAL_OPTIONS = bytes([IAC, WILL, 0, IAC, DO, 0, IAC, WILL, 3, IAC, DO, 3, IAC, DO, 1, IAC, WILL, CPO])
SET_9600 = sb(1, 0, 0, 0x25, 0x80)
SET_19200 = sb(1, 0, 0, 0x4B, 0x00)


class InitHoldsDataOnlyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Processes()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.line.setInitCommand("login", 30, self.clock)

    def connect(self) -> tuple[TelnetClient, BoundedTransport]:
        spec = parseListener("telnet+4445")
        client = TelnetClient(self.line, listener=spec, clock=self.clock)
        transport = BoundedTransport()
        client.makeConnection(transport)
        self.addCleanup(client.connectionLost)
        return client, transport

    def deviceDid(self) -> list[tuple[str, Any]]:
        return [(kind, getattr(data, "baudrate", data)) for kind, data in self.device.events
                if kind in ("write", "apply", "break")]

    def ended(self) -> None:
        self.clock.runs[-1].processEnded(Failure(ProcessDone(0)))

    def test_openAnsweredTypingWaits(self) -> None:
        """pyserial's open during the run is answered (its SET-BAUDRATE too, applied); what it types then waits, and the commands behind it, until the run ends: then in order."""
        client, transport = self.connect()
        self.line.runInitCommand()
        self.assertEqual(transport.producerState, "producing")
        transport.clear()
        client.dataReceived(PYSERIAL_OPTIONS + SET_9600)
        self.assertIn(sb(101, 0, 0, 0x25, 0x80), transport.value())
        self.assertEqual(self.deviceDid(), [("apply", 9600)])
        client.dataReceived(b"abc" + SET_19200 + b"def")
        self.assertEqual((self.deviceDid(), transport.producerState), ([("apply", 9600)], "paused"))
        self.clock.advance(COM_PORT_WAIT)
        self.ended()
        self.assertEqual(self.deviceDid(), [("apply", 9600), ("write", b"abc"), ("apply", 19200), ("write", b"def")])
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_breakWaitsBehindTyping(self) -> None:
        """A program's IAC BRK after typing that waits for the run waits its turn (a program is told no refusal), then reaches the device after that typing."""
        client, transport = self.connect()
        self.line.runInitCommand()
        client.dataReceived(b"boot" + bytes([IAC, BRK]) + b"x")
        self.assertEqual(self.deviceDid(), [])
        self.ended()
        self.assertEqual(self.deviceDid(), [("write", b"boot"), ("break", None), ("write", b"x")])
        self.assertNotIn(b"no break", transport.value())
        self.clock.advance(COM_PORT_WAIT)

    def test_hungUpWithTypingThatWaits(self) -> None:
        """A program that typed and hung up during the run (nothing left unread in its socket) is not cut: what it typed goes to the device once the run ends."""
        client, transport = self.connect()
        self.line.runInitCommand()
        client.dataReceived(b"reboot\r")
        said: list[Any] = []
        observeLog(self, said.append)
        self.patch(reading, "unreadAfterHangUp", lambda transport: 0)
        self.clock.advance(reading.HANGUP_CHECK_SECONDS)
        self.assertEqual((client.departed, transport.disconnecting), (True, False))
        self.assertIn(f"t: {client.peer} hung up while an init-command held people's typing: 7 byte(s) it sent wait "
                      "for the device, then it goes (its place is free)", [formatEvent(e) for e in said])
        self.ended()
        self.assertEqual(self.deviceDid(), [("write", b"reboot\r")])
