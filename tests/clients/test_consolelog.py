"""
Console logs: lines stamped with the time, events marked, rotation by
size and by day under a Clock.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Optional

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.logfile import NOT_A_FILE
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.interfaces import IConsoleLog
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice


class ConsoleLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        old = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"
        time.tzset()

        def restore() -> None:
            if old is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old
            time.tzset()

        self.addCleanup(restore)
        self.clock = Clock()
        self.clock.advance(1_800_000_000)  # 2027-01-15T08:00:00Z
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.path = self.mktemp()

    def read(self, path: str = "") -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()

    def test_stampedLinesAndEvents(self) -> None:
        """Each line gets the time; a line cut across reads is stamped once; events stand on their own line."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S "), self.clock)
        verifyObject(IConsoleLog, log)
        self.line.deviceDataReceived(b"Booting\r\nlog")
        self.clock.advance(2)
        self.line.deviceDataReceived(b"in: ")
        client = TelnetClient(self.line)
        client.makeConnection(StringTransport())
        client.dataReceived(b"\xff\xf3")
        log.close()
        self.assertEqual(
            self.read(),
            b"08:00:00 Booting\r\n08:00:00 login: \n08:00:02 [serialgw: 192.168.1.1:54321 attached as writer]"
            b" (inside a line of output: it goes on below)\n"
            b"08:00:02 [serialgw: BREAK from 192.168.1.1:54321]\n",
        )

    def test_rotateBySize(self) -> None:
        """Past max size the log moves to .1, .1 to .2, and only keep files stay."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=100, daily=False, keep=2), self.clock)
        for i in range(5):
            self.line.deviceDataReceived(b"%d" % i * 60 + b"\n")
        log.close()
        self.assertEqual(self.read(), b"4" * 60 + b"\n")
        self.assertEqual(self.read(self.path + ".1"), b"3" * 60 + b"\n")
        self.assertEqual(self.read(self.path + ".2"), b"2" * 60 + b"\n")
        self.assertFalse(os.path.exists(self.path + ".3"))

    def test_rotateDaily(self) -> None:
        """At the first write of a new day the log rotates."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%d %H:%M ", keep=3), self.clock)
        self.line.deviceDataReceived(b"monday\n")
        self.clock.advance(24 * 3600)
        self.line.deviceDataReceived(b"tuesday\n")
        log.close()
        self.assertEqual(self.read(self.path + ".1"), b"15 08:00 monday\n")
        self.assertEqual(self.read(), b"16 08:00 tuesday\n")

    def test_rotatedMidLineNewFileStartsStamped(self) -> None:
        """A rotation inside a line of output (one long line, no newline): the new file starts with a stamp, and an event there with no empty line before it (the line break before it ends the old file's line)."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S ", maxSize=30, daily=False, keep=3), self.clock)
        self.line.deviceDataReceived(b"login: ")
        self.clock.advance(1)
        self.line.deviceDataReceived(b"x" * 40)
        self.clock.advance(1)
        self.line.recordEvent("BREAK")
        log.close()
        self.assertEqual([self.read(self.path + ".2"), self.read(self.path + ".1"), self.read()],
                         [b"08:00:00 login: ", b"08:00:01 " + b"x" * 40 + b"\n", b"08:00:02 [serialgw: BREAK] (inside a line of output: it goes on below)\n"])

    def test_rotatedBeforeANewlineTheOldFileKeepsIt(self) -> None:
        """A rotation due where the output goes on with the newline ending the file's line: that newline ends the old file (it was dropped, the old file's last line left unended)."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S ", maxSize=30, daily=False, keep=3), self.clock)
        self.line.deviceDataReceived(b"x" * 20)
        self.clock.advance(1)
        self.line.deviceDataReceived(b"\nyy\n")
        log.close()
        self.assertEqual([self.read(self.path + ".1"), self.read()], [b"08:00:00 " + b"x" * 20 + b"\n", b"08:00:01 yy\n"])

    def test_fileEndingInsideALineIsEndedFirst(self) -> None:
        """A log opened on a file that ends inside a line (left by a run cut off, or by this line's log before a reload moved it away and back) ends that line before it writes: no line of the output runs into it."""
        with open(self.path, "wb") as f:
            f.write(b"07:59:59 left by another\n07:59:59 cut off here")
        log = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S "), self.clock)
        self.line.deviceDataReceived(b"one\ntw")
        self.line.deviceDataReceived(b"o\n")
        log.close()
        other = self.mktemp()
        with open(other, "wb") as f:
            f.write(b"07:59:59 cut off here")
        log = ConsoleLog(self.line, LogSpec(other, format="%H:%M:%S "), self.clock)
        self.line.deviceDataReceived(b"three")
        log.close()
        log = ConsoleLog(self.line, LogSpec(other, format="%H:%M:%S "), self.clock)
        self.line.deviceDataReceived(b" and more\n")
        log.close()
        self.assertEqual(self.read(), b"07:59:59 left by another\n07:59:59 cut off here\n08:00:00 one\n08:00:00 two\n")
        self.assertEqual(self.read(other), b"07:59:59 cut off here\n08:00:00 three\n08:00:00  and more\n")

    def test_movedInsideALineNoEmptyLine(self) -> None:
        """A reload moving the log to another path inside a line of output (the new log opened before the old one closes): the new file goes on with that line stamped, and with the next line when the rest is the newline ending it, not an empty stamped line."""
        one = ConsoleLog(self.line, LogSpec(self.path, format="%H:%M:%S "), self.clock)
        self.line.deviceDataReceived(b"login")
        other, third = self.mktemp(), self.mktemp()
        two = ConsoleLog(self.line, LogSpec(other, format="%H:%M:%S "), self.clock)
        one.close()
        self.clock.advance(1)
        self.line.deviceDataReceived(b"\nnext: ")
        three = ConsoleLog(self.line, LogSpec(third, format="%H:%M:%S "), self.clock)
        two.close()
        self.clock.advance(1)
        self.line.deviceDataReceived(b"yes\n")
        three.close()
        self.assertEqual([self.read(), self.read(other), self.read(third)],
                         [b"08:00:00 login", b"08:00:01 next: ", b"08:00:02 yes\n"])

    def test_clockSteppedBackNoRotation(self) -> None:
        """The clock stepped back over midnight (NTP): no rotation then, nor a second one at that midnight again; stepped back days (a clock far ahead set right), the next midnight rotates."""
        self.clock.advance(16 * 3600 + 1)  # 16th, 00:00:01
        log = ConsoleLog(self.line, LogSpec(self.path, format="%d %H:%M:%S ", keep=3), self.clock)
        self.line.deviceDataReceived(b"a\n")
        self.clock.rightNow -= 3  # 15th, 23:59:58
        self.line.deviceDataReceived(b"b\n")
        self.clock.advance(3)
        self.line.deviceDataReceived(b"c\n")
        self.clock.rightNow -= 5 * 24 * 3600  # the 11th: days back
        self.line.deviceDataReceived(b"d\n")
        self.clock.advance(24 * 3600)
        self.line.deviceDataReceived(b"e\n")
        log.close()
        self.assertEqual([self.read(self.path + ".1"), self.read()],
                         [b"16 00:00:01 a\n15 23:59:58 b\n16 00:00:01 c\n11 00:00:01 d\n", b"12 00:00:01 e\n"])
        self.assertFalse(os.path.exists(self.path + ".2"))

    def test_rotateAfterTheFileWasRemoved(self) -> None:
        """
        The log file removed by someone else (an external logrotate): the
        rotation starts a new file, the line keeps its log and its clients.
        """
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=1), self.clock)
        self.line.deviceDataReceived(b"first\n")
        os.unlink(self.path)
        self.line.deviceDataReceived(b"second line\n")
        self.line.recordEvent("still here")
        self.assertIn(log, self.line.logs)
        log.close()
        self.assertEqual(self.read(self.path + ".1"), b"second line\n")
        self.assertEqual(self.read(), b"[serialgw: still here]\n")


