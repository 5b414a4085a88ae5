"""
Tests for line errors watched or not (PARMRK, an RFC 2217 client's
SET-LINESTATE-MASK) while a mover runs: what it moved under one marking is
not decoded under the other (L{serialgw.devices.floodhandoff.FloodReading}).
"""

from __future__ import annotations

import os

from serialgw.devices.floodread import FloodReader
from tests.devices import waits
from tests.devices.test_floodread import Flooding


class MarkingChangeTests(Flooding):
    def test_bytesMovedUnmarkedStayWhole(self) -> None:
        """
        0xFF bytes moved before line errors are watched (not doubled by the
        tty) reach the line as sent, not halved as marked ones; what comes
        after is marked and undone.
        """
        reader = self.handOver()
        sent = len(self.sink.data)
        self.deviceSends(b"\xff\xffA\xff")
        self.runMover(reader)
        self.device.watchLineErrors(True)
        self.pipeReads(reader)
        self.assertEqual(b"".join(self.sink.data[sent:]), b"\xff\xffA\xff")
        self.fromDevice(b"\xff\xff")
        self.assertEqual(b"".join(self.sink.data[sent:]), b"\xff\xffA\xff\xff\xff")

    def test_bytesMovedMarkedAreUndone(self) -> None:
        """
        0xFF bytes moved while line errors were watched (doubled by the
        tty) reach the line undone when the watch ends before they are
        read, not doubled.
        """
        self.device.watchLineErrors(True)
        reader = self.handOver()
        sent = len(self.sink.data)
        self.deviceSends(b"\xffB\xff")
        self.runMover(reader)
        self.device.watchLineErrors(False)
        self.pipeReads(reader)
        self.assertEqual(b"".join(self.sink.data[sent:]), b"\xffB\xff")

    def pipeHolds(self, reader: FloodReader, size: int) -> None:
        """Wait until the mover has moved C{size} bytes into its pipe."""
        waits.holds(self, reader._pipeR, size, "the mover never moved it")

    def test_pausedPastThePauseOnce(self) -> None:
        """
        Paused (a lossless client behind), a marking change delivers what
        the pipe holds once; later changes in the same pause leave the pipe
        to the resume: each would otherwise have the mover refill it and the
        refill go past the pause, a client setting and clearing its mask
        again and again growing the lossless client's queue without bound.
        """
        reader = self.handOver()
        self.device.pauseReading()
        sent = len(self.sink.data)
        thread, results = self.moverThread(reader)
        os.write(self.master, b"first")
        self.pipeHolds(reader, 5)
        self.device.watchLineErrors(True)
        self.assertEqual(b"".join(self.sink.data[sent:]), b"first")
        os.write(self.master, b"second")
        self.pipeHolds(reader, 6)
        self.device.watchLineErrors(False)
        self.assertEqual(b"".join(self.sink.data[sent:]), b"first")
        self.device.resumeReading()
        self.fromPipe(reader, b"second")
        self.assertEqual(b"".join(self.sink.data[sent:]), b"firstsecond")
        self.device.close()
        waits.joined(self, thread, "the mover thread never ended")
        self.assertEqual(results, ["stopped"])
