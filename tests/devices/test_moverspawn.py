"""
Tests for serialgw.devices.floodread and serialgw.devices.mover: the mover
itself, as a thread or a process of its own (what it is given, where it
runs, its priority); the rest is in L{tests.devices.test_floodread}.
"""

from __future__ import annotations

import os
import threading
import tty

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices import floodread, mover
from serialgw.devices.floodread import FloodReader
from tests.devices import waits


class ProcessMoverTests(SynchronousTestCase):
    def test_processMovesAndEnds(self) -> None:
        """The mover as a process of its own (fds 0-5 only) moves the tty's bytes into the pipe and ends at a hang-up; its exit is collected."""
        # (Not ended on its own before the write: PROCESS_IDLE, 2 s, runs out when the test is late to it.)
        self.patch(floodread, "PROCESS_IDLE", 600.0)
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(slave, False)
        got: list[bytes] = []
        backs: list[int] = []
        reader = FloodReader(reactor, slave, "pty", got.append, lambda: backs.append(1), mode="process")
        os.close(slave)
        assert reader.pid is not None
        pid = reader.pid
        os.write(master, b"from the device")
        fds: list[int] = []
        stat: list[str] = []
        while not backs:
            waits.readable(self, reader._pipeR, "the mover moved nothing")
            reader._pipe.doRead()
            if b"".join(got) == b"from the device" and master >= 0:
                # (In its loop now: what it holds is all it will.)
                fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read().rsplit(")", 1)[1].split()
                os.close(master)
                master = -1
        self.assertEqual(b"".join(got), b"from the device")
        self.assertEqual(fds, [0, 1, 2, 3, 4, 5])
        # Its own process group, the gateway's session, the lowest priority.
        self.assertEqual((int(stat[2]), int(stat[3]), int(stat[16])), (pid, os.getsid(0), mover.NICE))
        if reader.pid is not None:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            reactor.advance(floodread.REAP_DELAY)
        self.assertIsNone(reader.pid)
        self.assertRaises(ChildProcessError, os.waitpid, pid, os.WNOHANG)

    def test_threadMoverAtTheLowestPriority(self) -> None:
        """A thread mover runs at mover.NICE (its own thread's niceness), the reactor's thread keeps its own."""
        reactor = MemoryReactorClock()
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        seen: list[tuple[int, int]] = []
        # (Seen set, not only found: a suite run under nice 19 has every thread there already.)
        setpriority = os.setpriority
        set_: list[tuple[int, int, int]] = []

        def setting(which: int, who: int, prio: int) -> None:
            set_.append((which, who, prio))
            setpriority(which, who, prio)

        def move(*args: object) -> str:
            tid = threading.get_native_id()
            seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
            return "stopped"

        self.patch(mover.os, "setpriority", setting)
        self.patch(floodread.mover, "move", move)
        reader = FloodReader(reactor, slave, "pty", print, print, mode="thread")
        assert reader._thread is not None
        waits.joined(self, reader._thread, "the mover thread never ended")
        reader.stop()
        tid = reader._thread.native_id
        self.assertEqual(set_, [(os.PRIO_PROCESS, tid, mover.NICE)])
        self.assertEqual(seen, [(tid, mover.NICE)])
        self.assertEqual(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), mine)

    def test_unknownMode(self) -> None:
        """A mode that is neither thread nor process is refused, naming it."""
        self.assertRaises(ValueError, FloodReader, MemoryReactorClock(), 0, "x", print, print, mode="fork")
