"""
Tests for serialgw.devices.reopen: the reopen supervisor alone, on a Clock,
with an opener that fails as told and a device that records what it is
asked to do.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from serialgw.devices.errors import DeviceError, DeviceLocked
from serialgw.devices.reopen import OPENING, STABLE_UP, Reopener
from serialgw.interfaces import IPort
from tests.fakes import RecordingPort


class Target:
    """A device that is down, recording what the supervisor asks of it."""

    def __init__(self) -> None:
        self.name = "/dev/ttyUSB0"
        self.lineName = ""
        self.closed = False
        self.resting = False
        self.downReason: Optional[str] = "hung up"
        self.lockedBy: Optional[int] = None
        self.calls: list[tuple[Any, ...]] = []
        self.setUpError: Optional[Exception] = None

    def takeBack(self, port: IPort) -> None:
        self.calls.append(("takeBack", port))
        if self.setUpError is not None:
            raise self.setUpError

    def notTakenBack(self, port: IPort, reason: str) -> None:
        self.calls.append(("notTakenBack", port, reason))

    def announceUp(self) -> None:
        self.calls.append(("up",))

    def notOpened(self) -> None:
        self.calls.append(("notOpened", self.downReason))


class ReopenerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.target = Target()
        # What the opener does at each attempt: an exception to raise, else a new port.
        self.outcomes: list[Optional[Exception]] = []
        self.attempts: list[float] = []
        self.ports: list[RecordingPort] = []
        self.reopener = Reopener(self.target, self.clock, self.opener, lambda n: 0.5 * 2**n)

    def tearDown(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def opener(self) -> IPort:
        self.attempts.append(self.clock.seconds())
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        port = RecordingPort(self.clock)
        self.ports.append(port)
        return port

    def test_backoffThenBack(self) -> None:
        """Attempts at policy(0), then policy(1), policy(2) later; each failure's reason noted; the port handed back, then up."""
        self.outcomes = [DeviceError("cannot open device '/dev/ttyUSB0': No such file or directory")] * 2
        self.reopener.start()
        self.clock.advance(0.5)
        self.assertEqual(self.target.downReason, "cannot open device '/dev/ttyUSB0': No such file or directory")
        self.clock.advance(1.0)
        self.assertEqual(self.target.calls, [])
        self.clock.advance(2.0)
        self.assertEqual(self.attempts, [0.5, 1.5, 3.5])
        self.assertEqual(self.target.calls, [("takeBack", self.ports[0]), ("up",)])
        self.assertEqual(self.reopener.attempts, 0)

    def test_startAgainStartsOver(self) -> None:
        """After a return that lasted STABLE_UP s, the next loss starts at policy(0) again."""
        self.outcomes = [DeviceError("gone")]
        self.reopener.start()
        self.clock.advance(0.5)
        self.clock.advance(1.0)
        self.clock.advance(STABLE_UP)
        self.reopener.start()
        self.clock.advance(0.5)
        self.assertEqual(self.attempts, [0.5, 1.5, 12.0])

    def test_shortReturnCarriesTheBackoff(self) -> None:
        """A return that lasted less than STABLE_UP s: the next loss waits the delay after the one that brought it back (policy(2) here), not policy(0)."""
        self.outcomes = [DeviceError("gone")]
        self.reopener.start()
        self.clock.advance(0.5)
        self.clock.advance(1.0)
        self.clock.advance(STABLE_UP - 0.5)
        self.reopener.start()
        self.clock.advance(2.0)
        self.assertEqual(self.attempts, [0.5, 1.5, 13.0])

    def test_lockHolderLoggedWhenItChanges(self) -> None:
        """A UUCP lock's holder is noted on each attempt and logged only when it changes; another failure clears it."""
        self.outcomes = [DeviceLocked("device /dev/ttyUSB0 is locked by pid 1234", 1234)] * 2
        self.outcomes += [DeviceLocked("device /dev/ttyUSB0 is locked by pid 5678", 5678)]
        self.outcomes += [DeviceError("cannot open device '/dev/ttyUSB0': No such file or directory")]
        with capturedLogs() as events:
            self.reopener.start()
            for delay in (0.5, 1.0, 2.0):
                self.clock.advance(delay)
            self.assertEqual((self.target.lockedBy, self.target.downReason),
                             (5678, "device /dev/ttyUSB0 is locked by pid 5678"))
            self.clock.advance(4.0)
        self.assertIsNone(self.target.lockedBy)
        self.assertEqual([e["holder"] for e in events if "tries again" in e["log_format"]], [1234, 5678])
        self.clock.advance(8.0)
        self.assertEqual(len(self.ports), 1)

    def test_reasonLoggedWhenItChanges(self) -> None:
        """
        Why the device cannot be opened again is logged when it changes (a
        node made later without permission, a file put at the path), not on
        every attempt, nor when it is why the line started down.
        """
        gone = DeviceError("cannot open device '/dev/ttyUSB0': No such file or directory")
        denied = DeviceError("cannot open device '/dev/ttyUSB0': Permission denied")
        self.outcomes = [gone, gone, denied, denied, denied, gone]
        with capturedLogs() as events:
            self.reopener.start()
            for delay in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0):
                self.clock.advance(delay)
        said = [(e["log_level"].name, e["reason"]) for e in events if "trying again" in e["log_format"]]
        self.assertEqual(said, [("info", str(gone)), ("warn", str(denied)), ("info", str(gone))])
        self.assertEqual(self.target.calls, [("takeBack", self.ports[0]), ("up",)])
        self.clock.advance(STABLE_UP)  # (up that long: the next loss starts from policy(0))
        self.target.downReason = str(denied)
        with capturedLogs() as events:
            self.outcomes = [denied]
            self.reopener.start()
            self.clock.advance(0.5)
            self.clock.advance(1.0)
        self.assertEqual([e for e in events if "trying again" in e["log_format"]], [])

    def test_stop(self) -> None:
        """stop (the device closed) cancels the attempt waiting: the opener is never called."""
        self.reopener.start()
        self.reopener.stop()
        self.clock.advance(10)
        self.assertEqual(self.attempts, [])

    def test_closedWhileOpening(self) -> None:
        """A device closed while an open is under way: what opens is closed, a failure is not retried."""
        pending: list[Deferred[IPort]] = []

        def opener() -> Any:
            pending.append(Deferred())
            return pending[-1]

        self.reopener.opener = opener
        self.reopener.start()
        self.clock.advance(0.5)
        self.target.closed = True
        port = RecordingPort(self.clock)
        pending[0].callback(port)
        self.assertEqual((port.closed, self.target.calls), (True, []))
        self.target.closed = False
        self.reopener.start()
        self.clock.advance(0.5)
        self.target.closed = True
        pending[1].errback(DeviceError("gone"))
        self.assertEqual((self.target.downReason, self.clock.getDelayedCalls()), ("hung up", []))

    def test_setUpFails(self) -> None:
        """A reopened port whose set-up raises is handed back as not taken, with the reason; tried again at the next delay."""
        self.target.setUpError = RuntimeError("ioctl bug")
        self.reopener.start()
        self.clock.advance(0.5)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.target.calls, [("takeBack", self.ports[0]),
                                             ("notTakenBack", self.ports[0], "could not be set up again: ioctl bug")])
        self.target.setUpError = None
        self.clock.advance(1.0)
        self.assertEqual(self.attempts, [0.5, 1.5])
        self.assertEqual(self.target.calls[2:], [("takeBack", self.ports[1]), ("up",)])

    def test_goneWhileSetUp(self) -> None:
        """A reopened port that goes again while it is set up (termios EIO: unplugged again) is a warning naming why, no traceback; tried again."""
        import errno
        import termios

        self.target.setUpError = termios.error(errno.EIO, "Input/output error")
        with capturedLogs() as events:
            self.reopener.start()
            self.clock.advance(0.5)
        self.assertEqual(self.flushLoggedErrors(), [])
        said = [(e["log_level"].name, formatEvent(e)) for e in events if e.get("device") == "/dev/ttyUSB0"]
        self.assertEqual(said, [("warn", "/dev/ttyUSB0: went again while it was set up: Input/output error; trying "
                                          "again with backoff")])
        self.assertEqual(self.target.calls, [("takeBack", self.ports[0]), ("notTakenBack", self.ports[0],
                                                                            "could not be set up again: "
                                                                            "Input/output error")])
        self.target.setUpError = None
        self.clock.advance(1.0)
        self.assertEqual(self.target.calls[2:], [("takeBack", self.ports[1]), ("up",)])

    def firstOpener(self) -> IPort:
        """The opener openNow is given: its attempts recorded as -1 - the time (told apart from the others)."""
        try:
            return self.opener()  # (records the attempt, raises or makes a port)
        finally:
            self.attempts[-1] = -self.attempts[-1] - 1

    def test_openNowUp(self) -> None:
        """openNow opens at once with the opener it is given (no delay), the device taken back and up; it fires with None."""
        self.target.downReason = OPENING
        d = self.reopener.openNow(self.firstOpener)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual((self.attempts, self.target.calls), ([-1.0], [("takeBack", self.ports[0]), ("up",)]))

    def test_openNowFails(self) -> None:
        """
        A first open that fails: openNow fires with the error, noted as why
        the device is down but not logged (its caller says it); then tried
        with the supervisor's own opener after policy(0), as a vanished device.
        """
        self.target.downReason = OPENING
        gone = DeviceError("cannot open device '/dev/ttyUSB0': No such file or directory")
        self.outcomes = [gone]
        with capturedLogs() as events:
            d = self.reopener.openNow(self.firstOpener)
        self.assertIs(self.successResultOf(d), gone)
        self.assertEqual((self.target.downReason, events), (str(gone), []))
        self.clock.advance(0.5)
        self.assertEqual((self.attempts, self.target.calls), ([-1.0, 0.5], [
            ("notOpened", "cannot open device '/dev/ttyUSB0': No such file or directory"), ("takeBack", self.ports[0]), ("up",)]))

    def test_openNowLocked(self) -> None:
        """A first open refused by a live lock holder: the holder is logged (as at start), openNow fires with it."""
        self.target.downReason = OPENING
        locked = DeviceLocked("device /dev/ttyUSB0 is locked by pid 1234", 1234)
        self.outcomes = [locked]
        with capturedLogs() as events:
            d = self.reopener.openNow(self.firstOpener)
        self.assertIs(self.successResultOf(d), locked)
        self.assertEqual(([e["holder"] for e in events], self.target.lockedBy), ([1234], 1234))
        self.reopener.stop()

    def test_openNowClosedMeanwhile(self) -> None:
        """A device closed while its first open is under way: what opens is closed, openNow fires with why, nothing is tried again."""
        pending: Deferred[IPort] = Deferred()
        self.target.downReason = OPENING
        def opener() -> Any:
            return pending  # (an open under way, as the pool's Deferred is)

        d = self.reopener.openNow(opener)
        self.assertNoResult(d)
        self.target.closed = True
        self.reopener.stop()
        port = RecordingPort(self.clock)
        pending.callback(port)
        self.assertEqual((str(self.successResultOf(d)), port.closed, self.target.calls),
                         ("/dev/ttyUSB0 was closed while it opened", True, []))



