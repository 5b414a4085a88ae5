"""
serialgw's reactor against Twisted's own reactor conformance tests: the
builders Twisted runs for each of its reactors, run here for ours.  The
whole suite can also run under it: C{trial --reactor=serialgw tests}.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from twisted.internet.test import test_core, test_fdset, test_tcp, test_threads, test_time, test_unix
from twisted.internet.test.reactormixins import ReactorBuilder
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from serialgw.app.reactor import DEFAULT_BUSY_POLL, BusyPoll, GatewayReactor
from tests.reactors import ownReactor

OURS = ["serialgw.app.reactor.GatewayReactor", "serialgw.app.oneshot.OneShotReactor",
        "serialgw.app.oneshot.ThreadedOneShotReactor"]

_BUILDERS = [
    test_core.SystemEventTestsBuilder,
    test_time.TimeTestsBuilder,
    test_threads.ThreadTestsBuilder,
    test_fdset.ReactorFDSetTestsBuilder,
    test_tcp.TCP4ClientTestsBuilder,
    test_tcp.TCPPortTestsBuilder,
    test_tcp.TCPConnectionTestsBuilder,
    test_tcp.AbortConnectionTests,
    test_unix.UNIXTestsBuilder,
]


# Where we differ from Twisted's epoll reactor, on purpose or as it does.
_DIFFERENCES = {
    # The point of this reactor: no per-event logging context, so a legacy
    # log.msg inside doRead carries no "system" prefix (serialgw logs with
    # named fields instead).
    "test_logPrefix": "by design: no per-event logging context (see serialgw.app.reactor)",
    # Twisted skips this one for EPollReactor by class name; the reason
    # (epoll forgets a closed descriptor silently) holds for ours too.
    "test_lostFileDescriptor": "epoll cannot detect lost file descriptors (Twisted skips it for EPollReactor)",
}


def _buildAndClose(self: Any) -> Any:
    """
    The builder's reactor, whose epoll descriptor is closed when the test is
    done: Twisted's clean-up leaves it to the garbage collector, which would
    close it at any moment in a later test (one counting its descriptors).
    And the log observers the test added are removed then: Twisted's
    test_connectionLostLogMsg adds its observer twice and removes it once,
    and the one left formatted and kept every later test's log events (2000
    in test_connectCycles: 390 KB of its heap).
    """
    built: list[GatewayReactor] = []
    # Added before the builder's own clean-up, so run after it (last in, first out).
    self.addCleanup(lambda: [reactor._poller.close() for reactor in built])
    observers = list(globalLogPublisher._observers)

    def removeAdded() -> None:
        for observer in list(globalLogPublisher._observers):
            if observer not in observers:
                globalLogPublisher.removeObserver(observer)

    self.addCleanup(removeAdded)
    reactor = ReactorBuilder.buildReactor(self)
    built.append(reactor)
    return reactor


def _closingTempFiles(driver: Any) -> Any:
    """
    Twisted's sendmsg test driver with the descriptors of the two temporary
    files it sends closed when the test is done: Twisted's leaves them open
    (2 a test, 18 a run of this module).
    """

    def drive(self: Any, ancillaryPacker: Any) -> Any:
        def mkstemp() -> tuple[int, str]:
            fd, name = tempfile.mkstemp()
            self.addCleanup(os.close, fd)
            return fd, name

        self.patch(test_unix, "mkstemp", mkstemp)
        return driver(self, ancillaryPacker)

    return drive


def _ours(builder: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {"_reactors": OURS, "__module__": __name__, "buildReactor": _buildAndClose}
    if hasattr(builder, "_sendmsgMixinFileDescriptorReceivedDriver"):
        attributes["_sendmsgMixinFileDescriptorReceivedDriver"] = _closingTempFiles(
            builder._sendmsgMixinFileDescriptorReceivedDriver)
    for name, reason in _DIFFERENCES.items():
        if hasattr(builder, name):
            attributes[name] = _skipped(reason)
    # A class made at run time from a builder class that is itself Any.
    subclass: Any = type(builder.__name__, (builder,), attributes)
    return subclass.makeTestCaseClasses()  # type: ignore[no-any-return]


def _skipped(reason: str) -> Any:
    def test(self: Any) -> None:
        raise SkipTest(reason)

    return test


for _builder in _BUILDERS:
    globals().update(_ours(_builder))


class DispatchTests(SynchronousTestCase):
    def test_failingDescriptorDoesNotStopTheLoop(self) -> None:
        """
        A descriptor whose handling raises past Twisted's own handling
        (its connectionLost fails) is logged; the next ready descriptor in
        the same turn is still served.
        """
        reactor = ownReactor(self, GatewayReactor())
        served: list[str] = []

        class Bad:
            def __init__(self, fd: int) -> None:
                self.fd = fd

            def fileno(self) -> int:
                return self.fd

            def doRead(self) -> None:
                raise RuntimeError("boom")

            def connectionLost(self, reason: Any) -> None:
                raise RuntimeError("and again")

            def logPrefix(self) -> str:
                return "bad"

        class Good(Bad):
            def doRead(self) -> None:
                served.append(os.read(self.fd, 10).decode())

        badR, badW = os.pipe()
        goodR, goodW = os.pipe()
        for fd in (badR, badW, goodR, goodW):
            self.addCleanup(os.close, fd)
        reactor.addReader(Bad(badR))
        reactor.addReader(Good(goodR))
        os.write(badW, b"x")
        os.write(goodW, b"ok")
        reactor.doPoll(0)
        self.assertEqual(served, ["ok"])
        # doRead's error (logged by Twisted's handling), then connectionLost's (by ours).
        self.assertEqual([str(f.value) for f in self.flushLoggedErrors(RuntimeError)], ["boom", "and again"])


class Stop(BaseException):
    """An exception of BaseException's own kind (not an Exception), as a library may raise."""


