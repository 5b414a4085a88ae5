"""
What a console log writes besides device output: the line's events, as
serialgw writes them (C{[serialgw: TEXT]}) or as conserver does (C{[--
TEXT -- DATE]}), bounded in number (L{EventWindow}); conserver's periodic
C{[-- MARK -- DATE]} (log-mark); and the one timer all the console logs of
a clock share for marks and for events waiting for a line of output to
end (L{Ticks}), so a farm's 1000 logs marked at one minute are one timer,
written a slice a turn, not 1000 calls in one turn.
"""

from __future__ import annotations

import heapq
import itertools
import time
import weakref
from collections import deque
from typing import Any, Callable, Optional

from twisted.logger import Logger

log = Logger()

# An event that comes inside a line of device output waits this long for
# the line to end (a prompt waits for good: then it goes after a line
# break, the cut said on the event's line).
EVENT_HOLD = 1.0
# A console log writes at most this many events in EVENT_WINDOW seconds;
# the rest are counted, and the count written once the window has passed.
EVENTS_TOLD = 30
EVENT_WINDOW = 10.0
# Callbacks the shared timer makes in one turn of the reactor (the rest next turn).
TICK_SLICE = 64
# Said on an event's line when it had to cut a line of output (a prompt waiting for input).
CUT = " (inside a line of output: it goes on below)"
# An event's text is cut past this many characters (its names are bounded where they come from: this is the backstop).
MAX_EVENT = 1000


def shown(text: str) -> str:
    """C{text} for one line of a log: what cannot be shown (a newline, ESC) escaped, as C{\\x1b}; at most L{MAX_EVENT}."""
    if len(text) > MAX_EVENT:
        text = text[:MAX_EVENT] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def ctime(seconds: float) -> str:
    """A time as conserver writes it (ctime, local): C{Wed Dec  2 14:00:00 2026}."""
    return time.asctime(time.localtime(seconds))


def eventBody(style: str, text: str, seconds: float) -> str:
    """An event's text in the console log's C{style} (log-events), without the stamp or the line break."""
    if style == "conserver":
        return f"[-- {shown(text)} -- {ctime(seconds)}]"
    return f"[serialgw: {shown(text)}]"


def markBody(seconds: float) -> str:
    """conserver's mark (its C{timestamp} option's N minutes) for the time C{seconds}."""
    return f"[-- MARK -- {ctime(seconds)}]"


def nextMark(now: float, every: float) -> float:
    """
    When the next mark is due after C{now}: on a boundary of the local
    day when C{every} divides an hour (up to an hour) or a day (longer),
    as conserver does (every 15 minutes: :00, :15, :30, :45); else
    C{every} from the minute.
    """
    tm = time.localtime(now)
    minute = now - tm.tm_sec - (now % 1)
    if (every <= 3600 and 3600 % every == 0) or (every > 3600 and 86400 % every == 0):
        day = minute - tm.tm_min * 60 - tm.tm_hour * 3600
        return day + ((now - day) // every + 1) * every
    return minute + every


class EventWindow:
    """
    At most L{EVENTS_TOLD} events in L{EVENT_WINDOW} seconds (a client
    connecting 1000 times a second, or setting the baud rate in a loop,
    grows the log by a few lines a window); the rest are counted, and
    C{tell} is given the count once the window has passed.
    """

    def __init__(self, clock: Any, tell: Callable[[int], None]) -> None:
        self.clock = clock
        self._tell = tell
        self._told: deque[float] = deque()
        self.untold = 0
        self._call: Optional[Any] = None

    def admit(self) -> bool:
        """Whether one more event may be written now (else it is counted)."""
        now = self.clock.seconds()
        told = self._told
        while told and (told[0] <= now - EVENT_WINDOW or told[0] > now):  # (a clock stepped back: a new window)
            told.popleft()
        if len(told) >= EVENTS_TOLD:
            self.untold += 1
            if self._call is None:
                self._call = self.clock.callLater(max(0.0, told[0] + EVENT_WINDOW - now), self._over)
            return False
        told.append(now)
        return True

    def _over(self) -> None:
        self._call = None
        self.flush()

    def flush(self) -> None:
        """Tell the count now (the window is over, or the log closes)."""
        count, self.untold = self.untold, 0
        if count:
            self._tell(count)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class Ticks:
    """
    One timer for many callbacks at set times (every console log of a
    clock: their marks and their held events).  Those due are called in
    order, at most L{TICK_SLICE} a turn of the reactor, the rest at the
    next turn; get one with L{ticks}.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._call: Optional[Any] = None
        self._callAt = 0.0
        # While callbacks are made: the timer is set once they are done.
        self._firing = False

    def at(self, when: float, call: Callable[[], None]) -> int:
        """Call C{call} at C{when} (clock seconds); the handle to L{cancel} it."""
        handle = next(_HANDLES)
        heapq.heappush(self._heap, (when, handle, call))
        self._live.add(handle)
        if not self._firing:
            self._schedule()
        return handle

    def cancel(self, handle: Optional[int]) -> None:
        if handle is not None:
            self._live.discard(handle)
            if not self._live:
                self._heap.clear()
                if not self._firing:
                    self._schedule()

    def _schedule(self) -> None:
        heap = self._heap
        while heap and heap[0][1] not in self._live:
            heapq.heappop(heap)
        if not heap:
            if self._call is not None and self._call.active():
                self._call.cancel()
            self._call = None
            _TICKS.pop(self.clock, None)  # (nothing left: the clock is let go)
            return
        when = heap[0][0]
        if self._call is not None and self._call.active():
            if self._callAt <= when:
                return
            self._call.cancel()
        _TICKS.setdefault(self.clock, self)
        self._callAt = when
        self._call = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._fire)

    def _fire(self) -> None:
        self._call = None
        now = self.clock.seconds()
        heap = self._heap
        self._firing = True
        try:
            for _ in range(TICK_SLICE):
                if not heap or heap[0][0] > now:
                    break
                _, handle, call = heapq.heappop(heap)
                if handle in self._live:
                    self._live.discard(handle)
                    try:
                        call()
                    except Exception:
                        # One log's failure stops neither this turn's others nor the timer.
                        log.failure("a console log's mark or held event failed")
        finally:
            self._firing = False
        self._schedule()


# Handles are unique across clocks and instances: one kept past its Ticks' end cancels nothing else.
_HANDLES = itertools.count()
_TICKS: weakref.WeakKeyDictionary[Any, Ticks] = weakref.WeakKeyDictionary()


def ticks(clock: Any) -> Ticks:
    """The one L{Ticks} of C{clock} (the reactor, or a test's Clock)."""
    found = _TICKS.get(clock)
    if found is None:
        found = _TICKS[clock] = Ticks(clock)
    return found
