"""
The modem lines (CTS, DSR, RI, CD) of every line an RFC 2217 client
controls, read on one timer for all of them, a slice a turn.

Each line had a timer of its own, every 50 ms: lines whose clients came at
once (a console manager connecting to a farm, a reload) were read in the
same turn, and on a USB adapter TIOCMGET is a control transfer (about a
millisecond): 200 such lines held every line 210 ms a turn, and 1000 polled
ones kept the reactor busy (about 10 us each even where the ioctl is fast:
20% of a core).  Now one timer reads the lines in turn: at most
POLL_PER_TURN of a turn (plus the one read under way), then a rest of
REST_AFTER times what the slice took before the next, so reading modem
lines takes at most a fifth of the reactor's time; every line is read once
a round, and a round starts POLL_INTERVAL after the one before (later when
the reads take longer than that: a change is then told later).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional, Protocol
from weakref import WeakKeyDictionary

from twisted.logger import Logger

log = Logger()

# A round of reads starts at most this often (seconds): each line is read once a round.
POLL_INTERVAL = 0.05
# The time the reads may take of one turn (the read under way finishes).
POLL_PER_TURN = 0.001
# After a slice, the reads rest at least this many times what it took,
# at most REST_MOST s (the reactor's clock is the wall clock: one set
# forward by an hour during a read would have stopped the reads 4 hours).
REST_AFTER = 4.0
REST_MOST = 1.0


class Polled(Protocol):
    """A line whose modem lines are read (L{Line} is one)."""

    def pollModem(self) -> None: ...


class ModemPolls:
    """The lines read on one clock, in the order they came, a slice a turn."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        # Ordered sets: the lines read, and those left in this round.
        self.lines: dict[Polled, None] = {}
        self._left: deque[Polled] = deque()
        self._roundStart = 0.0
        self._call: Any = None
        # Reads, slices and rounds done (for tests and measurement).
        self.reads = 0
        self.slices = 0
        self.rounds = 0

    def add(self, line: Polled) -> None:
        """Read C{line}'s modem lines from the next round on (within POLL_INTERVAL when few lines are read)."""
        if line in self.lines:
            return
        self.lines[line] = None
        if self._call is None:
            self._roundStart = self.clock.seconds()
            self._call = self.clock.callLater(POLL_INTERVAL, self._slice)

    def remove(self, line: Polled) -> None:
        """Read C{line} no more; the timer goes with the last line."""
        self.lines.pop(line, None)
        if not self.lines:
            self._left.clear()
            if self._call is not None and self._call.active():
                self._call.cancel()
            self._call = None
            _polls.pop(self.clock, None)

    def _slice(self) -> None:
        self._call = None
        clock = self.clock
        start = clock.seconds()
        if not self._left:
            self._left.extend(self.lines)
            self._roundStart = start
        self.slices += 1
        now = start
        while self._left and now - start < POLL_PER_TURN:
            line = self._left.popleft()
            if line in self.lines:
                self.reads += 1
                try:
                    line.pollModem()
                except Exception:
                    # (One line's failure stops no other's reads: the timer is theirs too.)
                    log.failure("{line}: reading the modem lines failed", line=getattr(line, "name", line))
                now = clock.seconds()
        if not self.lines:
            return  # (the last line went during a read: remove has cleared all)
        rest = min(max(0.0, now - start) * REST_AFTER, REST_MOST)
        if not self._left:
            self.rounds += 1
            rest = max(rest, self._roundStart + POLL_INTERVAL - now)
        self._call = clock.callLater(rest, self._slice)


_polls: WeakKeyDictionary[Any, ModemPolls] = WeakKeyDictionary()


def modemPolls(clock: Any) -> ModemPolls:
    """The one L{ModemPolls} of C{clock} (a reactor, a test's Clock)."""
    polls = _polls.get(clock)
    if polls is None:
        polls = _polls[clock] = ModemPolls(clock)
    return polls


def pollsOf(clock: Any) -> Optional[ModemPolls]:
    """C{clock}'s L{ModemPolls} while it reads lines, else C{None}."""
    return _polls.get(clock)