class StopsTests(SynchronousTestCase):
    """
    KeyboardInterrupt and SystemExit raised in handling an event stop the
    gateway (the reactor's orderly stop), said once, cutting no one; any
    other exception (another BaseException too) is that descriptor's
    failure, the turn going on with the others.  Each of our reactors.
    """

    def turn(self, reactor: Any, raising: BaseException, where: str) -> tuple[list[str], list[str], list[str]]:
        """One turn: a descriptor raising C{raising} in C{where} (doRead or connectionLost), then one serving; (served, lost, stops)."""
        served: list[str] = []
        lost: list[str] = []
        stops: list[str] = []
        self.patch(reactor, "stop", lambda: stops.append("stop"))

        class Raising:
            def __init__(self, fd: int) -> None:
                self.fd = fd

            def fileno(self) -> int:
                return self.fd

            def doRead(self) -> Any:
                if where == "doRead":
                    raise raising
                return RuntimeError("read no more")

            def connectionLost(self, reason: Any) -> None:
                reactor.removeReader(self)
                lost.append(type(reason.value).__name__)
                if where == "connectionLost":
                    raise raising

            def logPrefix(self) -> str:
                return "raising"

        class Serving(Raising):
            def doRead(self) -> None:
                served.append(os.read(self.fd, 10).decode())

        for selectable, text in ((Raising, b"x"), (Serving, b"ok")):
            r, w = os.pipe()
            self.addCleanup(os.close, r)
            self.addCleanup(os.close, w)
            reactor.addReader(selectable(r))
            os.write(w, text)
        reactor.doPoll(0)
        return served, lost, stops

    def reactors(self) -> list[Any]:
        from serialgw.app.oneshot import OneShotReactor

        return [ownReactor(self, GatewayReactor()), ownReactor(self, OneShotReactor())]

    def test_interruptOrExitStops(self) -> None:
        """A KeyboardInterrupt or SystemExit out of a doRead (the connection left as it is) or out of a connectionLost: the stop asked once, the next descriptor served, one critical line naming it and no other failure. Twisted's dispatch cut the connection (doRead), or the exception left the turn for the main loop, which logged it and ran on (connectionLost)."""
        from twisted.logger import LogLevel

        from tests.fakes import LogEvents

        for reactor in self.reactors():
            for raising in (KeyboardInterrupt(), SystemExit(3)):
                for where in ("doRead", "connectionLost"):
                    events = LogEvents(self)
                    served, lost, stops = self.turn(reactor, raising, where)
                    said = [e for e in events.events if e.get("log_level") is LogLevel.critical]
                    self.assertEqual((served, lost, stops, [e.get("exception") for e in said]),
                                     (["ok"], [] if where == "doRead" else ["RuntimeError"], ["stop"],
                                      [type(raising).__name__]), (reactor, raising, where))
                    self.assertTrue(said[0]["log_format"].endswith("the gateway stops"))
                    self.assertEqual(len(self.flushLoggedErrors(type(raising))), 1)
                    reactor.removeAll()

    def test_otherBaseExceptionIsAFailure(self) -> None:
        """Another BaseException out of a connectionLost is that descriptor's failure, logged; the turn goes on, the gateway runs on (it left the turn for the main loop)."""
        for reactor in self.reactors():
            served, lost, stops = self.turn(reactor, Stop(), "connectionLost")
            self.assertEqual((served, lost, stops), (["ok"], ["RuntimeError"], []))
            self.assertEqual(len(self.flushLoggedErrors(Stop)), 1)
            reactor.removeAll()