def runReporting(onResult: Callable[[bool, Any], None], f: Callable[..., Any]) -> None:
    """C{f()}, its result or failure handed to C{onResult} as a ThreadPool's worker does."""
    try:
        result = f()
    except BaseException:
        onResult(False, Failure())
    else:
        onResult(True, result)


class InlinePool:
    """A thread pool that runs its work at once, recording what it ran."""

    def __init__(self) -> None:
        self.ran: list[Callable[..., Any]] = []

    def callInThreadWithCallback(self, onResult: Callable[[bool, Any], None], f: Callable[..., Any]) -> None:
        self.ran.append(f)
        runReporting(onResult, f)


@implementer(IReactorThreads)
class ThreadedClock(Clock):
    def __init__(self) -> None:
        Clock.__init__(self)
        self.pool = InlinePool()

    def getThreadPool(self) -> Any:
        return self.pool

    def callFromThread(self, callable: Callable[..., Any], *args: object, **kwargs: object) -> None:
        callable(*args, **kwargs)

    def callInThread(self, callable: Callable[..., Any], *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    def suggestThreadPoolSize(self, size: int) -> None:
        pass


class HeldPool:
    """A thread pool whose work runs only when the test says (an open that has not returned yet)."""

    def __init__(self) -> None:
        self.held: list[tuple[Callable[[bool, Any], None], Callable[..., Any]]] = []

    def callInThreadWithCallback(self, onResult: Callable[[bool, Any], None], f: Callable[..., Any]) -> None:
        self.held.append((onResult, f))

    def release(self) -> None:
        """The oldest held open returns."""
        onResult, f = self.held.pop(0)
        runReporting(onResult, f)


class ThreadPoolTests(SynchronousTestCase):
    def test_openedOffTheReactorThread(self) -> None:
        """With a reactor that has threads, the opener runs on the device opens' own pool, never in line nor on the reactor's pool (which resolves names)."""
        from serialgw.devices.reopenpool import DeviceOpens, deviceOpens

        clock = ThreadedClock()
        target = Target()
        port = RecordingPort(clock)
        pool = InlinePool()

        def opener() -> IPort:
            return port

        self.assertIs(Reopener(target, clock, opener, lambda n: 1.0).opens, deviceOpens)
        reopener = Reopener(target, clock, opener, lambda n: 1.0, opens=DeviceOpens(pool))
        reopener.start()
        clock.advance(1.0)
        self.assertEqual((pool.ran, clock.pool.ran, target.calls), ([opener], [], [("takeBack", port), ("up",)]))


class StuckOpenTests(SynchronousTestCase):
    """An open that does not return (a hung USB adapter): one at a time a device, logged as stuck, never a second."""

    def setUp(self) -> None:
        from serialgw.devices.reopenpool import DeviceOpens

        self.clock = ThreadedClock()
        self.pool = HeldPool()
        self.opens = DeviceOpens(self.pool)
        self.ports: list[RecordingPort] = []

    def tearDown(self) -> None:
        self.assertEqual((self.clock.getDelayedCalls(), self.opens.inFlight), ([], {}))

    def opener(self) -> IPort:
        self.ports.append(RecordingPort(self.clock))
        return self.ports[-1]

    def reopener(self, target: Target) -> Reopener:
        return Reopener(target, self.clock, self.opener, lambda n: 1.0, opens=self.opens)

    def test_stuckOpenLogged(self) -> None:
        """An open that has not returned in STUCK_AFTER s is logged once and shown as the reason; no other attempt meanwhile; when it returns, said, and the device is taken back."""
        from serialgw.devices.reopen import STUCK_AFTER

        target = Target()
        reopener = self.reopener(target)
        with capturedLogs() as events:
            reopener.start()
            self.clock.advance(1.0)
            self.clock.advance(STUCK_AFTER - 1)
            self.assertEqual(events, [])
            self.clock.advance(1)
            self.clock.advance(600)
            self.assertEqual((len(self.pool.held), target.downReason),
                             (1, f"opening the device has not returned in {STUCK_AFTER:.0f} s"))
            self.pool.release()
        self.assertEqual([formatEvent(e) for e in events], [
            f"/dev/ttyUSB0: opening the device has not returned in {STUCK_AFTER:.0f} s (a hung adapter or driver?); "
            "the line stays down until it does (1 device open(s) under way)",
            "/dev/ttyUSB0: the open that had not returned did after 630 s",
        ])
        self.assertEqual(target.calls, [("takeBack", self.ports[0]), ("up",)])

    def test_oneOpenADevice(self) -> None:
        """A device whose open hangs is not opened again by another supervisor of it (its line removed and added again by a reload) until that open returns."""
        first, second = Target(), Target()
        old, new = self.reopener(first), self.reopener(second)
        old.start()
        self.clock.advance(1.0)
        first.closed = True
        old.stop()
        new.start()
        for _ in range(5):
            self.clock.advance(1.0)
        self.assertEqual((len(self.pool.held), second.downReason),
                         (1, "an earlier open of /dev/ttyUSB0 has not returned"))
        self.pool.release()
        self.assertEqual((self.ports[0].closed, first.calls), (True, []))
        self.clock.advance(1.0)
        self.pool.release()
        self.assertEqual(second.calls, [("takeBack", self.ports[1]), ("up",)])

    def test_pacedOpens(self) -> None:
        """
        At most BUSY_OPENS opens run at once (more threads only fight the
        reactor for the GIL); the next begins when one returns, or once one
        has run SLOW_AFTER s (a hung open keeps no place); results in order.
        """
        from serialgw.devices.reopenpool import BUSY_OPENS, SLOW_AFTER

        self.assertEqual(BUSY_OPENS, 2)
        results = [self.opens.open(self.clock, f"/dev/ttyUSB{n}", self.opener) for n in range(4)]
        self.assertEqual((len(self.pool.held), sorted(self.opens.inFlight)),
                         (2, [f"/dev/ttyUSB{n}" for n in range(4)]))
        self.pool.release()  # the first returns: the third begins
        self.assertEqual((self.successResultOf(results[0]), len(self.pool.held)), (self.ports[0], 2))
        self.clock.advance(SLOW_AFTER)  # the second (and third) hang: the fourth begins
        self.assertEqual(len(self.pool.held), 3)
        for _ in range(3):
            self.pool.release()
        self.assertEqual([self.successResultOf(d) for d in results[1:]], self.ports[1:])
        self.assertEqual(self.opens._busy, 0)

    def test_waitingOpenWithdrawnAtStop(self) -> None:
        """
        An open still waiting for its place (paced) when its line is closed
        never begins (the device is not opened, even for a moment: no UUCP
        lock taken, no DTR raised); nothing is tried again or logged for it.
        """
        targets = [Target() for _ in range(3)]
        for n, target in enumerate(targets):
            target.name = f"/dev/ttyUSB{n}"
        reopeners = [self.reopener(target) for target in targets]
        with capturedLogs() as events:
            for reopener in reopeners:
                reopener.start()
            self.clock.advance(1.0)
            self.assertEqual(len(self.pool.held), 2)  # the third waits for a place
            reopeners[2].stop()
            targets[2].closed = True
            self.pool.release()
            self.pool.release()
            self.clock.advance(60)
        self.assertEqual((len(self.pool.held), len(self.ports), targets[2].calls), (0, 2, []))
        self.assertEqual(targets[2].downReason, "hung up")
        self.assertEqual([formatEvent(e) for e in events], [])

    def test_waitingFirstOpenWithdrawn(self) -> None:
        """A first open (openNow) withdrawn while it waits tells its caller so, with OpenWithdrawn, and nothing else."""
        from serialgw.devices.reopenpool import OpenWithdrawn

        targets = [Target() for _ in range(3)]
        for n, target in enumerate(targets):
            target.name, target.downReason = f"/dev/ttyUSB{n}", OPENING
        reopeners = [self.reopener(target) for target in targets]
        firsts = [reopener.openNow(self.opener) for reopener in reopeners]
        reopeners[2].stop()
        self.assertIsInstance(self.successResultOf(firsts[2]), OpenWithdrawn)
        self.assertEqual((targets[2].downReason, len(self.pool.held)), (OPENING, 2))
        for _ in range(2):
            self.pool.release()
        self.assertEqual([self.successResultOf(first) for first in firsts[:2]], [None, None])
        for reopener in reopeners[:2]:
            reopener.stop()

    def test_mostOpensAtOnce(self) -> None:
        """
        Past MOST_OPENS opens that have not returned, another device's open
        is refused at once, not queued behind them: its line is down for
        that reason, said, and tried again with its backoff; it opens once
        one of them has returned.  At start too (no wait for it).
        """
        from serialgw.devices import reopenpool
        from serialgw.devices.reopenpool import SLOW_AFTER

        self.patch(reopenpool, "MOST_OPENS", 3)
        targets = [Target() for _ in range(4)]
        for n, target in enumerate(targets):
            target.name = f"/dev/ttyUSB{n}"
        reopeners = [self.reopener(target) for target in targets]
        for reopener in reopeners[:3]:
            reopener.start()
        self.clock.advance(1.0)
        self.clock.advance(SLOW_AFTER)
        self.assertEqual((len(self.pool.held), self.opens.running), (3, 3))
        why = "not opened: 3 device opens have not returned (hung adapters or drivers?); tried again when fewer hang"
        with capturedLogs() as events:
            reopeners[3].start()
            self.clock.advance(1.0)
        self.assertEqual((targets[3].downReason, len(self.pool.held), self.opens.inFlight.get("/dev/ttyUSB3")),
                         (why, 3, None))
        self.assertEqual([formatEvent(e) for e in events],
                         [f"/dev/ttyUSB3: still down: {why}; trying again with backoff"])
        begun = self.opens.openAll(self.clock, {"/dev/ttyUSB9": self.opener})
        self.assertEqual((begun["/dev/ttyUSB9"].done, str(begun["/dev/ttyUSB9"].result)), (True, why))
        self.pool.release()  # one of them returns: the next attempt begins
        self.clock.advance(1.0)
        self.assertEqual((len(self.pool.held), self.opens.running), (3, 3))
        self.clock.advance(SLOW_AFTER)
        while self.pool.held:
            self.pool.release()
        self.assertEqual([call[0] for call in targets[3].calls], ["takeBack", "up"])
        for reopener in reopeners:
            reopener.stop()

    def test_firstOpensAtStart(self) -> None:
        """
        openAll begins every open at once and waits up to START_WAIT s: one
        returned by then is done (its port, or what it raised, at hand); one
        still under way is not, and its Deferred fires when it returns; both
        count as in flight until the reactor has their outcome.
        """
        from serialgw.devices import reopenpool

        self.patch(reopenpool, "START_WAIT", 0.0)
        absent = DeviceError("cannot open device '/dev/ttyUSB1': No such file or directory")

        def refused() -> IPort:
            raise absent

        begun = self.opens.openAll(self.clock, {"/dev/ttyUSB0": self.opener, "/dev/ttyUSB1": refused,
                                                "/dev/ttyUSB2": self.opener})
        self.assertEqual(sorted(self.opens.inFlight), ["/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"])
        self.assertEqual([first.done for first in begun.values()], [False] * 3)
        self.pool.release()
        self.pool.release()
        # (Released after the wait: too late to be done, theirs is the Deferred's.)
        self.assertEqual(self.successResultOf(begun["/dev/ttyUSB0"].deferred), self.ports[0])
        self.assertIs(self.failureResultOf(begun["/dev/ttyUSB1"].deferred, DeviceError).value, absent)
        self.pool.release()
        self.assertEqual(self.successResultOf(begun["/dev/ttyUSB2"].deferred), self.ports[1])
        self.assertEqual(self.opens.inFlight, {})

    def test_firstOpensDoneInTime(self) -> None:
        """Opens that return within the wait are done: the port, or the exception raised again, taken from them at once."""
        from serialgw.devices.reopenpool import DeviceOpens

        opens = DeviceOpens(InlinePool())
        absent = DeviceError("cannot open device '/dev/ttyUSB1': No such file or directory")

        def refused() -> IPort:
            raise absent

        begun = opens.openAll(self.clock, {"/dev/ttyUSB0": self.opener, "/dev/ttyUSB1": refused})
        self.assertEqual([first.done for first in begun.values()], [True, True])
        self.assertIs(begun["/dev/ttyUSB0"].port(), self.ports[0])
        self.assertIs(self.assertRaises(DeviceError, begun["/dev/ttyUSB1"].port), absent)
        self.assertEqual(opens.inFlight, {})

    def test_adoptedOpenStuck(self) -> None:
        """A first open adopted from the start (begun 5 s before) is said stuck STUCK_AFTER s after it began, not after it was adopted; up when it returns."""
        from serialgw.devices.reopen import STUCK_AFTER

        target = Target()
        target.downReason = OPENING
        reopener = self.reopener(target)
        self.clock.advance(10.0)
        opening: Deferred[IPort] = Deferred()
        with capturedLogs() as events:
            first = reopener.adopt(opening, since=5.0)
            self.clock.advance(STUCK_AFTER - 5.0 - 0.1)
            self.assertEqual(target.downReason, OPENING)
            self.clock.advance(0.1)
            self.assertEqual(target.downReason, f"opening the device has not returned in {STUCK_AFTER:.0f} s")
            port = RecordingPort(self.clock)
            opening.callback(port)
        self.assertIsNone(self.successResultOf(first))
        # (What was typed meanwhile was dropped when it was said stuck: see EarlyHold.)
        self.assertEqual(target.calls, [("notOpened", f"opening the device has not returned in {STUCK_AFTER:.0f} s"),
                                        ("takeBack", port), ("up",)])
        self.assertEqual([formatEvent(e) for e in events][-1],
                         f"/dev/ttyUSB0: the open that had not returned did after {STUCK_AFTER:.0f} s")


class HungOpensTests(TestCase):
    """On the real reactor and real threads: opens that hang do not take the threads name lookups and other lines need."""

    timeout = 30

    async def test_hungOpensStarveNothing(self) -> None:
        """Twelve lines whose opens block (more than the reactor's 10 threads): names still resolve, the reactor's pool still runs work, and another line comes back."""
        from twisted.internet import reactor, threads

        release = threading.Event()
        self.addCleanup(release.set)
        ups: list[Deferred[None]] = []

        def line(name: str, hangs: bool) -> None:
            target = Target()
            target.name = name
            up: Deferred[None] = Deferred()
            ups.append(up)
            target.announceUp = lambda: up.callback(None)  # type: ignore[method-assign]

            def opener() -> IPort:
                if hangs:
                    release.wait()
                return RecordingPort(Clock())

            Reopener(target, reactor, opener, lambda n: 0.0).start()

        for n in range(12):
            line(f"/dev/ttyUSB{n}", hangs=True)
        line("/dev/ttyACM0", hangs=False)
        await ups[-1]
        self.assertEqual(await threads.deferToThread(lambda: "ran"), "ran")
        self.assertEqual(await reactor.resolve("localhost"), "127.0.0.1")
        self.assertEqual([up.called for up in ups], [False] * 12 + [True])
        release.set()
        await DeferredList(ups[:12])

    async def test_moreHungOpensThanThreads(self) -> None:
        """Forty lines whose opens block (more than the 32 threads the opens once had): another line's open still returns, and its line comes up."""
        from twisted.internet import reactor

        from serialgw.devices.reopenpool import DeviceOpens
        from tests.realio import until

        opens = DeviceOpens()
        release = threading.Event()
        self.addCleanup(release.set)
        began = [0]
        ups: list[Deferred[None]] = []

        def line(name: str, hangs: bool) -> None:
            target = Target()
            target.name = name
            up: Deferred[None] = Deferred()
            ups.append(up)
            target.announceUp = lambda: up.callback(None)  # type: ignore[method-assign]

            def opener() -> IPort:
                if hangs:
                    began[0] += 1
                    release.wait()
                return RecordingPort(Clock())

            Reopener(target, reactor, opener, lambda n: 0.0, opens=opens).start()

        for n in range(40):
            line(f"/dev/ttyUSB{n}", hangs=True)
        # (Paced: two at a time, the next after 0.25 s: all forty have begun in 5 s. On 32 threads
        # only 32 ever began: the wait is bounded by the test's timeout.)
        await until(self, lambda: began[0] >= 40, "all forty hung opens to have begun", 0.1)
        line("/dev/ttyACM0", hangs=False)
        await ups[-1]
        self.assertEqual((began[0], [up.called for up in ups]), (40, [False] * 40 + [True]))
        release.set()
        await DeferredList(ups[:40])
