"""
Tests for serialgw.devices.floodread and serialgw.devices.mover: a flooding
tty read through a pipe, moved by a thread or a process (SERIALGW_READER).

A real pty plays the device (its master the far end), under a
L{MemoryReactorClock}; the mover's loop is run by the test itself, in its
own thread, where the order of things is the test's (one honest test
spawns the real mover process).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import threading
import tty
from typing import Generator, Optional

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.reactor import BusyPoll
from serialgw.config.specs import SerialSettings
from serialgw.devices import floodhandoff, floodread, mover, moverwatch
from serialgw.devices.device import SerialDevice
from serialgw.devices.floodread import FloodReader
from serialgw.devices.ports import TtyPort
from tests.devices import waits
from tests.devices.test_device import Sink
from tests.fakes import openDescriptors

# Small enough for a test: 4 reads of at least 8 bytes hand the tty over.
FULL = 8


def openFds() -> set[tuple[int, str]]:
    """The process's descriptors (see L{tests.fakes.openDescriptors}): compare with C{openFds() - before}."""
    return openDescriptors()


class Flooding(SynchronousTestCase):
    """A device on a pty's slave whose reactor asks for movers, run by the test."""

    mode = "thread"

    def setUp(self) -> None:
        self.patch(floodhandoff, "FULL", FULL)
        self.fdsBefore = openFds()
        self.reactor = MemoryReactorClock()
        self.reactor.movers = self.mode  # type: ignore[attr-defined]
        self.reactor.busyPoll = BusyPoll()  # type: ignore[attr-defined]
        self.master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        self.port = TtyPort(name, SerialSettings())
        os.close(slave)
        self.sink = Sink()
        self.device = SerialDevice(self.port, self.reactor, sink=self.sink)
        self.device._startMover = False
        self.device.start()
        self.readers: list[FloodReader] = []

    def tearDown(self) -> None:
        self.device.close()
        for reader in self.readers:
            # (Closed by the mover as it ends: by the test here.)
            reader._closeMoversEnds()
        if self.master >= 0:
            os.close(self.master)
        self.assertEqual(openFds() - self.fdsBefore, set())

    def deviceSends(self, data: bytes) -> None:
        """
        The device sends C{data}, there to be read once this returns: a
        pty's master hands what is written to it to the slave through a
        kernel worker, a moment later (a read, or a mover's poll with no
        idle time, at once after the write found less, or nothing).
        """
        tty_ = self.port.fileno()
        there = waits.held(tty_) + len(data)
        os.write(self.master, data)
        waits.holds(self, tty_, there, f"{data[:20]!r} never reached the tty")

    def fromDevice(self, data: bytes) -> None:
        """The device sends C{data}; the reactor reads it (one read)."""
        self.deviceSends(data)
        self.assertIn(self.device, self.reactor.getReaders())
        self.device.doRead()

    def handOver(self) -> FloodReader:
        """FULL_READS full reads by the reactor: the tty goes to a mover."""
        for i in range(floodhandoff.FULL_READS):
            self.fromDevice(bytes([65 + i]) * FULL)
        reader = self.device._reader
        assert reader is not None
        self.readers.append(reader)
        return reader

    def runMover(self, reader: FloodReader) -> str:
        """The mover's loop, until the tty is quiet (at once), then its ends closed as its thread closes them."""
        result = mover.move(*reader.moverEnds(), 0, floodread.SPLICE_SIZE)
        reader._closeMoversEnds()
        return result

    def moverThread(self, reader: FloodReader) -> tuple[threading.Thread, list[str]]:
        """The mover's loop in a thread of its own, with no idle limit: it ends at a stop, a hang-up or an error."""
        results: list[str] = []

        def run() -> None:
            results.append(mover.move(*reader.moverEnds(), -1, floodread.SPLICE_SIZE))

        thread = threading.Thread(target=run)
        thread.start()
        self.addCleanup(waits.joined, self, thread, "the mover thread never ended")
        return thread, results

    def fromPipe(self, reader: FloodReader, ending: bytes) -> None:
        """The reactor reads the pipe (waiting for the mover) until what was delivered ends with C{ending}."""
        while not b"".join(self.sink.data).endswith(ending):
            waits.readable(self, reader._pipeR, "the mover moved nothing")
            reader._pipe.doRead()

    def pipeReads(self, reader: FloodReader, most: int = 100) -> None:
        """The reactor reads the pipe until the mover's end (or the pipe is empty)."""
        for _ in range(most):
            if reader.stopped or reader._pipe not in self.reactor.getReaders():
                return
            if not waits.readableWithin(reader._pipeR, 0):
                return
            reader._pipe.doRead()