class ExitWatchTests(SynchronousTestCase):
    def test_childsEndSaidWithoutATimer(self) -> None:
        """watchExit calls back once the child has ended (its pidfd readable), with no timer, and as a watch of the reactor's own: removeAll (a test's clean-up) leaves it."""
        reactor = ownReactor(self, GatewayReactor())
        r, w = os.pipe()
        # (A child that ends when its stdin does.)
        pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", "import os; os.read(0, 1)"], {},
                             file_actions=[(os.POSIX_SPAWN_DUP2, r, 0)])
        os.close(r)
        ended: list[int] = []
        self.assertTrue(reactor.watchExit(pid, lambda: ended.append(os.waitpid(pid, os.WNOHANG)[0])))
        self.assertEqual(reactor.getDelayedCalls(), [])
        reactor.doPoll(0)
        self.assertEqual(ended, [])
        self.assertEqual(reactor.removeAll(), [])
        os.close(w)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        reactor.doPoll(0)
        self.assertEqual(ended, [pid])
        self.assertEqual(reactor._internalReaders, {reactor.waker})


class QuietFirstTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = ownReactor(self, GatewayReactor())
        self.served: list[tuple[str, bytes]] = []

    def reader(self, name: str) -> int:
        """A reader taking one byte a turn (so that a full pipe stays ready, as a flooding device); its write end."""
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        served = self.served

        class OneByte:
            def fileno(self) -> int:
                return r

            def doRead(self) -> None:
                served.append((name, os.read(r, 1)))

            def connectionLost(self, reason: Any) -> None:
                pass

            def logPrefix(self) -> str:
                return name

        self.reactor.addReader(OneByte())
        return w

    def test_newlyReadyBeforeStillReady(self) -> None:
        """
        A descriptor that just became ready is served before one that was
        ready last turn too; each is served once a turn, so neither waits
        more than one turn.
        """
        flood, quiet = self.reader("flood"), self.reader("quiet")
        os.write(flood, b"abcd")
        self.reactor.doPoll(0)
        os.write(quiet, b"xy")
        self.reactor.doPoll(0)
        self.assertEqual(self.served, [("flood", b"a"), ("quiet", b"x"), ("flood", b"b")])
        # Both stayed ready: in epoll's order, and both served.
        self.reactor.doPoll(0)
        self.assertEqual(self.served[3:], [("flood", b"c"), ("quiet", b"y")])
        self.reactor.doPoll(0)
        self.assertEqual(self.served[5:], [("flood", b"d")])

    def test_quietOnesKeepTheirOrder(self) -> None:
        """Several newly ready descriptors keep epoll's order among themselves, ahead of the one still ready."""
        flood, first, second = self.reader("flood"), self.reader("first"), self.reader("second")
        os.write(flood, b"ab")
        self.reactor.doPoll(0)
        os.write(first, b"1")
        os.write(second, b"2")
        self.reactor.doPoll(0)
        self.assertEqual(self.served, [("flood", b"a"), ("first", b"1"), ("second", b"2"), ("flood", b"b")])


