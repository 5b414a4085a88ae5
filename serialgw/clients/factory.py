"""
The factory of one listener's clients (telnet, RFC 2217, raw; over TLS or
not): each attached to its line with the listener's role, or refused at
accept when the line is full, the address is not in C{allow=}, or too many
TLS handshakes are under way; a reload's ro and allow= applied to the
clients already connected (L{applyListenerRights}).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable, Optional, Sequence

from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.logger import Logger

from serialgw.clients import handshakes
from serialgw.clients.handshakes import HandshakeTable, victimOf
from serialgw.clients.ptylink import PtyClient, keptInPlace
from serialgw.clients.raw import RawClient
from serialgw.clients.session import PERSON_SESSIONS_PER_LINE, Session, sessionsOf
from serialgw.clients.telnet import TelnetClient
from serialgw.clients.tls import HandshakeGate, caVerifier, peerSubject
from serialgw.clients.transports import addressAllowed, admittedBy, describeAddress, peerName, sourceOf
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.sshkeys import printable
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import ListenerKey, clientLog, counted

log = Logger()
# Connections a listener refuses at accept, limited per listener (logflood):
# a connect flood cannot flood the log.
refusals = clientLog()
_NO_HANDSHAKES: set[Any] = set()


class Refused(BaseProtocol):
    """A connection the line has no room for: told why in one line, then closed (what it sends is ignored)."""

    def __init__(self, text: bytes) -> None:
        self.text = text

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self.text)
        transport.loseConnection()


class LineFactory(Factory):
    """
    Makes the clients of one listener: each attached to the line, speaking
    the listener's protocol.
    """

    noisy = False
    # TLS connections whose handshake is under way, at most, per listener
    # (past it the oldest of the address with the most is cut) and from one
    # address (past it refused); the bounds in the whole gateway are
    # inFlight's (handshakes.HandshakeTable).
    maxHandshakes = 64
    maxHandshakesPerAddress = 8

    def __init__(self, line: Line, spec: ListenerSpec, signature: Optional[str] = None, clock: Any = None,
                 inFlight: Optional[HandshakeTable] = None) -> None:
        self.line = line
        self.spec = spec
        self.signature = signature
        self.clock = clock
        self.role = Role.READONLY if spec.readOnly else Role.WRITER
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        self.refused = 0
        # TLS handshakes under way (a listener without TLS shares one
        # empty set, never added to: 216 bytes a line).
        self.handshakes: set[Any] = set() if spec.tls is not None else _NO_HANDSHAKES
        # The TLS handshakes under way on all the gateway's listeners (its
        # service's; a factory made alone has its own).
        self.inFlight = inFlight if inFlight is not None or spec.tls is None else HandshakeTable()
        # The log budget of this listener's refusals: every connection
        # comes from a new port, so the address cannot be the key.
        self.refusalKey = ListenerKey(f"{line.name} listener {spec.text or spec.endpoint}")
        # Closed or changed by a reload (see retire): no handshake under way joins the line.
        self.retired = False
        # A dial-out's handshake is with a server it chose: not bounded by the listeners' bounds.
        self.outgoing = spec.kind is ListenerKind.CONNECT

    def buildProtocol(self, addr: Any) -> Any:
        # (kick-old-user: room is made once the newcomer may come in, below and in _admit.)
        if self.line.full() and not self.line.kickOld:
            return self._full(addr)
        if self.allow and not self._allowed(addr):
            self.refused += 1
            refusals.warn("{line}: connection from {address} refused: not in {allow}", line=self.line.name,
                          address=describeAddress(addr), allow=",".join(self.spec.allow), peer=self.refusalKey)
            return None
        if self.spec.tls is None and not self._room(describeAddress(addr), self.role):
            return self._full(addr)
        return self._build(addr)

    def _full(self, addr: Any) -> Any:
        """The line is full: the connection refused, said (at accept; a TLS one is closed before any TLS)."""
        refusals.warn("{line}: connection from {address} refused: {clients} already (max-clients)",
                      line=self.line.name, address=describeAddress(addr), count=self.line.maxClients,
                      clients=counted(self.line.maxClients, "client"), peer=self.refusalKey)
        if self.spec.tls is not None:
            # Closed at accept, before any TLS (RefusingTLSFactory).
            return None
        return Refused(f"\r\n[serialgw: {self.line.name} is full: {counted(self.line.maxClients, 'client')} "
                        "(max-clients)]\r\n".encode("utf-8", "replace"))

    def _build(self, addr: Any) -> Any:
        """The client of a connection admitted (over TLS: its gate, which admits it once verified)."""
        source = sourceOf(addr) if self.spec.tls is not None else None
        if self.spec.tls is not None and not self._roomForHandshake(addr, source):
            return None
        client = self.makeClient()
        if self.spec.tls is not None:
            # Attached to the line only once its handshake is done and verified.
            gate = HandshakeGate(client, self.clock, self.spec.tls.handshakeTimeout, self.handshakes,
                                 lambda transport: self._admit(transport, client), self.refusalKey,
                                 table=None if self.outgoing else self.inFlight, outgoing=self.outgoing)
            gate.source, gate.serial, gate.address = source, next(handshakes.serials), describeAddress(addr)
            gate.lineName, gate.hostname = self.line.name, self.spec.tls.hostname
            return gate
        return client

    def makeClient(self) -> Any:
        """The client of one connection: raw or telnet, the listener's role and options (not yet connected)."""
        client: Any
        if self.spec.protocol is Protocol.RAW:
            client = RawClient(self.line, self.role, listener=self.spec, clock=self.clock)
        else:
            client = TelnetClient(self.line, self.role, rfc2217=self.spec.rfc2217, signature=self.signature,
                                  listener=self.spec, clock=self.clock)
        client.factory = self
        client.dialled = self.outgoing
        # What its coming and going says counts against the listener's log
        # budget too (logflood): a client reconnecting in a loop wrote a line
        # or two a connection (over TLS, 318 a second from one process).
        client.logBudget = self.refusalKey
        return client

    def _roomForHandshake(self, addr: Any, source: Any) -> bool:
        """
        Room for one more TLS handshake from C{addr}: at most
        C{maxHandshakesPerAddress} from one address (an IPv6 /64) are under
        way on this listener, and C{inFlight.maxPerAddress} on all listeners;
        more are refused.  Past C{maxHandshakes} in all on this listener, or
        C{inFlight.maxInFlight} in the gateway, the oldest handshake of the
        address with the most under way is cut to make room.  Refusing every
        connection past C{maxHandshakes} let one host lock a listener: 64
        connections that never handshake, renewed every C{handshake=}
        seconds, kept every client out; cutting the oldest of all let 8
        addresses cut everyone else's.  A dial-out's is not bounded.
        """
        if self.outgoing:
            return True
        mine = sum(1 for gate in self.handshakes if gate.source == source)
        if mine >= self.maxHandshakesPerAddress:
            refusals.warn("{line}: connection from {address} refused: {count} TLS handshakes from there under way "
                          "already", line=self.line.name, address=describeAddress(addr), count=mine,
                          peer=self.refusalKey)
            return False
        table = self.inFlight
        assert table is not None
        everywhere = table.of(source)
        if everywhere >= table.maxPerAddress:
            refusals.warn("{line}: connection from {address} refused: {count} TLS handshakes from there under way "
                          "already on the gateway's listeners (at most {most} from one address)", line=self.line.name,
                          address=describeAddress(addr), count=everywhere, most=table.maxPerAddress, peer=table.logKey)
            return False
        if len(self.handshakes) >= self.maxHandshakes:
            self._cut(victimOf(self.handshakes), addr, f"{self.maxHandshakes} under way on "
                      f"{self.spec.text or self.spec.endpoint}", self.refusalKey)
        if len(table) >= table.maxInFlight:
            self._cut(table.victim(), addr, f"{table.maxInFlight} under way on the gateway's listeners", table.logKey)
        return True

    def _cut(self, victim: Any, addr: Any, bound: str, key: str) -> None:
        """
        A handshake under way (the oldest of the address with the most: see
        L{victimOf}) cut to make room for a connection from C{addr}; said,
        limited, naming both addresses (and the victim's line, if another).
        """
        if victim is None:
            return
        victim.forget()
        where = "" if victim.lineName == self.line.name else f" (line {victim.lineName})"
        refusals.warn("{line}: TLS handshake from {oldest}{where} cut: {bound}, the oldest makes room for {address}",
                      line=self.line.name, oldest=victim.address, where=where, bound=bound,
                      address=describeAddress(addr), peer=key)
        victim.cut()

    def retire(self) -> None:
        """
        A reload closed this listener or changed it (ro, allow=, subjects=,
        readonly=): the TLS connections whose handshake is under way are cut
        (they connect again, to the listener as it is now).  Admitted after
        the reload, they joined with the rights the listener gave before it
        (a certificate taken out of subjects= or put into readonly=, an
        address out of a new allow=, wrote on a listener made ro).
        """
        self.retired = True
        gates = list(self.handshakes)
        if gates:
            log.info("{line}: {count} TLS handshake(s) under way on {listener} cut: a reload changed or closed "
                     "the listener", line=self.line.name, count=len(gates), listener=self.spec.text or self.spec.endpoint)
        for gate in gates:
            gate.forget()
            gate.transport.abortConnection()

    def _admit(self, transport: Any, client: Any = None) -> bool:
        """
        A TLS client is verified: is there still room on the line, and may
        the certificate's CN (a user name) use it (the line's write / read)?
        A refusal is logged against the listener's budget too, as one at
        accept is (each connection is a new peer: a client reconnecting in
        a loop to a full line wrote a line a connection).
        """
        if self.retired:
            refusals.info("{line}: TLS client {peer} refused after its handshake: a reload changed or closed "
                     "the listener", line=self.line.name, peer=peerName(transport), budget=self.refusalKey)
            return False
        if self.line.full() and not self.line.kickOld:
            refusals.warn("{line}: TLS client {peer} refused after its handshake: {clients} already (max-clients)",
                     line=self.line.name, peer=peerName(transport), budget=self.refusalKey, count=self.line.maxClients,
                     clients=counted(self.line.maxClients, "client"))
            return False
        # A dial-out's certificate is its server's: no person, no rights.
        tls = self.spec.tls
        person = tls is not None and not tls.hostname and bool(tls.ca)
        user = peerSubject(transport) if person else ""
        # A verified client certificate without a CN names nobody: on a line
        # with write/read it is in neither list (only "*" lets it in).
        if person and client is not None:
            right = self.line.rights.of(user)
            if right is None:
                refusals.warn("{line}: TLS client {peer} ({user}) refused: not in the line's write or read",
                         line=self.line.name, peer=peerName(transport), budget=self.refusalKey, user=printable(user) or "no CN")
                return False
            # Certificates without a CN (user "") are one person for it:
            # on a line with read = ["*"] they had no limit, and filled max-clients.
            sessions = sessionsOf(self.line, user)
            if sessions >= PERSON_SESSIONS_PER_LINE:
                # (As over SSH: one person, a read-only one too, took every place and kept the writers out.)
                refusals.warn("{line}: TLS client {peer} ({user}) refused: {count} sessions of {whose} there already",
                         line=self.line.name, peer=peerName(transport), budget=self.refusalKey, user=printable(user) or "no CN",
                         count=sessions, whose=printable(user) if user else "certificates without a CN")
                return False
            table = self.inFlight
            if table is not None:
                # (As over SSH: 8 a line alone let a CN with read = ["*"] on 1000 lines hold 8000.)
                total, most = table.sessionsOf(user), table.sessionsPerPerson
                if total >= most:
                    refusals.warn("{line}: TLS client {peer} ({user}) refused: {sessions} of {whose} on all lines "
                             "already (at most {most} a person: [tls] sessions-per-person)", line=self.line.name,
                             peer=peerName(transport), budget=self.refusalKey, user=printable(user) or "no CN", count=total,
                             sessions=counted(total, "session"), most=most,
                             whose=printable(user) if user else "certificates without a CN")
                    return False
                table.admitted(user, client)
            if right == "read":
                client.role = Role.READONLY
        # kick-old-user: the oldest makes room for a client verified and admitted (full without it: refused above).
        role = client.role if client is not None else self.role
        if tls is not None and tls.readOnlySubjects and peerSubject(transport) in tls.readOnlySubjects:
            role = Role.READONLY  # (readonly=: set on the client only once attached, Session._certified)
        if self._room(peerName(transport), role):
            return True
        refusals.warn("{line}: TLS client {peer} refused after its handshake: {clients} already (max-clients; "
                 "{why})", line=self.line.name, peer=peerName(transport), budget=self.refusalKey, count=self.line.maxClients,
                 clients=counted(self.line.maxClients, "client"),
                 why="a dial-out takes nobody's place" if self.outgoing else
                 "a read-only one takes only a read-only one's place")
        return False

    def _room(self, newcomer: str, role: Role) -> bool:
        """
        Room on the line for a client admitted (C{newcomer}, its peer, in
        C{role}): kick-old-user makes it (see L{Line.makeRoom}), not for a
        dial-out, the gateway's own connection: it would cut a person, and
        that person, reconnecting, cut it, which dials again at once.
        """
        if self.outgoing:
            return not self.line.full()
        return self.line.makeRoom(newcomer, self.refusalKey, readOnly=role is Role.READONLY)

    def _allowed(self, addr: Any) -> bool:
        return addressAllowed(addr, self.allow)



