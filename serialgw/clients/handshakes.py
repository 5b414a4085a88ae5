"""
The bounds on TLS handshakes under way (connections accepted by a TLS
listener whose handshake is not done yet): per listener, and in the whole
gateway (L{HandshakeTable}, one a gateway service, given to each listener's
factory), in all and from
one address; and which handshake is cut when a bound in all is reached
(L{victimOf}: the oldest of the address that has the most under way, so
that one sender with many addresses cuts its own before anyone else's).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any, Iterable, Optional

from serialgw.config.people import PERSON_SESSIONS
from serialgw.logflood import Peer


class HandshakeTable:
    """
    Handshakes under way on every TLS listener of the process, oldest
    first, and how many each source (L{serialgw.clients.transports.sourceOf})
    has: the bounds in the whole gateway.  Without them 1000 TLS listeners
    took 8 handshakes each from one address (8000 descriptors) and 64 in
    all each (64000).  A dial-out's handshake is not here: the gateway
    chose to make it, and a console server with 32 ports on one address is
    dialled 32 times at once.

    @ivar maxInFlight: handshakes under way in the gateway, at most: past
        it, a new connection is taken and L{victim} is cut.
    @ivar maxPerAddress: from one source on all listeners, at most: past
        it, a new connection from there is closed at accept.
    @ivar sessionsPerPerson: a person's (a CN's) TLS clients let in on all
        lines at once, at most ([tls] sessions-per-person; SSH's are not
        counted here).
    """

    maxInFlight = 1024
    maxPerAddress = 64

    def __init__(self) -> None:
        # Insertion order is age: the oldest first.
        self.gates: dict[Any, None] = {}
        self.bySource: dict[Any, dict[Any, None]] = {}
        # The log budget of these bounds (logflood): a flood over 1000
        # listeners is one budget, not 1000.
        self.logKey = Peer("TLS handshakes on all listeners")
        # Each person's (a CN's; "": certificates without one) clients let in on any listener.
        self.people: dict[str, weakref.WeakSet[Any]] = {}
        self.sessionsPerPerson = PERSON_SESSIONS

    def sessionsOf(self, user: str) -> int:
        """C{user}'s TLS sessions on all the gateway's lines: those let in (L{admitted}) still on their line."""
        mine = self.people.get(user)
        if not mine:
            return 0
        return sum(1 for client in list(mine) if getattr(client, "line", None) is not None
                   and client in client.line.clients)

    def admitted(self, user: str, client: Any) -> None:
        """C{client}, C{user}'s, let in on a listener (counted while it is on its line)."""
        if len(self.people) >= 1024 and user not in self.people:
            for gone in [name for name, clients in self.people.items() if not clients]:
                del self.people[gone]
        self.people.setdefault(user, weakref.WeakSet()).add(client)

    def __len__(self) -> int:
        return len(self.gates)

    def of(self, source: Any) -> int:
        """Handshakes under way from C{source}."""
        return len(self.bySource.get(source, ()))

    def add(self, gate: Any) -> None:
        self.gates[gate] = None
        self.bySource.setdefault(gate.source, {})[gate] = None

    def discard(self, gate: Any) -> None:
        if self.gates.pop(gate, 0) is None:
            mine = self.bySource.get(gate.source)
            if mine is not None:
                mine.pop(gate, None)
                if not mine:
                    del self.bySource[gate.source]

    def victim(self) -> Optional[Any]:
        """The oldest handshake of the source with the most under way (of equals, the one with the oldest)."""
        if not self.bySource:
            return None
        most = max(len(gates) for gates in self.bySource.values())
        oldest = [next(iter(gates)) for gates in self.bySource.values() if len(gates) == most]
        return min(oldest, key=lambda gate: gate.serial)


def victimOf(gates: Iterable[Any]) -> Optional[Any]:
    """
    Of one listener's handshakes under way (at most its C{maxHandshakes}),
    the one to cut for a new connection: the oldest of the source with the
    most.  The oldest of all let a sender with 8 addresses (8 handshakes
    each, the bound from one) cut every other client's handshake, again and
    again, with one connection each.
    """
    counts: dict[Any, int] = {}
    gates = list(gates)
    for gate in gates:
        counts[gate.source] = counts.get(gate.source, 0) + 1
    if not counts:
        return None
    most = max(counts.values())
    return min((gate for gate in gates if counts[gate.source] == most), key=lambda gate: gate.serial)


# The order handshakes began in, on every listener (the oldest is cut first).
serials = itertools.count(1)
