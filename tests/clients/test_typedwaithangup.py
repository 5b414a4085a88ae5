"""
A person's telnet client (an escape menu) whose RFC 2217 command waits
behind its own typing while the device takes no input (TYPED_WAIT), that
hangs up meanwhile: seen to go as any client not read only for the device.
"""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.reading import HANGUP_CHECK_SECONDS
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.clients.test_behind import SocketTransport
from tests.fakes import RecordingDevice, observeLog

SET_BAUD_9600 = bytes([255, 250, 44, 1, 0, 0, 0x25, 0x80, 255, 240])


class TypedWaitHangUpTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)) if e.get("line") == "t" else None)
        ours, self.peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(self.peer.close)
        self.client = TelnetClient(self.line, listener=parseListener("telnet,escape=^]+4445"), clock=self.clock)
        self.transport = SocketTransport(ours)
        self.client.makeConnection(self.transport)
        self.client.dataReceived(bytes([255, 251, 44]))  # IAC WILL COM-PORT-OPTION
        self.clock.advance(1)
        self.line.deviceWritable(False)
        self.client.dataReceived(b"stty 9600\r" + SET_BAUD_9600)
        self.assertEqual(self.transport.producerState, "paused")

    def test_hungUpGoes(self) -> None:
        """It hangs up, nothing left unread: gone within HANGUP_CHECK_SECONDS, what it typed not sent, said (it held its place in max-clients and its descriptor until the device took input)."""
        self.peer.close()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(self.transport.aborted)
        self.assertIn(f"t: {self.client.peer} hung up while the device took no input (nothing it sent was left "
                      "unread): it goes now", self.said)

    def test_stillThereWaits(self) -> None:
        """Still connected, it waits its turn: the command goes after its typing once the device takes input."""
        self.clock.advance(HANGUP_CHECK_SECONDS * 3)
        self.assertFalse(self.transport.aborted)
        self.line.deviceWritable(True)
        self.assertEqual([(kind, getattr(data, "baudrate", data)) for kind, data in self.device.events
                          if kind in ("write", "apply")], [("write", b"stty 9600\r"), ("apply", 9600)])
        self.assertEqual(self.transport.producerState, "producing")
