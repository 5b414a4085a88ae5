"""
Whose bytes a local device's write queue holds (L{Sources}): a client
whose write right a reload takes away has what it typed and the device
has not taken yet dropped, not written after all (L{IDevice.dropQueuedFrom}).
"""

from __future__ import annotations

from collections import deque
from typing import Any

# Held while a break or a settings change waits: (whose, bytes), in order.
Held = list[tuple[Any, bytes]]


class Sources:
    """
    The queue's bytes by whose they are, in order: runs of C{[source,
    length]} whose lengths add up to the queue's (C{None}: the line's own,
    an open-string, what was held while the device first opened).  Each
    run is one object however many writes of one source it joins, and
    bytes taken from the front cost O(1) amortised: a flood of one
    client's typing is one run.  Runs past the first count
    L{serialgw.devices.device.PIECE_COST} each against the queue's
    high-water mark: writers by turns, a byte each, are paused after about
    a thousand runs, not 64 Ki of them.
    """

    def __init__(self) -> None:
        self.runs: deque[list[Any]] = deque()

    def add(self, source: Any, size: int) -> None:
        """C{size} bytes of C{source}'s were queued at the end."""
        if not size:
            return
        runs = self.runs
        if runs and runs[-1][0] is source:
            runs[-1][1] += size
        else:
            runs.append([source, size])

    def taken(self, size: int) -> None:
        """C{size} bytes were written from the front."""
        runs = self.runs
        while size and runs:
            run = runs[0]
            if run[1] > size:
                run[1] -= size
                return
            size -= run[1]
            runs.popleft()

    def clear(self) -> None:
        self.runs.clear()

    def cut(self, out: bytearray, source: Any) -> int:
        """Remove C{source}'s bytes from C{out} (the queue these runs describe), in place; how many."""
        if source is None or not any(who is source for who, _ in self.runs):
            return 0
        kept, runs, at, cut = bytearray(), deque[list[Any]](), 0, 0
        for who, size in self.runs:
            if who is source:
                cut += size
            else:
                kept += out[at:at + size]
                if runs and runs[-1][0] is who:
                    runs[-1][1] += size
                else:
                    runs.append([who, size])
            at += size
        out[:] = kept
        self.runs = runs
        return cut


def joined(held: Held) -> Held:
    """C{held} with each source's pieces in a row joined: written as they were when no source was kept (one write)."""
    runs: list[tuple[Any, list[bytes]]] = []
    for who, data in held:
        if runs and runs[-1][0] is who:
            runs[-1][1].append(data)
        else:
            runs.append((who, [data]))
    return [(who, b"".join(pieces)) for who, pieces in runs]


def cutHeld(held: Held, source: Any, before: int) -> tuple[Held, int, int]:
    """C{held} without C{source}'s pieces; how many bytes they were, and how many pieces were left of the first C{before}."""
    if source is None:
        return held, 0, before
    kept = [(who, data) for who, data in held if who is not source]
    cut = sum(len(data) for who, data in held if who is source)
    return kept, cut, sum(1 for who, _ in held[:before] if who is not source)
