"""
The consoles of one far host (a console server's lines) share one log
budget for their coming and going: a server whose 48 lines flapped wrote
about 1000 lines a minute (22 a line: the link's connected and lost, the
line's device up and down).
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink
from serialgw.line.hub import Line
from serialgw.logflood import peerLimiter
from tests.fakes import BoundedTransport, observeLog

FLAPS = 6


class HostBudgetTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)))
        self.patch(peerLimiter, "now", self.clock.seconds)

    def console(self, host: str, port: int) -> RemoteDevice:
        device = RemoteDevice(DeviceSpec("tcp", host=host, port=port), self.clock)
        device.sink = Line(f"{host}:{port}", device, clock=self.clock)
        return device

    def flap(self, device: RemoteDevice) -> None:
        """Its far end takes a connection and closes it."""
        link = RawLink(device)
        link.makeConnection(BoundedTransport())
        link.connectionLost(Failure(ConnectionDone()))

    def test_flappingConsoleServerBounded(self) -> None:
        """
        48 lines of one console server flapping 6 times in a minute (1104
        lines before): 20 lines, the first said as they came, then one line
        counting the 1084 left out once the minute is over; a console of
        another host is said meanwhile, as the same server's once the minute
        is over.
        """
        consoles = [self.console("192.0.2.7", 7001 + n) for n in range(48)]
        for _ in range(FLAPS):
            for device in consoles:
                self.flap(device)
        self.assertEqual(len(self.said), 20)
        self.assertEqual(self.said[:3], [
            "tcp:192.0.2.7:7001: connected",
            "tcp:192.0.2.7:7001: connection lost: Connection was closed cleanly",
            "192.0.2.7:7001: device down (Connection was closed cleanly); 0 client(s) stay connected",
        ])
        self.flap(self.console("192.0.2.8", 7001))
        self.assertEqual(self.said[20:], [
            "tcp:192.0.2.8:7001: connected",
            "tcp:192.0.2.8:7001: connection lost: Connection was closed cleanly",
            "192.0.2.8:7001: device down (Connection was closed cleanly); 0 client(s) stay connected",
        ])
        self.clock.advance(60)
        del self.said[:]
        self.flap(consoles[0])
        self.assertEqual(self.said, [
            "1084 log messages about the consoles at 192.0.2.7 left out in the last minute (over 20 a minute)",
            "tcp:192.0.2.7:7001: connected",
            "192.0.2.7:7001: device up",
            "tcp:192.0.2.7:7001: connection lost: Connection was closed cleanly",
            "192.0.2.7:7001: device down (Connection was closed cleanly); 0 client(s) stay connected",
        ])
