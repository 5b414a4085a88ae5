"""
One port for many consoles (a C{[by-name]} table): a client connects, is
asked which console it wants, types its line's name and Enter, and from
then on is a client of that line as if it had connected to one of the
line's own listeners with this listener's options (telnet or raw, TLS,
C{ro}, C{escape=}, C{banner}, C{idle=}, C{outbuf=}, ...): conserver's
C{console NAME}, the single port with a prompt that ser2net users ask for.

The prompt, and its bounds, are L{serialgw.clients.bynameprompt}'s; this is
the listener: which lines a connection may have, and its client.  A line
the client may not use is answered as one that does not exist: a line
outside the table's C{lines} patterns, and a line with C{write} / C{read}
(people) to a client that is no person (telnet, raw, TLS without C{ca=})
or a person (a TLS certificate's CN) in neither list.  C{?} (or an empty
answer) lists the lines the client may use, and only those.

A line's own listeners bind its by-name clients too
(L{serialgw.clients.bynameown}): a line is given only to a connection one
of them would admit (its C{allow=}, its C{interface=}, a unix socket's,
TLS, C{ca=} and C{subjects=}), and read-only where each of those is C{ro}
(or C{readonly=} for the certificate): a line whose listeners were all
C{ro}, or C{allow=} a network, was writable by anyone reaching a by-name
listener that left C{lines} out.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Mapping, Optional, Sequence

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger

from serialgw.clients import bynameprompt, handshakes
from serialgw.clients.bynameown import _mayAdmit, throughOwn
from serialgw.clients.bynameprompt import PENDING_MOST, PENDING_PER_ADDRESS, NamePrompt
from serialgw.clients.factory import LineFactory
from serialgw.clients.session import Session
from serialgw.clients.tls import HandshakeGate, peerSubject
from serialgw.clients.transports import SourceCounts, describeAddress, sourceOf
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.line.hub import Line, lineNamed
from serialgw.logflood import ListenerKey, clientLog

log = Logger()
# What clients at the prompt cause (refusals at accept; bynameprompt's, names not found): limited per listener.
said = clientLog()


class _Nowhere:
    """The line of the by-name listener's handshake bounds (LineFactory's): none, named for the log."""

    name = "by-name"


class ByNameFactory(LineFactory):
    """
    The clients of one by-name listener: each at the prompt until it names a
    line (see L{NamePrompt}); over TLS behind its handshake gate, with a
    line listener's bounds on handshakes (L{LineFactory}'s).
    """

    def __init__(self, spec: ListenerSpec, patterns: tuple[str, ...], lines: Callable[[], dict[str, Line]],
                 clock: Any, inFlight: Any = None, signatures: Optional[Callable[[str], Optional[str]]] = None,
                 listeners: Optional[Callable[[], Mapping[str, Sequence[ListenerSpec]]]] = None) -> None:
        LineFactory.__init__(self, _Nowhere(), spec, clock=clock, inFlight=inFlight)  # type: ignore[arg-type]
        self.patterns = patterns
        self.lines = lines
        self.signatures = signatures
        # Each line's own listeners, as the configuration now has them: they bind its by-name clients (throughOwn).
        self.listeners = listeners
        self.pending = SourceCounts()
        self.prompts: set[NamePrompt] = set()
        self.logKey = self.refusalKey = ListenerKey(f"by-name listener {spec.text or spec.endpoint}")
        # A person is known only from a TLS client certificate (ca=).
        tls = spec.tls
        self.knowsPeople = tls is not None and not tls.hostname and bool(tls.ca)
        # The listening port, once it listens (serialgw.app.ownlisteners.serveByName).
        self.port: Any = None
        # Lines looked at for lists since the window's start (see listWork).
        self._listed, self._listWindow = 0, float("-inf")

    def buildProtocol(self, addr: Any) -> Any:
        if self.allow and not self._allowed(addr):
            self.refused += 1
            said.warn("by-name: connection from {address} refused: not in {allow}", address=describeAddress(addr),
                      allow=",".join(self.spec.allow), peer=self.refusalKey)
            return None
        source = sourceOf(addr) if isinstance(addr, (IPv4Address, IPv6Address)) else None
        if self.pending.total >= PENDING_MOST or (source is not None and self.pending.of(source) >= PENDING_PER_ADDRESS):
            self.refused += 1
            said.warn("by-name: connection from {address} refused: {count} at the prompt already{where} (at most "
                      "{most})", address=describeAddress(addr),
                      count=self.pending.total if self.pending.total >= PENDING_MOST else self.pending.of(source or ""),
                      where="" if self.pending.total >= PENDING_MOST else " from there",
                      most=PENDING_MOST if self.pending.total >= PENDING_MOST else PENDING_PER_ADDRESS,
                      peer=self.refusalKey)
            return None
        prompt = NamePrompt(self, addr)
        if self.spec.tls is None:
            return prompt
        if not self._roomForHandshake(addr, sourceOf(addr)):
            return None
        gate = HandshakeGate(prompt, self.clock, self.spec.tls.handshakeTimeout, self.handshakes, lambda t: True,
                             self.refusalKey, table=self.inFlight)
        gate.source, gate.serial, gate.address = sourceOf(addr), next(handshakes.serials), describeAddress(addr)
        gate.lineName = "by-name"
        return gate

    def _user(self, transport: Any) -> Optional[str]:
        """The person on C{transport} (a certificate's CN; "" none), or None where this listener knows no person."""
        return peerSubject(transport) if self.knowsPeople else None

    def mayUse(self, line: Line, user: Optional[str]) -> bool:
        """Whether a client (C{user}: see L{_user}) may be shown and given C{line} (its own listeners aside)."""
        if not any(fnmatch.fnmatchcase(line.name, pattern) for pattern in self.patterns):
            return False
        rights = line.rights
        if rights.write is None and rights.read is None:
            return True
        return user is not None and rights.of(user) is not None

    def offers(self, line: Line, own: Optional[Sequence[ListenerSpec]] = None) -> bool:
        """
        Whether this listener gives C{line} to some client (the status page
        lists it among the line's listeners): its C{lines} patterns have the
        line's name and, for a line with C{write} / C{read}, this listener
        knows people (TLS with C{ca=}), and one of the line's own listeners
        would admit some connection of this listener's (L{_mayAdmit}: not a
        unix socket's over TCP, TLS over telnet or raw, an C{interface=}
        elsewhere; C{own}: the line's listeners, if the caller has them).
        Who may have it is each connection's (L{mayUse}, L{throughOwn}).
        """
        if not any(fnmatch.fnmatchcase(line.name, pattern) for pattern in self.patterns):
            return False
        # (Its own listeners taking connections: one of them may admit a connection of this listener's.)
        if own is None:
            own = (self.listeners() if self.listeners is not None else {}).get(line.name, ())
        taking = [spec for spec in own if spec.kind is ListenerKind.LISTEN]
        if taking and not any(_mayAdmit(spec, self.spec) for spec in taking):
            return False
        return (line.rights.write is None and line.rights.read is None) or self.knowsPeople

    def _bound(self, name: str, transport: Any, user: Optional[str],
               own: Optional[Mapping[str, Sequence[ListenerSpec]]] = None) -> Optional[bool]:
        """L{throughOwn} of line C{name}'s own listeners (C{own}: them all, read once for a list)."""
        if own is None:
            own = self.listeners() if self.listeners is not None else {}
        return throughOwn(own.get(name, ()), transport, self._ca(user), user)

    def find(self, name: str, transport: Any) -> Optional[Line]:
        """The line C{name} if it is there and the client on C{transport} may use it; else None."""
        line = lineNamed(self.lines(), name)
        user = self._user(transport)
        if line is None or not self.mayUse(line, user) or self._bound(line.name, transport, user) is None:
            return None
        return line

    def listWork(self) -> Optional[int]:
        """
        Count a list (it looks at every line) against this listener's
        L{bynameprompt.LIST_WORK} lines a L{bynameprompt.LIST_WINDOW} (read
        there, as the prompt that tells them reads them): None, it may be
        made; or the lines looked at already this window (one list a window
        is always made).
        """
        now = self.clock.seconds()
        if now - self._listWindow >= bynameprompt.LIST_WINDOW:
            self._listed, self._listWindow = 0, now
        cost = len(self.lines())
        if self._listed and self._listed + cost > bynameprompt.LIST_WORK:
            return self._listed
        self._listed += cost
        return None

    def names(self, transport: Any) -> list[str]:
        """The names of the lines the client on C{transport} may use, sorted."""
        user = self._user(transport)
        own = self.listeners() if self.listeners is not None else {}
        return sorted(name for name, line in self.lines().items()
                      if self.mayUse(line, user) and self._bound(name, transport, user, own) is not None)

    def clientFor(self, line: Line, addr: Any, transport: Any) -> Any:
        """
        The client of C{line} for this connection, as the line's own listener
        with these options would make it (max-clients, kick-old-user; over
        TLS, the person's right and sessions), or None: refused (logged).
        """
        signature = self.signatures(line.name) if self.signatures is not None else None
        bound = self._bound(line.name, transport, self._user(transport))
        if bound is None:
            # (Its listeners changed since the name was looked up: none admits it now.)
            return None
        # Read-only where the line's own listeners would make it so (throughOwn).
        spec = attrs.evolve(self.spec, readOnly=True) if bound and not self.spec.readOnly else self.spec
        factory = LineFactory(line, spec, signature, self.clock, self.inFlight)
        factory.refusalKey = self.refusalKey
        if self.spec.tls is None:
            # (Full: a Refused that says so; kick-old-user makes room.)
            made = factory.buildProtocol(addr)
            return self._bind(made, transport) if isinstance(made, Session) else made
        if line.full() and not line.kickOld:
            return LineFactory(line, attrs.evolve(spec, tls=None), clock=self.clock)._full(addr)
        # Verified already (the handshake was done before the prompt): the
        # person's right and sessions on this line, as its own TLS listener
        # asks them; the client keeps the TLS listener (its certificate's
        # CN names it, readonly= applies as it starts).
        client = factory.makeClient()
        if not factory._admit(transport, client):
            return None
        return self._bind(client, transport)

    def _bind(self, client: Any, transport: Any) -> Any:
        """C{client}, told how the line's own listeners bind it (a reload changing them: factory.applyListenerRights)."""
        user = self._user(transport)
        ca = self._ca(user)
        client.ownListeners = lambda listeners: throughOwn(listeners, transport, ca, user)
        return client

    def _ca(self, user: Optional[str]) -> Optional[str]:
        """The CA file that verified the person C{user} ("" none: no person), or None: this listener is not TLS."""
        tls = self.spec.tls
        return None if tls is None else tls.ca if user is not None else ""

    def closeAll(self) -> None:
        """The gateway stops: whoever is still at the prompt is told and closed."""
        for prompt in list(self.prompts):
            prompt._close("the gateway is stopping")