class WriteFailureTests(SynchronousTestCase):
    def test_failingWritesLoggedOnce(self) -> None:
        """Writes that fail (a full disk) are one error, not one a chunk; the recovery is one line with the bytes lost."""
        line = Line("web1", RecordingDevice(), clock=Clock())
        log = ConsoleLog(line, LogSpec(self.mktemp(), format=""), line.clock)
        self.addCleanup(log.close)
        writable = log._fd
        log._fd = os.open(log.spec.path, os.O_RDONLY)  # every write fails (EBADF), as on a full disk
        with capturedLogs() as events:
            for _ in range(100):
                line.deviceDataReceived(b"0123456789")
            os.close(log._fd)
            log._fd = writable
            line.deviceDataReceived(b"back\n")
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: cannot write log {log.spec.path}: Bad file descriptor; console output is not logged until it can be",
            f"web1: log {log.spec.path} written again; 1000 bytes were not logged",
        ])
        with open(log.spec.path, "rb") as f:
            self.assertEqual(f.read(), b"[serialgw: 1000 bytes lost: Bad file descriptor]\nback\n")

    def test_shortWriteCountsTheRest(self) -> None:
        """A write cut short by the disk filling up: the rest is tried, and what did not fit is counted as lost."""
        line = Line("web1", RecordingDevice(), clock=Clock())
        log = ConsoleLog(line, LogSpec(self.mktemp(), format=""), line.clock)
        self.addCleanup(log.close)
        room = [4]
        realWrite = os.write

        def write(fd: int, data: bytes) -> int:
            if fd != log._fd:
                return realWrite(fd, data)
            if not room[0]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            n = realWrite(fd, data[: room[0]])
            room[0] -= n
            return n

        self.patch(os, "write", write)
        with capturedLogs() as events:
            line.deviceDataReceived(b"0123456789")
            room[0] = 100
            line.deviceDataReceived(b"back\n")
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: cannot write log {log.spec.path}: No space left on device; console output is not logged until it can be",
            f"web1: log {log.spec.path} written again; 6 bytes were not logged",
        ])
        with open(log.spec.path, "rb") as f:
            self.assertEqual(f.read(), b"0123\n[serialgw: 6 bytes lost: No space left on device]\nback\n")
        self.assertEqual(log.size, 60)

    def test_gapMarkedInTheLog(self) -> None:
        """Where a full disk cut the console log, a stamped line of its own says how many bytes are missing and why, once writing works again."""
        log, full = self.fillingLog()
        line, clock = log.line, log.clock
        line.deviceDataReceived(b"boot\nlog")
        full[0] = True
        line.deviceDataReceived(b"in: root\n")  # 9 bytes: it goes on a line
        line.deviceDataReceived(b"more\n")  # 14 bytes: "08:00:00 more\n"
        line.recordEvent("BREAK from 192.0.2.7:1000")  # 47 bytes with its stamp
        clock.advance(2)
        full[0] = False
        line.deviceDataReceived(b"prompt# ")
        line.deviceDataReceived(b"ls\n")
        line.recordEvent("back")
        with open(log.spec.path, "rb") as f:
            self.assertEqual(f.read(), b"08:00:00 boot\n08:00:00 log\n"
                                       b"08:00:02 [serialgw: 70 bytes lost: No space left on device]\n"
                                       b"08:00:02 prompt# ls\n08:00:02 [serialgw: back]\n")

    def test_gapMidLine(self) -> None:
        """Output that resumes in the middle of a line (or with the newline ending it) after the gap's line starts a stamped line of its own."""
        log, full = self.fillingLog()
        line = log.line
        for resumed, after in ((b"root\n", b"08:00:00 root\n"), (b"\nnext\n", b"08:00:00 next\n")):
            line.deviceDataReceived(b"login: ")
            full[0] = True
            line.deviceDataReceived(b"ro")
            full[0] = False
            line.deviceDataReceived(resumed)
            with open(log.spec.path, "rb") as f:
                self.assertEqual(f.read(), b"08:00:00 login: \n08:00:00 [serialgw: 2 bytes lost: No space left on device]\n" + after)
            os.truncate(log.spec.path, 0)

    def fillingLog(self) -> tuple[ConsoleLog, list[bool]]:
        """A console log stamped %H:%M:%S at 08:00:00 UTC, whose writes fail with ENOSPC while C{full[0]}."""
        clock = Clock()
        clock.advance(1_800_000_000)  # 2027-01-15T08:00:00Z
        line = Line("web1", RecordingDevice(), clock=clock)
        old = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"
        time.tzset()

        def restore() -> None:
            if old is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = old
            time.tzset()

        self.addCleanup(restore)
        log = ConsoleLog(line, LogSpec(self.mktemp(), format="%H:%M:%S "), clock)
        self.addCleanup(log.close)
        full = [False]
        realWrite = os.write

        def write(fd: int, data: bytes) -> int:
            if fd == log._fd and full[0]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return realWrite(fd, data)

        self.patch(os, "write", write)
        return log, full