def applyListenerRights(line: Line, listeners: Sequence[ListenerSpec], old: Sequence[ListenerSpec] = ()) -> None:
    """
    A reload's listeners applied to the people already connected through
    them: one whose listener (the same endpoint however written, other options: see _place) is now
    read-only (C{ro}, or its certificate's name among C{readonly=}) is
    read-only from now on, told, and the others and the log too; one that
    the listener would no longer admit (its address out of a new
    C{allow=}, its certificate's name out of new C{subjects=}) is told and
    disconnected.  Rights given (C{ro} taken out, C{allow=} widened)
    promote nobody: they are for new connections.  A new C{outbuf=} or
    C{policy=} is theirs at once (L{OutputGuard.retune}: one that blocked
    the device and now drops lets it go).  One whose listener was
    removed stays as it is.  A client pty whose listener (of C{old}) keeps
    its link takes all its new options (L{PtyClient.retune}).
    """
    kept = set(listeners)
    now = {_place(spec): spec for spec in listeners}
    verifiers: dict[str, Callable[[Any], bool]] = {}
    ptys = keptInPlace(old, listeners)
    for client in list(line.clients):
        if isinstance(client, PtyClient) and client.spec in ptys:
            client.retune(ptys[client.spec])
        if not isinstance(client, Session) or client.leaving:
            continue
        if client.ownListeners is not None:
            _applyOwnListeners(line, client, listeners)
            continue
        spec = client.listener
        new = None if spec is None else now.get(_place(spec))
        if new is None:
            continue
        if client.guard is not None:
            # Its bound and policy as the listener's now (it keeps the spec it
            # came with: a listener changed back leaves that spec "kept").  A
            # stuck client of a policy=block listener made drop no longer holds the line.
            client.guard.retune(new.outbuf, new.policy)
        if spec in kept:
            continue
        where = new.text or new.endpoint
        refused = _noLongerAdmitted(client, new, verifiers)
        if refused is not None:
            told, reason = refused
            log.info("{line}: {peer} disconnected: {reason}, listener {listener} changed by a reload",
                     line=line.name, peer=client.peer, reason=reason, listener=where)
            told = f"{told} on {line.name} (a reload changed {where!r}): disconnected"
            line.dropTyped(client)
            client.notice(told)
            client.disconnect(told)
        elif new.readOnly or _readOnlySubject(client, new):
            line.makeReadOnly(client, f"a reload made {line.name}'s listener {where!r} read-only"
                              + ("" if new.readOnly else f" for the certificate {peerSubject(client.transport)!r}"))


