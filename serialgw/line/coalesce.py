"""
Device output held for fewer, larger packets (ser2net's chardelay): sent
C{low} seconds after the last byte, at most C{high} seconds after the first
one held, at once when the C{on} bytes arrive, or when L{HOLD_LIMIT} bytes
are held.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall

# The most output held: then it goes at once.  A larger packet saves
# nothing more, and a flood (a pty, a remote console) held for MAX (up to
# 10 s) was all held, then handed to every client in one piece past its
# outbuf: 1.6 GB of RSS measured with coalesce 10000,10000 on a pty flood.
HOLD_LIMIT = 64 * 1024


class Coalescer:
    """Holds what L{hold} is given and hands it, joined, to C{send}."""

    def __init__(self, clock: Any, send: Callable[[bytes], None]) -> None:
        self.clock = clock
        self.send = send
        self.settings: Optional[tuple[float, float, bytes]] = None
        self._held: list[bytes] = []
        self._heldSize = 0
        # The newest held bytes, one fewer than the send-on string has.
        self._recent = b""
        self._flushCall: Optional[IDelayedCall] = None
        self._firstHeld = 0.0

    def configure(self, low: float, high: float, on: bytes = b"") -> None:
        """
        New times (a reload); what is held goes as the timer set before
        says, or at once when coalescing stops (the output after it, no
        longer held, would otherwise overtake it).
        """
        self.settings = (low, high, on) if low > 0 else None
        if self.settings is None:
            self.flush()

    def hold(self, data: bytes) -> None:
        assert self.settings is not None and self.clock is not None
        low, high, on = self.settings
        held = self._held
        if on:
            # The string may be cut between reads: the end of what is held counts too.
            n = len(on) - 1
            if on in data or (self._recent and on in self._recent + data[:n]):
                held.append(data)
                self.flush()
                return
            if n:
                self._recent = (self._recent + data[-n:])[-n:]
        held.append(data)
        self._heldSize += len(data)
        if self._heldSize >= HOLD_LIMIT:
            self.flush()
            return
        now = self.clock.seconds()
        if self._flushCall is None:
            self._firstHeld = now
            self._flushCall = self.clock.callLater(low, self.flush)
        elif now + low <= self._firstHeld + high:
            self._flushCall.reset(low)

    def flush(self) -> None:
        """Send what is held now."""
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self._flushCall = None
        data, self._held, self._heldSize, self._recent = b"".join(self._held), [], 0, b""
        if data:
            self.send(data)
