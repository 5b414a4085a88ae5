"""
The real-I/O test helpers' own behaviour: a wait that never ends says,
before trial's timeout, which line of the test waited and for what.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.trial.unittest import TestCase

from tests import realio
from tests.realio import Accumulator


class WaitWatchTests(TestCase):
    def test_pendingWaitNamesItself(self) -> None:
        """A wait pending at the watch's end fails with its test line, what it waited for and what the stream had."""
        acc = Accumulator("the gateway's output")
        acc.add(b"booting\n")
        d = acc.contains(b"ready")
        failures: list[Any] = []
        d.addErrback(failures.append)
        realio._expire(90)
        [failure] = failures
        message = str(failure.value)
        self.assertIn("tests/test_realio.py:", message)
        self.assertIn('d = acc.contains(b"ready")', message)
        self.assertIn("for the gateway's output to contain b'ready'", message)
        self.assertIn("(the test's timeout is 90 s)", message)
        self.assertIn("it has 8 bytes, ending: b'booting\\n'", message)
        # What comes later finds no waiter left (not a second callback).
        acc.add(b"ready")
        self.assertEqual(realio._pending, {})

    def test_recentLogEventsSaid(self) -> None:
        """The process's last log events (not debug) since the watch began come with a wait that does not end."""
        from twisted.internet import reactor
        from twisted.logger import Logger

        before = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]
        realio.watchWaits(self)
        [call] = set(reactor.getDelayedCalls()) - before  # type: ignore[attr-defined]
        log = Logger()
        log.debug("not this")
        for n in range(realio.RECENT_EVENTS + 1):
            log.warn("/dev/pts/{n} is locked by process 4242 (python)", n=n)
        d = Accumulator("the pty master").length(5)
        failures: list[Any] = []
        d.addErrback(failures.append)
        call.func(*call.args)  # type: ignore[attr-defined]
        message = str(failures[0].value)
        self.assertIn("this process's last log events:\n    /dev/pts/1 is locked by process 4242 (python)\n", message)
        self.assertTrue(message.endswith(f"/dev/pts/{realio.RECENT_EVENTS} is locked by process 4242 (python)"), message)
        self.assertNotIn("/dev/pts/0 ", message)
        self.assertNotIn("not this", message)

    def test_firedWaitForgotten(self) -> None:
        """A wait that ended is not among the pending; one that never had to wait is never there."""
        acc = Accumulator()
        acc.add(b"x")
        acc.contains(b"x")
        d = acc.length(2)
        self.assertEqual([w.what for w in realio._pending.values()], ["stream to reach 2 bytes"])
        acc.add(b"y")
        self.assertEqual(self.successResultOf(d), b"xy")
        self.assertEqual(realio._pending, {})

    def test_watchOncePerTest(self) -> None:
        """The watch is set once per test, a tenth of its timeout (at least 2 s) before it, and cancelled at its end."""
        from twisted.internet import reactor

        before = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]
        realio.watchWaits(self)
        realio.watchWaits(self)
        [call] = set(reactor.getDelayedCalls()) - before  # type: ignore[attr-defined]
        left = call.getTime() - reactor.seconds()  # type: ignore[attr-defined]
        self.assertTrue(abs(left - self.getTimeout() * 0.9) < 1, left)

    async def test_untilLooksAgain(self) -> None:
        """until() fires once its predicate holds, looked at again each interval."""
        looks: list[int] = []

        def third() -> bool:
            looks.append(1)
            return len(looks) >= 3

        await realio.until(self, third, "the third look", 0.001)
        self.assertEqual((len(looks), realio._pending), (3, {}))

    def test_untilPendingNamesItself(self) -> None:
        """An until() still waiting at the watch's end fails naming what it waited for, and looks no more."""
        looks: list[int] = []
        d = realio.until(self, lambda: looks.append(1), "the device to be up", 0.001)
        failures: list[Any] = []
        d.addErrback(failures.append)
        realio._expire(30)
        [failure] = failures
        self.assertIn("for the device to be up; it does not hold yet", str(failure.value))
        self.assertIn("tests/test_realio.py:", str(failure.value))
        from twisted.internet import reactor

        self.assertEqual([c for c in reactor.getDelayedCalls() if c.func.__name__ == "look"], [])  # type: ignore[attr-defined]

    def test_untilPredicateRaises(self) -> None:
        """What the predicate raises fails the wait."""
        d = realio.until(self, lambda: 1 / 0, "a division")
        self.failureResultOf(d, ZeroDivisionError)

    def test_strangerOnATestPtyNamed(self) -> None:
        """A process outside the test (not started by it) with the test's pty open is named with a wait that does not end; the test's own are not."""
        import os
        import signal
        import subprocess

        from tests.realio import startedPty

        pty = startedPty(self)
        # sh starts sleep on the pty and ends: sleep is no longer below this process.
        pid = int(subprocess.run(["sh", "-c", f"sleep 60 <> {pty.slaveName} >/dev/null 2>&1 & echo $!"],
                                 capture_output=True, check=True).stdout)
        self.addCleanup(os.kill, pid, signal.SIGTERM)
        d = pty.received.length(1)
        failures: list[Any] = []
        d.addErrback(failures.append)
        realio._expire(60)
        self.assertIn(f"\n  {pty.slaveName}, a pty of this test, is open in pid {pid} (sleep 60), not a process of this "
                      "test: another program on this machine (a gateway reopening a /dev/pts/N it lost?) has it",
                      str(failures[0].value))
        self.assertEqual(realio.strangers(pty.slaveName), [f"{pid} (sleep 60)"])


class SharedLockDirTests(TestCase):
    def test_machinesLockDirRefused(self) -> None:
        """startGateway refuses a tty line locking in /var/lock (LineConfig's default), naming it, before opening anything; ptyLine's lines lock in the run's own directory."""
        from serialgw.config.specs import DeviceSpec, LineConfig

        shared = LineConfig("t", DeviceSpec("tty", "/dev/ttyS0"))
        e = self.assertRaises(AssertionError, realio.startGateway, self, shared, realio.ptyLine("/dev/ttyS1", name="u"))
        self.assertEqual(str(e), "line(s) ['t'] would take their UUCP locks in /var/lock, every process's on the machine "
                                 "(another's lock for a pty number reused keeps a line down): give them "
                                 "lockDir=testLockDir(), or say sharedLocks=True")
        self.assertEqual(realio.ptyLine("/dev/ttyS1").lockDir, realio.testLockDir())
        self.assertNotIn(os.path.realpath(realio.testLockDir()), realio.SHARED_LOCK_DIRS)