READY = [(7, 1)]
US = 1e-6


class Script:
    """
    An epoll and a clock for L{BusyPoll.wait}: the next event comes at a
    time set by L{arrive}; a poll without waiting takes C{cost}; a waiting
    poll sleeps until the event or its timeout.  Each poll's timeout is
    recorded (in microseconds when positive).
    """

    def __init__(self, cost: float = 2 * US) -> None:
        self.cost = cost
        self.time = 100.0
        self.at = float("inf")
        self.calls: list[float] = []

    def arrive(self, after: float) -> None:
        self.at = self.time + after

    def now(self) -> float:
        return self.time

    def poll(self, timeout: float, most: int) -> list[tuple[int, int]]:
        self.calls.append(round(timeout / US, 3) if timeout > 0 else timeout)
        if timeout == 0:
            self.time += self.cost
        elif timeout < 0 or self.at <= self.time + timeout:
            self.time = max(self.time, self.at)
        else:
            self.time += timeout
        return READY if self.time >= self.at else []


class BusyPollTests(SynchronousTestCase):
    def wait(self, busy: BusyPoll, script: Script, timeout: float, after: float) -> list[tuple[int, int]]:
        """A turn of the reactor whose next event comes C{after} seconds from now."""
        script.arrive(after)
        return busy.wait(script.poll, timeout, 10, now=script.now)

    def test_offWaitsOnce(self) -> None:
        """With the limit 0 every turn is one epoll_wait with the reactor's timeout, and the window stays 0."""
        busy, script = BusyPoll(0.0), Script()
        for timeout in (-1, 2.5, 0):
            self.assertEqual(self.wait(busy, script, timeout, 0), READY)
        self.assertEqual((script.calls, busy.window), ([-1, 2500000.0, 0], 0.0))

    def test_growsFromAQuarterDoublingToTheLimit(self) -> None:
        """Idle times a longer window would have caught grow it: a quarter of the limit, doubled, never past the limit."""
        busy, script = BusyPoll(40 * US), Script(cost=3 * US)
        windows, polls = [], []
        for _ in range(4):
            script.calls.clear()
            self.assertEqual(self.wait(busy, script, -1, 30 * US), READY)
            windows.append(round(busy.window / US, 3))
            polls.append(script.calls.count(0))
        self.assertEqual(windows, [10, 20, 40, 40])
        # Polls without waiting (3 us each) through the window, then asleep
        # until the event; the 40 us window catches the event (at 30 us).
        self.assertEqual(polls, [1, 4, 7, 10])

    def test_readyAlreadyAdaptsNothing(self) -> None:
        """A turn whose events are ready at once (a flood, a busy farm) was not idle: no window opens, one poll."""
        busy, script = BusyPoll(40 * US), Script()
        for _ in range(3):
            self.assertEqual(self.wait(busy, script, -1, 0), READY)
        self.assertEqual((script.calls, busy.window), ([0, 0, 0], 0.0))

    def test_shrinksByHalvesToNothing(self) -> None:
        """An idle time past the limit halves the window; below a quarter of the limit it is 0, and stays 0."""
        busy, script = BusyPoll(40 * US), Script()
        busy.window = 40 * US
        windows = []
        for _ in range(4):
            self.assertEqual(self.wait(busy, script, -1, 1.0), READY)
            windows.append(round(busy.window / US, 3))
        self.assertEqual(windows, [20, 10, 0, 0])

    def test_caughtWhilePolling(self) -> None:
        """An event that comes within the window is returned without sleeping; the window is kept."""
        busy, script = BusyPoll(40 * US), Script()
        busy.window = 20 * US
        self.assertEqual(self.wait(busy, script, 5.0, 5 * US), READY)
        self.assertEqual((script.calls, round(busy.window / US, 3)), ([0, 0, 0], 20))

    def test_pollsTheWindowThenSleepsTheRest(self) -> None:
        """Nothing within the window: then asleep for what is left of the timeout (a timed call stays on time)."""
        busy, script = BusyPoll(40 * US), Script(cost=8 * US)
        busy.window = 20 * US
        self.assertEqual(self.wait(busy, script, 0.01, 1000 * US), READY)
        # Polls at 0, 8, 16 us (the window ends at 20, passed at 24), then the 10 ms less the 24 us spent.
        self.assertEqual(script.calls, [0, 0, 0, 9976.0])
        # Idle 1000 us, past the limit: halved.
        self.assertEqual(round(busy.window / US, 3), 10)

    def test_neverPollsPastTheTimeout(self) -> None:
        """A timed call due within the window bounds the polling; a timeout of 0 (one is due now) polls once."""
        busy, script = BusyPoll(40 * US), Script(cost=4 * US)
        busy.window = 40 * US
        self.assertEqual(self.wait(busy, script, 10 * US, 1.0), [])
        # 0, 4, 8 us polls (10 us reached at 12), then what is left: nothing.
        self.assertEqual(script.calls, [0, 0, 0, 0])
        script.calls.clear()
        self.assertEqual(self.wait(busy, script, 0, 1.0), [])
        self.assertEqual(script.calls, [0])

    def test_configureStartsAgain(self) -> None:
        """A new limit (--busy-poll) forgets the window learnt; a negative one is 0, off."""
        busy = BusyPoll()
        self.assertEqual((busy.limit, busy.window), (DEFAULT_BUSY_POLL, 0.0))
        busy.window = 30 * US
        busy.configure(-5.0)
        self.assertEqual((busy.limit, busy.window), (0.0, 0.0))

    def test_reactorServesWhatItPolled(self) -> None:
        """The reactor with a window open serves a descriptor made ready before the turn, at once, with a long timeout."""
        reactor = ownReactor(self, GatewayReactor())
        self.assertEqual(reactor.busyPoll.limit, DEFAULT_BUSY_POLL)
        reactor.busyPoll.window = DEFAULT_BUSY_POLL
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        got: list[bytes] = []

        class Reader:
            def fileno(self) -> int:
                return r

            def doRead(self) -> None:
                got.append(os.read(r, 10))

            def connectionLost(self, reason: Any) -> None:
                pass

            def logPrefix(self) -> str:
                return "reader"

        reactor.addReader(Reader())
        os.write(w, b"hello")
        reactor.doPoll(60.0)
        self.assertEqual(got, [b"hello"])


