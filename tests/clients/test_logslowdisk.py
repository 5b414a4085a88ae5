"""
A console log on a disk that takes long over each write (one throttling
writes past its speed, a stalled network filesystem): it holds every line
while it writes, so after a few such writes in a row it is not written for
a while (its output counted and the gap marked, as on a full disk), not
written on at the disk's pace.
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.clients.slowdisk import SLOW_PAUSE, SLOW_WRITE, SLOW_WRITES
from serialgw.config.listeners import parseListener
from serialgw.config.specs import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice


class SlowDiskTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        self.log = ConsoleLog(self.line, LogSpec(self.mktemp(), format=""), self.clock)
        self.addCleanup(self.log.close)
        self.writes = 0
        self.delay = 0.15

        def disk(fd: int, data: bytes) -> int:
            self.writes += 1
            self.clock.rightNow += self.delay  # (the time passes inside the write: no call runs meanwhile)
            return os.write(fd, data)

        self.log._osWrite = disk  # type: ignore[method-assign]

    def read(self) -> bytes:
        with open(self.log.spec.path, "rb") as f:
            return f.read()

    def test_slowWritesPauseTheLog(self) -> None:
        """SLOW_WRITES writes in a row that take SLOW_WRITE or more: no write for SLOW_PAUSE s, the output counted, the gap marked where it resumes."""
        with capturedLogs() as events:
            for i in range(SLOW_WRITES + 5):
                self.line.deviceDataReceived(b"%d\n" % i)
            self.assertEqual((self.writes, self.read()), (SLOW_WRITES, b"0\n1\n2\n"))
            self.clock.advance(SLOW_PAUSE - 1)
            self.line.deviceDataReceived(b"late\n")
            self.assertEqual(self.writes, SLOW_WRITES)
            self.clock.advance(1)
            self.delay = 0.0
            self.line.deviceDataReceived(b"back\n")
        self.assertEqual(self.read(), b"0\n1\n2\n[serialgw: 15 bytes lost: the disk was slow (a write took 0.15 s)]\nback\n")
        self.assertEqual([formatEvent(e) for e in events], [
            f"web1: log {self.log.spec.path} is slow: 3 writes in a row took 0.1 s or more (the last 0.15 s), holding "
            "every line meanwhile; console output is not logged for 10 s",
            f"web1: log {self.log.spec.path} written again; 15 bytes were not logged",
        ])

    def test_pauseWithoutOutputMarksNoGap(self) -> None:
        """A pause during which no output came ends with no gap line (nothing was lost): a line cut by the pause goes on as it was."""
        for chunk in (b"0\n", b"1\n", b"2"):
            self.line.deviceDataReceived(chunk)
        self.clock.advance(SLOW_PAUSE)
        self.delay = 0.0
        self.line.deviceDataReceived(b" more\nback\n")
        self.assertEqual((self.writes, self.read()), (SLOW_WRITES + 1, b"0\n1\n2 more\nback\n"))

    def test_staysSlowPausesLonger(self) -> None:
        """A disk still slow after the pause: one more slow write pauses the log again, twice as long."""
        for i in range(SLOW_WRITES):
            self.line.deviceDataReceived(b"%d\n" % i)
        self.clock.advance(SLOW_PAUSE)
        self.line.deviceDataReceived(b"a\n")
        self.assertEqual(self.writes, SLOW_WRITES + 1)
        self.clock.advance(2 * SLOW_PAUSE - 1)
        self.line.deviceDataReceived(b"b\n")
        self.assertEqual(self.writes, SLOW_WRITES + 1)
        self.clock.advance(1)
        self.line.deviceDataReceived(b"c\n")
        self.assertEqual(self.writes, SLOW_WRITES + 2)

    def test_slowNowAndThenWrites(self) -> None:
        """Slow writes that are not SLOW_WRITES in a row (a moment's load) pause nothing: every byte is written."""
        for i in range(10):
            self.delay = SLOW_WRITE if i % SLOW_WRITES else 0.0
            self.line.deviceDataReceived(b"%d\n" % i)
        self.assertEqual((self.writes, self.read()), (10, b"".join(b"%d\n" % i for i in range(10))))

    def test_clockSteppedBackEndsThePause(self) -> None:
        """The wall clock stepped back an hour during a pause (NTP setting a clock that ran ahead): the pause ends, not an hour later."""
        for i in range(SLOW_WRITES):
            self.line.deviceDataReceived(b"%d\n" % i)
        self.delay = 0.0
        self.clock.rightNow -= 3600
        self.line.deviceDataReceived(b"back\n")
        self.assertEqual((self.writes, self.read()),
                         (SLOW_WRITES + 1, b"0\n1\n2\nback\n"))  # (nothing came meanwhile: no gap)


class SlowFileTests(SynchronousTestCase):
    def test_slowFileListenerPaused(self) -> None:
        """A file: listener's regular file on a slow disk: SLOW_WRITES slow writes, then its output dropped for SLOW_PAUSE s, counted when it writes again."""
        clock = Clock()
        line = Line("web1", RecordingDevice(), clock=clock)
        path = os.path.abspath(self.mktemp())
        client = FileClient(line, path, reactor, parseListener(f"raw+file:{path}"))
        self.addCleanup(client.close)
        client._slow.clock = clock
        writes: list[bytes] = []
        delay = [0.2]

        def disk(fd: int, data: bytes) -> int:
            writes.append(data)
            clock.rightNow += delay[0]
            return os.write(fd, data)

        client._osWrite = disk  # type: ignore[method-assign]
        with capturedLogs() as events:
            for i in range(SLOW_WRITES + 2):
                line.deviceDataReceived(b"%d\n" % i)
            self.assertEqual(writes, [b"0\n", b"1\n", b"2\n"])
            clock.advance(SLOW_PAUSE)
            delay[0] = 0.0
            line.deviceDataReceived(b"back\n")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"0\n1\n2\nback\n")
        self.assertEqual([formatEvent(e) for e in events if e.get("log_namespace") == "serialgw.clients.local"], [
            f"web1: {path} is slow: 3 writes in a row took 0.1 s or more (the last 0.20 s), holding every line "
            "meanwhile; output is dropped for 10 s",
            f"web1: writing {path} again; 4 bytes were lost",
        ])
