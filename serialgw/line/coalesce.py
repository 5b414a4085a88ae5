"""
Device output held for fewer, larger packets (ser2net's chardelay): sent
C{low} seconds after the last byte, at most C{high} seconds after the first
one held, or at once when the C{on} bytes arrive.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall


class Coalescer:
    """Holds what L{hold} is given and hands it, joined, to C{send}."""

    def __init__(self, clock: Any, send: Callable[[bytes], None]) -> None:
        self.clock = clock
        self.send = send
        self.settings: Optional[tuple[float, float, bytes]] = None
        self._held: list[bytes] = []
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
        self._held.append(data)
        if on and on in data:
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
        data, self._held = b"".join(self._held), []
        if data:
            self.send(data)
