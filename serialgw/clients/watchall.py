"""
One view of all consoles (C{--watch-all}, a C{[watch-all]} table): a
listener whose clients read the output of every line (or those whose names
match shell patterns), each output line prefixed with C{NAME: }.

A client of this listener is one connection and one L{OutputGuard} (the
listener's C{outbuf} and C{policy}, as for any client), with a
L{LineTap} attached to each line it watches (L{serialgw.clients.linetap}:
whole lines, each prefixed, so lines from different consoles never mix
within a line; the colours each console leaves set reset before another's
lines).  Watchers only read: what they
send is ignored; they are not people (no notices, no max-clients of the
lines, no open-string).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections import deque
from typing import Any, Callable, Optional

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.guard import IGuarded, OutputGuard
from serialgw.clients.linetap import SGR_RESET, LineTap
from serialgw.clients.reading import stopCalls
from serialgw.clients.session import setUpConnection
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.transports import SourceCounts, addressAllowed, admittedBy, describeAddress, peerName, sourceOf
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.specs import DEFAULT_MAX_CLIENTS
from serialgw.line.hub import Line
from serialgw.logflood import ListenerKey, clientLog

# Refused connections: limited per listener (logflood), as every one comes from a new port.
refusals = clientLog()
# A watcher's coming and going (what a client reconnecting in a loop makes, each connection a new peer;
# a reload's cuts, one a watcher it holds): limited per peer and by its listener's budget too, as a line's
# listeners' are (logflood).
said = clientLog()

# Taps put on (or taken off) lines a turn of the reactor, for all watchers:
# a watcher of a 1024-line farm put on all of them at once took 4-12 ms,
# and a burst of connections to the listener held every line 0.4 s.
TAPS_PER_TURN = 64
# The most watchers from one IP address (of the listener's 64): each costs
# every line it watches work for each chunk of output, and 64 that never
# read, from one client, made a newline flood cost 4.7 ms a 4 KiB read.
MAX_PER_ADDRESS = 8


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether a line name matches one of the shell patterns (C{rack4-*})."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


class _AllLines:
    """What the output guard sees as the line: for policy=block, every watched line."""

    name = "watch-all"

    def __init__(self, watcher: WatchAllClient) -> None:
        self.watcher = watcher

    def blockDevice(self, client: Any) -> None:
        for tap in self.watcher.taps.values():
            tap.line.blockDevice(tap)

    def unblockDevice(self, client: Any) -> None:
        for tap in self.watcher.taps.values():
            tap.line.unblockDevice(tap)

    def detach(self, client: Any) -> None:
        """The guard cut the watcher off (policy disconnect on a stream): its taps go when it closes."""


class _Job:
    """Taps to put on or take off lines for a watcher (L{WatchAllFactory.work})."""

    __slots__ = ("owner", "items", "step", "done")

    def __init__(self, owner: Any, items: list[Any], step: Callable[[Any], None],
                 done: Optional[Callable[[], None]]) -> None:
        self.owner, self.items, self.step, self.done = owner, items, step, done


@implementer(IGuarded)
class WatchAllClient(Protocol):
    """One connection of the watch-all listener."""

    transport: Any

    def __init__(self, factory: WatchAllFactory) -> None:
        self.factory = factory
        self.spec = factory.spec
        self.clock = factory.clock
        self.peer = "?"
        # Where it comes from (sourceOf), counted in its factory's sources while connected.
        self.source: Optional[str] = None
        self.taps: dict[str, LineTap] = {}
        self.guard: Optional[OutputGuard] = None
        self.ignored = 0
        self._idleCall: Any = None
        self._closeCall: Any = None
        # The held output's oldest bytes were dropped: it starts mid-line.
        self._cut = False
        # Whose piece was emitted last (None: one of ours, a notice): see SGR_KEPT.
        self._lastTap: Optional[LineTap] = None

    def connectionMade(self) -> None:
        self.peer = peerName(self.transport)
        self.guard, self._idleCall = setUpConnection(self, _AllLines(self), self.transport, self.spec, self.clock,
                                                     self._idleTimeout)
        self.factory.clients.append(self)
        if self.source is not None:
            self.factory.sources.add(self.source)
        # Put on its lines TAPS_PER_TURN a turn (with the other watchers').
        self.factory.work(self, [line.name for line in self.factory.lines()], self._watchName, self._watching)

    def _watchName(self, name: str) -> None:
        # A line removed since is not watched; one added was at once (lineOpened).
        line = self.factory.linesByName().get(name)
        if line is not None:
            self.watch(line)

    def _watching(self) -> None:
        if self.taps:
            said.info("watch-all: {peer} watches {count} line(s)", peer=self.peer, count=len(self.taps),
                      budget=self.factory.refusalKey)
            return
        # (A typo in the filter: the watcher saw nothing and was told nothing.)
        patterns = " ".join(self.factory.patterns)
        said.info("watch-all: {peer}: no line matches {patterns}", peer=self.peer, patterns=patterns,
                  budget=self.factory.refusalKey)
        self.emit(f"[serialgw: watch-all: no line matches {patterns} (a line added that does is shown)]\r\n".encode())

    def watch(self, line: Line) -> None:
        if line.name in self.taps or not matches(line.name, self.factory.patterns):
            return
        tap = LineTap(self, line)
        self.taps[line.name] = tap
        # Logged once for all lines, as this watcher (see connectionMade).
        line.attach(tap, quiet=True)
        guard = self.guard
        if guard is not None and guard.full and guard.policy == "block":
            # Put on while full (a reload's new line, the taps of later
            # turns): it waits with the others (read again when they are).
            line.blockDevice(tap)

    def unwatch(self, line: Line) -> None:
        tap = self.taps.get(line.name)
        if tap is not None and tap.line is line:
            del self.taps[line.name]
            tap.flush()
            tap.stop()
        if self.factory.closing and not self.taps:
            # The gateway stops: the last line it watched is closed.
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        # Read-only: nothing goes to any device.
        self.ignored += len(data)

    def emit(self, data: bytes, tap: Optional[LineTap] = None) -> None:
        """
        Prefixed whole lines (C{tap}'s, or a notice of ours), through the
        guard's bound and policy; after another console's piece, the
        attributes it left set are reset and C{tap}'s own put back (SGR_KEPT).
        """
        last = self._lastTap
        if tap is not last:
            front = SGR_RESET if last is not None and last.dirty else b""
            if tap is not None and tap.sgr:
                front += b"".join(tap.sgr)
            self._lastTap = tap
            if tap is not None:
                tap.noteAttributes(data)
            data = front + data
        elif tap is not None:
            tap.noteAttributes(data)
        guard = self.guard
        if guard is not None and guard.full and guard.policy == "drop":
            guard.hold(data)
            return
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.reset(self.spec.idle)
        self.transport.write(data)

    def deliver(self, data: bytes) -> None:
        """
        What the guard held while this client was full: whole lines, unless
        its oldest bytes were dropped (L{droppedNotice} came first): then
        from the first whole line on.
        """
        if self._cut:
            self._cut = False
            data = data[data.find(b"\n") + 1 :] if b"\n" in data else b""
        if data:
            self.transport.write(data)

    def holdInput(self) -> None:
        self.transport.pauseProducing()

    def releaseInput(self) -> None:
        self.transport.resumeProducing()

    def logInOrder(self, emit: Callable[[], None]) -> None:
        # Logged as it comes: its arrival was (its listener logs it at once).
        emit()

    def droppedNotice(self, count: int) -> None:
        # What the guard delivers next starts where the drop cut it.
        self._cut = True
        self.transport.write(f"[serialgw: watch-all: {count} bytes dropped: this session fell behind]\r\n".encode())

    def retune(self, spec: ListenerSpec) -> None:
        """
        Its listener's options and lines filter as a reload left them: an
        C{allow=} that no longer admits it tells it and disconnects it; else
        its bound and policy are the new ones (L{OutputGuard.retune}), and
        it is taken off the lines the filter no longer matches (it read on
        until a restart) and put on those it now does.
        """
        self.spec = spec
        if not admittedBy(spec.allow, self.transport.getPeer()):
            said.info("watch-all: {peer} disconnected: not in {allow} (a reload changed [watch-all])", peer=self.peer,
                      allow=",".join(spec.allow), budget=self.factory.refusalKey)
            self.emit(b"[serialgw: watch-all: your address is no longer allowed (a reload changed [watch-all]): "
                      b"disconnected]\r\n")
            self.leave()
            return
        if self.guard is not None:
            # (A stuck watcher of a policy=block listener made drop let go of every line it held.)
            self.guard.retune(spec.outbuf, spec.policy)
        # Off the lines it no longer matches, then on those it does, TAPS_PER_TURN a turn (as it leaves).
        self.factory.work(self, [tap.line for tap in self.taps.values() if not matches(tap.line.name, self.factory.patterns)],
                          self._unwatchUnmatched)
        self.factory.work(self, [line.name for line in self.factory.lines()], self._watchName)

    def _unwatchUnmatched(self, line: Line) -> None:
        if not matches(line.name, self.factory.patterns):  # (a reload since may match it again)
            self.unwatch(line)

    def _idleTimeout(self) -> None:
        self._idleCall = None
        said.info("watch-all: {peer} idle for {seconds} s: disconnected", peer=self.peer, seconds=self.spec.idle,
                  budget=self.factory.refusalKey)
        self.leave()

    def leave(self) -> None:
        # Off every line now, and cut if it does not take what waits within
        # CLOSE_GRACE s: closing waits for the output to drain, so a watcher
        # that does not read stayed, watching, for ever.
        for tap in list(self.taps.values()):
            tap.stop()
        self.taps = {}
        self.transport.loseConnection()
        if self.clock is not None:
            self._closeCall = self.clock.callLater(CLOSE_GRACE, self.transport.abortConnection)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        stopCalls(self._idleCall, self._closeCall)
        self._idleCall = self._closeCall = None
        if self.guard is not None:
            self.guard.stopProducing()
            # (What it held and what its connection had still to send go now, not with the cycle collector.)
            self.guard.release()
        taps, self.taps = list(self.taps.values()), {}
        for tap in taps:
            # Nothing more from it reaches this connection.
            tap.leave()
        # Put on no more lines; off those it is on TAPS_PER_TURN a turn.
        self.factory.cancelWork(self)
        self.factory.work(None, taps, LineTap.stop)
        if self in self.factory.clients:
            self.factory.clients.remove(self)
            if self.source is not None:
                self.factory.sources.remove(self.source)
        said.info("watch-all: {peer} left", peer=self.peer, budget=self.factory.refusalKey)


class WatchAllFactory(Factory):
    """
    The watch-all listener: C{lines} gives the gateway's lines now (a
    reload adds and removes them: L{lineOpened}, L{lineClosed}).
    """

    noisy = False

    def __init__(self, spec: ListenerSpec, patterns: tuple[str, ...], lines: Any, clock: Any = None,
                 maxClients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.spec = spec
        self.patterns = patterns
        self._lines = lines
        self.clock = clock
        self.maxClients = maxClients
        self.clients: list[WatchAllClient] = []
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        # The gateway stops (see closeAll): each watcher closes once the lines it watches are closed.
        self.closing = False
        # A reload removed its table (see shut).
        self.removed = False
        # Taps to put on or take off lines, TAPS_PER_TURN a turn for all watchers (work).
        self._jobs: deque[_Job] = deque()
        self._left = TAPS_PER_TURN
        self._turnCall: Any = None
        # Watchers from each address (MAX_PER_ADDRESS), and the key of this listener's refusals' log budget.
        self.sources = SourceCounts()
        self.refusalKey = ListenerKey(f"watch-all listener {spec.text or spec.endpoint}")

    def work(self, owner: Optional[WatchAllClient], items: list[Any], step: Callable[[Any], None],
             done: Optional[Callable[[], None]] = None) -> None:
        """
        C{step(item)} for each item, TAPS_PER_TURN of all the watchers' a
        turn of the reactor, in order; then C{done()}.  What fits in what is
        left of the share is done at once; the share is renewed on the next
        turn once it is spent.
        """
        self._jobs.append(_Job(owner, items, step, done))
        if self._turnCall is None:
            self._runJobs()
            if self._jobs and self.clock is not None:
                self._turnCall = self.clock.callLater(0, self._nextTurn)

    def cancelWork(self, owner: WatchAllClient) -> None:
        """What is left to do for C{owner} (a watcher that left) is not done."""
        self._jobs = deque(job for job in self._jobs if job.owner is not owner)

    def _nextTurn(self) -> None:
        self._turnCall = None
        self._left = TAPS_PER_TURN
        self._runJobs()
        if self._jobs:
            self._turnCall = self.clock.callLater(0, self._nextTurn)

    def _runJobs(self) -> None:
        while self._jobs and (self._left > 0 or self.clock is None):
            job = self._jobs[0]
            count = self._left if self.clock is not None else len(job.items)
            batch, job.items = job.items[:count], job.items[count:]
            self._left -= len(batch)
            for item in batch:
                job.step(item)
            if not job.items:
                self._jobs.popleft()
                if job.done is not None:
                    job.done()

    def lines(self) -> list[Line]:
        return list(self._lines().values())

    def linesByName(self) -> dict[str, Line]:
        return self._lines()  # type: ignore[no-any-return]

    def buildProtocol(self, addr: Any) -> Optional[WatchAllClient]:
        if self.closing:
            return None
        if self.removed:
            refusals.warn("watch-all: connection from {address} refused: [watch-all] was removed (a restart closes "
                          "the listener)", address=describeAddress(addr), peer=self.refusalKey)
            return None
        if self.maxClients and len(self.clients) >= self.maxClients:
            refusals.warn("watch-all: connection from {address} refused: {count} watchers already",
                          address=describeAddress(addr), count=len(self.clients), peer=self.refusalKey)
            return None
        if self.allow and not addressAllowed(addr, self.allow):
            refusals.warn("watch-all: connection from {address} refused: not in {allow}", address=describeAddress(addr),
                          allow=",".join(self.spec.allow), peer=self.refusalKey)
            return None
        source = sourceOf(addr)
        if isinstance(addr, (IPv4Address, IPv6Address)) and self.sources.of(source) >= MAX_PER_ADDRESS:
            refusals.warn("watch-all: connection from {address} refused: {count} watchers from there already "
                          "(at most {most})", address=describeAddress(addr), count=self.sources.of(source),
                          most=MAX_PER_ADDRESS, peer=self.refusalKey)
            return None
        client = WatchAllClient(self)
        client.source = source
        return client

    def shut(self) -> None:
        """Its table was removed (a reload): its watchers are told and cut, and it takes nobody until a restart closes it."""
        self.removed = True
        for client in list(self.clients):
            said.info("watch-all: {peer} disconnected: [watch-all] removed by a reload", peer=client.peer,
                      budget=self.refusalKey)
            client.emit(b"[serialgw: watch-all: this view was removed from the configuration: disconnected]\r\n")
            client.leave()

    def retune(self, spec: ListenerSpec, patterns: tuple[str, ...]) -> None:
        """A reload's options (its endpoint stays until a restart) and lines filter, for the watchers there too (L{WatchAllClient.retune})."""
        self.spec, self.patterns = spec, patterns
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        for client in list(self.clients):
            client.retune(spec)

    def lineOpened(self, line: Line) -> None:
        for client in self.clients:
            client.watch(line)

    def lineClosed(self, line: Line) -> None:
        for client in self.clients:
            client.unwatch(line)

    def closeAll(self) -> None:
        """
        The gateway stops: each watcher is closed once every line it watches
        is closed (L{lineClosed}: after its device, which takes its
        close-string meanwhile, at most LET_GO_LIMIT s), so that it gets the
        devices' answers as the lines' other readers do; one watching no
        line now, at once.
        """
        self.closing = True
        for client in list(self.clients):
            if not client.taps:
                client.transport.loseConnection()