class InstallTests(SynchronousTestCase):
    """Which reactor a fresh process ends up with (each case in its own interpreter)."""

    def run_(self, code: str) -> str:
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.strip()

    def test_optionsInstallOurs(self) -> None:
        """Parsing serialgw's options (what twistd serialgw does first) installs GatewayReactor."""
        out = self.run_(
            "from serialgw.app.tap import Options\n"
            "Options().parseOptions(['--device', 'pty:', '--port', 'tcp:0:interface=127.0.0.1'])\n"
            "from twisted.internet import reactor\n"
            "print(type(reactor).__name__)"
        )
        self.assertEqual(out, "GatewayReactor")

    def test_chosenReactorWins(self) -> None:
        """A reactor installed before (twistd --reactor=poll) stays."""
        out = self.run_(
            "from twisted.internet import pollreactor\n"
            "pollreactor.install()\n"
            "from serialgw.app.reactor import installIfNoneChosen\n"
            "print(installIfNoneChosen())\n"
            "from twisted.internet import reactor\n"
            "print(type(reactor).__name__)"
        )
        self.assertEqual(out.split(), ["False", "PollReactor"])

    def test_busyPollNeedsOurs(self) -> None:
        """--busy-poll with another reactor is an error naming it; --busy-poll 0 goes with any."""
        out = self.run_(
            "from twisted.internet import pollreactor\n"
            "pollreactor.install()\n"
            "from serialgw.app.tap import Options\n"
            "from twisted.python.usage import UsageError\n"
            "o = Options(); o.exitOnError = False\n"
            "o.parseOptions(['--device', 'pty:', '--busy-poll', '0'])\n"
            "try:\n"
            "    o.parseOptions(['--device', 'pty:', '--busy-poll', '30'])\n"
            "except UsageError as e:\n"
            "    print(e)\n"
        )
        self.assertEqual(out, "--busy-poll needs serialgw's reactor, not PollReactor "
                              "(leave out twistd's --reactor, or give --busy-poll 0)")
