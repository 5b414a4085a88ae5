"""
Tests for serialgw.devices.floodread and floodhandoff: what bounds the movers (how many run
at once; how long a process mover waits through quiet before it ends).
"""

from __future__ import annotations

import os
import tty
from typing import Any, Callable

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import SerialSettings
from serialgw.devices import floodhandoff, floodread
from serialgw.devices.device import SerialDevice
from serialgw.devices.floodread import FloodReader
from serialgw.devices.ports import TtyPort
from tests.devices import waits
from tests.devices.test_device import Sink
from tests.devices.test_floodread import FULL, Flooding


class MostMoversTests(Flooding):
    """At most MOST_MOVERS movers at once in a reactor: 24 flooding lines ran 24 mover processes (207 MB)."""

    def setUp(self) -> None:
        super().setUp()
        self.others: list[tuple[SerialDevice, int]] = []

    def tearDown(self) -> None:
        for device, master in self.others:
            reader = device._reader
            device.close()
            if reader is not None:
                reader._closeMoversEnds()
            os.close(master)
        super().tearDown()

    def another(self) -> tuple[SerialDevice, int]:
        """A second flooding line's device in the same reactor, and its pty's master."""
        master, slave = os.openpty()
        tty.setraw(slave)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        os.close(slave)
        device = SerialDevice(port, self.reactor, sink=Sink())
        device._startMover = False
        device.start()
        self.others.append((device, master))
        return device, master

    def floods(self, device: SerialDevice, master: int, reads: int) -> None:
        """C{reads} full reads of the device by the reactor, or fewer if a mover takes it over."""
        fd = device.port.fileno()
        for _i in range(reads):
            if device._reader is not None:
                return
            os.write(master, b"o" * FULL)
            # (The pty's worker hands it to the tty a moment later.)
            waits.holds(self, fd, FULL, "the write never reached the tty")
            self.assertIn(device, self.reactor.getReaders())
            device.doRead()

    def test_anotherFloodStaysWithTheReactorAtTheMost(self) -> None:
        """With MOST_MOVERS movers running, another flooding tty is read by the reactor; once one has ended, its flood goes to a mover."""
        self.patch(floodhandoff, "MOST_MOVERS", 1)
        first = self.handOver()
        device, master = self.another()
        self.floods(device, master, floodhandoff.FULL_READS * 3)
        self.assertIsNone(device._reader)
        self.assertIn(device, self.reactor.getReaders())
        self.runMover(first)
        self.pipeReads(first)
        self.assertTrue(first.stopped)
        self.floods(device, master, floodhandoff.FULL_READS)
        self.assertIsNotNone(device._reader)
        self.assertNotIn(device, self.reactor.getReaders())
        self.assertIn(device._reader._pipe, self.reactor.getReaders())  # type: ignore[union-attr]

    def test_mostIsTheCores(self) -> None:
        """By default as many movers as there are cores this process may use (more only take turns on them), at least one."""
        self.assertEqual(floodhandoff.MOST_MOVERS, len(os.sched_getaffinity(0)))

    def test_coresAreThoseItMayUse(self) -> None:
        """A gateway held to one core of eight (taskset, CPUAffinity=) runs one mover, not eight; with no affinity to be read, the machine's cores."""
        self.patch(floodread.os, "cpu_count", lambda: 8)
        self.patch(floodread.os, "sched_getaffinity", lambda pid: {3})
        self.assertEqual(floodhandoff.usableCores(), 1)

        def unknown(pid: int) -> set[int]:
            raise OSError(38, "Function not implemented")

        self.patch(floodread.os, "sched_getaffinity", unknown)
        self.assertEqual(floodhandoff.usableCores(), 8)


class ProcessIdleTests(Flooding):
    mode = "process"

    def test_processMoverWaitsThroughABurstsGap(self) -> None:
        """A process mover ends after PROCESS_IDLE s of quiet (a thread after IDLE, 0.2 s): a device sending 32 KB every 0.3 s started a process for each burst."""
        spawned: list[list[str]] = []

        def spawn(path: str, argv: list[str], env: Any, **kw: Any) -> int:
            spawned.append(argv)
            return 0x7FFFFFF0  # (no such process: collected at once)

        self.patch(floodread.os, "posix_spawn", spawn)
        reader = FloodReader(MemoryReactorClock(), self.port.fileno(), "pty", print, print, mode="process")
        reader.stop()
        self.assertEqual(spawned[0][-2:], [str(int(floodread.PROCESS_IDLE * 1000)), str(floodread.SPLICE_SIZE)])
        self.assertGreaterEqual(floodread.PROCESS_IDLE, 1.0)
        self.assertLessEqual(floodread.IDLE, 0.2)


class ExitWatchedTests(SynchronousTestCase):
    def test_stoppedMoverWatchedNotTimed(self) -> None:
        """A process mover still ending at its stop is collected when the reactor says it has ended (watchExit), no timer left behind: with the timer, a test's real reactor was left unclean (FloodReader._reap pending) whenever a mover ran at its end."""
        reactor = MemoryReactorClock()
        watched: list[tuple[int, Callable[[], None]]] = []

        def watchExit(pid: int, ended: Callable[[], None]) -> bool:
            watched.append((pid, ended))
            return True

        reactor.watchExit = watchExit  # type: ignore[attr-defined]
        # (Never quiet for long enough to end on its own before the stop: PROCESS_IDLE, 2 s, ran out first when
        # the test was late to it on a loaded machine, the mover collected at the stop, nothing watched.)
        self.patch(floodread, "PROCESS_IDLE", 600.0)
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        reader = FloodReader(reactor, slave, "pty", print, print, mode="process")
        os.close(slave)
        pid = reader.pid
        assert pid is not None
        # (Its wake pipe held open here: it cannot end before the stop is done.)
        held = os.dup(reader._wakeW)
        reader.stop()
        self.assertEqual(([p for p, _ in watched], reactor.getDelayedCalls(), reader.pid), ([pid], [], pid))
        os.close(held)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        watched[0][1]()
        self.assertIsNone(reader.pid)
        self.assertRaises(ChildProcessError, os.waitpid, pid, os.WNOHANG)
        self.assertEqual(reactor.getDelayedCalls(), [])
