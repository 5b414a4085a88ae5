"""
A file: listener's regular file on a disk that takes long over each write
(one throttling writes past its speed, a stalled network filesystem): it
holds every line while it writes, so after a few such writes in a row it
is not written for a while (its output counted), not written on at the
disk's pace.  (A console log is written off the reactor's thread: see
tests.clients.test_logwriter.)
"""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.local import FileClient
from serialgw.clients.slowdisk import SLOW_PAUSE, SLOW_WRITES
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice


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
