"""
Logs that a client cannot flood.

Two pieces:

  - L{IgnoredInput}: one client's ignored or malformed input (telnet
    commands it has no use for, subnegotiations without IAC SE or too long,
    COM-PORT-OPTION requests that make no sense) counted and logged at most
    once a minute: "1200 ignored telnet commands, 3 malformed
    subnegotiations from 127.0.0.1:5000".
  - L{PeerLimiter}: the observer behind the loggers of the modules a
    client's input reaches (C{clientLog()}): every event that names a
    C{peer} counts against that peer's budget, C{burst} events a minute;
    past it events are left out, and counted in one line when the minute
    is over ("340 log messages about PEER left out in the last minute").
    A critical event that names a peer is the gateway's own error in
    handling a client's doing (a traceback, C{log.failure}): those of every
    peer count against one budget, L{OWN_ERRORS}, and not the peer's.

So whatever a client sends, the log grows by a bounded amount per client
and minute, far less than the bytes received, and by a bounded amount a
minute for all clients together when it reaches a bug of the gateway's.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Optional, cast

from twisted.logger import ILogObserver, Logger, LogLevel, globalLogPublisher
from zope.interface import implementer

log = Logger()

MINUTE = 60.0

# The one log budget of the gateway's own errors (critical events: a
# traceback) in handling any client's doing: what a client can cause is
# bounded, a bug any client reaches too (a traceback a connection, for
# every connection, was not); the first ones are logged whole.
OWN_ERRORS = "the gateway's own errors in handling clients"


# Where a kind of input names its noun first (what follows says of which):
# its plural is there ("subnegotiations of an option not in effect").
_QUALIFIED = re.compile(r" (?:of|without|turned|discarding) ")


def plural(kind: str) -> str:
    """C{kind} (singular: "malformed subnegotiation") in the plural."""
    qualified = _QUALIFIED.search(kind)
    if qualified is None:
        return kind + "s"
    return kind[: qualified.start()] + "s" + kind[qualified.start():]


def counted(count: int, noun: str) -> str:
    """C{count} of C{noun} (singular: "session"), said: "1 session", "32 sessions" (a bound of 1 said "1 sessions")."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural(noun)}"


class IgnoredInput:
    """
    Counts one client's ignored or malformed input by kind; logs the counts
    at once for the first, then at most once a minute, and what is left at
    C{flush()} (the client leaves).

    @ivar describe: returns C{(line name, peer)} for the message, asked when
        logging (the peer may be named only after the connection is made).
    """

    def __init__(self, describe: Callable[[], tuple[str, str]], clock: Any = None, interval: float = MINUTE) -> None:
        self.describe = describe
        self.clock = clock
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.total = 0
        self._next: Optional[float] = None

    def _now(self) -> float:
        return float(self.clock.seconds()) if self.clock is not None else time.monotonic()

    def add(self, kind: str, count: int = 1) -> None:
        """C{count} more of C{kind} ("ignored telnet command", ...), singular."""
        self.counts[kind] = self.counts.get(kind, 0) + count
        self.total += count
        now = self._now()
        if self._next is None or now >= self._next:
            self.flush()
            self._next = now + self.interval

    def flush(self) -> None:
        if not self.counts:
            return
        counts, self.counts = self.counts, {}
        line, peer = self.describe()
        summary = ", ".join(f"{n} {kind if n == 1 else plural(kind)}" for kind, n in counts.items())
        log.info("{line}: {summary} from {peer}", line=line, summary=summary, peer=peer, ignored=counts)


class Peer(str):
    """
    A network client's name for messages, one object a connection: its log
    budget is its own even when another connection has the same name (two
    clients of one unix socket).
    """

    __slots__ = ()


class ListenerKey(Peer):
    """
    A listener's name, the key of its own log budget (its refusals at
    accept): kept apart from its connections', so that a flood of them,
    each a new peer, does not push it out and begin it anew.
    """

    __slots__ = ()


class _PeerState:
    __slots__ = ("peer", "start", "count", "left")

    def __init__(self, peer: str, start: float) -> None:
        self.peer = peer  # kept: the key may be its id
        self.start = start
        self.count = 0
        self.left = 0


