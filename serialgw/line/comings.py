"""
Bounds on what people's coming and going tells the others: connections
that talk and close a hundred times a second (a script, a flapping
monitor) gave every person on the line two notices each, and the console
log two events.  At most L{TOLD} arrivals are told in L{WINDOW} seconds,
each with its departure; the rest are counted, and the count is told once
the window has passed.  Also L{whoIsOn}, the text of C{w} and the banner.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Optional

from serialgw.logflood import clientLog

log = clientLog()

TOLD = 20
WINDOW = 10.0
# Who is on: at most this many clients named, the rest counted by role.
WHO_LIMIT = 20


class Comings:
    """One line's arrivals and departures: which are told (L{arrived}, L{left})."""

    def __init__(self, name: str, clock: Any, announce: Callable[[str], None]) -> None:
        self.name = name
        self.clock = clock
        self._announce = announce
        self._told: deque[float] = deque()
        # Clients whose arrival was told: their departure is told too.
        self._toldClients: dict[Any, None] = {}
        self.untold = 0
        self._call: Optional[Any] = None

    def arrived(self, client: Any) -> bool:
        """C{client} arrived: True to tell the others, False if that is past the bound (counted)."""
        if self.clock is not None:
            now = self.clock.seconds()
            told = self._told
            while told and told[0] <= now - WINDOW:
                told.popleft()
            if len(told) >= TOLD:
                self.untold += 1
                if self._call is None:
                    self._call = self.clock.callLater(told[0] + WINDOW - now, self._tellCount)
                log.info("{line}: {peer} arrived (not announced: more than {count} in {seconds} s)",
                         line=self.name, peer=client.peer, count=TOLD, seconds=WINDOW,
                         budget=client.logBudget)
                return False
            told.append(now)
        self._toldClients[client] = None
        return True

    def left(self, client: Any) -> bool:
        """C{client} left: True to tell the others (its arrival was told)."""
        if client in self._toldClients:
            del self._toldClients[client]
            return True
        return False

    def _tellCount(self) -> None:
        self._call = None
        count, self.untold = self.untold, 0
        if count:
            self._announce(f"{count} more connection{'s' if count != 1 else ''} came and went "
                           f"(not each announced)")

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


def whoIsOn(clients: Iterable[Any]) -> str:
    """
    Who is on, for people (C{w}, the banner): each client with its role,
    at most L{WHO_LIMIT} named and the rest counted by role, so that the
    answer stays short however many are on.
    """
    others = list(clients)
    text = ", ".join(f"{c.peer} ({c.role.value})" for c in others[:WHO_LIMIT])
    rest = others[WHO_LIMIT:]
    if rest:
        roles: dict[str, int] = {}
        for c in rest:
            roles[c.role.value] = roles.get(c.role.value, 0) + 1
        text += f" and {len(rest)} more (" + ", ".join(f"{n} {role}" for role, n in roles.items()) + ")"
    return text or "nobody"