class AttachTests(SynchronousTestCase):
    """A client whose attach goes wrong is fully attached or fully gone, never half."""

    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("web1", self.device, clock=Clock())

    def connect(self, listener: str = "raw+4444") -> tuple[RawClient, StringTransport]:
        client = RawClient(self.line, listener=parseListener(listener))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1000))
        client.makeConnection(transport)
        return client, transport

    def test_failingLogLeavesClientAttached(self) -> None:
        """A log that fails on the attach event is cut off; the client is on the list, reads and writes."""
        log = ConsoleLog(self.line, LogSpec(self.mktemp(), format=""), self.line.clock)
        self.addCleanup(log.close)

        def broken(text: str) -> None:
            raise TypeError("a log that cannot stamp")

        log.event = broken  # type: ignore[method-assign]
        client, transport = self.connect()
        # A connection is announced (and logged) once it has stayed a second.
        self.line.clock.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.assertEqual((self.line.clients, self.line.logs), ([client], []))
        self.line.deviceDataReceived(b"login: ")
        client.dataReceived(b"root\r")
        self.assertEqual((transport.value(), self.device.events), (b"login: ", [("write", b"root\r")]))
        self.assertFalse(transport.disconnecting)

    def test_failedStartLeavesClientGone(self) -> None:
        """A session whose start fails after it joined the line (replay here) is detached and disconnected."""
        def broken(limit: Optional[int] = None) -> bytes:
            raise RuntimeError("no backlog")

        self.line.backlog = broken  # type: ignore[method-assign]
        client, transport = self.connect("raw,replay+4444")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.line.clients, [])
        self.assertTrue(transport.disconnecting)
        self.line.deviceDataReceived(b"login: ")
        self.assertEqual(transport.value(), b"")


