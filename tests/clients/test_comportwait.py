"""
A telnet listener offers COM-PORT-OPTION at connect; until the client has
answered, nobody knows whether it is a program speaking RFC 2217 (whose
bytes are data: no text of ours may go into them) or a person (who is told
that the line is down).  The text waits for the answer, or for
COM_PORT_WAIT seconds from a client that never answers.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import COM_PORT_WAIT, TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import IAC, WILL
from tests.fakes import PausableTransport, RecordingDevice
from tests.telnetpeer import AGREE, WONT_COM_PORT, sb

DOWN = b"\r\n[serialgw: ttyUSB0 is down: not there; waiting for it]\r\n"


class ComPortWaitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("ttyUSB0", RecordingDevice(), clock=self.clock)
        self.line.deviceLost(Failure(OSError(5, "Input/output error")))

    def connect(self, listener: str = "telnet+4444") -> tuple[TelnetClient, PausableTransport]:
        spec = parseListener(listener)
        client = TelnetClient(self.line, rfc2217=spec.rfc2217, listener=spec, clock=self.clock)
        transport = PausableTransport()
        client.makeConnection(transport)
        self.addCleanup(client.connectionLost)
        return client, transport

    def test_rfc2217ClientGetsNoText(self) -> None:
        """
        An RFC 2217 program connecting while the device is down gets the
        offers, then CD off in NOTIFY-MODEMSTATE: the down notice is not in
        its data (another serialgw's rfc2217:// device took it for device
        output, into its clients and console log).
        """
        client, transport = self.connect()
        self.assertNotIn(b"[serialgw", transport.value())
        transport.clear()
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.assertEqual(transport.value(), sb(107, 0x30))
        self.clock.advance(COM_PORT_WAIT)
        self.assertEqual(transport.value(), sb(107, 0x30))

    def test_personToldOnceAnswered(self) -> None:
        """A person's telnet refuses COM-PORT-OPTION (WONT): the down notice comes with that answer."""
        client, transport = self.connect()
        transport.clear()
        client.dataReceived(AGREE + WONT_COM_PORT)
        self.assertEqual(transport.value().count(DOWN), 1)
        self.clock.advance(COM_PORT_WAIT)
        self.assertEqual(transport.value().count(DOWN), 1)

    def test_silentClientToldAfterWait(self) -> None:
        """A client that never answers (nc on a telnet port) is told after COM_PORT_WAIT seconds, once."""
        _, transport = self.connect()
        self.clock.advance(COM_PORT_WAIT - 0.01)
        self.assertNotIn(DOWN, transport.value())
        self.clock.advance(0.01)
        self.assertEqual(transport.value().count(DOWN), 1)

    def test_backBeforeAnswerSaidInOrder(self) -> None:
        """The device is back before a person answered: down, then back, are said with the answer, once."""
        client, transport = self.connect()
        self.line.deviceUp()
        self.assertNotIn(b"[serialgw", transport.value())
        transport.clear()
        client.dataReceived(AGREE + WONT_COM_PORT)
        self.clock.advance(COM_PORT_WAIT)
        self.assertEqual(transport.value().split(b"\r\n[serialgw")[1:],
                         [b": ttyUSB0 is down: not there; waiting for it]\r\n", b": ttyUSB0 is back]\r\n"])

    def test_rfc2217ClientSeesCarrierOnly(self) -> None:
        """Down at connect, back before the program's WILL: it gets CD on (the state then) and no text, later either."""
        client, transport = self.connect()
        self.line.deviceUp()
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.clock.advance(COM_PORT_WAIT)
        self.assertNotIn(b"[serialgw", transport.value())
        self.assertTrue(transport.value().endswith(sb(107, 0xB0)))

    def test_noRfc2217ListenerToldAtOnce(self) -> None:
        """A listener without com port control (no-rfc2217) offers none: the notice comes at connect, as before."""
        _, transport = self.connect("telnet,no-rfc2217+4444")
        self.assertEqual(transport.value().count(DOWN), 1)

    def test_upAtConnectToldAtOnce(self) -> None:
        """Up at connect, nothing is held: a loss inside the wait is said at once, as before (a program has nothing but its CD then too)."""
        self.line.deviceUp()
        _, transport = self.connect()
        self.line.deviceLost(Failure(OSError(5, "Input/output error")))
        self.assertIn(b"\r\n[serialgw: ttyUSB0 is down: ", transport.value())
