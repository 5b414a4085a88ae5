"""
A watch-all view's notices of a line's device (down, back, closed on
demand) are bounded: at most NOTICES in NOTICE_WINDOW seconds, the rest
counted and said when the window is over, with the last of them.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.linetap import NOTICE_WINDOW, NOTICES
from serialgw.clients.watchall import WatchAllFactory
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
DOWN = b"l1: [serialgw: l1 is down: [Errno 5] hung up; waiting for it]\r\n"
BACK = b"l1: [serialgw: l1 is back]\r\n"


class ViewNoticesTests(SynchronousTestCase):
    def test_noticesBounded(self) -> None:
        """A device going and coming back 30 times in a minute (an on-demand line's health check: closed at each): the view shows the first NOTICES notices, then, a window later, how many it left out before the next."""
        clock = Clock()
        line = Line("l1", RecordingDevice(), clock=clock)
        factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: {"l1": line}, clock)
        client = factory.buildProtocol(PEER)
        assert client is not None
        transport = StringTransport(peerAddress=PEER)
        client.makeConnection(transport)
        for _ in range(30):
            line.deviceLost(Failure(OSError(5, "hung up")))
            line.deviceUp()
            clock.advance(1)
        self.assertEqual(transport.value(), (DOWN + BACK) * (NOTICES // 2))
        transport.clear()
        clock.advance(NOTICE_WINDOW / 2 - 0.5)
        self.assertEqual(transport.value(), b"")
        # The window over (60 s from its first notice), with no notice since: what it left out is said
        # then, and the last of them, the device's state (it waited for a later notice, maybe for good:
        # the view showed the device down while it was back).
        clock.advance(0.5)
        self.assertEqual(transport.value(), b"l1: [serialgw: 40 more notices of l1's device were not shown (at most 20 "
                                            b"in 60 s); the last of them:]\r\n" + BACK)
        transport.clear()
        line.deviceLost(Failure(OSError(5, "hung up")))
        self.assertEqual(transport.value(), DOWN)
        client.connectionLost(Failure(Exception("bye")))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_leftOutSaidAtTheWindowsEndOnly(self) -> None:
        """Notices left out and the view gone before the window's end: nothing said, no call left; a window with none left out says nothing at its end."""
        clock = Clock()
        line = Line("l1", RecordingDevice(), clock=clock)
        factory = WatchAllFactory(parseListener("tcp:0"), ("*",), lambda: {"l1": line}, clock)
        client = factory.buildProtocol(PEER)
        assert client is not None
        transport = StringTransport(peerAddress=PEER)
        client.makeConnection(transport)
        line.deviceLost(Failure(OSError(5, "hung up")))
        line.deviceUp()
        transport.clear()
        clock.advance(NOTICE_WINDOW)
        self.assertEqual((transport.value(), clock.getDelayedCalls()), (b"", []))
        for _ in range(NOTICES):
            line.deviceLost(Failure(OSError(5, "hung up")))
            line.deviceUp()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        client.connectionLost(Failure(Exception("bye")))
        self.assertEqual(clock.getDelayedCalls(), [])
