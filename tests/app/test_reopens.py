"""
SIGUSR1 reopens a farm's console logs and file: outputs in turns of the
reactor (serialgw.app.reopening), a bounded number a turn.
"""

from __future__ import annotations

import os

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.reopening import REOPENS_PER_TURN
from serialgw.app.service import GatewayService
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog, oneTurn


def closeIfOpen(consoleLog: ConsoleLog) -> None:
    if consoleLog in consoleLog.line.logs:
        consoleLog.close()


class ReopenTurnsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)
        self.service = GatewayService([], reactor=self.clock)
        self.logs: list[ConsoleLog] = []

    def farm(self, count: int) -> None:
        """C{count} lines with a console log each, every log renamed (as logrotate does before SIGUSR1)."""
        for i in range(count):
            line = Line(f"l{i}", RecordingDevice(), clock=self.clock)
            consoleLog = ConsoleLog(line, LogSpec(os.path.join(self.directory, f"l{i}.log"), format=""), self.clock)
            self.addCleanup(closeIfOpen, consoleLog)
            self.service.lines[line.name] = line
            self.logs.append(consoleLog)
            os.rename(consoleLog.spec.path, consoleLog.spec.path + ".1")

    def made(self) -> int:
        """How many logs were opened again (a new file at their path)."""
        return sum(os.path.exists(c.spec.path) for c in self.logs)

    def test_inTurns(self) -> None:
        """1024 logs are reopened REOPENS_PER_TURN a turn, not all in one; the result is the count once all are."""
        self.farm(1024)
        done = self.service.reopenLogs()
        turns = [self.made()]
        while self.made() < 1024:
            self.assertNoResult(done)
            oneTurn(self.clock)
            turns.append(self.made())
        self.assertEqual(turns, list(range(REOPENS_PER_TURN, 1025, REOPENS_PER_TURN)))
        self.assertEqual(self.successResultOf(done), 1024)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_signalWhileUnderWay(self) -> None:
        """SIGUSR1s while a pass is under way are one more pass after it (the files renamed meanwhile reopened too)."""
        self.farm(2 * REOPENS_PER_TURN)
        first = self.service.reopenLogs()
        os.rename(self.logs[0].spec.path, self.logs[0].spec.path + ".2")  # rotated again, after its reopen
        second, third = self.service.reopenLogs(), self.service.reopenLogs()
        oneTurn(self.clock)
        self.assertEqual(self.successResultOf(first), 2 * REOPENS_PER_TURN)
        self.assertNoResult(second)
        self.assertTrue(os.path.exists(self.logs[0].spec.path))  # (the next pass began as the first ended)
        oneTurn(self.clock)
        self.assertEqual((self.successResultOf(second), self.successResultOf(third)),
                         (2 * REOPENS_PER_TURN, 2 * REOPENS_PER_TURN))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closedMeanwhileLeftAlone(self) -> None:
        """A log and a file: output closed between two turns (a reload removed their lines) are not reopened, nor counted."""
        self.farm(REOPENS_PER_TURN)
        line = Line("last", RecordingDevice(), clock=self.clock)
        output = FileClient(line, os.path.join(self.directory, "last.out"), writes="inline")
        self.service.lines["last"] = line
        os.rename(output.path, output.path + ".1")
        done = self.service.reopenLogs()
        self.logs[-1].close()
        output.close()
        oneTurn(self.clock)
        self.assertEqual(self.successResultOf(done), REOPENS_PER_TURN)
        self.assertFalse(os.path.exists(output.path))

    def test_stopBetweenTurns(self) -> None:
        """A stop between two turns leaves the rest as they are; nothing is left waiting on the reactor."""
        self.farm(2 * REOPENS_PER_TURN)
        done = self.service.reopenLogs()
        self.service._stopped = True
        oneTurn(self.clock)
        self.assertEqual(self.successResultOf(done), REOPENS_PER_TURN)
        self.assertEqual(self.made(), REOPENS_PER_TURN)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_typedFilesCounted(self) -> None:
        """A log with log-typed is two files reopened: the count (and SIGUSR1's "reopened N log file(s)") says both."""
        line = Line("t", RecordingDevice(), clock=self.clock)
        path = os.path.join(self.directory, "t.log")
        consoleLog = ConsoleLog(line, LogSpec(path, format="", typed="text"), self.clock)
        self.addCleanup(closeIfOpen, consoleLog)
        self.service.lines["t"] = line
        os.rename(path, path + ".1")
        os.rename(path + ".typed", path + ".typed.1")
        events: list[LogEvent] = []
        observeLog(self, events.append)
        self.assertEqual(self.successResultOf(self.service.reopenLogs()), 2)
        self.assertEqual((os.path.exists(path), os.path.exists(path + ".typed")), (True, True))
        self.assertEqual([formatEvent(e) for e in events if "reopened" in str(e.get("log_format"))],
                         ["reopened 2 log file(s)"])

    def test_failingReopenEndsThePass(self) -> None:
        """A file whose reopen raises (a close's EIO on NFS) is logged; the pass goes on, its result fires, and the next SIGUSR1 runs."""
        self.farm(2)

        def broken() -> Deferred[int]:
            raise OSError(5, "Input/output error")

        self.logs[0].reopen = broken  # type: ignore[method-assign]
        done = self.service.reopenLogs()
        self.assertEqual(self.successResultOf(done), 1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        del self.logs[0].reopen
        os.rename(self.logs[1].spec.path, self.logs[1].spec.path + ".2")
        self.assertEqual(self.successResultOf(self.service.reopenLogs()), 2)
        self.assertEqual(self.made(), 2)
