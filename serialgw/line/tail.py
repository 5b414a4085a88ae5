"""
The newest bytes of a stream, held for a client that cannot take them now
(an output guard's drop queue, a replay): a queue of chunks with byte
accounting, the oldest dropped past a bound.
"""

from __future__ import annotations

from collections import deque

# The chunks of every empty tail until it is given some: an empty deque
# costs a 64-slot block (about 760 bytes), and most tails (a line's parked
# tail, a client's drop queue, a quiet line's backlog) stay empty.  Never
# added to: a tail takes a deque of its own first (see _own).
_NONE: deque[bytes | bytearray] = deque()


class Tail:
    """
    The newest bytes of a stream, at most the size asked: a queue of chunks
    with byte accounting.  Adding a chunk costs O(1) amortised whatever is
    already held (no copy of the held bytes): whole old chunks are let go,
    and only the oldest one is cut, by an offset (C{_head}) into it.  Small
    chunks are gathered into one (up to C{CHUNK} bytes), so however small
    the chunks, at most two are kept per C{CHUNK} bytes held.  Memory: the
    bytes held plus the cut-off head of the oldest chunk (less than that
    chunk).  C{dropped} counts exactly what was let go.
    """

    # Below this, chunks are copied (gathered); a pty read is 4095 bytes,
    # and copying it for every stuck client was most of their cost.
    CHUNK = 1024

    __slots__ = ("_chunks", "_gathering", "_head", "_size", "dropped")

    def __init__(self) -> None:
        # The oldest first; bytes (shared with the caller, who may hand the
        # same bytes to many tails) or bytearrays that gathered small
        # chunks.  The newest, while it is such a bytearray under CHUNK
        # bytes, is also _gathering: the next small chunk goes into it.
        # (The newest chunk holds the newest byte: it is never let go
        # while others stay.)
        self._chunks = _NONE
        self._gathering: bytearray | None = None
        self._head = 0
        self._size = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._size

    def _own(self) -> deque[bytes | bytearray]:
        """The chunks, in a deque of this tail's own (not the shared empty one)."""
        chunks = self._chunks
        if chunks is _NONE:
            chunks = self._chunks = deque()
        return chunks

    def add(self, data: bytes, size: int) -> None:
        """Keep C{data} as the newest bytes; let go of what is past C{size}."""
        length = len(data)
        if length >= size:
            # It alone fills the tail: all held before goes, and its oldest part.
            if length:
                self.dropped += self._size + length - size
                self._chunks = deque((bytes(data[length - size:]),)) if size else _NONE
                self._gathering = None
                self._head = 0
                self._size = size
            return
        chunks = self._chunks
        if chunks is _NONE:
            chunks = self._chunks = deque()
        if length >= self.CHUNK:
            chunks.append(bytes(data))
            self._gathering = None
        else:
            gathering = self._gathering
            if gathering is not None and len(gathering) < self.CHUNK:
                gathering += data
            else:
                self._gathering = gathering = bytearray(data)
                chunks.append(gathering)
        held = self._size + length
        if held <= size:
            self._size = held
        else:
            self._trim(held, size)

    def _trim(self, held: int, size: int) -> None:
        """Past the bound: let go of the oldest bytes, whole chunks first."""
        excess = held - size
        self.dropped += excess
        self._size = size
        chunks = self._chunks
        head = self._head + excess
        while head >= len(chunks[0]):
            head -= len(chunks.popleft())
        self._head = head

    def follow(self, other: Tail, count: int, size: int) -> None:
        """
        Add the newest C{count} bytes given to C{other}, as if each of its
        chunks had been added here with C{add(chunk, size)}: the same bytes
        kept and the same count dropped, but the chunks are shared with
        C{other}, not copied (only a chunk C{other} may still gather into,
        and a cut through a gathered one: under C{2 * CHUNK} bytes each).
        C{other} must hold at least C{min(count, size)} bytes; older ones it
        let go count as dropped here too.
        """
        if count <= 0:
            return
        keep = min(count, size)
        assert keep <= other._size, (keep, other._size)
        # The newest keep bytes of other: whole chunks, and the newest part
        # of one more (its live part if it is other's oldest).
        parts: list[bytes | bytearray] = []
        chunks = other._chunks
        need = keep
        index = len(chunks) - 1
        cut = 0
        while need:
            chunk = chunks[index]
            if chunk is other._gathering and len(chunk) < other.CHUNK:
                chunk = bytes(chunk)  # other may still add to it
            if need >= len(chunk) and index:
                parts.append(chunk)
                need -= len(chunk)
                index -= 1
            else:
                parts.append(chunk)
                cut = len(chunk) - need
                need = 0
        parts.reverse()
        self._gathering = None  # the next small chunk goes after these
        if keep == size:
            # They fill this tail: all held before goes; the oldest part is
            # an offset into a shared chunk.
            self.dropped += self._size + count - size
            self._chunks = deque(parts) if size else _NONE
            self._head = cut if size else 0
            self._size = size
            return
        if cut:
            # keep == count: the cut is where other was at a chunk's end,
            # so it is inside a gathered chunk (small): copy its part.
            with memoryview(parts[0]) as view:
                parts[0] = bytes(view[cut:])
        self._own().extend(parts)
        held = self._size + keep
        if held <= size:
            self._size = held
        else:
            self._trim(held, size)

    def newest(self, size: int) -> bytes:
        """The last C{size} bytes (fewer if fewer came)."""
        need = min(size, self._size)
        if need <= 0:
            return b""
        chunks = self._chunks
        parts: list[bytes | bytearray] = []
        # The newest chunks whole, then the newest part of one more (for
        # the oldest chunk, its live part: need is at most that).
        index = len(chunks) - 1
        while need >= len(chunks[index]) and index:
            parts.append(chunks[index])
            need -= len(chunks[index])
            index -= 1
        parts.reverse()
        if need:
            chunk = chunks[index]
            with memoryview(chunk) as view:
                return b"".join([view[len(chunk) - need:], *parts])
        return b"".join(parts)

    def take(self, size: int) -> bytes:
        """The last C{size} bytes; all is let go (what is older counts as dropped)."""
        data = self.newest(size)
        self.dropped += self._size - len(data)
        self._chunks = _NONE
        self._gathering = None
        self._head = 0
        self._size = 0
        return data
