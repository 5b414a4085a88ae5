"""
A file the gateway writes on its one thread (a C{file:} listener's
regular file; a console log is written by a thread of its own, see
L{serialgw.clients.logwriter}) on a disk that takes long over each write (one
throttling writes past its speed, a stalled network filesystem) holds every
line while it writes: each write delayed 150 ms held them 150 ms a chunk of
output.  L{SlowDisk} times the writes: SLOW_WRITES in a row taking
SLOW_WRITE seconds or more pause the file for SLOW_PAUSE seconds (doubling
up to SLOW_PAUSE_MAX while it stays slow), its output meanwhile dropped and
counted by its owner, as on a full disk.  A write that never returns (a
hard-mounted NFS server gone) still holds every line until it does.
"""

from __future__ import annotations

from typing import Any, Optional

SLOW_WRITE = 0.1
SLOW_WRITES = 3
SLOW_PAUSE = 10.0
SLOW_PAUSE_MAX = 160.0


class SlowDisk:
    """One file's slow writes in a row, and until when it is not written."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._inARow = 0
        self._pause = SLOW_PAUSE
        self._until: Optional[float] = None

    def paused(self) -> bool:
        """Whether the file is not to be written now (its pause is not over)."""
        if self._until is None:
            return False
        now = self.clock.seconds()
        if now < self._until <= now + SLOW_PAUSE_MAX:
            return True  # (a pause longer than its length ahead: the wall clock stepped back, it ends)
        self._until = None
        return False

    def timed(self, took: float) -> Optional[float]:
        """A write took C{took} seconds; the pause that begins now (its seconds), if it was the last slow one allowed."""
        if took < SLOW_WRITE:
            self._inARow, self._pause = 0, SLOW_PAUSE
            return None
        self._inARow += 1
        if self._inARow < SLOW_WRITES:
            return None
        self._inARow -= 1  # (after the pause, one more slow write pauses it again)
        pause = self._pause
        self._until = self.clock.seconds() + pause
        self._pause = min(pause * 2, SLOW_PAUSE_MAX)
        return pause