def _applyOwnListeners(line: Line, client: Any, listeners: Sequence[ListenerSpec]) -> None:
    """
    A by-name listener's C{client}: the line's listeners a reload changed
    bind it as they would bind it now (clients.bynameown.throughOwn): none
    admitting it, it is told and disconnected; only read-only ones, it is
    read-only from now on.  Rights given promote nobody, as above.
    """
    assert client.ownListeners is not None
    bound = client.ownListeners(listeners)
    if bound is None:
        log.info("{line}: {peer} (by-name) disconnected: no listener of the line admits it, changed by a reload",
                 line=line.name, peer=client.peer)
        told = f"{line.name}'s listeners no longer admit you (a reload changed them): disconnected"
        line.dropTyped(client)
        client.notice(told)
        client.disconnect(told)
    elif bound and client.role is not Role.READONLY:
        line.makeReadOnly(client, f"a reload made {line.name}'s listeners read-only to you")


def samePlace(one: ListenerSpec, other: ListenerSpec) -> bool:
    """Whether two listeners listen in the same place, however written (see L{_place})."""
    return _place(one) == _place(other)


def _place(spec: ListenerSpec) -> tuple[Any, ...]:
    """
    Where a listener listens, however its endpoint is written: C{tcp:4001}
    and C{tcp:port=4001}, C{unix:/x} and C{unix:address=/x:mode=660} are one
    place (as the endpoint text, a listener respelled with C{ro} left its
    writers writing, as if removed); an endpoint with no port or path
    known (C{systemd:}) by its text.
    """
    if spec.kind is ListenerKind.LISTEN and (spec.port or spec.path):
        return (spec.kind, spec.host, spec.port, spec.path, spec.tls is not None)
    return (spec.kind, spec.endpoint)