@implementer(ILogObserver)
class PeerLimiter:
    """
    Passes events on to C{observer}, at most C{burst} a minute for each
    C{peer} an event names; the rest are counted and said in one line when
    that peer's minute is over (by the first event about anyone after it,
    so also for a client that has left).  An event may name a second
    budget it counts against too (C{budget}: its listener's); it passes if
    both have room.  A critical event about a peer (the gateway's own
    error in handling its doing) counts against L{OWN_ERRORS} alone, shared
    by all peers: neither a client's own chatter nor its listener's can
    hide the first tracebacks of a bug, and no number of clients can
    repeat one without bound.  Events without a peer (the gateway's own:
    its start, a line's device) pass untouched, critical ones too.
    """

    def __init__(self, observer: Any = globalLogPublisher, burst: int = 20, interval: float = MINUTE,
                 now: Optional[Callable[[], float]] = None, keep: int = 256) -> None:
        self.observer = observer
        self.burst = burst
        self.interval = interval
        self.now = now
        self.keep = keep
        self.peers: dict[Any, _PeerState] = {}
        # The second budgets (listeners'), apart: a flood of connections,
        # each a new peer, would push them out of C{peers} (C{keep}).
        self.budgets: dict[Any, _PeerState] = {}
        # The listeners' own (their refusals: a ListenerKey as the peer), apart for the same reason.
        self.listeners: dict[Any, _PeerState] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        now = self.now() if self.now is not None else float(event.get("log_time") or time.time())
        self._sayOver(now)
        peer = event.get("peer")
        if not isinstance(peer, str):
            self.observer(event)
            return
        budget = event.get("budget")
        if event.get("log_level") is LogLevel.critical:
            # The gateway's own error in handling a peer's doing: one budget for all peers.
            states = [self._state(OWN_ERRORS, now, self.budgets)]
        elif isinstance(budget, str):
            # A second budget it counts against too: the listener's, for
            # what every connection says once (its coming and going), as
            # each connection is a new peer.
            states = [self._state(peer, now), self._state(budget, now, self.budgets)]
        else:
            states = [self._state(peer, now)]
        for state in states:
            state.count += 1
        if all(state.count <= self.burst for state in states):
            self.observer(event)
        else:
            for state in states:
                if state.count > self.burst:
                    state.left += 1
                    break

    def _state(self, peer: str, now: float, table: Optional[dict[Any, _PeerState]] = None) -> _PeerState:
        """The budget of C{peer} in C{table} (the peers' by default; its minute begun anew if over)."""
        if table is None:
            # (A listener's among the peers was let go with the oldest of a flood of its connections:
            # its refusals had 20 more for every 256 of them.)
            table = self.listeners if isinstance(peer, ListenerKey) else self.peers
        key = id(peer) if isinstance(peer, Peer) else peer
        state = table.get(key)
        if state is not None and now >= state.start + self.interval:
            self._summary(key, state, table, now)
            state = None
        if state is None:
            if len(table) >= self.keep:
                self._expire(table)
            state = table[key] = _PeerState(peer, now)
        return state

    def _sayOver(self, now: float) -> None:
        """
        Peers whose minute is over are said and forgotten, oldest first (the
        dict keeps them in the order their minutes started), so a client that
        left is summed up by the next event about anyone, not never.
        """
        for table in (self.peers, self.budgets, self.listeners):
            while table:
                key, state = next(iter(table.items()))
                if now < state.start + self.interval:
                    break
                self._summary(key, state, table, now)

    def _summary(self, key: Any, state: _PeerState, table: Optional[dict[Any, _PeerState]] = None,
                 now: Optional[float] = None) -> None:
        del (self.peers if table is None else table)[key]
        if state.left:
            event = {
                "log_format": "{count} log messages about {peer} left out in the last minute (over {burst} a minute)",
                "log_level": LogLevel.info,
                "log_namespace": __name__,
                "log_source": None,
                "log_time": time.time(),
                "count": state.left,
                "peer": str(state.peer),
                "burst": self.burst,
            }
            if now is not None and now >= state.start + 2 * self.interval:
                # Said by the next event, long after that minute (a quiet
                # gateway): which minute, not "the last" (1359 left out at
                # 11:25 were said at 12:02 as in the last minute).
                event["log_format"] = ("{count} log messages about {peer} left out in the minute from {began} "
                                       "(over {burst} a minute)")
                event["began"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.start))
            self.observer(event)

    def _expire(self, table: Optional[dict[Any, _PeerState]] = None) -> None:
        """A flood of distinct peers within a minute: the oldest go, said (memory stays bounded)."""
        table = self.peers if table is None else table
        for key in list(table)[: len(table) - self.keep + 1]:
            self._summary(key, table[key], table)


# The observer of the loggers in the modules a client's input reaches.
peerLimiter = PeerLimiter()

# Twisted's "Unhandled error in Deferred": a Deferred whose error nothing
# took, said when it is collected, in two lines (those words, then the
# traceback).  It names no one, and a client's doing may reach one again
# and again: it passed the limiter, one traceback each time.  Now it is one
# event, the traceback with Twisted's words, counted as the gateway's own
# error in handling clients (OWN_ERRORS), as if of this peer: whose doing
# it was is not known.
UNHANDLED = "Deferreds whose error nothing handled"


def _unhandledLimited(event: dict[str, Any]) -> None:
    if "debugInfo" in event and event.get("log_failure") is not None:
        debug = event.get("log_format") or ""
        peerLimiter({**event, "peer": UNHANDLED,
                     "log_format": "Unhandled error in Deferred (whose doing is not known)" + (": " + debug if debug else "")})
    elif event.get("log_format") != "Unhandled error in Deferred:" or event.get("log_failure") is not None:
        # (Its other lines, logError's and a canceller's, as before; its first words are said with the traceback.)
        globalLogPublisher(event)


def limitUnhandledDeferreds() -> None:
    """Twisted's "Unhandled error in Deferred" through the limiter from now on (see L{UNHANDLED}); under twistd only."""
    from twisted.internet import defer

    defer.log = Logger(namespace=defer.__name__, observer=cast(ILogObserver, _unhandledLimited))


def clientLog() -> Logger:
    """A logger for a module that logs about clients' input: limited per peer (see L{PeerLimiter})."""
    import inspect

    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    namespace = caller.f_globals.get("__name__", "serialgw") if caller is not None else "serialgw"
    return Logger(namespace=namespace, observer=peerLimiter)
