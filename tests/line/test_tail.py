"""
L{serialgw.line.tail.Tail}: the newest bytes of a stream for a client that is
behind (and the replay backlog).  Exact bytes and counts whatever the chunk
sizes, and a chunk costs the same whatever is already held: a client that
never reads must not cost every chunk a copy of its whole buffer.
"""

from __future__ import annotations

import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.tail import Tail

KiB = 1024


def stream(length: int) -> bytes:
    """Bytes that differ from their neighbours, so a misplaced cut shows."""
    return bytes((i * 7 + i // 251) % 256 for i in range(length))


class TailTests(SynchronousTestCase):
    """The newest C{size} bytes, exactly, with an exact count of what was let go."""

    def feed(self, tail: Tail, data: bytes, cuts: list[int], size: int) -> None:
        """Add C{data} in pieces of the lengths in C{cuts}, cycled."""
        i = step = 0
        while i < len(data):
            n = cuts[step % len(cuts)]
            tail.add(data[i:i + n], size)
            i += n
            step += 1

    def test_tinyChunks(self) -> None:
        """One- to three-byte chunks: exactly the newest bytes are kept and everything older is counted as dropped."""
        data = stream(100_000)
        tail = Tail()
        self.feed(tail, data, [1, 2, 3], 10_000)
        self.assertEqual((len(tail), tail.dropped), (10_000, 90_000))
        self.assertEqual(tail.newest(10_000), data[-10_000:])
        self.assertEqual(tail.newest(7), data[-7:])
        self.assertEqual(tail.take(10_000), data[-10_000:])
        self.assertEqual((len(tail), tail.dropped, tail.newest(10)), (0, 90_000, b""))

    def test_mixedChunks(self) -> None:
        """Chunks of every size around the gathering size and the bound: the newest bytes, exactly, after each one."""
        data = stream(300_000)
        size = 20_000
        cuts = [1, 4095, 4096, 4097, 5, 19_999, 20_000, 20_001, 2, 8192, 3]
        tail = Tail()
        i = step = 0
        while i < len(data):
            n = cuts[step % len(cuts)]
            tail.add(data[i:i + n], size)
            i += n
            step += 1
            kept = min(i, size)
            self.assertEqual((len(tail), tail.dropped), (kept, min(i, len(data)) - kept))
            self.assertEqual(tail.newest(size), data[max(0, min(i, len(data)) - size):i])
        self.assertEqual(tail.newest(12_345), data[-12_345:])

    def test_chunkBiggerThanBound(self) -> None:
        """A chunk bigger than the bound replaces all held: its newest bound bytes are kept, the rest counted."""
        tail = Tail()
        tail.add(b"abc", 10)
        tail.add(b"0123456789ABCDEF", 10)
        self.assertEqual((tail.newest(10), len(tail), tail.dropped), (b"6789ABCDEF", 10, 9))
        tail.add(b"xy", 10)
        self.assertEqual((tail.newest(10), tail.dropped), (b"89ABCDEFxy", 11))
        tail.add(b"Z" * 10, 10)
        self.assertEqual((tail.newest(100), tail.dropped), (b"Z" * 10, 21))

    def test_sameChunkTwice(self) -> None:
        """The same bytes object added again (one chunk handed to many clients, twice): both copies count, in order."""
        chunk = stream(5000)
        tail = Tail()
        for _ in range(3):
            tail.add(chunk, 8000)
        self.assertEqual(tail.newest(8000), (chunk * 3)[-8000:])
        self.assertEqual(tail.dropped, 7000)

    def test_takeCountsOlderAsDropped(self) -> None:
        """take(n) gives the newest n bytes; what it leaves behind is counted as dropped, and the tail starts empty."""
        tail = Tail()
        tail.add(b"hello ", 100)
        tail.add(b"world", 100)
        self.assertEqual(tail.take(5), b"world")
        self.assertEqual((len(tail), tail.dropped), (0, 6))
        tail.add(b"again", 100)
        self.assertEqual((tail.take(100), tail.dropped), (b"again", 6))

    def test_sizeZero(self) -> None:
        """A bound of zero keeps nothing and counts every byte; empty chunks change nothing."""
        tail = Tail()
        tail.add(b"abc", 0)
        tail.add(b"", 0)
        self.assertEqual((len(tail), tail.dropped, tail.newest(5), tail.take(5)), (0, 3, b"", b""))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(min_value=0, max_value=9000),
           st.lists(st.tuples(st.sampled_from([0, 1, 2, 99, 4095, 4096, 4097, 8191, 12000]),
                              st.booleans()), max_size=40))
    def test_sameAsTheWholeStream(self, size: int, steps: list[tuple[int, bool]]) -> None:
        """Any chunk sizes, with a take now and then: always the newest size bytes of what came since the last take, and every other byte counted as dropped."""
        tail = Tail()
        since = b""
        total = taken = 0
        for n, take in steps:
            data = stream(n + total % 7)[total % 7:]
            tail.add(data, size)
            since += data
            total += n
            if take:
                taken += len(tail.take(size))
                since = b""
            self.assertEqual(tail.newest(size), since[len(since) - min(size, len(since)):])
            self.assertEqual(len(tail), min(size, len(since)))
            self.assertEqual(tail.dropped, total - taken - len(tail))

    def test_chunksNotCopied(self) -> None:
        """Chunks of CHUNK bytes or more (a pty read: 4095) are kept as given, shared by every client they went to, not copied."""
        for length in (Tail.CHUNK, 4095, 4097):
            chunks = [stream(length - 1) + bytes([i]) for i in range(10)]
            tail = Tail()
            for chunk in chunks:
                tail.add(chunk, 3 * length)
            self.assertEqual(len(tail._chunks), 3)
            for kept, sent in zip(tail._chunks, chunks[-3:], strict=True):
                self.assertIs(kept, sent)


class TailCostTests(SynchronousTestCase):
    """
    What adding chunks to a full tail allocates (so at most copies),
    measured with tracemalloc: the same whether 64 KiB or 4 MiB is held.
    A single buffer trimmed from the front re-allocates (copies) all it
    holds every few chunks; this one does not.
    """

    def allocated(self, held: int, chunk: int, adds: int) -> tuple[int, int]:
        """
        Add C{adds} chunks of C{chunk} bytes to a full tail of C{held} bytes:
        the most allocated at once, and the most allocated at once beyond
        what is still allocated at the end (transient: copies).
        """
        data = [stream(chunk) + bytes([i % 256]) for i in range(adds)]
        tail = Tail()
        filler = stream(held)
        for i in range(0, held, 4096):
            tail.add(filler[i:i + 4096], held)
        self.assertEqual(len(tail), held)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for piece in data:
                tail.add(piece, held)
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        expected = b"".join(data)[-held:]
        self.assertEqual(tail.newest(held), filler[len(filler) - held + len(expected):] + expected)
        return peak - base, peak - current

    def test_bigChunksNothingAllocated(self) -> None:
        """200 chunks of 4 KiB (a pty read) into a full 64 KiB or 4 MiB tail: next to nothing allocated (they are kept as given)."""
        for held in (64 * KiB, 4096 * KiB):
            peak, _ = self.allocated(held, 4094, 200)
            self.assertLess(peak, 4 * KiB, held)

    def test_tinyChunksNoCopyOfHeld(self) -> None:
        """8000 chunks of 100 bytes into a full 64 KiB or 4 MiB tail: no allocation beyond one gathering chunk ever goes away again."""
        for held in (64 * KiB, 4096 * KiB):
            _, transient = self.allocated(held, 99, 8000)
            self.assertLess(transient, 8 * KiB, held)

    def test_tinyChunksMemoryBounded(self) -> None:
        """200 000 one-byte chunks into a 64 KiB tail: the tail holds 64 KiB in a handful of objects, not one per chunk."""
        tail = Tail()
        size = 64 * KiB
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for i in range(200_000):
                tail.add(b"%c" % (i % 256), size)
            held = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        self.assertEqual((len(tail), tail.dropped), (size, 200_000 - size))
        self.assertEqual(tail.newest(3), bytes([(200_000 - 3 + k) % 256 for k in range(3)]))
        self.assertLess(held, size + 16 * KiB)
        self.assertLessEqual(len(tail._chunks), 2 * size // Tail.CHUNK + 2)


class FollowTests(SynchronousTestCase):
    """L{Tail.follow}: another tail's newest bytes, as if each chunk had been added here, chunks shared."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(min_value=0, max_value=9000), st.integers(min_value=0, max_value=9000),
           st.lists(st.tuples(st.sampled_from([0, 1, 2, 99, 1023, 1024, 4095, 4096, 12000]),
                              st.sampled_from(["add", "follow", "take"])), max_size=40))
    def test_sameAsAddingEachChunk(self, size: int, extra: int, steps: list[tuple[int, str]]) -> None:
        """A follower catching up now and then holds the bytes, and counts the drops, of a tail given every chunk."""
        shared, follower, reference = Tail(), Tail(), Tail()
        total = since = 0
        for n, step in steps:
            if step == "add":
                data = stream(n + total % 7)[total % 7:]
                shared.add(data, size + extra)
                reference.add(data, size)
                total += n
            elif step == "follow":
                follower.follow(shared, total - since, size)
                since = total
            else:
                follower.follow(shared, total - since, size)
                since = total
                self.assertEqual(follower.take(size), reference.take(size))
            if step != "add":
                self.assertEqual((follower.newest(size), len(follower), follower.dropped),
                                 (reference.newest(size), len(reference), reference.dropped))
                # Caught up: its own small chunks go after the shared ones.
                follower.add(b"!", size)
                reference.add(b"!", size)

    def test_chunksShared(self) -> None:
        """Chunks of CHUNK bytes or more are the shared tail's own objects, the oldest cut by an offset."""
        chunks = [stream(4094) + bytes([i]) for i in range(5)]
        shared, follower = Tail(), Tail()
        for chunk in chunks:
            shared.add(chunk, 3 * 4095)
        follower.follow(shared, 5 * 4095, 2 * 4095 + 10)
        self.assertEqual(list(follower._chunks), chunks[-3:])
        for kept, sent in zip(follower._chunks, chunks[-3:], strict=True):
            self.assertIs(kept, sent)
        self.assertEqual((follower._head, len(follower), follower.dropped), (4085, 2 * 4095 + 10, 3 * 4095 - 10))

    def test_gatheringCopied(self) -> None:
        """The small chunk the shared tail still gathers into is copied: what it gathers next does not show up in the follower."""
        shared, follower = Tail(), Tail()
        shared.add(b"abc", 100)
        follower.follow(shared, 3, 100)
        shared.add(b"def", 100)
        self.assertEqual((follower.newest(100), shared.newest(100)), (b"abc", b"abcdef"))
        follower.follow(shared, 3, 100)
        self.assertEqual(follower.newest(100), b"abcdef")

    def test_emptyTailsShareNothing(self) -> None:
        """Empty tails hold no deque of their own (one shared empty one), yet bytes added to one, by each way of adding, never show up in another."""
        tails = [Tail() for _ in range(5)]
        self.assertIs(tails[0]._chunks, tails[1]._chunks)
        tails[0].add(b"small", 100)
        tails[1].add(b"x" * 2 * Tail.CHUNK, 100)
        tails[2].follow(tails[0], 5, 100)
        tails[3].add(b"abc", 100)
        self.assertEqual(tails[3].take(100), b"abc")
        tails[3].add(b"again", 100)
        self.assertEqual([t.newest(100) for t in tails], [b"small", b"x" * 100, b"small", b"again", b""])
        self.assertEqual([t.take(100) for t in tails], [b"small", b"x" * 100, b"small", b"again", b""])
        self.assertEqual([len(Tail()), Tail().newest(10)], [0, b""])
        tails[4].add(b"last", 100)
        self.assertEqual([t.newest(100) for t in tails], [b"", b"", b"", b"", b"last"])

    def test_emptyTailSmall(self) -> None:
        """An empty tail (a line's parked tail, a client's drop queue, a quiet line's backlog) costs under 200 bytes, not an empty deque's block."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tails = [Tail() for _ in range(100)]
            cost = (tracemalloc.get_traced_memory()[0] - before) / len(tails)
        finally:
            tracemalloc.stop()
        self.assertLess(cost, 200)