class HandOverTests(Flooding):
    def test_fullReadsHandTheTtyToAMover(self) -> None:
        """After FULL_READS reads of at least FULL bytes in a row the reactor stops reading the tty and reads a pipe."""
        reader = self.handOver()
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.assertIn(reader._pipe, self.reactor.getReaders())
        self.assertEqual(b"".join(self.sink.data), b"A" * FULL + b"B" * FULL + b"C" * FULL + b"D" * FULL)

    def test_aShortReadStartsTheCountAgain(self) -> None:
        """A read shorter than FULL in between: the reactor keeps the tty."""
        for _i in range(floodhandoff.FULL_READS - 1):
            self.fromDevice(b"x" * FULL)
        self.fromDevice(b"y")
        for _i in range(floodhandoff.FULL_READS - 1):
            self.fromDevice(b"z" * FULL)
        self.assertIsNone(self.device._reader)
        self.assertIn(self.device, self.reactor.getReaders())

    def test_notWithoutTheReactorAsking(self) -> None:
        """A reactor that does not ask for movers (the default) reads every tty itself."""
        self.reactor.movers = None  # type: ignore[attr-defined]
        for _i in range(floodhandoff.FULL_READS * 2):
            self.fromDevice(b"x" * FULL)
        self.assertIsNone(self.device._reader)
        self.assertIn(self.device, self.reactor.getReaders())

    def test_bytesInOrderThenTheTtyBack(self) -> None:
        """What the mover moves comes out in order after what the reactor read; at the pipe's end the reactor reads the tty again."""
        reader = self.handOver()
        self.deviceSends(b"0123456789")
        self.deviceSends(b"abcdefghij")
        self.assertEqual(self.runMover(reader), "quiet")
        self.pipeReads(reader)
        self.assertEqual(b"".join(self.sink.data)[4 * FULL:], b"0123456789abcdefghij")
        self.assertTrue(reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertIn(self.device, self.reactor.getReaders())
        self.assertNotIn(reader._pipe, self.reactor.getReaders())
        self.fromDevice(b"after")
        self.assertEqual(self.sink.data[-1], b"after")

    def test_threadMoverSuspendsBusyPolling(self) -> None:
        """While a thread mover runs the reactor does not busy-poll (it would keep the GIL from the thread); after, it does."""
        reader = self.handOver()
        self.assertEqual(self.reactor.busyPoll.suspended, 1)  # type: ignore[attr-defined]
        self.runMover(reader)
        self.pipeReads(reader)
        self.assertEqual(self.reactor.busyPoll.suspended, 0)  # type: ignore[attr-defined]

    def test_processMoverHasBusyPollingYield(self) -> None:
        """While a process mover runs the reactor busy-polls, giving its CPU up between polls (the nice-19 mover was kept from it: paced at 20 MiB/s, A moved 17 MiB/s for 46 s of CPU a GiB); after, it polls as before."""
        self.reactor.movers = "process"  # type: ignore[attr-defined]
        reader = self.handOver()
        self.assertEqual(reader.mode, "process")
        busy = self.reactor.busyPoll  # type: ignore[attr-defined]
        self.assertEqual((busy.suspended, busy.yielding), (0, 1))
        self.runMover(reader)
        self.pipeReads(reader)
        self.assertTrue(reader.stopped)
        self.assertEqual((busy.suspended, busy.yielding), (0, 0))

    def test_busyPollYieldingGivesTheCPUUpBetweenPolls(self) -> None:
        """A yielding BusyPoll polls for its window as before, giving its CPU up (sched_yield) after each empty poll, then sleeps."""
        busy = BusyPoll(100e-6)
        busy.window = 100e-6
        busy.yielding = 1
        clock = [0.0]
        calls: list[object] = []

        def poll(timeout: float, most: int) -> list[tuple[int, int]]:
            calls.append(timeout)
            if timeout == 0:
                clock[0] += 30e-6
            return []

        busy.yieldCPU = lambda: calls.append("yield")  # type: ignore[method-assign]
        busy.wait(poll, 0.5, 10, now=lambda: clock[0])
        self.assertEqual(calls, [0, "yield", 0, "yield", 0, "yield", 0, near(0.5 - 120e-6)])

    def test_busyPollSuspendedPollsOnce(self) -> None:
        """A suspended BusyPoll waits in one poll with the turn's timeout, polling nothing before."""
        busy = BusyPoll(100e-6)
        busy.window = 100e-6
        busy.suspended = 1
        calls: list[float] = []

        def poll(timeout: float, most: int) -> list[tuple[int, int]]:
            calls.append(timeout)
            return []

        busy.wait(poll, 0.5, 10)
        self.assertEqual(calls, [0.5])


def near(value: float) -> object:
    """Equal to any float within 1e-9 of C{value}."""

    class Near:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, float) and abs(other - value) < 1e-9

        def __repr__(self) -> str:
            return f"~{value!r}"

    return Near()


