"""
Tests for line errors watched or not (PARMRK, an RFC 2217 client's
SET-LINESTATE-MASK) while a mover runs: what it moved under one marking is
not decoded under the other (L{serialgw.devices.floodread.FloodReading}).
"""

from __future__ import annotations

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
