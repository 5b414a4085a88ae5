"""
Movers that fail: a FloodReader refused its descriptors at its start, and a
mover that started and then failed as it ran (a process exiting with an
error, a thread's exception): said once, the reactor reading the tty for
REFUSED_WAIT s (see also tests.devices.test_floodread RefusedTests).  And
a device lost while its mover runs: what the mover moved is not lost with it.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices import floodhandoff, floodread, mover
from serialgw.devices.floodread import FloodReader
from serialgw.devices.links import ptyHolders
from serialgw.devices.loss import HANGUP_CHECK
from serialgw.devices.ptyslave import terminalProblem
from tests.devices import waits
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
        for _i in range(floodhandoff.FULL_READS * 3):
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
                waits.readable(self, reader._pipeR, "the mover never ended")
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
        handed: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self.reactor.callFromThread = lambda f, *a, **kw: handed.append((f, a, kw))  # type: ignore[attr-defined]
        with capturedLogs() as events:
            reader = self.handOver()
            assert reader._thread is not None
            waits.joined(self, reader._thread, "the mover thread never ended")
            for f, args, kwargs in handed:
                f(*args, **kwargs)
            self.pipeReads(reader)
            self.floodAgain()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        said = [e for e in events if "mover failed" in e["log_format"]]
        self.assertEqual([e["error"] for e in said], ["its thread failed: RuntimeError('no splice here')"])
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.reactor.advance(floodhandoff.REFUSED_WAIT)
        self.fromDevice(b"h" * FULL)
        self.assertIsNotNone(self.device._reader)
        assert self.device._reader is not None and self.device._reader._thread is not None
        waits.joined(self, self.device._reader._thread, "the mover thread never ended")
        self.flushLoggedErrors(RuntimeError)


class KilledMoverTests(SynchronousTestCase):
    def killed(self, signum: int) -> list[str]:
        """A mover process killed by C{signum} as it runs: what its FloodReader told the device."""
        # (Not ended on its own first, its exit 0: PROCESS_IDLE, 2 s, runs out when the kill is late.)
        self.patch(floodread, "PROCESS_IDLE", 600.0)
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
            waits.readable(self, reader._pipeR, "the pipe never ended")
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


class LossWithAMoverTests(Flooding):
    """A device lost while a mover runs, what it moved still in the pipe."""

    def setUp(self) -> None:
        Flooding.setUp(self)
        # The loss recorded among the data, to see their order.
        self.sink.deviceLost = lambda reason: self.sink.data.append(b"<lost>")  # type: ignore[method-assign]
        self.reader = self.handOver()
        self.deviceSends(b"moved before the hang-up")
        # The mover moves it into the pipe, and runs on (its ends open).
        self.assertEqual(mover.move(*self.reader.moverEnds(), 0, floodread.SPLICE_SIZE), "quiet")

    def test_hangUpWhilePausedDeliversWhatThePipeHolds(self) -> None:
        """A hang-up found while the device is paused (a lossless client behind) delivers what the mover had moved, then the loss: it was dropped with the pipe (up to 64 KiB more lost than without a mover: 70 KB against 15 KB, seen live)."""
        self.device.pauseReading()
        master, self.master = self.master, -1
        os.close(master)
        self.reactor.advance(HANGUP_CHECK)
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"moved before the hang-up", b"<lost>"])
        self.assertTrue(self.reader.stopped)
        self.assertEqual(self.reactor.getReaders(), [])

    def test_lossFoundElsewhereDeliversWhatThePipeHolds(self) -> None:
        """A loss found elsewhere (a write failing) while the reactor reads the pipe delivers what it holds first too."""
        self.device._lost(OSError(errno.EIO, "Input/output error"))
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"moved before the hang-up", b"<lost>"])
        self.assertTrue(self.reader.stopped)

    def test_closeWhilePausedDeliversWhatThePipeHolds(self) -> None:
        """A close (the line removed, the gateway stopping) while paused delivers what the mover had moved too, as a loss does: the device's output from before the close, read from it (it was dropped: 12-24 KB lost at a SIGTERM mid-flood against 10-12 KB without a mover)."""
        self.device.pauseReading()
        self.device.close()
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"moved before the hang-up"])
        self.assertTrue(self.reader.stopped)

    def test_lossSetOffByADeliveryDeliversNothingInside(self) -> None:
        """A loss set off by a delivery of the pipe's (the line's handling of it wrote to a device gone) delivers nothing inside it: the line is part way through handing that read on, and the next would overtake it for some clients."""
        self.patch(floodread, "PIPE_READ", 5)
        received = self.sink.deviceDataReceived

        def losing(data: bytes) -> None:
            received(data)
            self.device._lost(OSError(errno.EIO, "Input/output error"))

        self.sink.deviceDataReceived = losing  # type: ignore[method-assign]
        self.reader._pipe.doRead()
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"moved", b"<lost>"])


