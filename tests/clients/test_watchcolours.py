"""
Watch-all and colours: the attributes (SGR escape sequences) one console
leaves set do not colour the next console's lines; the console's own
colour is put back when its lines come again.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.linetap import SGR_KEPT, SGR_SCAN
from serialgw.clients.watchall import WatchAllClient, WatchAllFactory
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class WatchColoursTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.lines = {name: Line(name, RecordingDevice(), clock=self.clock) for name in ("l0", "l1")}
        factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: self.lines, self.clock)
        client = factory.buildProtocol(PEER)
        assert client is not None
        self.client: WatchAllClient = client
        self.transport = StringTransport(peerAddress=PEER)
        client.makeConnection(self.transport)

    def tearDown(self) -> None:
        self.client.connectionLost(Failure(Exception("bye")))

    def out(self, name: str, data: bytes) -> bytes:
        self.transport.clear()
        self.lines[name].deviceDataReceived(data)
        return self.transport.value()

    def test_resetAtSwitchRestoredOnReturn(self) -> None:
        """l0 left red: l1's line starts with ESC [0m; l0's next line with its red again; once l0 resets, nothing is added."""
        self.assertEqual(self.out("l0", b"\x1b[1m\x1b[31mred\r\nstill\r\n"), b"l0: \x1b[1m\x1b[31mred\r\nl0: still\r\n")
        self.assertEqual(self.out("l1", b"plain\r\n"), b"\x1b[0ml1: plain\r\n")
        self.assertEqual(self.out("l1", b"again\r\n"), b"l1: again\r\n")
        self.assertEqual(self.out("l0", b"more\r\n"), b"\x1b[1m\x1b[31ml0: more\r\n")
        self.assertEqual(self.out("l0", b"\x1b[0mok\r\n"), b"l0: \x1b[0mok\r\n")
        self.assertEqual(self.out("l1", b"x\r\n"), b"l1: x\r\n")
        self.assertEqual(self.out("l0", b"y\r\n"), b"l0: y\r\n")

    def test_resetWithAttributesStartsAfresh(self) -> None:
        """ESC [0;32m (reset, then green) replaces what came before; ESC [m is a reset too."""
        self.out("l0", b"\x1b[1m\x1b[0;32mgreen\r\n")
        self.out("l1", b"b\r\n")
        self.assertEqual(self.out("l0", b"c\r\n"), b"\x1b[0;32ml0: c\r\n")
        self.out("l0", b"\x1b[mplain\r\n")
        self.assertEqual(self.out("l1", b"d\r\n"), b"l1: d\r\n")

    def test_noticeAfterColourReset(self) -> None:
        """A notice (the device went) after l0's red starts with ESC [0m too."""
        self.out("l0", b"\x1b[31mred\r\n")
        self.transport.clear()
        self.lines["l1"].deviceLost(Failure(Exception("gone")))
        self.assertTrue(self.transport.value().startswith(b"\x1b[0ml1: "), self.transport.value())

    def test_keptBounded(self) -> None:
        """10000 attribute changes without a reset: at most SGR_KEPT of them (the newest) are put back."""
        self.out("l0", b"".join(b"\x1b[%dm" % (31 + i % 7) for i in range(10000)) + b"x\r\n")
        self.out("l1", b"b\r\n")
        back = self.out("l0", b"c\r\n")
        self.assertEqual(back, b"".join(b"\x1b[%dm" % (31 + i % 7) for i in range(10000 - SGR_KEPT, 10000)) + b"l0: c\r\n")

    def test_otherSequencesNotColours(self) -> None:
        """Cursor moves (ESC [A) are no attributes: nothing added; past SGR_SCAN of them, a reset comes anyway (what came before is not looked at)."""
        self.out("l0", b"\x1b[A" * (SGR_SCAN - 1) + b"x\r\n")
        self.assertEqual(self.out("l1", b"b\r\n"), b"l1: b\r\n")
        self.out("l0", b"\x1b[31m" + b"\x1b[A" * SGR_SCAN + b"x\r\n")
        self.assertEqual(self.out("l1", b"b\r\n"), b"\x1b[0ml1: b\r\n")
        self.assertEqual(self.out("l0", b"c\r\n"), b"l0: c\r\n")
