"""
conserver's C{idletimeout} and C{idlestring} for a line (C{idle-timeout},
C{idle-string}): once nothing has been read from the device nor written to
it for C{idle-timeout} seconds, the idle-string is written to it (a login
kept alive, a prompt shown again), the people on the line are told
(C{[serialgw: idle 300 s: idle-string sent]}, as conserver's C{[--
idle timeout --]}), and the console log records it.  Then the count starts
again.  Whether anyone is attached or not, as conserver does; not while
the device is down or closed on demand (nothing to write to: its coming
back counts as activity), nor while what was queued for it before has not
left (a device held by flow control is not idle, and a string a period
must not pile up behind it), nor once the line is let go.

The line tells L{IdleString.touch} of each read and write (one clock read
a chunk, and only on a line with an idle-timeout); one timer a line, moved
on only when it fires.

The gateway's log says it at most once in L{SAID_EVERY} seconds a line,
with how many went unsaid since: an idle-timeout of 1 s on a farm of N
lines was N log lines a second, for ever (the people and the console
logs are told of each, as before).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

# (In the namespace its lines had, as the line's events: serialgw.line.hub.)
log = Logger(namespace="serialgw.line.hub")

WHAT = "idle-string"
# The gateway's log says a line's idle-strings at most once in this many seconds.
SAID_EVERY = 60.0


def seconds(value: float) -> str:
    """A timeout for people: C{300 s}, C{1.5 s}."""
    return f"{value:g} s"


class IdleString:
    """The idle-timeout of one line (see the module); made by L{retune}."""

    def __init__(self, line: Any, clock: Any, timeout: float, parts: tuple[bytes, ...]) -> None:
        self.line = line
        self.clock = clock
        self.timeout = timeout
        self.parts = parts
        # When the device was last read from or written to (or came up, or the string was sent).
        self.last = float(clock.seconds())
        # Idle-strings sent (for tests and the curious).
        self.sent = 0
        # When the gateway's log last said one, and how many it has not said since.
        self._saidAt: Optional[float] = None
        self._unsaid = 0
        self._call: Optional[IDelayedCall] = clock.callLater(timeout, self._check)

    def touch(self) -> None:
        """The device was read from or written to, or came up: idle from now on."""
        self.last = self.clock.seconds()

    def set(self, timeout: float, parts: tuple[bytes, ...]) -> None:
        """A reload's new timeout and string: due C{timeout} after the last activity (at once if that is past)."""
        self.timeout, self.parts = timeout, parts
        self.stop()
        now = self.clock.seconds()  # (read once: a real clock has moved on by the next read)
        self._call = self.clock.callLater(max(0.0, self.last + timeout - now), self._check)

    def stop(self) -> None:
        """No more idle-strings (the line is let go, or its idle-timeout taken out)."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _check(self) -> None:
        self._call = None
        line = self.line
        if line._letGo:
            return
        now = self.clock.seconds()
        due = self.last + self.timeout
        if now < due:
            self._call = self.clock.callLater(due - now, self._check)
            return
        if line.up and line.device.up and not line._undrained():
            self._send()
        self.last = now
        self._call = self.clock.callLater(self.timeout, self._check)

    def _send(self) -> None:
        """The string's data and breaks, in order, as an open-string's go (a break waits for the one before it)."""
        line = self.line
        items: list[tuple[str, Optional[bytes]]] = [(WHAT, self.parts[0])]
        for data in self.parts[1:]:
            items += [(WHAT, None), (WHAT, data)]
        line._stringItems += items
        if line._stringCall is None:
            line._sendStringItems()
        self.sent += 1
        text = f"idle {seconds(self.timeout)}: idle-string sent"
        line.announce(text, logged=False)
        now = self.clock.seconds()
        if self._saidAt is not None and now < self._saidAt + SAID_EVERY:
            self._unsaid += 1
            return
        unsaid, self._saidAt, self._unsaid = self._unsaid, now, 0
        log.info("{line}: {text}" + (" ({unsaid} more since the last one said)" if unsaid else ""), line=line.name,
                 text=text, unsaid=unsaid)


def retune(idle: Optional[IdleString], line: Any, timeout: float, parts: tuple[bytes, ...]) -> Optional[IdleString]:
    """A line's idle-timeout as configured now (C{timeout} 0: none); C{idle}: the one it had, or None."""
    if not timeout or line.clock is None or not parts:
        if idle is not None:
            idle.stop()
        return None
    if idle is None:
        return IdleString(line, line.clock, timeout, parts)
    if (timeout, parts) != (idle.timeout, idle.parts):
        idle.set(timeout, parts)
    return idle
