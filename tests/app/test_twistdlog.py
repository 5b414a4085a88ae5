"""
twistd's own log file reopened at SIGUSR1: its path opened by a thread of
its own, the file swapped in on the reactor's thread, the signal waiting
REOPEN_WAIT s at most for it (a log directory on a file system that does
not answer held every line).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import twistdlog
from serialgw.app.process import TwistdGatewayService
from serialgw.app.twistdlog import REOPEN_WAIT, TwistdLogReopens
from tests.fakes import LogEvents, ThreadedReactorClock


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class ReopenTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = ThreadedReactorClock()
        self.log = LogEvents(self)
        self.threads: list[tuple[str, Callable[[], None]]] = []
        self.patch(twistdlog, "startThread", lambda work, name: self.threads.append((name, work)))
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        self.path = os.path.join(directory, "twistd.log")
        self.logFile = LogFile.fromFullPath(self.path, rotateLength=1000)
        self.addCleanup(lambda: self.logFile.closed or self.logFile.close())
        self.logFile.write("before\n")
        os.rename(self.path, self.path + ".1")  # (logrotate)
        self.reopens = TwistdLogReopens(self.logFile, self.clock, threaded=True)
        self.addCleanup(self.closeLeftOver)

    def closeLeftOver(self) -> None:
        """The closes the test left to threads it did not run, run now: their files stayed open for good (4 tests, 1 each)."""
        for name, work in self.threads:
            if name.startswith("serialgw twistd log close"):
                work()

    def runThread(self, name: str) -> None:
        """The thread whose name begins with C{name}, run now (as its thread would), the reactor's turn after it."""
        work = next(work for n, work in self.threads if n.startswith(name))
        self.threads = [(n, w) for n, w in self.threads if w is not work]
        work()
        self.clock.advance(0)

    def said(self, level: LogLevel) -> list[str]:
        return [formatEvent(e) for e in self.log.at(level)]

    def test_openedByAThread(self) -> None:
        """The path is opened by a thread, not the reactor's: nothing there until it runs; then the new file is twistd's (its size too, for its rotation), the old one closed by a thread, said."""
        answer = self.reopens.reopen()
        self.assertNoResult(answer)
        self.assertFalse(os.path.exists(self.path))
        self.runThread("serialgw twistd log open")
        self.assertEqual(self.successResultOf(answer), 1)
        old = self.threads[0][1].__self__  # type: ignore[attr-defined]
        self.assertFalse(old.closed)
        self.runThread("serialgw twistd log close")
        self.assertTrue(old.closed)
        self.logFile.write("after\n")
        self.assertEqual((read(self.path), read(self.path + ".1"), self.logFile.size), (b"after\n", b"before\n", 6))
        self.assertIn(f"reopened {self.path}", self.said(LogLevel.info))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_hungOpen(self) -> None:
        """An open that does not return: after REOPEN_WAIT s the answer is 0, said, the file in hand written on; another SIGUSR1 meanwhile begins no other open (said at once); once it returns, the path is opened again for that SIGUSR1, and that file is swapped in."""
        answer = self.reopens.reopen()
        self.clock.advance(REOPEN_WAIT - 0.1)
        self.assertNoResult(answer)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(answer), 0)
        self.assertEqual(self.said(LogLevel.error), [
            f"cannot reopen {self.path} yet: its open has not returned in 5 s (a file system that does not answer?); "
            "writing on to the file it was, swapped once the open returns"])
        self.logFile.write("meanwhile\n")
        self.assertEqual(self.successResultOf(self.reopens.reopen()), 0)
        self.assertEqual(len(self.threads), 1)
        self.assertIn(f"cannot reopen {self.path}: its open, begun at an earlier SIGUSR1, has not returned",
                      self.said(LogLevel.error)[-1])
        self.runThread("serialgw twistd log open")
        # (Begun before that SIGUSR1: not kept; the path opened again, one open at a time.)
        self.assertEqual(len(self.threads), 1)
        self.runThread("serialgw twistd log open")
        self.logFile.write("after\n")
        self.assertEqual((read(self.path), read(self.path + ".1")), (b"after\n", b"before\nmeanwhile\n"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_askedAgainWhileUnderWay(self) -> None:
        """A second SIGUSR1 while the open is under way (within its wait) is answered with the open begun after that one returns, counted once; one open at a time."""
        first, second = self.reopens.reopen(), self.reopens.reopen()
        self.assertEqual(len(self.threads), 1)
        self.runThread("serialgw twistd log open")
        self.assertEqual(len(self.threads), 1)
        self.assertNoResult(first)
        self.runThread("serialgw twistd log open")
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)), (1, 0))

    def rotate(self) -> None:
        """logrotate again: twistd.log.1 to .2, twistd.log (the file the last reopen made) to .1."""
        os.rename(self.path + ".1", self.path + ".2")
        os.rename(self.path, self.path + ".1")

    def test_slowOpenAfterASecondRotation(self) -> None:
        """An open slow past its wait that returns after a second rotation and SIGUSR1: its file (renamed since) is not swapped in, the second SIGUSR1 is not lost: a new open begins as that one returns, and its file (the path's now) is twistd's."""
        self.assertEqual(self.successResultOf(self._slowFirst()), 0)
        second = self.reopens.reopen()
        self.assertEqual(self.successResultOf(second), 0)  # (said at once: the open under way is over its wait)
        self.clock.advance(0)  # the first open's outcome reaches the reactor
        self.logFile.write("meanwhile\n")
        self.assertEqual(read(self.path + ".1"), b"")  # (the renamed file is not written)
        self.assertEqual([name for name, _ in self.threads], [f"serialgw twistd log open {self.path}"])
        self.runThread("serialgw twistd log open")
        self.logFile.write("after\n")
        self.assertEqual((read(self.path), read(self.path + ".1"), read(self.path + ".2")),
                         (b"after\n", b"", b"before\nmeanwhile\n"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_slowOpenWithinItsWait(self) -> None:
        """A second SIGUSR1 while an open is under way (within its wait), after a rotation: the first open's file is not swapped in; the open begun after it answers both, counted once."""
        first = self.reopens.reopen()
        self.threads.pop()[1]()  # the open, done; its outcome not on the reactor's thread yet
        self.rotate()
        second = self.reopens.reopen()
        self.clock.advance(0)
        self.assertNoResult(first)
        self.runThread("serialgw twistd log open")
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)), (1, 0))
        self.logFile.write("after\n")
        self.assertEqual((read(self.path), read(self.path + ".1"), read(self.path + ".2")), (b"after\n", b"", b"before\n"))

    def _slowFirst(self) -> Any:
        """The first SIGUSR1's open: begun, over its wait, then done after a second rotation (its outcome not delivered)."""
        answer = self.reopens.reopen()
        self.clock.advance(REOPEN_WAIT)
        self.threads.pop()[1]()  # opened twistd.log as it was: the file rotate() renames
        self.rotate()
        return answer

    def test_notAFile(self) -> None:
        """A directory put at the path: refused by the thread, said, the file in hand kept."""
        os.mkdir(self.path)
        answer = self.reopens.reopen()
        self.runThread("serialgw twistd log open")
        self.assertEqual(self.successResultOf(answer), 0)
        self.assertIn(f"cannot reopen {self.path}: Is a directory; writing on to the file it was",
                      self.said(LogLevel.error))
        self.logFile.write("on\n")
        self.assertEqual(read(self.path + ".1"), b"before\non\n")

    def test_closedMeanwhile(self) -> None:
        """twistd's file closed while the open was under way (the stop): the new one is not kept, 0."""
        answer = self.reopens.reopen()
        self.logFile.close()
        self.runThread("serialgw twistd log open")
        self.assertEqual(self.successResultOf(answer), 0)
        self.assertEqual(self.threads, [])

    def test_closedMeanwhileAskedAgain(self) -> None:
        """twistd's file closed while an open begun before the last SIGUSR1 was under way: not opened again, both answered 0."""
        first, second = self.reopens.reopen(), self.reopens.reopen()
        self.logFile.close()
        self.runThread("serialgw twistd log open")
        self.assertEqual((self.successResultOf(first), self.successResultOf(second), self.threads), (0, 0, []))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class HungLogDirectoryTests(TestCase):
    timeout = 30

    async def test_sigusr1HoldsNoLine(self) -> None:
        """SIGUSR1 with twistd's log path on a file system that does not answer (os.open made to wait off the main thread): the path is never opened on the reactor's thread (it was, twice: every line held), the reactor turns meanwhile, and the signal's reopen answers after REOPEN_WAIT with 0."""
        self.patch(twistdlog, "REOPEN_WAIT", 0.3)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        path = os.path.join(directory, "twistd.log")
        logFile = LogFile.fromFullPath(path)
        self.addCleanup(logFile.close)
        release = threading.Event()
        self.addCleanup(release.set)
        onMainThread: list[str] = []
        realOpen = os.open

        def hungOpen(name: Any, *args: Any, **kwargs: Any) -> int:
            if name == path:
                if threading.current_thread() is threading.main_thread():
                    onMainThread.append(name)  # (not made to hang here: it would hang the test too)
                else:
                    release.wait()
            return realOpen(name, *args, **kwargs)

        self.patch(os, "open", hungOpen)
        service = TwistdGatewayService([], reactor=reactor)
        service.twistdLog = logFile
        answer = service.reopenLogs()
        await deferLater(reactor, 0.05, lambda: None)  # (the reactor turns)
        self.assertEqual((await answer, onMainThread), (0, []))