class RotatedBySomeoneElseTests(SynchronousTestCase):
    """logrotate's two ways: rename then SIGUSR1 (reopen), or copytruncate (append mode)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        directory = self.mktemp()
        os.mkdir(directory)
        self.path = os.path.join(directory, "web1.log")

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def test_renameThenReopen(self) -> None:
        """Renamed, then reopened: what came before is in the renamed file, what comes after in a new one at the path."""
        log = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"before\n")
        os.rename(self.path, self.path + ".1")
        self.line.deviceDataReceived(b"moved\n")
        log.reopen()
        self.line.deviceDataReceived(b"after\n")
        self.assertEqual((self.read(self.path + ".1"), self.read(self.path)), (b"before\nmoved\n", b"after\n"))

    def test_reopenedMidLineNewFileStartsStamped(self) -> None:
        """Reopened (SIGUSR1) inside a line of output: the new file's first line is stamped too."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.rename(self.path, self.path + ".1")
        log.reopen()
        self.clock.advance(3)
        self.line.deviceDataReceived(b"def\nghi\n")
        self.assertEqual((self.read(self.path + ".1"), self.read(self.path)),
                         (b"00 abc", b"03 def\n03 ghi\n"))

    def test_reopenedBeforeANewlineTheMovedFileKeepsIt(self) -> None:
        """Moved and reopened (logrotate, SIGUSR1) inside a line of output that goes on with the newline ending it: that newline ends the moved file, as at a rotation by size (it was dropped: the moved file's last line unended, one byte lost, the two files' lines running together when read in turn)."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.rename(self.path, self.path + ".1")
        self.assertEqual(self.successResultOf(log.reopen()), 1)
        self.clock.advance(3)
        self.line.deviceDataReceived(b"\ndef\n")
        self.assertEqual((self.read(self.path + ".1"), self.read(self.path)), (b"00 abc\n", b"03 def\n"))
        # Unstamped, the files read in turn are the output, byte for byte.
        other = self.mktemp()
        exact = ConsoleLog(self.line, LogSpec(other, format=""), self.clock)
        self.addCleanup(exact.close)
        self.line.deviceDataReceived(b"ghi")
        os.rename(other, other + ".1")
        self.assertEqual(self.successResultOf(exact.reopen()), 1)
        self.line.deviceDataReceived(b"\njkl")
        os.rename(other, other + ".2")
        self.assertEqual(self.successResultOf(exact.reopen()), 1)
        self.line.deviceDataReceived(b"mno\npqr\n")
        self.assertEqual([self.read(other + ".1"), self.read(other + ".2"), self.read(other)],
                         [b"ghi\n", b"jkl", b"mno\npqr\n"])

    def test_reopenedThenReloadedBeforeANewline(self) -> None:
        """Moved and reopened inside a line of output, then a reload that changes a log key (a new log on the same path, taking over from the old): the newline that ends the line still goes to the moved file."""
        one = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.line.deviceDataReceived(b"abc")
        os.rename(self.path, self.path + ".1")
        self.assertEqual(self.successResultOf(one.reopen()), 1)
        two = ConsoleLog(self.line, LogSpec(self.path, format="", events="off"), self.clock)
        self.addCleanup(two.close)
        one.close()
        self.line.deviceDataReceived(b"\ndef\n")
        self.assertEqual((self.read(self.path + ".1"), self.read(self.path)), (b"abc\n", b"def\n"))

    def test_reopenedSameFileMidLine(self) -> None:
        """Reopened with nothing moved (SIGUSR1 alone) inside a line of output: the line goes on in the file, not stamped again."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        self.assertTrue(self.successResultOf(log.reopen()))
        self.clock.advance(3)
        self.line.deviceDataReceived(b"def\nghi\n")
        self.assertEqual(self.read(self.path), b"00 abcdef\n03 ghi\n")

    def test_reopenFailsKeepsFile(self) -> None:
        """The path cannot be opened again (its directory is gone): one error, output goes on to the file in hand."""
        log = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.addCleanup(log.close)
        directory = os.path.dirname(self.path)
        os.rename(directory, directory + ".old")
        log.reopen()
        self.line.deviceDataReceived(b"still logged\n")
        self.assertEqual(self.read(os.path.join(directory + ".old", "web1.log")), b"still logged\n")
        self.assertEqual(self.line.logs, [log])

    def test_fifoNotWaitedOn(self) -> None:
        """A FIFO at the path (nobody reading it), at start or at a reopen: refused at once, not waited on."""
        os.mkfifo(self.path + ".fifo")
        with self.assertRaises(OSError) as caught:
            ConsoleLog(self.line, LogSpec(self.path + ".fifo", format=""), self.clock)
        self.assertEqual(caught.exception.strerror, NOT_A_FILE)
        log = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.addCleanup(log.close)
        os.rename(self.path, self.path + ".1")
        os.mkfifo(self.path)
        log.reopen()
        self.line.deviceDataReceived(b"still logged\n")
        self.assertEqual(self.read(self.path + ".1"), b"still logged\n")

    def test_directoryNamedAsOne(self) -> None:
        """A directory at the path is refused as what it is, not as 'a FIFO or a device' (it was, since the look before the open)."""
        os.mkdir(self.path + ".d")
        with self.assertRaises(OSError) as caught:
            ConsoleLog(self.line, LogSpec(self.path + ".d", format=""), self.clock)
        self.assertEqual(caught.exception.strerror, "it is a directory, not a regular file")
        self.assertEqual(self.line.clients, [])

    def test_fifoWithReaderRefused(self) -> None:
        """A FIFO someone reads is refused too: a write to it could wait, and a console log never waits."""
        os.mkfifo(self.path + ".fifo")
        reader = os.open(self.path + ".fifo", os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        with self.assertRaises(OSError) as caught:
            ConsoleLog(self.line, LogSpec(self.path + ".fifo", format=""), self.clock)
        self.assertEqual(caught.exception.strerror, NOT_A_FILE)
        self.assertEqual(self.line.clients, [])

    def test_copytruncate(self) -> None:
        """
        Copied and truncated under the log: the next output starts the file
        at offset 0 (no hole of NULs), and the size limit counts from there
        (no rotation of a nearly empty file).
        """
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=100, daily=False, keep=2), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"a" * 89 + b"\n")
        os.truncate(self.path, 0)
        self.line.deviceDataReceived(b"b" * 19 + b"\n")
        self.assertEqual(self.read(self.path), b"b" * 19 + b"\n")
        self.assertFalse(os.path.exists(self.path + ".1"))
        self.line.deviceDataReceived(b"c" * 89 + b"\n")
        self.assertEqual((self.read(self.path + ".1"), self.read(self.path)), (b"b" * 19 + b"\n", b"c" * 89 + b"\n"))

    def test_copytruncateMidLineStamped(self) -> None:
        """Copied and truncated (copytruncate) inside a line of output: the line's rest begins the emptied file stamped."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.truncate(self.path, 0)
        self.clock.advance(3)
        self.line.deviceDataReceived(b"def\nghi\n")
        self.assertEqual(self.read(self.path), b"03 def\n03 ghi\n")

    def test_copytruncateBeforeNewlineNoEmptyLine(self) -> None:
        """Truncated where the line's newline comes next: the emptied file begins with the next line, stamped, no empty line."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.truncate(self.path, 0)
        self.clock.advance(3)
        self.line.deviceDataReceived(b"\nghi")
        self.assertEqual(self.read(self.path), b"03 ghi")

    def test_copytruncateThenSIGUSR1Stamped(self) -> None:
        """copytruncate inside a line, then SIGUSR1 (a logrotate stanza with both): the emptied file's first line is stamped still."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.truncate(self.path, 0)
        self.assertTrue(self.successResultOf(log.reopen()))
        self.clock.advance(3)
        self.line.deviceDataReceived(b"def\nghi\n")
        self.assertEqual(self.read(self.path), b"03 def\n03 ghi\n")

    def test_copytruncateThenSIGUSR1BeforeNewlineNoEmptyLine(self) -> None:
        """copytruncate inside a line, then SIGUSR1, where the line's newline comes next: the emptied file is the file at the path, no moved one, and it begins with the next line, stamped, no empty line."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="%S "), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"abc")
        os.truncate(self.path, 0)
        self.assertTrue(self.successResultOf(log.reopen()))
        self.clock.advance(3)
        self.line.deviceDataReceived(b"\nghi\n")
        self.assertEqual(self.read(self.path), b"03 ghi\n")