class MoverTests(Flooding):
    def test_splicesOnlyAReadableTty(self) -> None:
        """The mover splices only after a poll found the tty readable: a splice holds the pipe's lock while it reads, and an empty tty's read waits for the tty's worker (the reactor's read of the pipe waited with it)."""
        reader = self.handOver()
        tty_, _, _ = reader.moverEnds()
        splice = os.splice
        readable: list[bool] = []

        def looking(*args: object, **kwargs: object) -> int:
            probe = select.poll()
            probe.register(tty_, select.POLLIN)
            readable.append(bool(probe.poll(0)))
            return splice(*args, **kwargs)  # type: ignore[arg-type]

        self.patch(mover.os, "splice", looking)
        self.deviceSends(b"x" * 3000)
        self.assertEqual(self.runMover(reader), "quiet")
        self.pipeReads(reader)
        self.assertEqual(b"".join(self.sink.data[floodhandoff.FULL_READS:]), b"x" * 3000)
        self.assertEqual(readable, [True] * len(readable))


class BackPressureTests(Flooding):
    def test_pausedStopsReadingThePipe(self) -> None:
        """Paused, the reactor stops reading the pipe (what it holds waits there); resumed, it is delivered in order."""
        reader = self.handOver()
        self.deviceSends(b"held")
        self.runMover(reader)
        self.device.pauseReading()
        self.assertNotIn(reader._pipe, self.reactor.getReaders())
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.assertEqual(len(self.sink.data), floodhandoff.FULL_READS)
        self.device.resumeReading()
        self.assertIn(reader._pipe, self.reactor.getReaders())
        self.pipeReads(reader)
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"held"])
        self.assertIn(self.device, self.reactor.getReaders())
        self.device.pauseReading()
        self.device.resumeReading()

    def test_fullPipeWaitsForRoom(self) -> None:
        """With the pipe full the mover reads no more of the tty and waits; once the reactor makes room, it goes on, in order."""
        reader = self.handOver()
        _, pipe, _ = reader.moverEnds()
        filler = b"f" * fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ)
        os.write(pipe, filler)
        os.write(self.master, b"after the filler")
        thread, results = self.moverThread(reader)
        self.fromPipe(reader, b"after the filler")
        self.assertEqual(b"".join(self.sink.data[floodhandoff.FULL_READS:]), filler + b"after the filler")
        self.device.close()
        waits.joined(self, thread, "the mover thread never ended")
        # (Stopped in its poll, or, still splicing, finding the pipe's reader gone.)
        self.assertIn(results, (["stopped"], ["ended"]))


