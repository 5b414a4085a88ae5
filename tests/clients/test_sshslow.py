"""
What an SSH client that reads slowly may cost: the output waiting for its
channel's window is bounded by the listener's C{outbuf} (or one chunk of
device output), like a telnet client's, whatever the flood.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.clients.test_ssh import Harness, sent

CHUNK = 4096


class SlowReaderTests(SynchronousTestCase):
    def flood(self, outbuf: int, adjust: int, rounds: int = 300) -> tuple[int, bytes, int]:
        """
        A flood of C{CHUNK}-byte reads to a channel whose client opens its
        window by C{adjust} bytes after each: the most that ever waited in
        the channel, what was sent, and what the guard dropped.
        """
        h = Harness(f"outbuf={outbuf}+tcp:0")
        channel, conn = h.channel(window=0)
        channel.requestReceived(b"shell", b"")
        line = h.lines["con1"]
        most = 0
        for i in range(rounds):
            line.deviceDataReceived(bytes([0x30 + i % 10]) * CHUNK)
            most = max(most, len(channel.buf))
            channel.addWindowBytes(adjust)
            most = max(most, len(channel.buf))
        assert channel.guard is not None
        return most, sent(conn, channel), channel.guard.dropped

    def test_waitingForTheWindowBounded(self) -> None:
        """A client taking 1 KiB a chunk under a flood of 4 KiB chunks: at most outbuf (8 KiB) waits for its window."""
        most, data, dropped = self.flood(8192, 1024)
        self.assertLessEqual(most, 8192)
        # It got what its window let it have, in full; the rest was dropped.
        self.assertEqual(len(data), 300 * 1024)
        self.assertGreater(dropped, 300 * CHUNK - len(data) - 2 * 8192)

    def test_waitingBoundedByAChunk(self) -> None:
        """With outbuf smaller than a chunk of device output, at most that chunk waits for the window."""
        most, data, _ = self.flood(1024, 100)
        self.assertLessEqual(most, CHUNK)
        self.assertEqual(len(data), 300 * 100)

    def test_keepsUpNothingDropped(self) -> None:
        """A client whose window opens by as much as comes gets every byte, in order, nothing dropped."""
        most, data, dropped = self.flood(8192, CHUNK, rounds=50)
        self.assertEqual(data, b"".join(bytes([0x30 + i % 10]) * CHUNK for i in range(50)))
        self.assertEqual((dropped, most), (0, CHUNK))
