"""
A connection past max-clients on a telnet or raw listener is told why
before it is closed (it was closed without a word: 'Connection closed by
foreign host').  Over TLS it is closed at accept, before any TLS.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.factory import LineFactory
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.fakes import RecordingClient, RecordingDevice, observeLog


class LineFullTests(SynchronousTestCase):
    """The connection one past max-clients gets one line saying so, then is closed; it never joins the line."""

    def test_toldWhy(self) -> None:
        """Telnet and raw: '[serialgw: LINE is full: N clients (max-clients)]', then the connection closes; with max-clients 1, '1 client' (it said '1 clients'), in the log too."""
        line = Line("rack4", RecordingDevice(), clock=Clock())
        line.maxClients = 1
        someone = RecordingClient("someone:1")
        someone.person = True  # type: ignore[attr-defined]
        line.attach(someone)
        self.assertTrue(line.full())
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        for listener in ("telnet+4444", "raw+4445"):
            protocol = LineFactory(line, parseListener(listener)).buildProtocol(IPv4Address("TCP", "127.0.0.1", 5))
            self.assertIsNotNone(protocol)
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(b"\xff\xf6hello")
            self.assertEqual(transport.value(), b"\r\n[serialgw: rack4 is full: 1 client (max-clients)]\r\n")
            self.assertTrue(transport.disconnecting)
            self.assertEqual(len(line.clients), 1)
        self.assertIn("rack4: connection from 127.0.0.1:5 refused: 1 client already (max-clients)",
                      [formatEvent(e) for e in events])
