"""
One port for many consoles (a C{[by-name]} table): a client connects, is
asked which console it wants, types its line's name and Enter, and from
then on is a client of that line as if it had connected to one of the
line's own listeners with this listener's options (telnet or raw, TLS,
C{ro}, C{escape=}, C{banner}, C{idle=}, C{outbuf=}, ...): conserver's
C{console NAME}, the single port with a prompt that ser2net users ask for.

The prompt is bounded: a name of at most L{NAME_MOST} characters, given
within L{ANSWER_TIME} seconds, at most L{ANSWERS_MOST} answers (a wrong
name, a list asked for) a connection, L{PENDING_MOST} connections at the
prompt on a listener and L{PENDING_PER_ADDRESS} from one address.  A line
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
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.clients import handshakes
from serialgw.clients.bynameown import _mayAdmit, throughOwn
from serialgw.clients.factory import LineFactory
from serialgw.clients.session import CLOSE_GRACE, Session
from serialgw.clients.tls import HandshakeGate, peerSubject
from serialgw.clients.transports import SourceCounts, describeAddress, peerName, sourceOf
from serialgw.config.specs import ListenerKind, ListenerSpec
from serialgw.config.specs import Protocol as WireProtocol
from serialgw.config.sshkeys import printable
from serialgw.line.hub import Line
from serialgw.logflood import ListenerKey, clientLog
from serialgw.wire.telnetcodes import ABORT, EOF, IP

log = Logger()
# What clients at the prompt cause (names not found, refusals at accept): limited per listener.
said = clientLog()

# The longest name taken (a line's name is at most 128 characters: config.linetable.MAX_NAME).
NAME_MOST = 128
# Seconds from the prompt to a name that is a line's.
ANSWER_TIME = 30.0
# Answers a connection may give (a name that is none, a list asked for) before it is closed.
ANSWERS_MOST = 5
# Connections at the prompt on one listener, and from one address (an IPv6 /64).
PENDING_MOST = 64
PENDING_PER_ADDRESS = 8
# The most bytes of line names one list shows.
LIST_MOST = 4096
# The lines looked at for lists on one listener in LIST_WINDOW seconds (a list looks at each,
# about 10 us: 1000 lines held the reactor 9 ms a list, and asking in a loop was without bound).
LIST_WORK = 20000
LIST_WINDOW = 10.0

PROMPT = b"console (? lists them): "

# Telnet: IAC and the commands whose option byte follows (WILL WONT DO DONT), and SB ... IAC SE.
IAC, SB, SE = 255, 250, 240
# The negotiation commands (WILL WONT DO DONT); WILL and DO are refused (DONT, WONT), once an
# option: a peer repeating them, never reading, made no answers without end.  WONT and
# DONT ask for what is so already: not answered (RFC 1143).
NEGOTIATIONS = {251: 254, 252: None, 253: 252, 254: None}


def shown(name: str) -> str:
    """
    A name as typed (bytes read as Latin-1), for a message and the log: in
    quotes, its first 64 characters, anything but printable ASCII as C{\\xNN};
    past them its length (C{'aaa'... (100 characters)}).
    """
    text = "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in name[:64])
    return f"'{text}'" + (f"... ({len(name)} characters)" if len(name) > 64 else "")


class _Nowhere:
    """The line of the by-name listener's handshake bounds (LineFactory's): none, named for the log."""

    name = "by-name"


class NamePrompt(Protocol):
    """
    One connection of a by-name listener: asked for a line's name, then
    the client of that line (L{inner}), which this hands every byte and the
    connection's end to, as L{HandshakeGate} does.
    """

    transport: Any

    def __init__(self, factory: ByNameFactory, addr: Any) -> None:
        self.factory = factory
        self.addr = addr
        self.source: Optional[str] = sourceOf(addr) if isinstance(addr, (IPv4Address, IPv6Address)) else None
        self.inner: Any = None
        self.peer = "?"
        self.answers = 0
        self.closed = False
        self._typed = bytearray()
        self._timer: Any = None
        self._closeCall: Any = None
        # Telnet parsing state: 0 data, 1 after IAC, 2 after a negotiation command, 3 in SB, 4 in SB after IAC.
        self._state = 0
        self._command = 0
        # The last byte ended a line with CR: a LF or NUL after it is that Enter's.
        self._afterCR = False
        self._telnet = factory.spec.protocol is not WireProtocol.RAW
        # The (command, option) requests refused already: each at most once.
        self._refused: set[tuple[int, int]] = set()
        # IAC IP, EOF or ABORT came (see _inTelnet).
        self._interrupted = False

    def connectionMade(self) -> None:
        self.peer = peerName(self.transport)
        user = self.factory._user(self.transport)
        if user:
            # (A TLS client certificate's person, as the line's log names them.)
            self.peer = f"{printable(user)} ({self.peer})"
        self.factory.pending.add(self.source or "")
        self.factory.prompts.add(self)
        self._timer = self.factory.clock.callLater(ANSWER_TIME, self._tooSlow)
        self.transport.write(PROMPT)

    def dataReceived(self, data: bytes) -> None:
        if self.inner is not None:
            if self._afterCR:
                # (The Enter that named the line ended with a CR read alone: its LF or NUL is not typing.)
                self._afterCR = False
                data = data[1:] if data[:1] in (b"\n", b"\0") else data
                if not data:
                    return
            self.inner.dataReceived(data)
            return
        if self.closed:
            return
        for index, byte in enumerate(data):
            if self._telnet and self._inTelnet(byte):
                if self._interrupted:
                    self._close("bye")
                    return
                continue
            if self._afterCR:
                self._afterCR = False
                if byte in (0, 10):
                    continue
            if byte in (13, 10):
                rest = data[index + 1:]
                if byte == 13 and rest[:1] in (b"\n", b"\0"):
                    rest = rest[1:]
                else:
                    self._afterCR = byte == 13 and not rest
                self._answered(bytes(rest))
                return
            if byte in (8, 127):
                del self._typed[-1:]
            elif byte in (3, 4):
                self._close("bye")
                return
            else:
                self._typed.append(byte)
                if len(self._typed) > NAME_MOST:
                    self._close(f"a console's name is at most {NAME_MOST} characters")
                    return

    def _inTelnet(self, byte: int) -> bool:
        """Whether C{byte} is telnet's (a command, negotiation, subnegotiation): taken here, not typed."""
        state = self._state
        if state == 0:
            if byte == IAC:
                self._state = 1
                return True
            return False
        if state == 1:
            if byte == IAC:
                # A byte 255 typed (no name holds it: found no line), bounded as any other.
                self._state = 0
                return False
            self._state = 2 if byte in NEGOTIATIONS else 3 if byte == SB else 0
            self._command = byte
            # Interrupt Process: telnet's ^C (a line's telnet client gives the device one), which leaves here;
            # so do End of File and Abort (RFC 1184: ^D, ^\ as a terminal has them; ^D typed leaves too).
            self._interrupted = byte in (IP, EOF, ABORT)
            return True
        if state == 2:
            # Refused while asked for a name: the line's client negotiates anew once it is chosen.
            answer = NEGOTIATIONS[self._command]
            if answer is not None and (self._command, byte) not in self._refused:
                self._refused.add((self._command, byte))
                self.transport.write(bytes((IAC, answer, byte)))
            self._state = 0
            return True
        if state == 3:
            self._state = 4 if byte == IAC else 3
            return True
        self._state = 0 if byte == SE else 3
        return True

    def _answered(self, rest: bytes) -> None:
        typed = bytes(self._typed)
        self._typed.clear()
        name = typed.decode("latin-1").strip(" \t")
        if name in ("", "?"):
            self._list()
        else:
            line = self.factory.find(name, self.transport)
            if line is not None:
                self._choose(line, rest)
                return
            said.info("by-name: {peer} asked for {name}: no line of that name it may use", peer=self.peer,
                      name=shown(name), budget=self.factory.logKey)
            self.transport.write(f"[serialgw: no console {shown(name)} here]\r\n".encode("utf-8", "replace"))
        self.answers += 1
        if self.answers >= ANSWERS_MOST:
            self._close(f"{ANSWERS_MOST} answers and no console")
            return
        self.transport.write(PROMPT)
        if rest:
            # (Keys typed ahead: the next answer.)
            self.dataReceived(rest)

    def _list(self) -> None:
        used = self.factory.listWork()
        if used is not None:
            said.info("by-name: {peer} asked for the list: not listed, {used} lines looked at in {window:g} s on this "
                      "listener (at most {most})", peer=self.peer, used=used, window=LIST_WINDOW, most=LIST_WORK,
                      budget=self.factory.logKey)
            self.transport.write(f"[serialgw: not listed: lists are asked for too often on this port now (at most "
                                 f"{LIST_WORK} lines looked at in {LIST_WINDOW:g} s); type a console's name, or ? again "
                                 f"in a few seconds]\r\n".encode())
            return
        names = self.factory.names(self.transport)
        text, shownCount = "", 0
        for name in names:
            if len(text) + len(name) + 1 > LIST_MOST:
                break
            text += ("" if not text else " ") + name
            shownCount += 1
        more = f" and {len(names) - shownCount} more" if shownCount < len(names) else ""
        line = text + more if names else "(none you may use)"
        self.transport.write(f"{line}\r\n".encode("utf-8", "replace"))

    def _choose(self, line: Line, rest: bytes) -> None:
        client = self.factory.clientFor(line, self.addr, self.transport)
        if client is None:
            self._close(f"{line.name} refused you (the gateway's log says why)")
            return
        self._stopTimer()
        self._forget()
        # (Within the listener's log budget, as the line's own words about it: a client choosing in a loop.)
        said.info("by-name: {peer} chose {line}", peer=self.peer, line=line.name, budget=self.factory.logKey)
        self.inner = client
        client.makeConnection(self.transport)
        if rest:
            client.dataReceived(rest)

    def _tooSlow(self) -> None:
        self._timer = None
        self._close(f"no console named within {ANSWER_TIME:g} s")

    def _close(self, why: str) -> None:
        """Told why (one line), then closed; cut if it does not take that within CLOSE_GRACE s."""
        if self.closed:
            return
        self.closed = True
        self._stopTimer()
        self._forget()
        self.transport.write(f"\r\n[serialgw: {why}: disconnected]\r\n".encode("utf-8", "replace"))
        self.transport.loseConnection()
        self._closeCall = self.factory.clock.callLater(CLOSE_GRACE, self._cut)

    def _cut(self) -> None:
        self._closeCall = None
        self.transport.abortConnection()

    def _stopTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _forget(self) -> None:
        if self in self.factory.prompts:
            self.factory.prompts.discard(self)
            self.factory.pending.remove(self.source or "")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._stopTimer()
        self._forget()
        if self._closeCall is not None and self._closeCall.active():
            self._closeCall.cancel()
        self._closeCall = None
        if self.inner is not None:
            self.inner.connectionLost(reason)


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
        line = self.lines().get(name)
        user = self._user(transport)
        if line is None or not self.mayUse(line, user) or self._bound(name, transport, user) is None:
            return None
        return line

    def listWork(self) -> Optional[int]:
        """
        Count a list (it looks at every line) against this listener's
        L{LIST_WORK} lines a L{LIST_WINDOW}: None, it may be made; or the lines
        looked at already this window (one list a window is always made).
        """
        now = self.clock.seconds()
        if now - self._listWindow >= LIST_WINDOW:
            self._listed, self._listWindow = 0, now
        cost = len(self.lines())
        if self._listed and self._listed + cost > LIST_WORK:
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