class EndTests(Flooding):
    def test_hangUpReachesTheLineAsBefore(self) -> None:
        """A hang-up ends the mover; after the bytes before it, the reactor's own read finds it: the one loss path, once."""
        reader = self.handOver()
        thread, results = self.moverThread(reader)
        os.write(self.master, b"last words")
        self.fromPipe(reader, b"last words")
        master, self.master = self.master, -1
        os.close(master)
        waits.joined(self, thread, "the mover thread never ended")
        self.assertEqual(results, ["ended"])
        reader._closeMoversEnds()
        self.pipeReads(reader)
        self.assertEqual(self.sink.data[-1], b"last words")
        self.assertIn(self.device, self.reactor.getReaders())
        self.device.doRead()
        self.assertEqual(len(self.sink.lost), 1)
        self.assertIn("hung up", str(self.sink.lost[0]))
        self.assertFalse(self.device.up)
        self.assertIsNone(self.device._reader)

    def test_closeStopsTheMover(self) -> None:
        """Closed while a mover runs: the pipe leaves the reactor, what the tty still holds (not moved yet) is dropped, and the mover ends at its poll (no descriptor left)."""
        reader = self.handOver()
        os.write(self.master, b"dropped")
        self.device.close()
        self.assertTrue(reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [])
        self.assertEqual(self.runMover(reader), "stopped")
        self.assertEqual(len(self.sink.data), floodhandoff.FULL_READS)
        self.assertEqual(self.reactor.busyPoll.suspended, 0)  # type: ignore[attr-defined]

    def test_lossStopsTheMover(self) -> None:
        """A loss found elsewhere (a write failing) stops the mover too, and the device is not read again."""
        reader = self.handOver()
        self.device._lost(OSError(5, "Input/output error"))
        self.assertTrue(reader.stopped)
        self.assertEqual(self.reactor.getReaders(), [])
        self.assertEqual(self.runMover(reader), "stopped")

    def test_purgeDropsWhatThePipeHolds(self) -> None:
        """A purge of the input drops what the mover moved and was not delivered."""
        reader = self.handOver()
        self.deviceSends(b"stale")
        self.runMover(reader)
        self.device.purge(True, False)
        self.pipeReads(reader)
        self.assertEqual(len(self.sink.data), floodhandoff.FULL_READS)
        self.assertIn(self.device, self.reactor.getReaders())


class QuietTests(SynchronousTestCase):
    def test_emptyTtySayingEAGAINIsQuiet(self) -> None:
        """A tty whose empty read says EAGAIN (a pty: device's master) emptied by a full splice: the mover polls it again and ends quiet, not spinning on the pipe's room."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        pipeR, pipeW = os.pipe2(os.O_NONBLOCK)
        wakeR, wakeW = os.pipe2(os.O_NONBLOCK)
        for fd in (master, slave, pipeR, pipeW, wakeR):
            self.addCleanup(os.close, fd)
        os.write(slave, b"x" * FULL)
        waits.readable(self, master, "the bytes never reached the master")
        results: list[str] = []
        thread = threading.Thread(target=lambda: results.append(mover.move(master, pipeW, wakeR, 0, 65536)))
        thread.start()
        thread.join(waits.WAIT)  # (quiet, it ends on its own)
        os.close(wakeW)  # (a mover still running is stopped here)
        waits.joined(self, thread, "the mover never ended")
        self.assertEqual(results, ["quiet"])
        self.assertEqual(os.read(pipeR, 100), b"x" * FULL)


class PipeHangUpTests(Flooding):
    def test_pipesEndAsAHangUpGivesTheTtyBack(self) -> None:
        """The pipe's end seen as epoll sees it (a hang-up: the reactor drops the pipe and calls connectionLost, not doRead): the tty goes back to the reactor, not left unread."""
        reader = self.handOver()
        self.deviceSends(b"last")
        self.assertEqual(self.runMover(reader), "quiet")
        reader._pipe.doRead()
        self.assertEqual(self.sink.data[-1], b"last")
        # (What Twisted's epoll reactor does at EPOLLHUP without EPOLLIN.)
        self.reactor.removeReader(reader._pipe)
        reader._pipe.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(reader.stopped)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.fromDevice(b"after")
        self.assertEqual(self.sink.data[-1], b"after")

    def test_pipeDroppedWithBytesDeliversThemFirst(self) -> None:
        """The pipe dropped by the reactor while it still holds bytes: they are delivered, in order, before the tty goes back."""
        reader = self.handOver()
        self.deviceSends(b"held")
        self.runMover(reader)
        self.reactor.removeReader(reader._pipe)
        reader._pipe.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"held"])
        self.assertEqual(self.reactor.getReaders(), [self.device])

    def test_pipeDroppedWhilePausedWaitsForTheResume(self) -> None:
        """Paused by a delivery while the dropped pipe is read: the rest waits in the pipe, read at the resume, then the tty goes back."""
        reader = self.handOver()
        self.deviceSends(b"one")
        self.runMover(reader)
        def pausing(data: bytes) -> None:
            self.sink.data.append(data)
            self.device.pauseReading()

        self.sink.deviceDataReceived = pausing  # type: ignore[method-assign]
        self.reactor.removeReader(reader._pipe)
        reader._pipe.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.sink.data[floodhandoff.FULL_READS:], [b"one"])
        self.assertFalse(reader.stopped)
        self.assertEqual(self.reactor.getReaders(), [])
        self.device.resumeReading()
        self.assertEqual(self.reactor.getReaders(), [reader._pipe])
        reader._pipe.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(reader.stopped)
        self.assertEqual(self.reactor.getReaders(), [self.device])


