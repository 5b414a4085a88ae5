"""
What a client types into a line whose device is still being opened (its
first open, off the reactor thread: a line a reload adds, or whose device
it changes): held, and written once the device opens (after an open-string
due), bounded as a slow device's queue is (writers paused); dropped and
counted only if the open fails or hangs.  On a memory reactor with threads
whose opens return when the test says.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorThreads
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from serialgw.app import lines
from serialgw.app.service import GatewayService
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices import reopen
from serialgw.devices.device import HIGH_WATER
from serialgw.devices.errors import DeviceError
from serialgw.devices.reopen import OPENING, STUCK_AFTER
from serialgw.devices.reopenpool import DeviceOpens
from tests.devices.test_reopen import HeldPool
from tests.fakes import RecordingPort
from tests.line.test_attach import person


@implementer(IReactorThreads)
class ThreadedMemoryReactor(MemoryReactorClock):
    """A memory reactor whose device opens run on a pool (the test's): what comes back from a thread runs at once."""

    def callFromThread(self, callable: Callable[..., Any], *args: object, **kwargs: object) -> None:
        callable(*args, **kwargs)

    def getThreadPool(self) -> Any:
        raise NotImplementedError

    def callInThread(self, callable: Callable[..., Any], *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    def suggestThreadPoolSize(self, size: int) -> None:
        pass


class OpeningHoldTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = ThreadedMemoryReactor()
        self.pool = HeldPool()
        self.patch(reopen, "deviceOpens", DeviceOpens(self.pool))
        self.ports: list[RecordingPort] = []
        self.refuse = False

    def openPort(self, spec: DeviceSpec, *args: Any) -> RecordingPort:
        if self.refuse:
            raise DeviceError(f"cannot open device {spec.path!r}: No such file or directory")
        port = RecordingPort(self.clock)
        port.name = spec.path
        self.ports.append(port)
        return port

    def config(self, name: str, **kw: Any) -> LineConfig:
        return LineConfig(name=name, device=DeviceSpec("tty", f"/dev/fake-{name}"), lock=False, **kw)

    def added(self, **kw: Any) -> Any:
        """A started gateway of line a (opened in line: no thread at start here) and a reload adding line b, whose open has not returned."""
        self.patch(lines, "firstOpens", lambda *args: {})  # (line a opened in line)
        service = GatewayService([self.config("a")], reactor=self.clock, openPort=self.openPort, waitForDevices=True)
        self.patch(service, "reactor", self.clock)
        service.startService()
        self.pool.held.clear()
        self.assertEqual(self.successResultOf(service.reload([self.config("a"), self.config("b", **kw)])),
                         {"added": ["b"], "changed": [], "removed": []})
        self.addCleanup(lambda: self.successResultOf(service.stopService()))
        line = service.lines["b"]
        self.assertEqual((line.up, line.device.downReason, len(self.pool.held)), (False, OPENING, 1))
        return service, line

    def writes(self, port: RecordingPort) -> bytes:
        return b"".join(value for _, what, value in port.events if what == "write")

    def test_typedWhileOpeningReachesTheDevice(self) -> None:
        """Bytes typed into a line a reload added, before its open returns, are written to the device once it opens, in order, and counted sent."""
        service, line = self.added()
        client = person()
        line.attach(client)
        self.assertTrue(line.clientData(client, b"typed "))
        self.assertTrue(line.clientData(client, b"early"))
        self.pool.release()
        self.assertTrue(line.up)
        port = self.ports[-1]
        self.assertEqual(self.writes(port), b"typed early")
        self.assertEqual((line.device.dropped, line.bytesToDevice), (0, 11))
        line.clientData(client, b"!")
        self.assertEqual(self.writes(port), b"typed early!")
        self.assertEqual(client.deviceStates[-1], (True, b"\r\n[serialgw: b is back]\r\n"))

    def test_openStringFirst(self) -> None:
        """An open-string due while the device opens goes first once it opens, then what the person typed meanwhile."""
        service, line = self.added(openString=(b"AT\r",))
        client = person()
        line.attach(client)
        line.clientData(client, b"x")
        self.pool.release()
        self.assertEqual(self.writes(self.ports[-1]), b"AT\rx")

    def test_boundedByPausingWriters(self) -> None:
        """Typing past the device's high-water mark while it opens pauses the writers (nothing dropped); all of it is written once it opens, and they go on."""
        service, line = self.added()
        client = person()
        line.attach(client)
        for _ in range(3):
            line.clientData(client, b"x" * (HIGH_WATER // 2))
        self.assertEqual((client.paused, client.resumed, line.device.queuedBytes()), (1, 0, 3 * (HIGH_WATER // 2)))
        self.pool.release()
        self.assertEqual((self.writes(self.ports[-1]), client.resumed), (b"x" * (3 * (HIGH_WATER // 2)), 1))
        self.assertEqual((line.device.dropped, line.bytesToDevice), (0, 3 * (HIGH_WATER // 2)))

    def test_openFails(self) -> None:
        """
        The open fails: what was typed meanwhile is dropped and counted
        (dropped, not counted sent), logged naming the line, and the person
        told why the line is down; what is typed then is dropped as for any
        device that is down.
        """
        service, line = self.added()
        client = person()
        line.attach(client)
        line.clientData(client, b"typed")
        self.refuse = True
        with capturedLogs() as events:
            self.pool.release()
        why = "cannot open device '/dev/fake-b': No such file or directory"
        self.assertEqual((line.up, line.device.downReason, line.device.holding), (False, why, False))
        self.assertEqual((line.device.dropped, line.bytesToDevice), (5, 0))
        self.assertIn(f"b: 5 byte(s) queued for the device were lost with it ({why}): not sent, counted dropped",
                      [formatEvent(e) for e in events])
        self.assertEqual(client.deviceStates[-1], (False, f"\r\n[serialgw: b is down: {why}; waiting for it]\r\n".encode()))
        line.clientData(client, b"later")
        self.refuse = False
        self.clock.advance(2.0)  # (the reopen backoff's first attempt, 0.5 s and up to 1 s of jitter)
        self.pool.release()
        self.assertEqual((line.up, self.writes(self.ports[-1]), line.device.dropped), (True, b"", 10))

    def test_openHangs(self) -> None:
        """
        An open that hangs (said stuck after STUCK_AFTER s) does not hold
        what was typed any longer: dropped and counted then; what is typed
        after is dropped; nothing of it reaches the device when the open
        returns at last.
        """
        service, line = self.added()
        client = person()
        line.attach(client)
        line.clientData(client, b"typed")
        self.clock.advance(STUCK_AFTER)
        self.assertEqual((line.device.holding, line.device.dropped, line.bytesToDevice), (False, 5, 0))
        line.clientData(client, b"later")
        self.pool.release()
        self.assertEqual((line.up, self.writes(self.ports[-1]), line.device.dropped), (True, b"", 10))

    def test_removedWhileOpening(self) -> None:
        """A line removed by a reload while its open is under way, with typing held: nothing reaches the device, closed when the open returns."""
        service, line = self.added()
        client = person()
        line.attach(client)
        line.clientData(client, b"typed")
        self.assertEqual(self.successResultOf(service.reload([self.config("a")])),
                         {"added": [], "changed": [], "removed": ["b"]})
        self.assertEqual(line.device.dropped, 5)
        self.pool.release()
        self.assertEqual((self.writes(self.ports[-1]), self.ports[-1].closed), (b"", True))

    def test_changedTwiceWhileOpening(self) -> None:
        """
        A line whose device a reload changes twice while the first open is
        under way: the line opens its last device, and what was typed into
        it reaches that one; the earlier devices get nothing and are closed.
        """
        service, line = self.added()
        line.attach(first := person())
        line.clientData(first, b"one")
        for path in ("/dev/fake-b2", "/dev/fake-b3"):
            changed = LineConfig(name="b", device=DeviceSpec("tty", path), lock=False)
            self.assertEqual(self.successResultOf(service.reload([self.config("a"), changed])),
                             {"added": [], "changed": ["b"], "removed": []})
        line = service.lines["b"]
        line.attach(last := person())
        line.clientData(last, b"three")
        while self.pool.held:
            self.pool.release()
        self.assertEqual([(port.name, self.writes(port), port.closed) for port in self.ports[1:]],
                         [("/dev/fake-b", b"", True), ("/dev/fake-b2", b"", True), ("/dev/fake-b3", b"three", False)])
        self.assertTrue(line.up)


    def test_madeAgainWhileOpening(self) -> None:
        """
        A line removed and added again (the same device) while its first
        open is under way: its new open begins once the earlier one has
        returned (and what that opened is closed), what was typed into it
        meanwhile is held and reaches the device; it is never down for
        another reason than that it opens.
        """
        service, line = self.added()
        self.successResultOf(service.reload([self.config("a")]))
        self.successResultOf(service.reload([self.config("a"), self.config("b")]))
        line = service.lines["b"]
        line.attach(client := person())
        line.clientData(client, b"typed")
        self.clock.advance(1.0)
        self.assertEqual((line.device.downReason, len(self.pool.held)), (OPENING, 1))
        self.pool.release()  # the earlier open returns: closed, its line gone
        self.assertEqual((self.ports[-1].closed, len(self.pool.held), line.device.downReason), (True, 0, OPENING))
        self.clock.advance(0)  # (a turn later) the new one begins
        self.pool.release()
        self.assertEqual((line.up, self.writes(self.ports[-1]), line.device.dropped), (True, b"typed", 0))

    def test_madeAgainAndRemovedWhileOpening(self) -> None:
        """A line made again while its device's earlier open is under way, then removed before that returns: nothing more is opened, nothing left waiting."""
        service, line = self.added()
        self.successResultOf(service.reload([self.config("a")]))
        self.successResultOf(service.reload([self.config("a"), self.config("b")]))
        self.successResultOf(service.reload([self.config("a")]))
        self.pool.release()
        self.clock.advance(0)
        self.assertEqual((len(self.ports), self.ports[-1].closed, self.pool.held), (2, True, []))
        self.assertEqual(reopen.deviceOpens.inFlight, {})


class ReloadWhileOpeningTests(SynchronousTestCase):
    """Reloads that come while the opens of an earlier one are in flight (paced, held by the test): what runs in the end is the last configuration, nothing else left open."""

    def setUp(self) -> None:
        from serialgw.devices.reopenpool import SLOW_AFTER

        self.slowAfter = SLOW_AFTER
        self.clock = ThreadedMemoryReactor()
        self.pool = HeldPool()
        self.patch(reopen, "deviceOpens", DeviceOpens(self.pool))
        self.patch(lines, "firstOpens", lambda *args: {})
        self.ports: list[RecordingPort] = []

    def openPort(self, spec: DeviceSpec, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.name = spec.path
        self.ports.append(port)
        return port

    def config(self, name: str, device: str = "") -> LineConfig:
        return LineConfig(name=name, device=DeviceSpec("tty", f"/dev/fake-{device or name}"), lock=False)

    def writes(self, port: RecordingPort) -> bytes:
        return b"".join(value for _, what, value in port.events if what == "write")

    def test_reloadStormWhileOpening(self) -> None:
        """
        Five reloads in a row, each while the opens of those before are in
        flight (some returned, most not): adding 20 lines, removing half of
        them, changing the devices of the others twice, adding some back.
        Once every open has returned, the lines running are the last
        configuration's, each up on its last device, typed to and writing
        there; every other port opened is closed, and nothing is left in
        flight or scheduled.
        """
        service = GatewayService([self.config("a")], reactor=self.clock, openPort=self.openPort, waitForDevices=True)
        service.startService()
        names = [f"n{i}" for i in range(20)]
        configs = [
            [self.config("a")] + [self.config(n) for n in names],
            [self.config("a")] + [self.config(n) for n in names[10:]],
            [self.config("a")] + [self.config(n, f"{n}-b") for n in names[10:]],
            [self.config("a")] + [self.config(n, f"{n}-c") for n in names[10:]] + [self.config(n) for n in names[:5]],
            [self.config("a")] + [self.config(n, f"{n}-c") for n in names[10:]] + [self.config(n, f"{n}-d") for n in names[:5]],
        ]
        results = []
        for number, config in enumerate(configs):
            results.append(service.reload(config))
            for _ in range(number + 1):  # (a few turns, a few opens returned)
                self.clock.advance(self.slowAfter)
                if self.pool.held:
                    self.pool.release()
        for _ in range(200):
            self.clock.advance(self.slowAfter)
            while self.pool.held:
                self.pool.release()
        self.assertTrue(all(result.called for result in results))
        last = {c.name: c.device.path for c in configs[-1]}
        ports: dict[str, RecordingPort] = {name: line.device.port for name, line in service.lines.items()}  # type: ignore[attr-defined]
        self.assertEqual({name: port.name for name, port in ports.items()}, last)
        self.assertTrue(all(line.up for line in service.lines.values()))
        running = {id(port) for port in ports.values()}
        self.assertEqual([port.name for port in self.ports if id(port) not in running and not port.closed], [])
        for name, line in service.lines.items():
            client = person()
            line.attach(client)
            line.clientData(client, name.encode())
            self.assertEqual(self.writes(ports[name]), name.encode())
        self.assertEqual(reopen.deviceOpens.inFlight, {})
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])