class RotationFailureTests(SynchronousTestCase):
    """A rotation that cannot be done is one error, and output goes on to the file in hand."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        directory = self.mktemp()
        os.mkdir(directory)
        self.path = os.path.join(directory, "web1.log")

    def test_removedWithItsDirectoryStaysBounded(self) -> None:
        """The log and its directory removed (rm -r): at log-max-size the file in hand, which nobody can read, is emptied and written on, not grown for ever; one error a rotation, naming the path."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=100, daily=False), self.clock)
        self.addCleanup(log.close)
        os.unlink(self.path)
        os.rmdir(os.path.dirname(self.path))
        with capturedLogs() as events:
            for _ in range(10):
                self.line.deviceDataReceived(b"x" * 59 + b"\n")
        self.assertLessEqual(os.fstat(log._fd).st_size, 100)
        self.assertEqual([formatEvent(e) for e in events if e["log_level"].name == "error"],
                         [f"web1: cannot open a new log {self.path}: No such file or directory; the file it was is "
                          "removed: emptied, written on within log-max-size until the path can be opened (SIGUSR1)"] * 9)

    def test_dailyRotationFailingIsOneError(self) -> None:
        """A new day whose new file cannot be opened: one error, not one a write; the next day tries again."""
        log = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.addCleanup(log.close)
        directory = os.path.dirname(self.path)
        os.rename(directory, directory + ".old")
        self.clock.advance(24 * 3600)
        with capturedLogs() as events:
            for i in range(3):
                self.line.deviceDataReceived(b"%d\n" % i)
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: cannot open a new log {self.path}: No such file or directory; writing on to the file it was",
        ])
        with open(os.path.join(directory + ".old", "web1.log"), "rb") as f:
            self.assertEqual(f.read(), b"0\n1\n2\n")

    def test_renameFailingKeepsOutput(self) -> None:
        """The log path turned into a directory: the rotation's rename fails, the output is still written."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=1), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"first line\n")
        self.line.deviceDataReceived(b"second\n")  # rotates: web1.log.1 is a file now
        os.rename(self.path, self.path + ".moved")
        os.mkdir(self.path)
        with capturedLogs() as events:
            self.line.deviceDataReceived(b"third line\n")
        self.assertEqual(len(events), 1, [formatEvent(e) for e in events])
        self.assertIn("cannot rotate log", formatEvent(events[0]))
        self.assertTrue(os.path.isdir(self.path))
        with open(self.path + ".moved", "rb") as f:
            self.assertEqual(f.read(), b"second\nthird line\n")

    def test_directoryAtPathNotRenamed(self) -> None:
        """A directory put at the log's path (no .1 in its way): a rotation leaves it where it is, says so once, and writes on to the file in hand."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=3), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"first line\n")
        os.rename(self.path, self.path + ".moved")
        os.mkdir(self.path)
        with capturedLogs() as events:
            for text in (b"second\n", b"third line\n", b"fourth line\n"):
                self.line.deviceDataReceived(text)
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: cannot rotate log {self.path}: it is a directory now, not the file being written: "
            "left as it is; writing on to the file it was",
        ])
        self.assertEqual((os.path.isdir(self.path), os.listdir(self.path)), (True, []))
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))), ["web1.log", "web1.log.moved"])
        with open(self.path + ".moved", "rb") as f:
            self.assertEqual(f.read(), b"first line\nsecond\nthird line\nfourth line\n")
        os.rmdir(self.path)
        self.line.deviceDataReceived(b"fifth line\n")
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"fifth line\n")

    def test_otherThingsAtPathNotRenamed(self) -> None:
        """Whatever else is at the path when the log rotates (a symlink, a FIFO, another file put there) is left as it is, said once each."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=1), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"first line\n")
        os.rename(self.path, self.path + ".moved")
        precious = self.path + ".precious"
        with open(precious, "wb") as f:
            f.write(b"not yours\n")
        kinds = []
        with capturedLogs() as events:
            for kind, make in (("a symbolic link", lambda: os.symlink(precious, self.path)),
                               ("a FIFO", lambda: os.mkfifo(self.path)),
                               ("another file", lambda: os.link(precious, self.path))):
                make()
                self.line.deviceDataReceived(b"0123456789\n")
                self.line.deviceDataReceived(b"0123456789\n")
                kinds.append(kind)
                os.unlink(self.path)
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: cannot rotate log {self.path}: it is {kind} now, not the file being written: "
            "left as it is; writing on to the file it was" for kind in kinds
        ])
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path))), ["web1.log.moved", "web1.log.precious"])
        with open(precious, "rb") as f:
            self.assertEqual(f.read(), b"not yours\n")
        with open(self.path + ".moved", "rb") as f:
            self.assertEqual(f.read(), b"first line\n" + b"0123456789\n" * 6)

    def test_oldNameNotAFileStopsTheShift(self) -> None:
        """A directory at .2 (or a symlink at .1): the old files are shifted up to it, never onto or into it; said once, and the log stays bounded."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=3), self.clock)
        self.addCleanup(log.close)
        for digit in b"123":
            self.line.deviceDataReceived(bytes([digit]) * 9 + b"\n")
        self.assertEqual([self.read(self.path + suffix) for suffix in ("", ".1", ".2")], [b"3" * 9 + b"\n", b"2" * 9 + b"\n", b"1" * 9 + b"\n"])
        os.unlink(self.path + ".2")
        os.mkdir(self.path + ".2")
        with open(os.path.join(self.path + ".2", "inside"), "wb") as f:
            f.write(b"mine\n")
        with capturedLogs() as events:
            for digit in b"45":
                self.line.deviceDataReceived(bytes([digit]) * 9 + b"\n")
            precious = self.path + ".precious"
            with open(precious, "wb") as f:
                f.write(b"not yours\n")
            os.unlink(self.path + ".1")
            os.symlink(precious, self.path + ".1")
            for digit in b"67":
                self.line.deviceDataReceived(bytes([digit]) * 9 + b"\n")
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: rotating log {self.path}: {self.path}.2 is a directory, not an old log: left as it is; "
            "1 old file(s) kept before it",
            f"web1: rotating log {self.path}: {self.path}.1 is a symbolic link, not an old log: left as it is; "
            "0 old file(s) kept before it",
        ])
        self.assertEqual(self.read(self.path), b"7" * 9 + b"\n")
        self.assertEqual((os.readlink(self.path + ".1"), self.read(precious)), (precious, b"not yours\n"))
        self.assertEqual(os.listdir(self.path + ".2"), ["inside"])
        self.assertFalse(os.path.lexists(self.path + ".3"))

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()
