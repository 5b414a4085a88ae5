"""
Tests for idle-timeout and idle-string (serialgw.line.idlestring,
conserver's idletimeout and idlestring): a real SerialDevice on a
recording port and a line, driven by a clock.
"""

from __future__ import annotations

import errno

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices.device import SerialDevice
from serialgw.line.hub import Line
from tests.fakes import LogEvents, RecordingClient, RecordingPort

SAID = "idle 300 s: idle-string sent"


class IdleStringTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.device = SerialDevice(self.opener(), self.reactor, 0.25, opener=self.opener, reopenPolicy=lambda n: 1.0)
        self.line = Line("web1", self.device, clock=self.reactor)
        self.device.sink = self.line
        self.device.start()
        self.line.setIdleString(300.0, (b"\r",))
        self.log = LogEvents(self)

    def opener(self) -> RecordingPort:
        port = RecordingPort(self.reactor)
        port.name = "/dev/ttyUSB0"
        self.ports.append(port)
        return port

    def writes(self, port: int = 0) -> list[tuple[float, bytes]]:
        return [(when, value) for when, what, value in self.ports[port].events if what == "write"]

    def test_sentAfterQuiet(self) -> None:
        """Nothing either way for 300 s: the idle-string is written (at 300 s, then every 300 s), the people told, the log says it; nobody attached, it goes all the same."""
        from twisted.logger import formatEvent

        self.reactor.advance(299.9)
        self.assertEqual(self.writes(), [])
        self.reactor.advance(0.1)
        # Nobody attached at 300 s: written and logged all the same.
        self.assertEqual(self.line.clients, [])
        self.assertEqual(self.writes(), [(300.0, b"\r")])
        self.assertEqual([formatEvent(e) for e in self.log.events if "idle-string" in formatEvent(e)],
                         [f"web1: {SAID}"])
        person = RecordingClient("192.0.2.1:1")
        self.line.attach(person)
        self.reactor.advance(299.9)
        self.assertEqual(self.writes(), [(300.0, b"\r")])
        self.reactor.advance(0.1)
        self.assertEqual(self.writes(), [(300.0, b"\r"), (600.0, b"\r")])
        self.assertEqual(person.announcements, [SAID])
        self.assertEqual(self.line.bytesToDevice, 2)
        self.assertEqual([formatEvent(e) for e in self.log.events if "idle-string" in formatEvent(e)],
                         [f"web1: {SAID}"] * 2)

    def test_logSaysItOnceAMinute(self) -> None:
        """idle-timeout 1 s on a quiet device for 150 s: 150 idle-strings, each told to the people; the gateway's log says 3 (at most one a minute a line, with the count left out): it said all 150."""
        from twisted.logger import formatEvent

        self.line.setIdleString(1.0, (b"\r",))
        person = RecordingClient("192.0.2.1:1")
        self.line.attach(person)
        for _ in range(150):
            self.reactor.advance(1)
        said = "idle 1 s: idle-string sent"
        self.assertEqual((len(self.writes()), person.announcements), (150, [said] * 150))
        self.assertEqual([formatEvent(e) for e in self.log.events if "idle-string" in formatEvent(e)],
                         [f"web1: {said}", f"web1: {said} (59 more since the last one said)",
                          f"web1: {said} (59 more since the last one said)"])

    def test_outputAndTypingPutItOff(self) -> None:
        """Device output at 200 s puts it off to 500 s; typing at 600 s to 900 s."""
        self.reactor.advance(200)
        self.ports[0].incoming.append(b"login: ")
        self.device.doRead()
        self.reactor.advance(100)
        self.assertEqual(self.writes(), [])
        self.reactor.advance(200)
        self.assertEqual(self.writes(), [(500.0, b"\r")])
        self.reactor.advance(100)
        self.line.clientData(RecordingClient("192.0.2.1:1"), b"ls\r")
        self.reactor.advance(299)
        self.assertEqual(self.writes(), [(500.0, b"\r"), (600.0, b"ls\r")])
        self.reactor.advance(1)
        self.assertEqual(self.writes()[-1], (900.0, b"\r"))

    def test_breaksInTheString(self) -> None:
        """'\\r\\bx': the data, a break of break-duration, then the rest, in order (as an open-string's)."""
        self.line.setIdleString(60.0, (b"\r", b"x"))
        self.reactor.advance(60)
        self.reactor.advance(0.25)
        events = [(when, what, value) for when, what, value in self.ports[0].events if what in ("write", "break")]
        self.assertEqual(events, [(60.0, "write", b"\r"), (60.0, "break", True), (60.25, "break", False),
                                  (60.25, "write", b"x")])

    def test_notWhileDown(self) -> None:
        """The device down (unplugged): nothing written, nobody told; back, it counts from its return."""
        person = RecordingClient("192.0.2.1:1")
        self.line.attach(person)
        self.reactor.advance(100)
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.reactor.advance(300)
        self.assertEqual((len(self.ports), self.device.up), (2, True))
        back = self.ports[1].events[0][0]  # (the reopen's backoff's)
        self.reactor.advance(back + 299.9 - self.reactor.seconds())
        self.assertEqual((self.writes(0), self.writes(1), person.announcements), ([], [], []))
        self.reactor.advance(0.1)
        self.assertEqual(self.writes(1), [(back + 300, b"\r")])

    def test_notPiledUpBehindAHeldDevice(self) -> None:
        """A device that does not take what it is given (flow control): no idle-string while anything is queued for it, however long."""
        self.ports[0].pending = 10  # (the driver's queue: held)
        self.reactor.advance(3000)
        self.assertEqual(self.writes(), [])
        self.ports[0].pending = 0
        self.reactor.advance(300)
        self.assertEqual(self.writes(), [(3300.0, b"\r")])

    def test_reloadChangesIt(self) -> None:
        """A reload's idle-timeout counts from the last activity (past already: at once); 0 takes it out, no timer left."""
        self.reactor.advance(100)
        self.line.setIdleString(60.0, (b"\n",))
        self.reactor.advance(0)
        self.assertEqual(self.writes(), [(100.0, b"\n")])
        self.line.setIdleString(600.0, (b"\n",))
        self.reactor.advance(599)
        self.assertEqual(len(self.writes()), 1)
        self.reactor.advance(1)
        self.assertEqual(self.writes()[-1], (700.0, b"\n"))
        self.line.setIdleString(0.0, (b"\n",))
        self.assertEqual((self.line.idle, self.reactor.getDelayedCalls()), (None, []))

    def test_letGoStopsIt(self) -> None:
        """The line let go (a stop, a reload removing it): no idle-string into the close, nothing on the clock."""
        self.successResultOf(self.line.letGo())
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.advance(1000)
        self.assertEqual(self.writes(), [])

    def test_closedOnDemand(self) -> None:
        """An on-demand device closed (nobody connected): nothing written, nothing opened for it."""
        self.line.setOnDemand(True)
        self.reactor.advance(1000)
        self.assertEqual((len(self.ports), self.writes(), self.line.closedOnDemand), (1, [], True))

    def test_statusPage(self) -> None:
        """The status page's idle_timeout: since when the device has been quiet and when the idle-string is due (ISO 8601 UTC, the clock's), how many went; nulls while the device is down; null without an idle-timeout."""
        from serialgw.app.status import lineStatus

        self.reactor.advance(200)
        self.ports[0].incoming.append(b"login: ")
        self.device.doRead()
        self.reactor.advance(300)  # (sent at 500 s: idle from then on)
        self.reactor.advance(100)
        self.assertEqual(lineStatus(self.line)["idle_timeout"],
                         {"seconds": 300.0, "idle_since": "1970-01-01T00:08:20.000Z",
                          "idle_string_due": "1970-01-01T00:13:20.000Z", "idle_strings_sent": 1})
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertEqual(lineStatus(self.line)["idle_timeout"],
                         {"seconds": 300.0, "idle_since": None, "idle_string_due": None, "idle_strings_sent": 1})
        self.line.setIdleString(0, (b"\r",))
        self.assertIsNone(lineStatus(self.line)["idle_timeout"])
