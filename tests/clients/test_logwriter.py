"""
A console log (and a file: listener's regular file) written off the
reactor's thread (serialgw.clients.logwriter):
its writer held (a write that never returns, played by a writer whose jobs
run only when the test says), the line and its clients go on; what waits
is bounded, the rest dropped, counted and its gap marked; order kept;
reopen, reload and close do not wait for it for ever.
"""

from __future__ import annotations

import errno
import os
import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogEvent, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.reopening import REOPEN_WAIT
from serialgw.app.service import GatewayService
from serialgw.app.status import clientStatus
from serialgw.clients import logwriter, logwrites
from serialgw.clients.consolelog import CLOSE_WAIT, ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.clients.logwriter import QUEUE_BOUND, STOP_WAIT, attach, detach, written
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingClient, RecordingDevice, observeLog, openDescriptors

CHUNK = 65536


class HeldWriterTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.path = os.path.abspath(self.mktemp())
        self.events: list[LogEvent] = []
        observeLog(self, self.events.append)

    def log(self, **keys: object) -> ConsoleLog:
        consoleLog = ConsoleLog(self.line, LogSpec(self.path, **keys), self.clock, writes="held")  # type: ignore[arg-type]
        self.addCleanup(self.closeAndRun, consoleLog)
        return consoleLog

    def closeAndRun(self, consoleLog: ConsoleLog) -> None:
        if consoleLog in self.line.logs:
            consoleLog.close()
        consoleLog._writes.runWaiting()
        if consoleLog._typed is not None:
            consoleLog._typed._writes.runWaiting()

    def read(self, path: str = "") -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()

    def said(self) -> list[str]:
        return [formatEvent(e) for e in self.events if e.get("log_namespace") in ("serialgw.clients.consolelog", "serialgw.app.reopening")]

    def test_heldWriterHoldsNoClient(self) -> None:
        """The log's writer stuck: the line's other client gets every byte at once, the device every byte typed; the log gets them, in order, when the writer goes on."""
        log = self.log(format="")
        client = RecordingClient()
        self.line.attach(client)
        chunks = [bytes([i]) * 1000 + b"\n" for i in range(256)]
        for chunk in chunks:
            self.line.deviceDataReceived(chunk)
        self.line.clientData(client, b"typed")
        self.assertEqual(b"".join(client.received), b"".join(chunks))
        self.assertEqual(self.line.device.events, [("write", b"typed")])  # type: ignore[attr-defined]
        self.assertFalse(os.path.exists(self.path))  # (not even opened: its open waits for its writer too)
        log._writes.runWaiting()
        self.assertEqual(self.read(), b"".join(chunks))
        self.assertEqual((log._writes.waiting, log.dropped), (0, 0))

    def test_boundedGapMarked(self) -> None:
        """Past QUEUE_BOUND waiting, output is dropped, said once, counted (status too), and the gap marked with its exact size when the writer has caught up."""
        log = self.log(format="")
        count = QUEUE_BOUND // CHUNK
        for i in range(count + 4):
            self.line.deviceDataReceived(bytes([0x41 + i]) * (CHUNK - 1) + b"\n")
        self.assertEqual((log._writes.waiting, log.dropped), (QUEUE_BOUND, 4 * CHUNK))
        self.assertEqual(clientStatus(log)["dropped"], 4 * CHUNK)
        log._writes.runWaiting()
        self.line.deviceDataReceived(b"back\n")
        log._writes.runWaiting()
        expected = b"".join(bytes([0x41 + i]) * (CHUNK - 1) + b"\n" for i in range(count))
        self.assertEqual(self.read(), expected + b"[serialgw: 262144 bytes lost: the disk did not keep up]\nback\n")
        self.assertEqual(self.said(), [
            f"web1: log {self.path} is behind: 1048576 bytes wait for its disk (slow, or a write that does not "
            "return); console output is not logged until they are written",
            f"web1: log {self.path} written again; 262144 bytes were not logged",
        ])

    def test_gapMarkedOnceCaughtUpWithNoMoreOutput(self) -> None:
        """A flood that ends while the writer is behind (the console then idle): the gap is marked once the writer has caught up, not left for output that may not come; output after it starts a line of its own, no second mark."""
        log = self.log(format="")
        count = QUEUE_BOUND // CHUNK
        for i in range(count + 4):
            self.line.deviceDataReceived(bytes([0x41 + i]) * (CHUNK - 1) + b"x")
        log._writes.runWaiting()  # (what waited; then the word that it has caught up)
        log._writes.runWaiting()  # (the mark)
        expected = b"".join(bytes([0x41 + i]) * (CHUNK - 1) + b"x" for i in range(count))
        self.assertEqual(self.read(), expected + b"\n[serialgw: 262144 bytes lost: the disk did not keep up]\n")
        self.assertEqual(self.said()[-1], f"web1: log {self.path} written again; 262144 bytes were not logged")
        self.assertEqual((log._writes.waiting, log._behind, log._caughtUpAsked), (0, 0, False))
        self.line.deviceDataReceived(b"back\n")
        log._writes.runWaiting()
        self.assertEqual(self.read(), expected + b"\n[serialgw: 262144 bytes lost: the disk did not keep up]\nback\n")
        self.assertEqual(len(self.said()), 2)

    def test_stillBehindWhenAskedAsksAgain(self) -> None:
        """Caught up with what waited at the drop, but more than half QUEUE_BOUND waits again (the flood goes on): not marked yet, asked again; marked once it is no more."""
        log = self.log(format="")
        count = QUEUE_BOUND // CHUNK
        for _ in range(count + 1):
            self.line.deviceDataReceived(b"y" * (CHUNK - 1) + b"\n")
        log._writes.waiting += QUEUE_BOUND  # (as if more waited than was put: the flood going on)
        log._writes.runWaiting()
        self.assertEqual((log._behind, log._caughtUpAsked), (CHUNK, True))
        self.assertNotIn(b"lost", self.read())
        log._writes.waiting -= QUEUE_BOUND
        log._writes.runWaiting()
        log._writes.runWaiting()
        self.assertTrue(self.read().endswith(b"[serialgw: 65536 bytes lost: the disk did not keep up]\n"))

    def test_closedBehindGapMarked(self) -> None:
        """A log closed (a reload, the stop) while behind: the output it dropped is marked in the file, as a gap is when it takes output again."""
        log = self.log(format="", events="off")
        count = QUEUE_BOUND // CHUNK
        for i in range(count + 4):
            self.line.deviceDataReceived(bytes([0x41 + i]) * (CHUNK - 1) + b"\n")
        log.close()
        log._writes.runWaiting()
        expected = b"".join(bytes([0x41 + i]) * (CHUNK - 1) + b"\n" for i in range(count))
        self.assertEqual(self.read(), expected + b"[serialgw: 262144 bytes lost: the disk did not keep up]\n")

    def test_reloadedBehindGapMarked(self) -> None:
        """A reload's new log on the file of a log closed while behind: the new one marks what the old one dropped, once, where it takes output again."""
        old = self.log(format="", events="off")
        count = QUEUE_BOUND // CHUNK
        for i in range(count + 4):
            self.line.deviceDataReceived(bytes([0x41 + i]) * (CHUNK - 1) + b"\n")
        new = self.log(format="[x] ", events="off")
        old.close()
        new._writes.runWaiting()
        self.line.deviceDataReceived(b"back\n")
        new._writes.runWaiting()
        expected = b"".join(bytes([0x41 + i]) * (CHUNK - 1) + b"\n" for i in range(count))
        self.assertEqual(self.read(), expected + b"[x] [serialgw: 262144 bytes lost: the disk did not keep up]\n"
                                                 b"[x] back\n")

    def test_behindUntilHalfWritten(self) -> None:
        """Once behind, output is dropped until no more than half QUEUE_BOUND waits (a disk that stays slow: not a gap a chunk)."""
        log = self.log(format="")
        for _ in range(QUEUE_BOUND // CHUNK + 1):
            self.line.deviceDataReceived(b"x" * (CHUNK - 1) + b"\n")
        log._writes.waiting = QUEUE_BOUND // 2 + 1  # (as if the writer had written some of it)
        self.line.deviceDataReceived(b"y\n")
        self.assertEqual(log.dropped, CHUNK + 2)
        log._writes.waiting = QUEUE_BOUND // 2
        self.line.deviceDataReceived(b"z\n")
        self.assertEqual(log.dropped, CHUNK + 2)
        log._writes.waiting = QUEUE_BOUND + 2  # (what the test's changes above took away)
        log._writes.runWaiting()
        self.assertTrue(self.read().endswith(b"[serialgw: 65538 bytes lost: the disk did not keep up]\nz\n"))

    def test_sameFileAsWrittenAtOnce(self) -> None:
        """What waited, written in a few writes, makes the file one written a chunk at a time makes: stamps, events held inside a line, a rotation by size."""
        def feed(consoleLog: ConsoleLog, line: Line) -> None:
            for i in range(40):
                line.deviceDataReceived(b"out %d" % i + (b"\n" if i % 3 else b""))
                if i % 7 == 0:
                    line.recordEvent(f"event {i}")
                self.clock.advance(1)

        held = self.log(format="%S ", maxSize=150, keep=2)
        feed(held, self.line)
        held._writes.runWaiting()
        other = Line("web2", RecordingDevice(), clock=self.clock)
        path2 = os.path.abspath(self.mktemp())
        self.clock.rightNow = 0.0
        atOnce = ConsoleLog(other, LogSpec(path2, format="%S ", maxSize=150, keep=2), self.clock)
        self.addCleanup(atOnce.close)
        self.clock.rightNow = 0.0
        feed(atOnce, other)
        self.assertTrue(os.path.exists(self.path + ".2"))
        for suffix in ("", ".1", ".2", ".3"):
            self.assertEqual(os.path.exists(self.path + suffix), os.path.exists(path2 + suffix))
            if os.path.exists(self.path + suffix):
                self.assertEqual(self.read(self.path + suffix), self.read(path2 + suffix), suffix)

    def test_reopenWhileHeld(self) -> None:
        """SIGUSR1 while the writer is stuck: what came before goes to the moved file, what came after to the new one, once it goes on."""
        log = self.log(format="")
        log._writes.runWaiting()  # (opened, then stuck)
        self.line.deviceDataReceived(b"before\n")
        os.rename(self.path, self.path + ".1")
        reopened = log.reopen()
        self.line.deviceDataReceived(b"after\n")
        self.assertNoResult(reopened)
        log._writes.runWaiting()
        self.assertEqual(self.successResultOf(reopened), 1)
        self.assertEqual((self.read(self.path + ".1"), self.read()), (b"before\n", b"after\n"))

    def test_reopenPassEndsInTime(self) -> None:
        """A SIGUSR1 pass does not wait for a stuck writer for ever: after REOPEN_WAIT s it ends, counting the others, naming the stuck log."""
        service = GatewayService([], reactor=self.clock)
        stuck = self.log(format="")
        service.lines[self.line.name] = self.line
        other = Line("web2", RecordingDevice(), clock=self.clock)
        path2 = os.path.abspath(self.mktemp())
        fine = ConsoleLog(other, LogSpec(path2, format=""), self.clock)
        self.addCleanup(fine.close)
        service.lines[other.name] = other
        done = service.reopenLogs()
        self.clock.advance(REOPEN_WAIT - 0.5)
        self.assertNoResult(done)
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(done), 1)
        self.assertIn(f"1 log file(s) not reopened in 10 s, their writers stuck in a write (reopened when it "
                      f"returns): {self.path}", self.said())
        stuck._writes.runWaiting()

    def test_closeWhileHeld(self) -> None:
        """A close (stop, reload) waits for a stuck writer CLOSE_WAIT s, then leaves the file to it, saying so with the bytes not written."""
        log = self.log(format="")
        log._writes.runWaiting()  # (opened, then stuck)
        self.line.deviceDataReceived(b"x" * 100 + b"\n")
        closed = log.close()
        self.clock.advance(CLOSE_WAIT - 0.5)
        self.assertNoResult(closed)
        self.clock.advance(0.5)
        self.successResultOf(closed)
        self.assertEqual(self.said(), [f"web1: log {self.path} left to its writer, stuck in a write for 5 s: 101 "
                                       "bytes not written"])
        log._writes.runWaiting()  # (it comes back later: the file closed, nothing said twice)
        self.assertEqual((self.read(), log._fd), (b"x" * 100 + b"\n", -1))
        self.assertEqual(len(self.said()), 1)

    def test_reloadWhileHeld(self) -> None:
        """A reload reopening the log on its file while the writer is stuck: the new log's output comes after the old one's, the line going on where it was."""
        old = self.log(format="")
        self.line.deviceDataReceived(b"one ")
        new = self.log(format="[x] ")
        old.close()
        self.line.deviceDataReceived(b"two\nthree\n")
        self.assertIs(new._writes, old._writes)
        new._writes.runWaiting()
        self.assertEqual(self.read(), b"one two\n[x] three\n")

    def test_reloadsLogFailingLeavesNoJob(self) -> None:
        """A reload's new log on the log's path whose LOG.typed cannot be opened (at once: a writer without a thread): refused, and what it had queued for the shared writer touches nothing once its descriptor is let go (the number given to another file meanwhile is not closed)."""
        old = self.log(format="")
        os.symlink("/nonexistent", self.path + ".typed")
        self.assertRaises(OSError, ConsoleLog, self.line, LogSpec(self.path, typed="text"), self.clock,
                          writes="inline")
        other = os.open(self.path + ".other", os.O_WRONLY | os.O_CREAT, 0o600)
        self.addCleanup(lambda: os.close(other) if os.path.exists(f"/proc/self/fd/{other}") else None)
        self.line.deviceDataReceived(b"on\n")
        old._writes.runWaiting()
        self.assertEqual(self.read(), b"on\n")
        self.assertEqual(os.fstat(other).st_ino, os.stat(self.path + ".other").st_ino)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_closedWhileItsOpenHangs(self) -> None:
        """A log closed while its writer is still in its first open: left to it after CLOSE_WAIT s, said as stuck in its open, with the bytes not written."""
        log = self.log(format="")
        self.line.deviceDataReceived(b"x" * 9 + b"\n")
        closed = log.close()
        self.clock.advance(CLOSE_WAIT)
        self.successResultOf(closed)
        self.assertEqual(self.said(), [f"web1: log {self.path} left to its writer, stuck in its open for 5 s: 10 "
                                       "bytes not written"])

    def test_notOpenedByItsWriter(self) -> None:
        """A log whose first open, made by its writer once the log is running, fails: said naming the path, the line runs without it (taken off it, nothing written through the link), its close later a no-op."""
        target = self.path + ".target"
        os.symlink(target, self.path)
        log = self.log(format="")
        self.assertIn(log, self.line.logs)
        self.line.deviceDataReceived(b"out\n")
        log._writes.runWaiting()
        self.assertEqual(self.said(), [f"web1: cannot open log {self.path}: it is a symbolic link, not followed; "
                                       "the line runs without it"])
        self.assertNotIn(log, self.line.logs)
        self.assertNotIn(log, self.line.clients)
        self.assertFalse(os.path.exists(target))
        self.successResultOf(log.close())
        self.assertEqual(log._writes.users, 0)

    def test_typedNotOpenedByItsWriter(self) -> None:
        """A log whose LOG.typed cannot be opened by its writer: said naming LOG.typed; the log runs on without it, what is typed not logged, the output logged."""
        os.symlink(self.path + ".target", self.path + ".typed")
        log = self.log(format="", typed="text")
        typed = log._typed
        assert typed is not None
        self.addCleanup(typed._writes.runWaiting)  # (its close, once the log let it go)
        typed._writes.runWaiting()
        self.assertEqual(self.said(), [f"web1: cannot open log {self.path}.typed: it is a symbolic link, not "
                                       "followed; its log runs on without it: what is typed is not logged"])
        self.assertIsNone(log._typed)
        client = RecordingClient()
        self.line.attach(client)
        self.line.clientData(client, b"ls\r")
        self.line.deviceDataReceived(b"out\n")
        log._writes.runWaiting()
        self.assertEqual(self.read(), b"out\n")
        self.assertEqual(typed._writes.users, 0)

    def test_stopWithHeldWriter(self) -> None:
        """The gateway's stop with a console log's writer stuck ends within CLOSE_WAIT s."""
        service = GatewayService([], reactor=self.clock)
        log = self.log(format="")
        service._own("closer", log.close)
        self.line.deviceDataReceived(b"x\n")
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.clock.advance(CLOSE_WAIT)
        self.successResultOf(stopped)

    def test_typedFormattedByTheWriter(self) -> None:
        """log-typed = hexdump: a read is formatted by the writer, not on the reactor's thread; past the bound its bytes typed are counted and marked."""
        calls: list[int] = []
        real = logwrites.typedHexdump

        def counted(peer: str, data: bytes) -> list[str]:
            calls.append(len(data))
            return real(peer, data)

        self.patch(logwrites, "typedHexdump", counted)
        log = self.log(format="", typed="hexdump")
        typedLog = log._typed
        assert typedLog is not None
        for _ in range(QUEUE_BOUND // CHUNK + 2):
            log.typed("ops1", b"\x00" * CHUNK)
        self.assertEqual((calls, typedLog.dropped, log.droppedAll()), ([], 2 * CHUNK, 2 * CHUNK))
        typedLog._writes.runWaiting()
        self.assertEqual(calls, [CHUNK] * (QUEUE_BOUND // CHUNK))
        log.typed("ops1", b"ab")
        typedLog._writes.runWaiting()
        self.assertTrue(self.read(self.path + ".typed").endswith(
            b"[serialgw: what was typed, 131072 bytes, not logged: the disk did not keep up]\n"
            b"ops1: 2 byte(s)\n  0000  61 62" + b" " * 42 + b"  |ab|\n"))

    def test_rotatedBeforeTheReloadsLog(self) -> None:
        """A reload's log on the path while what waited for the old one rotates the file: the new log writes the file at the path, not the one moved away."""
        old = self.log(format="", maxSize=100, keep=2)
        for i in range(3):
            self.line.deviceDataReceived(b"%d" % i * 59 + b"\n")
        new = self.log(format="", maxSize=100, keep=2)
        old.close()
        self.line.deviceDataReceived(b"new\n")
        new._writes.runWaiting()
        self.assertEqual((self.read(self.path + ".2"), self.read(self.path + ".1"), self.read()),
                         (b"0" * 59 + b"\n", b"1" * 59 + b"\n", b"2" * 59 + b"\nnew\n"))

    def test_pathAgainAfterClose(self) -> None:
        """A log closed while its writer still has output, then a log on that path again (a reload removing it, the next adding it): the new output comes after the old."""
        old = self.log(format="")
        self.line.deviceDataReceived(b"old\n")
        closed = old.close()
        new = self.log(format="")
        self.line.deviceDataReceived(b"new\n")
        self.assertIs(new._writes, old._writes)
        new._writes.runWaiting()
        self.successResultOf(closed)
        self.assertEqual(self.read(), b"old\nnew\n")


class HeldFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.path = os.path.abspath(self.mktemp())
        self.client = FileClient(self.line, self.path, reactor, parseListener(f"raw+file:{self.path}"), writes="held")
        writes = self.client._writes
        assert writes is not None
        self.writes = writes
        writes.runWaiting()  # (opened, then stuck)
        self.addCleanup(self.writes.runWaiting)
        self.addCleanup(self.client.close)
        self.events: list[LogEvent] = []
        observeLog(self, self.events.append)

    def read(self, path: str = "") -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()

    def said(self) -> list[str]:
        return [formatEvent(e) for e in self.events if e.get("log_namespace") == "serialgw.clients.local"]

    def test_heldWriterHoldsNoClient(self) -> None:
        """A file: listener's regular file, its writer stuck: the line's other client gets every byte at once; the file gets them, in order, when the writer goes on."""
        other = RecordingClient()
        self.line.attach(other)
        chunks = [bytes([i]) * 1000 for i in range(256)]
        for chunk in chunks:
            self.line.deviceDataReceived(chunk)
        self.assertEqual((b"".join(other.received), self.read()), (b"".join(chunks), b""))
        self.writes.runWaiting()
        self.assertEqual(self.read(), b"".join(chunks))

    def test_boundedDropsCounted(self) -> None:
        """Past QUEUE_BOUND waiting, a file: output drops what comes, says so once, counts it (status), and says how much was lost when it takes output again."""
        count = QUEUE_BOUND // CHUNK
        for i in range(count + 3):
            self.line.deviceDataReceived(bytes([0x41 + i]) * CHUNK)
        self.assertEqual((self.writes.waiting, self.client.behindDropped), (QUEUE_BOUND, 3 * CHUNK))
        self.assertEqual(clientStatus(self.client)["dropped"], 3 * CHUNK)
        self.writes.runWaiting()
        self.line.deviceDataReceived(b"back")
        self.writes.runWaiting()
        self.assertEqual(self.read(), b"".join(bytes([0x41 + i]) * CHUNK for i in range(count)) + b"back")
        self.assertEqual(self.said(), [
            f"web1: {self.path} is behind: 1048576 bytes wait for its disk (slow, or a write that does not return); "
            "output is dropped until they are written",
            f"web1: writing {self.path} again; 196608 bytes were lost",
        ])

    def test_notOpenedByItsWriter(self) -> None:
        """A file: output whose open, made by its writer, fails: said naming the listener; the line runs without it, what waited for the open dropped; its close later a no-op."""
        path = os.path.join(self.path + ".none", "out")
        client = FileClient(self.line, path, reactor, parseListener(f"raw+file:{path}"), writes="held")
        self.line.deviceDataReceived(b"x\n")
        self.assertIn(client, self.line.clients)
        writes = client._writes
        assert writes is not None
        self.addCleanup(writes.runWaiting)  # (its close)
        writes.runWaiting()
        self.assertNotIn(client, self.line.clients)
        self.assertEqual([formatEvent(e) for e in self.events if "cannot open" in e.get("log_format", "")],
                         [f"web1: cannot open listener raw+file:{path}: No such file or directory; the line runs "
                          "without it"])
        client.close()
        self.assertEqual(writes.users, 0)

    def test_fifoReopenedOffTheReactor(self) -> None:
        """SIGUSR1 of a file: output on a FIFO: its path opened again by a writer of its own, not on the reactor's thread (an open that hangs holds no line): output goes on into the FIFO in hand meanwhile, then into the FIFO now at the path, in order."""
        fifo = self.path + ".fifo"
        os.mkfifo(fifo)
        old = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, old)
        client = FileClient(self.line, fifo, reactor, parseListener(f"raw+file:{fifo}"), writes="held")
        self.addCleanup(client.close)
        first = client._writes
        assert first is not None
        first.runWaiting()
        self.assertIsNone(client._writes)  # (a FIFO: written on the reactor's thread)
        os.rename(fifo, fifo + ".1")
        os.mkfifo(fifo)
        new = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, new)
        reopened = client.reopen()
        self.assertNoResult(reopened)
        self.line.deviceDataReceived(b"before")
        logwriter._shared[fifo].runWaiting()
        self.assertEqual(self.successResultOf(reopened), 1)
        self.line.deviceDataReceived(b"after")
        self.assertEqual((os.read(old, 100), os.read(new, 100)), (b"before", b"after"))

    def test_earlyOutputBounded(self) -> None:
        """Output while a file: output's open has not returned waits for it, QUEUE_BOUND bytes at most: past that dropped, said once, counted; once open, the file gets exactly what waited, then what follows."""
        path = self.path + ".2"
        client = FileClient(self.line, path, reactor, parseListener(f"raw+file:{path}"), writes="held")
        held = client._writes
        assert held is not None
        self.addCleanup(held.runWaiting)  # (its close)
        self.addCleanup(client.close)
        chunks = [bytes([i]) * CHUNK for i in range(QUEUE_BOUND // CHUNK + 2)]
        for chunk in chunks:
            self.line.deviceDataReceived(chunk)
        self.assertEqual(client.behindDropped, 2 * CHUNK)
        self.assertEqual([formatEvent(e) for e in self.events if "not open yet" in e.get("log_format", "")],
                         [f"web1: {path} is not open yet: {QUEUE_BOUND} bytes wait for its open (a file system that "
                          "does not answer?); output is dropped until it is"])
        writes = client._writes
        assert writes is not None
        writes.runWaiting()  # (the open: what waited for it is given to the writer)
        writes.runWaiting()
        self.line.deviceDataReceived(b"after")
        writes.runWaiting()
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"".join(chunks[:-2]) + b"after")

    def test_reopenWhileHeld(self) -> None:
        """SIGUSR1 while its writer is stuck: what came before goes to the moved file, what came after to the new one."""
        self.line.deviceDataReceived(b"before")
        os.rename(self.path, self.path + ".1")
        reopened = self.client.reopen()
        self.line.deviceDataReceived(b"after")
        assert isinstance(reopened, Deferred)
        self.assertNoResult(reopened)
        self.assertFalse(os.path.exists(self.path))  # (opened by the writer, not on the reactor's thread)
        self.writes.runWaiting()
        self.assertEqual(self.successResultOf(reopened), 1)
        self.assertEqual((self.read(self.path + ".1"), self.read()), (b"before", b"after"))

    def test_reopenOntoAFifoRefused(self) -> None:
        """SIGUSR1 finding a FIFO at a regular file's path (nobody reading it): not reopened, said naming the path; the output goes on into the file in hand, none lost, its writer never spinning on a full FIFO."""
        os.rename(self.path, self.path + ".1")
        os.mkfifo(self.path)
        writes = [0]
        write = self.client._osWrite

        def counted(fd: int, data: bytes) -> int:
            writes[0] += 1
            if writes[0] > 1000:
                raise AssertionError("the writer spins on a file that takes nothing")
            return write(fd, data)

        self.client._osWrite = counted  # type: ignore[method-assign]
        reopened = self.client.reopen()
        flood = b"x" * (200 * 1024)
        for start in range(0, len(flood), CHUNK):
            self.line.deviceDataReceived(flood[start:start + CHUNK])
        self.writes.runWaiting()
        self.assertEqual(self.successResultOf(reopened), 0)  # type: ignore[arg-type]
        self.assertEqual(self.read(self.path + ".1"), flood)
        self.assertEqual(self.said(), [f"web1: cannot reopen {self.path}: it is not a regular file now (a FIFO); "
                                       "writing on to the file it was"])

    def test_closeWhileHeld(self) -> None:
        """Closed while its writer is stuck: off the line at once; the file written and closed by the writer when it goes on."""
        self.line.deviceDataReceived(b"last")
        self.client.close()
        self.assertNotIn(self.client, self.line.clients)
        self.assertGreaterEqual(self.client._fd, 0)
        self.writes.runWaiting()
        self.assertEqual((self.read(), self.client._fd), (b"last", -1))

    def test_stopWaitsForTheWriter(self) -> None:
        """The gateway's stop waits for what a closed file: output's writer still has to write."""
        service = GatewayService([], reactor=self.clock)
        self.line.deviceDataReceived(b"last")
        self.client.close()
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.writes.runWaiting()
        self.successResultOf(stopped)
        self.assertEqual(self.read(), b"last")

    def test_stopLeavesAStuckWriter(self) -> None:
        """The stop waits STOP_WAIT s at most for a file: output's writer stuck in a write, then says which file was left with how many bytes."""
        service = GatewayService([], reactor=self.clock)
        self.line.deviceDataReceived(b"last")
        self.client.close()
        stopped = service.stopService()
        self.clock.advance(STOP_WAIT - 0.5)
        self.assertNoResult(stopped)
        self.clock.advance(0.5)
        self.successResultOf(stopped)
        self.assertIn(f"{self.path}: left to its writer, stuck in a write for 5 s: 4 bytes not written",
                      [formatEvent(e) for e in self.events])

    def test_takesNothingNoSpin(self) -> None:
        """A regular file whose write takes nothing (EAGAIN): its writer drops the output, says so once, and says what was lost when it writes again; it never retries at once for ever."""
        writes = [0]
        real = self.client._osWrite

        def full(fd: int, data: bytes) -> int:
            writes[0] += 1
            raise BlockingIOError(11, "Resource temporarily unavailable")

        self.client._osWrite = full  # type: ignore[method-assign]
        self.line.deviceDataReceived(b"one")
        self.line.deviceDataReceived(b"two")
        self.writes.runWaiting()
        self.client._osWrite = real  # type: ignore[method-assign]
        self.line.deviceDataReceived(b"back")
        self.writes.runWaiting()
        self.assertEqual((writes[0], self.read()), (1, b"back"))
        self.assertEqual(self.said(), [f"web1: cannot write {self.path}: it takes nothing now; output is dropped "
                                       "until it can", f"web1: writing {self.path} again; 6 bytes were lost"])


class WrittenTests(TestCase):
    async def test_writtenWaitsForEveryThreadWriter(self) -> None:
        """written() fires only once each writer's thread has run the jobs put before the call (tests reading a log wait for it)."""
        writes = attach(reactor, os.path.abspath(self.mktemp()), "thread")
        self.addCleanup(detach, writes)
        go, ran = threading.Event(), []

        def job(args: list[str]) -> None:
            go.wait(30)
            ran.extend(args)

        writes.put(job, "first")
        done = written()
        self.assertNoResult(done)
        go.set()
        await done
        self.assertEqual(ran, ["first"])


class NoThreadTests(SynchronousTestCase):
    """The process may start no more threads (systemd's TasksMax): a log or file: output is refused, its descriptor let go."""

    def setUp(self) -> None:
        def refuse(thread: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        self.patch(threading.Thread, "start", refuse)
        self.line = Line("web1", RecordingDevice(), clock=Clock())
        self.path = os.path.abspath(self.mktemp())
        self.fds = openDescriptors()

    def check(self, error: OSError) -> None:
        self.assertEqual(error.errno, errno.EAGAIN)
        self.assertEqual(error.strerror, "cannot start its writer thread (can't start new thread): are the process's "
                                         "threads limited (systemd's TasksMax, ulimit -u)?")
        self.assertNotIn(self.path, logwriter._shared)
        self.assertEqual(openDescriptors() - self.fds, set())
        self.assertEqual(self.line.logs, [])

    def test_consoleLog(self) -> None:
        """A console log: OSError(EAGAIN) saying why, no writer kept, its file's descriptor closed."""
        self.check(self.assertRaises(OSError, ConsoleLog, self.line, LogSpec(self.path), reactor))

    def test_typedLog(self) -> None:
        """log-typed's second writer refused: the console log's writer and descriptor let go too."""
        started: list[threading.Thread] = []
        real = threading.Thread.start

        def once(thread: threading.Thread) -> None:
            if started:
                raise RuntimeError("can't start new thread")
            started.append(thread)
            real(thread)

        self.patch(threading.Thread, "start", once)
        self.check(self.assertRaises(OSError, ConsoleLog, self.line, LogSpec(self.path, typed="text"), reactor))

    def test_fileOutput(self) -> None:
        """A file: output: the same."""
        self.check(self.assertRaises(OSError, FileClient, self.line, self.path, reactor,
                                     parseListener(f"raw+file:{self.path}")))