def _noLongerAdmitted(client: Session, spec: ListenerSpec,
                      verifiers: dict[str, Callable[[Any], bool]]) -> Optional[tuple[str, str]]:
    """
    Why C{spec} would not admit C{client} now (as its factory and TLS
    context decide at connect): what it is told, and the log's reason; or None.
    A C{ca=} given, or changed (another file, or the file rewritten), by the
    reload verifies the certificate the client showed (none, where no C{ca=} asked for one) as the handshake
    would (C{verifiers}: by CA file, for this line; see L{_caVerifier}).
    """
    if not admittedBy(spec.allow, client.transport.getPeer()):
        return "your address is no longer allowed", f"not in {','.join(spec.allow)}"
    tls = spec.tls
    before = client.listener.tls if client.listener is not None else None
    if tls is not None and not tls.hostname and tls.ca and (before is None or (before.ca, before.caStamp) != (tls.ca, tls.caStamp)):
        if tls.ca not in verifiers:
            verifiers[tls.ca] = _caVerifier(tls.ca, tls.caStamp)
        if not verifiers[tls.ca](client.transport):
            return ("your connection shows no certificate from this listener's CA",
                    f"no client certificate the CA file {tls.ca!r} verifies")
    if tls is not None and not tls.hostname and tls.subjects:
        subject = peerSubject(client.transport)
        allowed = sorted(set(tls.subjects) | set(tls.readOnlySubjects))
        if subject not in allowed:
            return (f"your certificate ({subject or 'no CN'!r}) is no longer admitted",
                    f"certificate {subject or 'no CN'!r} not in {','.join(allowed)}")
    return None


# The CA files read for reloads (see _caVerifier), the newest last.
_verifiers: dict[tuple[str, Any], Callable[[Any], bool]] = {}
VERIFIERS_KEPT = 8


def _caVerifier(path: str, stamp: Any) -> Callable[[Any], bool]:
    """
    L{caVerifier} of the CA file C{path} as a reload read it (C{stamp}:
    its device, inode, size and mtime then), kept for the other lines of the
    reload: read for each line, a 220 KB bundle given to a farm took 24 ms a
    line, 32 lines a turn.  Without a stamp (not read from a file), read anew.
    """
    if stamp is None:
        return caVerifier(path)
    key = (path, stamp)
    verifier = _verifiers.pop(key, None) or caVerifier(path)
    _verifiers[key] = verifier
    while len(_verifiers) > VERIFIERS_KEPT:
        del _verifiers[next(iter(_verifiers))]
    return verifier


def _readOnlySubject(client: Session, spec: ListenerSpec) -> bool:
    """Whether C{spec} makes C{client}'s certificate read-only (C{readonly=})."""
    tls = spec.tls
    return bool(tls is not None and not tls.hostname and tls.readOnlySubjects
                and peerSubject(client.transport) in tls.readOnlySubjects)