class ThreadFailureLogTests(Flooding):
    def test_failureLoggedByTheReactor(self) -> None:
        """A mover thread's failure is logged on the reactor's thread (handed to it by callFromThread), not its own: twistd's log file is written without a lock."""
        calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []
        self.reactor.callFromThread = lambda f, *a, **kw: calls.append((f, a, kw))  # type: ignore[attr-defined]

        def broken(*args: object) -> str:
            raise RuntimeError("no splice here")

        self.patch(floodread.mover, "move", broken)
        # (Run here, its first step would put the test's own thread at mover.NICE for the rest of the
        # run: every later test, its threads and child processes at nice 19.)
        self.patch(floodread.mover, "yieldToTheGateway", lambda: None)
        reader = self.handOver()
        niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        with capturedLogs() as events:
            reader._run()  # (the thread's body, run here)
        self.assertEqual(events, [])
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), niceness)
        self.assertEqual(len(calls), 1)
        with capturedLogs() as events:
            f, args, kwargs = calls[0]
            f(*args, **kwargs)
        self.assertEqual([e["log_format"] for e in events], ["{device}: its mover thread failed"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(reader.failure, "its thread failed: RuntimeError('no splice here')")


class OwnMoverTests(SynchronousTestCase):
    def test_moverStillEndingIsNoStranger(self) -> None:
        """A process mover told to stop and not ended yet (nice 19 on a loaded machine) holds the tty: the reopen's look at who holds a pty slave (the device lost, the pty still there) does not take the gateway's own child for another session's terminal, which refused the reopen ('held open by pid N without its master')."""
        # (Never quiet for long enough to end on its own while the test looks: a process mover is given
        # PROCESS_IDLE, 2 s, which ran out before the look on a loaded machine: 'pid not in []'.)
        self.patch(floodread, "PROCESS_IDLE", 600.0)
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        path = os.ttyname(slave)
        reader = FloodReader(reactor, slave, "pty", print, print, mode="process")
        os.close(slave)
        pid = reader.pid
        assert pid is not None
        # Told to stop, it cannot end while its wake pipe's other end is
        # open (a copy kept here): it holds the tty as a slow mover does.
        # (SIGSTOP no longer holds it: stop sends SIGCONT, and the mover,
        # ending at once, was gone before the look on a loaded machine:
        # 'pid not in []'.)
        keep = [os.dup(reader._wakeW)]

        def goOn() -> None:
            while keep:
                os.close(keep.pop())
            if reader.pid is not None:  # (a failure before it was collected)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

        self.addCleanup(goOn)
        reader.stop()
        holders = ptyHolders(path)
        self.assertIn(pid, holders)
        problem = terminalProblem(path)
        if holders == [pid]:
            self.assertIsNone(problem)
        else:  # (another process on this machine that opened /dev/pts/N by its number: it is named, not ours)
            self.assertNotRegex(problem or "", rf"\b{pid}\b")
        self.assertIn(pid, floodread.moverPids())
        os.close(keep.pop())
        waits.exited(self, pid, "the mover never ended once its wake pipe closed")
        reactor.advance(floodread.REAP_DELAY)
        self.assertIsNone(reader.pid)
        self.assertNotIn(pid, floodread.moverPids())
