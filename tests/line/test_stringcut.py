"""
An open-string cut short by the device going (unplugged during one of its
breaks): the device that comes back, people still attached, gets it whole,
as it gets one that was due while it was down.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.parsers import parseSendString
from serialgw.devices.device import SerialDevice
from serialgw.line.hub import Line
from tests.fakes import RecordingClient, RecordingPort


def person(peer: str) -> RecordingClient:
    client = RecordingClient(peer)
    client.person = True
    return client


def written(port: RecordingPort) -> list[Any]:
    """What reached C{port}: data, and breaks as BREAK ON / OFF."""
    return [value if what == "write" else f"BREAK {'ON' if value else 'OFF'}" for _, what, value in port.events
            if what in ("write", "break")]


class OpenStringCutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.ports = [RecordingPort(self.clock) for _ in range(3)]
        opened = list(self.ports[1:])
        self.device = SerialDevice(self.ports[0], self.clock, 0.25, opener=lambda: opened.pop(0),
                                   reopenPolicy=lambda n: 1.0)
        self.line = Line("l", self.device, clock=self.clock)
        self.device.sink = self.line
        self.line.openString = parseSendString(r"\r\bwake\r")

    def lose(self, port: RecordingPort) -> None:
        port.error = OSError(errno.EIO, "hung up")
        self.device.doRead()

    def test_cutByAnUnplugSentWholeWhenBack(self) -> None:
        """Unplugged during the open-string's break: the rest is not sent to the gone device; the one back gets all of it, once."""
        someone = person("a")
        self.line.attach(someone)
        self.assertEqual(written(self.ports[0]), [b"\r", "BREAK ON"])
        self.lose(self.ports[0])
        self.clock.advance(1.0)
        self.assertEqual(written(self.ports[0]), [b"\r", "BREAK ON", "BREAK OFF"])
        self.clock.advance(0.25)
        self.assertEqual(written(self.ports[1]), [b"\r", "BREAK ON", "BREAK OFF", b"wake\r"])
        # Back again later: not again (it was sent whole).
        self.lose(self.ports[1])
        self.clock.advance(1.0)
        self.assertEqual(written(self.ports[2]), [])
        self.line.detach(someone)
        self.clock.advance(1.0)

    def test_cutBeforeItsSecondBreak(self) -> None:
        """Unplugged during the first of two breaks (the second waiting its turn): the one back gets the whole string."""
        self.line.openString = parseSendString(r"\r\b\r\bX")
        someone = person("a")
        self.line.attach(someone)
        self.lose(self.ports[0])
        self.clock.advance(1.25)
        self.assertEqual(written(self.ports[1]), [b"\r", "BREAK ON"])
        for _ in range(20):
            self.clock.advance(0.05)
        self.assertEqual(written(self.ports[1]), [b"\r", "BREAK ON", "BREAK OFF", b"\r", "BREAK ON", "BREAK OFF", b"X"])
        self.line.detach(someone)
        self.clock.advance(1.0)

    def test_cutNobodyLeftNotSent(self) -> None:
        """Cut short, and the person gone before the device is back: nothing is sent to it."""
        someone = person("a")
        self.line.attach(someone)
        self.lose(self.ports[0])
        self.line.detach(someone)
        self.clock.advance(1.25)
        self.assertEqual(written(self.ports[1]), [])
