"""
Tests for serialgw.devices.moverwatch: a process mover that stops moving
while alive (SIGSTOP, a debugger, a frozen cgroup), or a thread mover
stuck, stalled its line silently for good, its tty full and nothing in
its pipe.  The watch looks on the reactor's clock, kills a process (a
thread is left behind), and the reactor reads the tty, every byte the
mover had not taken still there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import tty
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices import floodhandoff, floodread, mover, moverwatch
from serialgw.devices.floodread import FloodReader
from serialgw.devices.moverwatch import STALL_CHECK, STALL_LOOKS, STARVED_LOOKS, processState
from tests.devices import waits
from tests.devices.test_floodread import FULL, Flooding

# No process has it (Linux's pid_max is at most 4194304): the fake mover's pid.
NO_PID = 5_000_000


class StallTests(Flooding):
    """A process mover played by the test, which moves only when told: stalled when it does not."""

    mode = "process"

    def setUp(self) -> None:
        Flooding.setUp(self)
        self.reader = self.handOver()
        self.reader.pid = NO_PID
        self.sent = len(self.sink.data)
        self.killed: list[object] = []

        def kill(pid: object) -> None:
            # (A killed process's ends close with it.)
            self.killed.append(pid)
            self.reader._closeMoversEnds()

        self.patch(floodread, "killMover", kill)

    def move(self) -> None:
        """The mover moves what the tty holds into the pipe (and runs on)."""
        self.assertEqual(mover.move(*self.reader.moverEnds(), 0, floodread.SPLICE_SIZE), "quiet")

    def looks(self, count: int) -> None:
        for _i in range(count):
            self.reactor.advance(STALL_CHECK)

    def test_stalledMoverKilledTheReactorReadsTheTty(self) -> None:
        """A mover that moves nothing while the tty holds bytes, at STALL_LOOKS looks in a row, is killed, said once naming the line's device, its pid and what the tty held; what it had moved comes first, then the reactor reads the tty: nothing lost (it stalled the line for good)."""
        self.deviceSends(b"moved")
        self.move()
        self.pipeReads(self.reader)
        self.deviceSends(b"left in the tty")
        with capturedLogs() as events:
            self.looks(STALL_LOOKS)
            self.assertEqual(self.killed, [])
            self.looks(1)
        self.assertEqual(self.killed, [NO_PID])
        said = [(e["device"], e["error"]) for e in events if "mover failed" in e["log_format"]]
        self.assertEqual(said, [(self.device.name, f"its process, pid {NO_PID}, moved nothing for 2 s while the tty "
                                                   "held 15 bytes (stopped or hung): killed")])
        self.pipeReads(self.reader)
        self.assertTrue(self.reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.device.doRead()
        self.assertEqual(self.sink.data[self.sent:], [b"moved", b"left in the tty"])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        # Not started again at once: the reactor reads the flood (as after a mover that failed).
        for _i in range(floodhandoff.FULL_READS * 2):
            self.fromDevice(b"z" * FULL)
        self.assertIsNone(self.device._reader)

    def test_pausedIsNoStall(self) -> None:
        """Paused (a lossless client behind), the pipe full and the mover waiting for room is not stalled: never killed."""
        self.device.pauseReading()
        self.deviceSends(b"waiting")
        self.looks(STALL_LOOKS * 3)
        self.assertEqual(self.killed, [])
        self.device.resumeReading()
        self.looks(1)
        self.assertEqual(self.killed, [])

    def test_pipeHoldingBytesIsNoStall(self) -> None:
        """Bytes in the pipe are the reactor's to read (a mover waiting for room is not stalled): never killed."""
        self.deviceSends(b"in the pipe")
        self.move()
        self.deviceSends(b"in the tty")
        self.looks(STALL_LOOKS * 3)
        self.assertEqual(self.killed, [])

    def test_quietTtyIsNoStall(self) -> None:
        """A tty with nothing to read: the mover waits in its poll, not stalled."""
        self.looks(STALL_LOOKS * 3)
        self.assertEqual(self.killed, [])
        self.assertEqual(len(self.reactor.getDelayedCalls()), 1)

    def test_movingIsNoStall(self) -> None:
        """A mover that moves between looks, the tty never empty at them (a flood), is not stalled."""
        for i in range(STALL_LOOKS * 3):
            self.deviceSends(b"%d" % i)
            self.move()
            self.deviceSends(b"next")
            self.pipeReads(self.reader)
            self.looks(1)
        self.assertEqual(self.killed, [])

    def states(self, *states: str) -> list[int]:
        """The mover's state as a fake /proc says it: C{states} in turn, the last one from then on; the pids looked at."""
        asked: list[int] = []
        left = list(states)

        def state(pid: int) -> str:
            asked.append(pid)
            return left.pop(0) if len(left) > 1 else left[0]

        self.patch(moverwatch, "processState", state)
        return asked

    def test_starvedMoverGivenLonger(self) -> None:
        """
        A mover runnable (R: waiting for a CPU, starved) that moves nothing
        while the tty holds bytes is not killed at STALL_LOOKS looks (before:
        killed, said 'stopped or hung'), but at STARVED_LOOKS (it had the
        time: spinning), said so; its state is read only at deciding looks.
        """
        asked = self.states("R")
        self.deviceSends(b"left in the tty")
        with capturedLogs() as events:
            self.looks(STARVED_LOOKS - 1)
            self.assertEqual((self.killed, asked), ([], [NO_PID] * (STARVED_LOOKS - STALL_LOOKS)))
            self.looks(1)
        self.assertEqual(self.killed, [NO_PID])
        said = [e["error"] for e in events if "mover failed" in e["log_format"]]
        self.assertEqual(said, [f"its process, pid {NO_PID}, runnable, moved nothing for {STARVED_LOOKS} s while the "
                                "tty held 15 bytes (spinning, or starved of CPU): killed"])

    def test_starvedThenStoppedKilled(self) -> None:
        """A mover runnable at one look and stopped (T) at the next, having moved nothing meanwhile, is killed then."""
        self.states("R", "T")
        self.deviceSends(b"left in the tty")
        with capturedLogs() as events:
            self.looks(STALL_LOOKS)
            self.assertEqual(self.killed, [])
            self.looks(1)
        self.assertEqual(self.killed, [NO_PID])
        said = [e["error"] for e in events if "mover failed" in e["log_format"]]
        self.assertEqual(said, [f"its process, pid {NO_PID}, moved nothing for {STALL_LOOKS + 1} s while the tty held "
                                "15 bytes (stopped or hung): killed"])

    def test_starvedMoverThatMovesGoesOn(self) -> None:
        """A starved mover that gets its CPU and moves before STARVED_LOOKS goes on: its count starts again."""
        self.states("R")
        self.deviceSends(b"late")
        self.looks(STARVED_LOOKS - 1)
        self.move()
        self.pipeReads(self.reader)
        self.deviceSends(b"more")
        self.looks(STARVED_LOOKS)  # (the first sees what it moved)
        self.assertEqual(self.killed, [])
        self.looks(1)
        self.assertEqual(self.killed, [NO_PID])

    def test_processStateFromProc(self) -> None:
        """processState reads /proc/PID/stat: this process, running its test, is R; a pid nobody has, ''."""
        self.assertEqual((processState(os.getpid()), processState(NO_PID)), ("R", ""))

    def test_stopEndsTheWatch(self) -> None:
        """A mover stopped (the device closed) leaves no look on the clock and no descriptor."""
        self.device.close()
        self.assertTrue(self.reader.stopped)
        self.assertEqual(self.reactor.getDelayedCalls(), [])



class ThreadTests(Flooding):
    """A thread mover played by the test, stuck (in a read of a tty whose driver hangs): it was not watched, its line silent for good."""

    def setUp(self) -> None:
        Flooding.setUp(self)
        self.sink.name = "rack4"  # type: ignore[attr-defined]
        self.reader = self.handOver()
        self.sent = len(self.sink.data)

    def stall(self) -> list[Any]:
        """The tty holds 15 bytes the mover never takes, for STALL_LOOKS looks: what was logged."""
        self.deviceSends(b"left in the tty")
        with capturedLogs() as events:
            for _i in range(STALL_LOOKS):
                self.reactor.advance(STALL_CHECK)
        return [e for e in events if "mover failed" in e["log_format"]]

    def test_stuckThreadLeftBehindTheReactorReadsTheTty(self) -> None:
        """At STALL_LOOKS looks it is said once, with the line's name, and left behind; the reactor reads the tty, every byte there."""
        said = self.stall()
        self.assertEqual([(e["line"], e["device"], e["error"]) for e in said],
                         [("rack4", self.device.name, "its thread moved nothing for 2 s while the tty held 15 bytes "
                                                      "(stuck): left to end on its own")])
        self.assertEqual(formatEvent(said[0]).split(":")[0], f"rack4 ({self.device.name})")
        self.assertTrue(self.reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.device.doRead()
        self.assertEqual(self.sink.data[self.sent:], [b"left in the tty"])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_noOtherWhileOneIsStuck(self) -> None:
        """While the thread left behind still lives, no other mover is started for that tty (one a REFUSED_WAIT with a driver that hangs): once it ends, one is."""
        release = threading.Event()
        self.reader._thread = threading.Thread(target=release.wait, daemon=True)
        self.reader._thread.start()
        self.addCleanup(self.reader._thread.join)
        self.addCleanup(release.set)
        self.stall()
        self.device.doRead()
        self.reactor.advance(floodhandoff.REFUSED_WAIT)
        for _i in range(floodhandoff.FULL_READS * 2):
            self.fromDevice(b"z" * FULL)
        self.assertIsNone(self.device._reader)
        release.set()
        self.reader._thread.join()
        self.fromDevice(b"z" * FULL)  # (its full reads counted meanwhile)
        reader = self.device._reader
        assert reader is not None
        self.readers.append(reader)
        self.assertIsNot(reader, self.reader)

    def test_lookTakesNoPipeLock(self) -> None:
        """
        A look while a splice into the mover's pipe waits in its read of a
        tty (where a driver that hangs keeps it) does not wait with it:
        FIONREAD on the pipe waits for the pipe's lock, which that splice
        holds, so the watch's look held the reactor, the whole gateway, for
        as long as the tty hung.  (Here a process of the test's splices from
        a blocking pty of its own that nothing is written to.)
        """
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        pipe = self.reader.moverEnds()[1]
        child = subprocess.Popen([sys.executable, "-c", _SPLICE, str(slave), str(pipe)], pass_fds=(slave, pipe),
                                 stdout=subprocess.PIPE)
        self.addCleanup(child.wait)
        self.addCleanup(child.stdout.close)  # type: ignore[union-attr]
        self.assertEqual(child.stdout.read(1), b"r")  # type: ignore[union-attr]
        waits.until(self, lambda: _state(child.pid) == "S", "the splice never waited in its read")
        released: list[bytes] = []

        def release() -> None:
            released.append(b"x")
            os.write(master, b"x")

        # (A bound for the failure: without the change the look returned only once this ended the splice.)
        bound = threading.Timer(10, release)
        bound.start()
        self.addCleanup(bound.join)
        self.addCleanup(bound.cancel)
        self.reactor.advance(STALL_CHECK)
        self.assertEqual(released, [])
        bound.cancel()
        os.write(master, b"x")  # (the splice ends, and with it the process)


# A process splicing from a tty (argv 1) into a pipe (argv 2), once it has said it is about to.
_SPLICE = "import os, sys; os.write(1, b'r'); os.splice(int(sys.argv[1]), int(sys.argv[2]), 4096)"


def _state(pid: int) -> str:
    """A process's state as /proc says it (S: waiting in a call)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class RealStopTests(SynchronousTestCase):
    def test_sigstoppedMoverKilled(self) -> None:
        """A real mover process SIGSTOPped: at STALL_LOOKS looks it is killed, said with its pid, its pipe ends, the tty goes back with every byte the mover had not taken."""
        # (Not ended on its own first: PROCESS_IDLE, 2 s, runs out on a loaded machine.)
        self.patch(floodread, "PROCESS_IDLE", 600.0)
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        told: list[str] = []
        backs: list[int] = []
        delivered: list[bytes] = []
        reader = FloodReader(reactor, slave, "pty", delivered.append, lambda: backs.append(1), mode="process",
                             failed=told.append)
        pid = reader.pid
        assert pid is not None

        def goOn() -> None:
            if reader.pid is not None:  # (a failure before it was collected)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

        self.addCleanup(goOn)
        os.kill(pid, signal.SIGSTOP)
        os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)
        os.write(master, b"never moved")
        waits.holds(self, slave, 11, "the bytes never reached the tty")
        for _i in range(STALL_LOOKS):
            reactor.advance(STALL_CHECK)
        self.assertEqual(told, [f"its process, pid {pid}, moved nothing for 2 s while the tty held 11 bytes "
                                "(stopped or hung): killed"])
        while not backs:
            waits.readable(self, reader._pipeR, "the pipe never ended")
            reader._pipe.doRead()
        if reader.pid is not None:  # (collected at the stop, or looked for again)
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            reactor.advance(floodread.REAP_DELAY)
        self.assertIsNone(reader.pid)
        self.assertEqual(told, [told[0]])  # (its death by SIGKILL not said again)
        self.assertEqual(delivered, [])
        self.assertEqual(os.read(slave, 100), b"never moved")
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_stoppedMoverEndsAtTheStop(self) -> None:
        """A real mover process SIGSTOPped when its device is closed (a reload, the last client of an on-demand line gone) ends all the same, saying nothing: stopped, it never saw its wake pipe close and stayed for good, holding the tty open (its DTR up, the port another program's meanwhile) and looked for every REAP_DELAY s."""
        self.patch(floodread, "PROCESS_IDLE", 600.0)
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        told: list[str] = []
        reader = FloodReader(reactor, slave, "pty", lambda data: None, lambda: None, mode="process", failed=told.append)
        pid = reader.pid
        assert pid is not None

        def goOn() -> None:
            if reader.pid is not None:  # (a failure before it was collected)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)

        self.addCleanup(goOn)
        os.kill(pid, signal.SIGSTOP)
        os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)
        reader.stop()
        waits.exited(self, pid, "the stopped mover never ended")
        reactor.advance(floodread.REAP_DELAY)
        self.assertIsNone(reader.pid)
        self.assertEqual(told, [])
        self.assertEqual(reactor.getDelayedCalls(), [])