class RealReactorTests(TestCase):
    """A thread mover under the real reactor (its epoll), a pty as the device."""

    timeout = 20
    mode = "thread"

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.patch(floodhandoff, "FULL", FULL)
        self.patch(floodread, "IDLE", 0.01)
        # (The stall watch looks on the real clock: a mover kept from the CPU on a loaded machine (a process's
        # start, nice 19) for STALL_LOOKS looks was killed by it, not by the test; its tests are test_moverstall's.)
        self.patch(moverwatch, "STALL_CHECK", 3600.0)
        before = getattr(reactor, "movers", None)
        reactor.movers = self.mode  # type: ignore[attr-defined]
        self.addCleanup(setattr, reactor, "movers", before)
        self.master, slave = os.openpty()
        self.addCleanup(os.close, self.master)
        tty.setraw(slave)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        os.close(slave)
        self.arrived: dict[bytes, Deferred[None]] = {}
        self.got = bytearray()
        test = self

        class Watch(Sink):
            def deviceDataReceived(self, data: bytes) -> None:
                test.got.extend(data)
                for ending, d in list(test.arrived.items()):
                    if test.got.endswith(ending):
                        del test.arrived[ending]
                        # (After the read's end: the device counts it after delivering.)
                        reactor.callLater(0, d.callback, None)

        self.device = device = SerialDevice(port, reactor, sink=Watch())
        self.reader: Optional[FloodReader] = None
        self.addCleanup(self.reaped)
        self.addCleanup(device.close)
        device.start()
        self.back: Deferred[None] = Deferred()
        givenBack = device._givenBack

        def backNow() -> None:
            givenBack()
            self.back.callback(None)

        device._givenBack = backNow  # type: ignore[method-assign]

    def send(self, data: bytes) -> Deferred[None]:
        """The device sends C{data}: fired once it has all arrived."""
        self.arrived[data] = Deferred()
        os.write(self.master, data)
        return self.arrived[data]

    @inlineCallbacks
    def handOver(self) -> Generator[Deferred[None], None, None]:
        for i in range(floodhandoff.FULL_READS):
            yield self.send(bytes([65 + i]) * FULL)
        self.reader = self.device._reader
        self.assertIsNotNone(self.reader)

    @inlineCallbacks
    def reaped(self) -> Generator[Deferred[None], None, None]:
        """A mover process's exit collected (looked for every REAP_DELAY s)."""
        while self.reader is not None and self.reader.pid is not None:
            d: Deferred[None] = Deferred()
            self.reactor.callLater(floodread.REAP_DELAY, d.callback, None)
            yield d

    @inlineCallbacks
    def test_quietMoverGivesTheTtyBack(self) -> Generator[Deferred[None], None, None]:
        """After a flood the mover goes quiet and its pipe ends; the reactor reads the tty again, so what the device sends next arrives (it was left unread for ever)."""
        yield self.handOver()
        yield self.send(b"moved")
        yield self.back
        self.assertIn(self.device, self.reactor.getReaders())
        yield self.send(b"after")
        self.assertEqual(bytes(self.got), b"A" * FULL + b"B" * FULL + b"C" * FULL + b"D" * FULL + b"movedafter")


