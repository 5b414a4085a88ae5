"""
Movers that fail: a FloodReader refused its descriptors at its start, and a
mover that started and then failed as it ran (a process exiting with an
error, a thread's exception): said once, the reactor reading the tty for
REFUSED_WAIT s (see also tests.devices.test_floodread RefusedTests).
"""

from __future__ import annotations

import errno
import os
import select
import signal

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices import floodread
from serialgw.devices.floodread import FloodReader
from tests.devices.test_floodread import FULL, Flooding, openFds


class StartFailureTests(SynchronousTestCase):
    def test_secondPipeRefusedLeavesNoDescriptor(self) -> None:
        """A mover refused its wake pipe (EMFILE after the data pipe was made) closes every descriptor it made: the data pipe's two were left open for good, at each try."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        pipe2 = os.pipe2
        made: list[int] = []

        def onlyOne(flags: int) -> tuple[int, int]:
            if made:
                raise OSError(errno.EMFILE, "Too many open files")
            ends = pipe2(flags)
            made.extend(ends)
            return ends

        self.patch(floodread.os, "pipe2", onlyOne)
        before = openFds()
        self.assertRaises(OSError, FloodReader, MemoryReactorClock(), slave, "pty", print, print, mode="thread")
        self.assertEqual(len(made), 2)
        self.assertEqual(openFds() - before, set())


class FailedMoverTests(Flooding):
    """A mover that fails as it runs (it started: not refused at the start) is said once and not tried again for REFUSED_WAIT s."""

    def floodAgain(self) -> None:
        for _i in range(floodread.FULL_READS * 3):
            self.fromDevice(b"g" * FULL)

    def test_failedProcessIsNotStartedAgainAtOnce(self) -> None:
        """A mover process that exits with an error (here: its code not found) is said, naming its status, and the reactor reads the tty for REFUSED_WAIT s: it was started again, silently, every FULL_READS full reads (238 times for a flood of 4 MB)."""
        self.reactor.movers = "process"  # type: ignore[attr-defined]
        self.device._startMover = True
        self.patch(floodread, "_ROOT", "/nonexistent")
        with capturedLogs() as events:
            reader = self.handOver()
            pid = reader.pid
            assert pid is not None
            self.pipeReads(reader)
            while not reader.stopped:
                self.assertTrue(select.select([reader._pipeR], [], [], 10)[0], "the mover never ended")
                reader._pipe.doRead()
            if reader.pid is not None:  # (collected at the stop, or looked for again)
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                self.reactor.advance(floodread.REAP_DELAY)
            self.assertIsNone(reader.pid)
            self.floodAgain()
        said = [e for e in events if "mover failed" in e["log_format"]]
        self.assertEqual([e["error"] for e in said], ["its process exited with status 1"])
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])

    def test_failedThreadIsNotStartedAgainAtOnce(self) -> None:
        """A mover thread that fails (its exception logged) is said once, and the reactor reads the tty for REFUSED_WAIT s: it was started again, and its traceback logged, every FULL_READS full reads."""
        def broken(*args: object) -> str:
            raise RuntimeError("no splice here")

        self.patch(floodread.mover, "move", broken)
        self.device._startMover = True
        with capturedLogs() as events:
            reader = self.handOver()
            assert reader._thread is not None
            reader._thread.join(10)
            self.pipeReads(reader)
            self.floodAgain()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        said = [e for e in events if "mover failed" in e["log_format"]]
        self.assertEqual([e["error"] for e in said], ["its thread failed: RuntimeError('no splice here')"])
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.reactor.advance(floodread.REFUSED_WAIT)
        self.fromDevice(b"h" * FULL)
        self.assertIsNotNone(self.device._reader)
        self.device._reader._thread.join(10)  # type: ignore[union-attr]
        self.flushLoggedErrors(RuntimeError)


class KilledMoverTests(SynchronousTestCase):
    def killed(self, signum: int) -> list[str]:
        """A mover process killed by C{signum} as it runs: what its FloodReader told the device."""
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        told: list[str] = []
        backs: list[int] = []
        reader = FloodReader(reactor, slave, "pty", print, lambda: backs.append(1), mode="process",
                             failed=told.append)
        os.close(slave)
        assert reader.pid is not None
        pid = reader.pid
        os.kill(pid, signum)
        while not backs:
            self.assertTrue(select.select([reader._pipeR], [], [], 10)[0], "the pipe never ended")
            reader._pipe.doRead()
        if reader.pid is not None:  # (collected at the stop, or looked for again)
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            reactor.advance(floodread.REAP_DELAY)
        self.assertIsNone(reader.pid)
        return told

    def test_killedIsAFailure(self) -> None:
        """A mover process killed (SIGKILL: the OOM killer, a person) is a failure, said naming the signal."""
        self.assertEqual(self.killed(signal.SIGKILL), ["its process was killed by signal 9"])

    def test_sigtermIsAStop(self) -> None:
        """A mover process ended by SIGTERM is not called a failure: a service's stop (systemd's KillMode=control-group, its default) sends it to all of the service's processes at once, the gateway still closing its lines."""
        self.assertEqual(self.killed(signal.SIGTERM), [])
