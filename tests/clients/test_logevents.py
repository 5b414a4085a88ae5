"""
A console log's events (log-events: serialgw's or conserver's form, or
off) and conserver's marks (log-mark), under a Clock: where they go in the
output, their bounds, one timer for a farm's marks.
"""

from __future__ import annotations

import os
import time

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.logmarks import TICK_SLICE, nextMark, ticks
from serialgw.clients.raw import RawClient
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice

CUT = b" (inside a line of output: it goes on below)"


class _LogCase(SynchronousTestCase):
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
        self.clock.advance(1_800_000_000)  # 2027-01-15T08:00:00Z, a Friday
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.path = self.mktemp()

    def log(self, **kw: object) -> ConsoleLog:
        kw.setdefault("format", "%H:%M:%S ")
        return ConsoleLog(self.line, LogSpec(self.path, **kw), self.clock)  # type: ignore[arg-type]

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()


class LogEventTests(_LogCase):

    def test_eventWaitsForTheLineToEnd(self) -> None:
        """An event inside a line of output goes right after that line's end, never in its middle."""
        log = self.log()
        self.line.deviceDataReceived(b"[  OK  ] Started ")
        self.line.recordEvent("device up")
        self.clock.advance(0.5)
        self.line.deviceDataReceived(b"Journal.\r\nnext")
        log.close()
        self.assertEqual(self.read(), b"08:00:00 [  OK  ] Started Journal.\r\n08:00:00 [serialgw: device up]\n"
                                      b"08:00:00 next")

    def test_quietLineCutAndSaidSo(self) -> None:
        """A line that stays unended (a prompt) is cut after a second: the event's line says the line goes on below."""
        log = self.log()
        self.line.deviceDataReceived(b"login: ")
        self.line.recordEvent("10.0.0.2:5000 attached as writer")
        self.clock.advance(0.999)
        self.assertEqual(self.read(), b"08:00:00 login: ")
        self.clock.advance(0.001)
        self.clock.advance(2)
        self.line.deviceDataReceived(b"root\r\n")
        log.close()
        self.assertEqual(self.read(), b"08:00:00 login: \n08:00:00 [serialgw: 10.0.0.2:5000 attached as writer]" + CUT
                         + b"\n08:00:03 root\r\n")

    def test_conserverForm(self) -> None:
        """log-events = conserver: conserver's [-- TEXT -- DATE] (its ctime), after the stamp (none here)."""
        log = self.log(format="", events="conserver")
        self.line.recordEvent("alice (10.0.0.2:5000) attached as writer")
        log.close()
        self.assertEqual(self.read(), b"[-- alice (10.0.0.2:5000) attached as writer -- Fri Jan 15 08:00:00 2027]\n")

    def test_eventsOff(self) -> None:
        """log-events = off (or false): device output only; true is serialgw's form."""
        log = self.log(events=False)
        self.line.recordEvent("device up")
        self.line.deviceDataReceived(b"ok\n")
        log.close()
        self.assertEqual(self.read(), b"08:00:00 ok\n")
        self.assertEqual(LogSpec("/x", events=True).events, "serialgw")  # type: ignore[arg-type]

    def test_badEventsRefusedQuoted(self) -> None:
        """Another log-events is refused, quoted as typed, naming the key (the file's error names its line)."""
        for bad in ("Conserver", "on", 1, ""):
            with self.assertRaises(ConfigError) as e:
                LogSpec("/x", events=bad)  # type: ignore[arg-type]
            self.assertTrue(str(e.exception).startswith("log-events must be one of 'serialgw', 'conserver', 'off'"))
        with self.assertRaises(ConfigError) as e:
            LogSpec("/x", events="a\x1b")
        self.assertTrue(str(e.exception).endswith("not 'a\\x1b'"), str(e.exception))

    def test_controlCharactersEscaped(self) -> None:
        """A name with a newline or ESC in it is one line in the log, shown escaped: it cannot forge lines."""
        log = self.log(format="")
        self.line.recordEvent("ops (x\n[serialgw: root attached]\x1b[2J) attached")
        log.close()
        self.assertEqual(self.read(), b"[serialgw: ops (x\\n[serialgw: root attached]\\x1b[2J) attached]\n")

    def test_settingsChangeLogged(self) -> None:
        """A client's settings that change the port are an event; asking for what is in effect is none."""
        log = self.log(format="")
        client = RawClient(self.line)
        client.makeConnection(StringTransport())
        self.line.clientSettings(client, SerialSettings(9600))
        self.line.clientSettings(client, SerialSettings(9600))
        log.close()
        self.assertEqual(self.read(), b"[serialgw: 192.168.1.1:54321 attached as writer]\n"
                                      b"[serialgw: 192.168.1.1:54321 set 9600,8N1; in effect: 9600,8N1]\n")

    def test_floodBounded(self) -> None:
        """1000 events a second: 30 written in 10 s, the rest counted in one line once the window is over."""
        log = self.log(format="")
        for i in range(10_000):
            self.line.recordEvent(f"event {i}")
            if i % 1000 == 999:
                self.clock.advance(1)
        text = self.read()
        self.assertEqual(text.count(b"\n"), 31)
        self.assertTrue(text.endswith(b"[serialgw: event 29]\n[serialgw: 9970 more event(s) not written (more than 30"
                                      b" in 10 s)]\n"), text[-200:])
        log.close()

    def test_countWrittenAtClose(self) -> None:
        """Events left out when the log closes (a stop) are counted in its last line, not lost unsaid."""
        log = self.log(format="", events="conserver")
        for i in range(31):
            self.line.recordEvent(f"e{i}")
        log.close()
        self.assertTrue(self.read().endswith(b"[-- e29 -- Fri Jan 15 08:00:00 2027]\n[-- 1 more event(s) not written "
                                             b"(more than 30 in 10 s) -- Fri Jan 15 08:00:00 2027]\n"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rotationNeverSplitsAnEventLine(self) -> None:
        """An event that would pass log-max-size goes whole into the new file."""
        log = self.log(format="", maxSize=40, daily=False, keep=1)
        self.line.deviceDataReceived(b"x" * 30 + b"\n")
        self.line.recordEvent("10.0.0.2:5000 attached as writer")
        log.close()
        with open(self.path + ".1", "rb") as f:
            self.assertEqual(f.read(), b"x" * 30 + b"\n")
        self.assertEqual(self.read(), b"[serialgw: 10.0.0.2:5000 attached as writer]\n")

    def test_reopenedByAReloadTakesOver(self) -> None:
        """A log opened anew on the same file (a reload) inside a line: the line goes on unstamped, the event waiting after it."""
        old = self.log()
        self.line.deviceDataReceived(b"login: ")
        self.line.recordEvent("device up")
        new = self.log(events="conserver")
        old.close()
        self.line.deviceDataReceived(b"root\r\n")
        new.close()
        self.assertEqual(self.read(), b"08:00:00 login: root\r\n08:00:00 [serialgw: device up]\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reloadAfterCopytruncateStamps(self) -> None:
        """A reload's log opened on the file copytruncate emptied inside a line: the rest of the line starts it, stamped."""
        old = self.log()
        self.line.deviceDataReceived(b"login: ")
        os.truncate(self.path, 0)
        new = self.log(events="conserver")
        old.close()
        self.line.deviceDataReceived(b"root\r\n")
        new.close()
        self.assertEqual(self.read(), b"08:00:00 root\r\n")

    def test_cutEventStartsTheNewFile(self) -> None:
        """A held event cutting a line past log-max-size: the new file starts with the event's line, no empty line; the cut's line break ends the old file."""
        log = self.log(format="", maxSize=80, daily=False, keep=1)
        self.line.deviceDataReceived(b"x" * 15)  # + the cut's 67 bytes: past 80
        self.line.recordEvent("device up")
        self.clock.advance(1)
        self.line.deviceDataReceived(b"yy\n")
        log.close()
        with open(self.path + ".1", "rb") as f:
            self.assertEqual(f.read(), b"x" * 15 + b"\n")
        self.assertEqual(self.read(), b"[serialgw: device up]" + CUT + b"\nyy\n")

    def test_diskFullCountsHeldLines(self) -> None:
        """Events and marks that find the disk full are counted in the gap's line, not written in part."""
        log = self.log(format="", mark=1)
        full = [False]
        realWrite = os.write

        def write(fd: int, data: bytes) -> int:
            if fd == log._fd and full[0]:
                raise OSError(28, "No space left on device")
            return realWrite(fd, data)

        self.patch(os, "write", write)
        self.line.deviceDataReceived(b"a\n")
        full[0] = True
        self.line.recordEvent("device down (hung up)")  # 34 bytes
        self.clock.advance(60)  # the mark: 38 bytes
        full[0] = False
        self.line.deviceDataReceived(b"b\n")
        log.close()
        self.assertEqual(self.read(), b"a\n[serialgw: 72 bytes lost: No space left on device]\nb\n")

    def test_longEventBounded(self) -> None:
        """An event's text is cut at 1000 characters: one line, bounded whatever names it."""
        log = self.log(format="")
        self.line.recordEvent("x" * 5000)
        log.close()
        self.assertEqual(self.read(), b"[serialgw: " + b"x" * 1000 + b"...]\n")


class MarkTests(_LogCase):
    def test_marksOnBoundaries(self) -> None:
        """log-mark = 15: conserver's mark at :15, :30, ... of the hour, quiet line or not, each on its line."""
        log = self.log(format="", mark=15, events="off")
        self.clock.advance(14 * 60)
        self.line.deviceDataReceived(b"busy\n")
        self.clock.advance(60)
        self.clock.advance(15 * 60)
        log.close()
        self.assertEqual(self.read(), b"busy\n[-- MARK -- Fri Jan 15 08:15:00 2027]\n"
                                      b"[-- MARK -- Fri Jan 15 08:30:00 2027]\n")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_markInsideALineWaits(self) -> None:
        """A mark due inside a line of output waits for its end (at most a second), as an event does."""
        log = self.log(mark=1)
        self.clock.advance(59.5)
        self.line.deviceDataReceived(b"Loading")
        self.clock.advance(0.5)
        self.line.deviceDataReceived(b"...\n")
        log.close()
        self.assertEqual(self.read(), b"08:00:59 Loading...\n08:01:00 [-- MARK -- Fri Jan 15 08:01:00 2027]\n")

    def test_uneven(self) -> None:
        """A period that divides no hour (7 minutes) counts from the minute the log opened; a clock jump makes one mark."""
        self.clock.advance(30)
        log = self.log(format="", mark=7)
        self.clock.advance(7 * 60 - 30)
        self.clock.advance(3600)
        log.close()
        self.assertEqual(self.read(), b"[-- MARK -- Fri Jan 15 08:07:00 2027]\n[-- MARK -- Fri Jan 15 09:07:00 2027]\n")
        self.assertEqual(nextMark(1_800_000_000.5, 7200), 1_800_000_000 + 7200 - 8 * 3600 % 7200)

    def test_logCutOffStopsMarking(self) -> None:
        """A log the line cut off after a failure gets no more marks, and its timer ends."""
        log = self.log(format="", mark=1)
        self.addCleanup(log.close)  # (its owner's to close: the line has let it go)

        def broken(text: str) -> None:
            raise TypeError("a log that cannot stamp")

        log.event = broken  # type: ignore[method-assign]
        self.line.recordEvent("device up")
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.clock.advance(60)
        self.assertEqual((self.read(), self.clock.getDelayedCalls()), (b"", []))

    def test_farmIsOneTimer(self) -> None:
        """1000 logs marked each minute: one delayed call, the marks written TICK_SLICE a turn."""
        t = ticks(self.clock)
        fire = t._fire
        made: list[int] = []

        def counted() -> None:
            before = len(self.clock.getDelayedCalls())
            fire()
            made.append(before)

        t._fire = counted  # type: ignore[method-assign]
        directory = self.mktemp()
        os.mkdir(directory)
        logs = [ConsoleLog(self.line, LogSpec(os.path.join(directory, str(i)), format="", mark=1), self.clock)
                for i in range(1000)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(60)
        self.assertEqual(len(made), -(-1000 // TICK_SLICE))
        for consoleLog in logs:
            consoleLog.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        for i in (0, 999):
            with open(os.path.join(directory, str(i)), "rb") as f:
                self.assertEqual(f.read(), b"[-- MARK -- Fri Jan 15 08:01:00 2027]\n")

    def test_absurdMarks(self) -> None:
        """log-mark below 0 or past a week is refused, naming the key."""
        for bad in (-1, 10081, 10**30):
            with self.assertRaises(ConfigError) as e:
                LogSpec("/x", mark=bad)
            self.assertTrue(str(e.exception).startswith("log-mark must be 0 (no marks) to 10080 minutes"))