class ProcessRealReactorTests(RealReactorTests):
    """A process mover under the real reactor."""

    mode = "process"

    @inlineCallbacks
    def test_killedMoverLosesNothing(self) -> Generator[Deferred[None], None, None]:
        """A mover process killed from outside (SIGKILL) mid-flood: its pipe ends, the tty goes back to the reactor, and no byte is lost or reordered; its exit is collected."""
        self.patch(floodread, "PROCESS_IDLE", 60.0)  # (its idle: ended on its own before the kill, nothing is tested)
        yield self.handOver()
        reader = self.device._reader
        assert reader is not None and reader.pid is not None
        pid = reader.pid
        yield self.send(b"moved")
        os.kill(pid, signal.SIGKILL)
        os.write(self.master, b"while it dies, ")
        yield self.back
        yield self.send(b"after")
        self.assertEqual(bytes(self.got)[4 * FULL:], b"movedwhile it dies, after")
        self.assertIsNone(self.device._reader)
        self.assertIn(self.device, self.reactor.getReaders())
        yield self.reaped()
        self.assertRaises(ChildProcessError, os.waitpid, pid, os.WNOHANG)


class ExclusiveTests(SynchronousTestCase):
    def test_closeLeavesNoFlockToTheMover(self) -> None:
        """A locked tty closed while a mover still holds its dup: the flock goes with the close (it belongs to the open file, shared by the dup), so the line's next open (a reload's, a reopen's) is not refused 'locked by another program' by its own mover."""
        lockDir = self.mktemp()
        os.mkdir(lockDir)
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        port = TtyPort(name, SerialSettings(), lockDir=lockDir)
        reader = FloodReader(MemoryReactorClock(), port.fileno(), "x", print, print, mode="thread", start=False)
        self.addCleanup(reader.stop)
        self.addCleanup(reader._closeMoversEnds)
        port.close()
        again = TtyPort(name, SerialSettings(), lockDir=lockDir)
        again.close()


class RefusedTests(Flooding):
    def test_moverThatCannotStartIsTriedOncePerFlood(self) -> None:
        """A mover that cannot start (no descriptors left: EMFILE) is said once and not tried again for REFUSED_WAIT seconds, the reactor reading the tty: it was tried and logged every FULL_READS reads (547 lines for a flood of 9 MB)."""
        def noMore(flags: int) -> tuple[int, int]:
            raise OSError(errno.EMFILE, "Too many open files")

        self.patch(floodread.os, "pipe2", noMore)
        with capturedLogs() as events:
            for _i in range(floodhandoff.FULL_READS * 5):
                self.fromDevice(b"f" * FULL)
            self.fromDevice(b"short")
            for _i in range(floodhandoff.FULL_READS * 5):
                self.fromDevice(b"g" * FULL)
            self.reactor.advance(floodhandoff.REFUSED_WAIT - 0.001)
            for _i in range(floodhandoff.FULL_READS):
                self.fromDevice(b"h" * FULL)
            self.reactor.advance(0.001)
            for _i in range(floodhandoff.FULL_READS):
                self.fromDevice(b"i" * FULL)
        said = [e for e in events if "cannot start a mover" in e["log_format"]]
        self.assertEqual([str(e["error"]) for e in said], ["[Errno 24] Too many open files"] * 2)
        self.assertIsNone(self.device._reader)
        self.assertEqual(self.reactor.getReaders(), [self.device])
        self.assertEqual(len(self.sink.data), floodhandoff.FULL_READS * 12 + 1)


class PurgeBoundTests(Flooding):
    def test_purgeDropsOnlyWhatThePipeHeld(self) -> None:
        """A purge drops what the pipe held when it was asked, and returns: a mover refilling the pipe as fast as it is read (a flood) kept the reactor in that purge for as long as the flood lasted (an RFC 2217 client's PURGE-DATA)."""
        reader = self.handOver()
        _, pipe, _ = reader.moverEnds()
        held = os.write(pipe, b"p" * 50000)
        read = os.read
        reads: list[int] = []

        def refilled(fd: int, size: int) -> bytes:
            data = read(fd, size)
            reads.append(len(data))
            self.assertLess(len(reads), 50, "the purge never ended")
            os.write(pipe, b"n" * len(data))  # (the mover, at once)
            return data

        self.patch(floodread.os, "read", refilled)
        self.assertEqual(reader.discard(), held)
        self.assertEqual((held, sum(reads)), (50000, 50000))
