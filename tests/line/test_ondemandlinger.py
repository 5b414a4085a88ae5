"""
Tests for on-demand-linger (serialgw.line.ondemand): an on-demand device
kept open a while after the last client left, so that a client coming
back (a health check every few seconds) does not open it again (the
kernel raises DTR at each open: a board wired to it resets).  A real
SerialDevice on recording ports, driven by a clock, as tests.line.test_ondemand.
"""

from __future__ import annotations

import errno
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.devices.absent import AbsentPort
from serialgw.devices.device import SerialDevice
from serialgw.interfaces import RESTING
from serialgw.line.hub import Line
from tests.fakes import LogEvents, RecordingClient, RecordingPort


class LingerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.outcomes: list[Deferred[RecordingPort]] = []
        self.device = SerialDevice(AbsentPort("/dev/ttyUSB0", SerialSettings()), self.reactor, 0.25,
                                   opener=self.opener, reopenPolicy=lambda n: 1.0, downReason=RESTING)
        self.line = Line("web1", self.device, clock=self.reactor)
        self.device.sink = self.line
        self.line.linger = 30.0
        self.line.setOnDemand(True)
        self.device.start()
        self.log = LogEvents(self)

    def opener(self) -> Any:
        if self.outcomes:
            return self.outcomes.pop(0)  # (an open under way: a Deferred)
        port = RecordingPort(self.reactor)
        port.name = "/dev/ttyUSB0"
        self.ports.append(port)
        return port

    def person(self, peer: str) -> RecordingClient:
        client = RecordingClient(peer)
        client.person = True
        return client

    def closes(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.log.events if "device closed (on demand)" in e.get("log_format", "")]

    def test_keptOpenThenClosed(self) -> None:
        """The last client gone, the device stays open 30 s (no close, one timer), then is closed as before: one port opened, one close logged, no timer left."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.reactor.advance(29.9)
        self.assertEqual((self.device.up, self.line.closedOnDemand, self.ports[0].closed), (True, False, False))
        self.assertEqual(self.closes(), [])
        self.reactor.advance(0.1)
        self.assertEqual((self.device.up, self.device.resting, self.ports[0].closed), (False, True, True))
        self.assertEqual(self.closes(), ["web1: device closed (on demand): no client wants it"])
        self.assertEqual((len(self.ports), self.reactor.getDelayedCalls()), (1, []))

    def test_healthChecksOpenItOnce(self) -> None:
        """A check connecting and leaving every 10 s for 5 minutes opens the device once and never closes it; 30 s after the last one, it is closed."""
        for _ in range(30):
            check = self.person("192.0.2.9:80")
            self.line.attach(check)
            self.line.detach(check)
            self.reactor.advance(10)
        self.assertEqual((len(self.ports), self.ports[0].closed, self.closes()), (1, False, []))
        self.reactor.advance(20)
        self.assertEqual((self.ports[0].closed, len(self.closes())), (True, 1))

    def test_noLingerClosesAtOnce(self) -> None:
        """on-demand-linger 0 (left out): closed as the last client leaves, as before."""
        self.line.linger = 0.0
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.assertEqual((self.ports[0].closed, self.reactor.getDelayedCalls()), (True, []))

    def test_reloadMovesTheClose(self) -> None:
        """A reload's linger applies to the device lingering now, counted from when the last client left: longer waits on, shorter past it closes at once; one not lingering is not touched."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.reactor.advance(10)
        self.line.setLinger(60.0)
        self.reactor.advance(49.9)
        self.assertFalse(self.ports[0].closed)
        self.line.setLinger(5.0)  # (59.9 s since it left: past)
        self.assertFalse(self.ports[0].closed)
        self.reactor.advance(0)
        self.assertEqual((self.ports[0].closed, self.reactor.getDelayedCalls()), (True, []))
        self.line.setLinger(0.0)
        self.assertEqual((self.reactor.getDelayedCalls(), len(self.closes())), ([], 1))

    def test_onDemandOffWhileLingering(self) -> None:
        """on-demand turned off while the device lingers: kept open, no close left waiting."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.line.setOnDemand(False)
        self.reactor.advance(60)
        self.assertEqual((self.device.up, self.ports[0].closed, self.closes()), (True, False, []))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_hangUpWhileLingering(self) -> None:
        """The device goes while it lingers: tried again with backoff until the linger ends, then closed (no reopening after); the next client opens it anew."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertFalse(self.device.up)
        self.reactor.advance(30)
        self.assertEqual((self.device.resting, self.reactor.getDelayedCalls()), (True, []))
        opened = len(self.ports)
        self.line.attach(self.person("192.0.2.2:2"))
        self.assertEqual((len(self.ports), self.device.up), (opened + 1, True))

    def test_downWhenTheLastLeavesClosesAtOnce(self) -> None:
        """The device down when the last client leaves (unplugged): not looked for a linger long with nobody there; rested at once."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.line.detach(client)
        self.assertEqual((self.device.resting, self.reactor.getDelayedCalls()), (True, []))

    def test_letGoWhileLingering(self) -> None:
        """The gateway stops (or a reload removes the line) while the device lingers: the close waiting is dropped, nothing left on the clock."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        done = self.line.letGo()
        self.assertEqual((self.successResultOf(done), self.reactor.getDelayedCalls()), (None, []))

    def test_lastLeavesAfterTheLetGo(self) -> None:
        """The stop lets the line go, then cuts its clients: the last one leaving then starts no linger (a timer left past the stop)."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.successResultOf(self.line.letGo())
        self.line.detach(client)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_reloadOnAMovingClock(self) -> None:
        """A reload's shorter linger, already past, on a clock that moves between two reads (a real one): closed at once, no negative delay (it was: AssertionError in callLater, the reload's Deferred failed; seen live)."""
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.line.detach(client)
        self.reactor.advance(10)
        real = self.reactor.seconds

        def moving() -> float:
            self.reactor.rightNow += 1e-6
            return real()

        later = self.reactor.callLater

        def callLater(delay: float, f: Any, *args: Any, **kwargs: Any) -> Any:
            assert delay >= 0, f"{delay} is not greater than or equal to 0 seconds"  # (as the real reactor's)
            return later(delay, f, *args, **kwargs)

        self.patch(self.reactor, "seconds", moving)
        self.patch(self.reactor, "callLater", callLater)
        self.line.setLinger(5.0)
        self.reactor.advance(0)
        self.assertEqual((self.ports[0].closed, self.reactor.getDelayedCalls()), (True, []))

    def test_checkGoneBeforeTheOpenReturns(self) -> None:
        """A check that leaves before the open has returned (an open off the reactor's thread, the health check's usual case): the device lingers all the same, opened once for the checks that follow (it was closed as the open returned, each check opening it again: seen live, 20 checks, 10 closes)."""
        opening: Deferred[RecordingPort] = Deferred()
        self.outcomes.append(opening)
        check = self.person("192.0.2.9:80")
        self.line.attach(check)
        self.line.detach(check)
        port = self.opener()
        opening.callback(port)
        self.assertEqual((self.device.up, port.closed), (True, False))
        for _ in range(5):
            self.reactor.advance(10)
            check = self.person("192.0.2.9:80")
            self.line.attach(check)
            self.line.detach(check)
        self.assertEqual((len(self.ports), port.closed, self.closes()), (1, False, []))
        self.reactor.advance(30)
        self.assertEqual((port.closed, len(self.closes())), (True, 1))

    def test_openFailsWhileLingering(self) -> None:
        """The open under way as the check left fails (the device is not there): tried again with backoff only until the linger ends, then let be."""
        from serialgw.devices.errors import DeviceError

        opening: Deferred[RecordingPort] = Deferred()
        self.outcomes.append(opening)
        check = self.person("192.0.2.9:80")
        self.line.attach(check)
        self.line.detach(check)
        opening.errback(DeviceError("cannot open device '/dev/ttyUSB0': No such file or directory"))
        self.reactor.advance(30)
        self.assertEqual((self.device.resting, self.reactor.getDelayedCalls()), (True, []))

    def test_reloadTurningItOnLingers(self) -> None:
        """A reload turning on-demand on (with on-demand-linger 30) while nobody wants the open device: it stays open 30 s from the reload, then is closed, as after a last leave (it was closed at once, the linger ignored: attack28, seen live); a client coming meanwhile finds it open."""
        from serialgw.app.lines import retuneLine

        self.line.setOnDemand(False)
        self.reactor.advance(0)
        self.assertEqual((self.device.up, len(self.ports)), (True, 1))
        old = LineConfig("web1", DeviceSpec("tty", "/dev/ttyUSB0"))
        new = attrs.evolve(old, onDemand=True, onDemandLinger=30.0)
        self.line.linger = 0.0
        retuneLine(self.line, old, new)
        self.reactor.advance(29.9)
        self.assertEqual((self.device.up, self.ports[0].closed, self.closes()), (True, False, []))
        self.reactor.advance(0.1)
        self.assertEqual((self.device.resting, self.ports[0].closed, len(self.closes())), (True, True, 1))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        # Again, a client coming within the linger: kept open, one port opened in all.
        retuneLine(self.line, new, old)
        self.reactor.advance(0)
        retuneLine(self.line, old, new)
        self.reactor.advance(10)
        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.reactor.advance(60)
        self.assertEqual((self.device.up, len(self.ports), self.ports[1].closed), (True, 2, False))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_kickOldUserNewcomerNeverAttaches(self) -> None:
        """kick-old-user makes room for a newcomer that then never attaches (its session fails first): the device lingers its 30 s as after any last leave (it was closed the next turn, the linger ignored: attack28); a newcomer that attaches keeps it open."""
        self.line.maxClients, self.line.kickOld = 1, True
        self.line.attach(self.person("192.0.2.1:1"))
        self.assertTrue(self.line.makeRoom("192.0.2.2:2"))
        self.reactor.advance(29.9)
        self.assertEqual((self.device.up, self.ports[0].closed, self.closes()), (True, False, []))
        self.reactor.advance(0.1)
        self.assertEqual((self.ports[0].closed, len(self.closes())), (True, 1))
        self.line.attach(self.person("192.0.2.3:3"))
        self.assertTrue(self.line.makeRoom("192.0.2.4:4"))
        self.line.attach(self.person("192.0.2.4:4"))
        self.reactor.advance(60)
        self.assertEqual((len(self.ports), self.ports[1].closed, self.reactor.getDelayedCalls()), (2, False, []))

    def test_statusPage(self) -> None:
        """The status page's on_demand_linger: its seconds; lingering_until (the clock's time, ISO 8601 UTC) only while the device lingers open; null on a line not on demand."""
        from serialgw.app.status import lineStatus

        client = self.person("192.0.2.1:1")
        self.line.attach(client)
        self.reactor.advance(100)
        self.assertEqual(lineStatus(self.line)["on_demand_linger"], {"seconds": 30.0, "lingering_until": None})
        self.line.detach(client)
        self.assertEqual(lineStatus(self.line)["on_demand_linger"],
                         {"seconds": 30.0, "lingering_until": "1970-01-01T00:02:10.000Z"})
        self.reactor.advance(30)
        self.assertEqual(lineStatus(self.line)["on_demand_linger"], {"seconds": 30.0, "lingering_until": None})
        self.line.setOnDemand(False)
        self.assertIsNone(lineStatus(self.line)["on_demand_linger"])
