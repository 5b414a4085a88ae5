"""
A line's listeners opened, each kind its way: bound (TCP, unix, TLS),
dialled out (with a backoff that survives short links), netconsole, and the
local clients (file:, pipe:, stdio:, pty:).  What each opens is handed to
its owner to close.  How a listener is bound (listen at once or fail with
the reason, a unix socket's file) is L{serialgw.app.binding}'s, shared with
the gateway's own listeners and a reload.
"""

from __future__ import annotations

import ipaddress
import shlex
import weakref
from functools import partial
from typing import Any, Callable, Optional, Sequence

from twisted.application.internet import ClientService
from twisted.internet import unix
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXClientEndpoint,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from serialgw.app.binding import OwnSocketPort, StartupError, listening, removeStaleSocket
from serialgw.app.logs import LineDialEndpoint, describeEndpoint
from serialgw.app.startchecks import PAST_RIGHTS, pastRights, unixNameProblem
from serialgw.app.systemdsockets import systemdProblem
from serialgw.clients.factory import LineFactory
from serialgw.clients.handshakes import HandshakeTable
from serialgw.clients.local import FileClient
from serialgw.clients.netconsole import MAX_INPUT_DATAGRAM, NetconsoleClient
from serialgw.clients.pipeopen import PipeOpening
from serialgw.clients.ptylink import PtyClient
from serialgw.clients.streams import streamClient
from serialgw.clients.tls import RefusingTLSFactory, ServerContextFactory, clientOptions, linkOnHandshake
from serialgw.clients.tlsfiles import TLSError
from serialgw.clients.transports import describeAddress
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.specs import LineConfig, describeUnix, isAbstract, quote
from serialgw.devices.backoff import CarriedBackoff
from serialgw.line.hub import Line
from serialgw.line.role import Role

log = Logger()

# The most listeners the warning about those that know no person names (then: "and N more").
PAST_RIGHTS_LISTED = 4
PAST_RIGHTS_MANY = ("whoever connects there types, whatever their lines' write / read say (they name the people of "
                    "SSH keys and TLS client certificates); give them ro, or TLS with ca=")


class ListenerOpener:
    """
    Opens the listeners of lines: C{open(line, config, spec)} binds,
    dials or makes the client a spec says, and hands each thing to close
    to C{own(kind, thing)} (kind: "port" with C{(spec, port)}, "dialer",
    or "closer" with a callable).
    """

    def __init__(self, reactor: Any, retryPolicy: Callable[[int], float], own: Callable[[str, Any], None],
                 forget: Optional[Callable[[str, Any], None]] = None) -> None:
        self.reactor = reactor
        self.retryPolicy = retryPolicy
        self._own = own
        # What a file: output that could not be opened once its line ran calls (see FileClient.gone).
        self._forget = forget
        # pipe: listeners whose FIFOs are being opened (see pending).
        self._pipes: list[PipeOpening] = []
        # Each line's client factories (listeners and dial-outs) while they
        # live: a reload's new signature goes to them (see resign).
        self._factories: dict[str, weakref.WeakSet[LineFactory]] = {}
        # The TLS handshakes under way on all listeners, bounded in all and from one address.
        self.handshakes = HandshakeTable()
        # Listeners opened that know no person (line, listener), said together at the next turn:
        # a farm's 1000 such lines were 1000 warnings at every start.
        self._pastRights: list[tuple[str, str]] = []

    def _factory(self, line: Line, config: LineConfig, spec: ListenerSpec) -> LineFactory:
        factory = LineFactory(line, spec, config.signature, self.reactor, self.handshakes)
        self._factories.setdefault(config.name, weakref.WeakSet()).add(factory)
        return factory

    def resign(self, name: str, signature: Optional[str]) -> None:
        """
        A line's new RFC 2217 signature (a reload), for the clients its
        listeners and dial-outs make from now on; nothing is reopened (a
        dial-out's session and a port-0 listener's port stay).
        """
        for factory in self._factories.get(name, ()):
            factory.signature = signature

    def signatureOf(self, name: str) -> Optional[str]:
        """Line C{name}'s RFC 2217 signature, as its listeners have it (None: it has none, or no listener)."""
        return next((factory.signature for factory in self._factories.get(name, ())), None)

    def retire(self, name: str, kept: Sequence[ListenerSpec] = ()) -> None:
        """
        A reload closed the listeners of line C{name} that are not C{kept}
        (changed or removed, or the line closed): their TLS handshakes under
        way are cut, never admitted with the rights those listeners gave.
        """
        for factory in list(self._factories.get(name, ())):
            if factory.spec not in kept:
                factory.retire()

    def unretire(self, name: str, spec: ListenerSpec) -> None:
        """A listener a reload closed kept after all (its replacement could not be opened): its TLS clients admitted again."""
        for factory in self._factories.get(name, ()):
            if factory.spec == spec:
                factory.retired = False

    def open(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        """Open one listener of a line; a L{StartupError} says why it cannot be."""
        handlers = {
            ListenerKind.LISTEN: self._serve,
            ListenerKind.CONNECT: self._dial,
            ListenerKind.UDP: self._udp,
            ListenerKind.FILE: self._file,
            ListenerKind.PIPE: self._pipe,
            ListenerKind.STDIO: self._stdio,
            ListenerKind.PTY: self._pty,
        }
        try:
            handlers[spec.kind](line, config, spec)
        except TLSError as e:
            raise StartupError(f"line {config.name!r}: listener {spec.text!r}: {e}") from None
        except OSError as e:
            raise StartupError(
                f"line {config.name!r}: cannot open listener {spec.text!r}: {e.strerror or e}"
            ) from None

    def endpoint(self, name: str, spec: ListenerSpec, factory: Any) -> tuple[Any, Any]:
        """The server endpoint a listener binds, and the factory to give it."""
        try:
            if spec.tls is not None:
                # Plain TCP under our own TLS factory: allow= and max-clients
                # refuse at accept, before any handshake.
                tcp = TCP6ServerEndpoint if ":" in spec.host else TCP4ServerEndpoint
                endpoint: Any = tcp(self.reactor, spec.port, interface=spec.host)
                factory = RefusingTLSFactory(ServerContextFactory(spec.tls), False, factory, self.reactor)
            else:
                problem = systemdProblem(spec.endpoint)
                if problem is not None:
                    raise StartupError(f"line {name!r}: listener {spec.text or spec.endpoint!r}: {problem}")
                endpoint = serverFromString(self.reactor, spec.endpoint)
        except (TLSError, StartupError):
            raise
        except Exception as e:
            raise StartupError(f"line {name!r}: bad listener {spec.text or spec.endpoint!r}: {e}") from None
        return endpoint, factory

    def _serve(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        if spec.path and not isAbstract(spec.path):
            removeStaleSocket(spec.path, config.name)
        endpoint, factory = self.endpoint(config.name, spec, self._factory(line, config, spec))
        result = listening(endpoint, factory, f"line {config.name!r}: cannot listen on {spec.text or spec.endpoint!r}",
                           look=not self.reactor.running)
        if spec.path and not isAbstract(spec.path) and isinstance(result, unix.Port):
            result = OwnSocketPort(result, spec.path)
        self._own("port", (spec, result))
        address = result.getHost()
        kind = f"{spec.protocol.value}{' (TLS)' if spec.tls else ''}"
        log.info(
            "line {line}: {protocol} listener ready on {address}",
            line=config.name,
            protocol=kind,
            address=describeAddress(address),
        )
        if _exposed(spec, address):
            log.warn(
                "line {line}: {listener} lets anyone who can reach {address} type on the console "
                "(no TLS client certificates); restrict it: interface=127.0.0.1, PROTOCOL,allow=CIDR+, "
                "PROTOCOL,ro+, or tls:...:ca=",
                line=config.name, listener=spec.text, address=describeAddress(address),
            )
        if pastRights(config, spec):
            if not self._pastRights:
                self.reactor.callLater(0, self._sayPastRights)
            self._pastRights.append((config.name, spec.text or spec.endpoint))
        if spec.path and isAbstract(spec.path):
            log.warn(
                "line {line}: {address} is an abstract unix socket: it has no file mode, so every process "
                "in this network namespace may connect",
                line=config.name, address=describeAddress(address),
            )
        hint = _connectHint(spec.protocol, address)
        if hint and not spec.tls:
            log.info("line {line}: connect with: {hint}", line=config.name, hint=hint)

    def _sayPastRights(self) -> None:
        """The listeners opened together (a start, a reload) that know no person: said once, naming a few."""
        found, self._pastRights = self._pastRights, []
        if len(found) == 1:
            log.warn("line {line}: listener {listener} {why}", line=found[0][0], listener=found[0][1], why=PAST_RIGHTS)
            return
        listed = ", ".join(f"line {name} {quote(text)}" for name, text in found[:PAST_RIGHTS_LISTED])
        listed += f" and {len(found) - PAST_RIGHTS_LISTED} more" if len(found) > PAST_RIGHTS_LISTED else ""
        log.warn("{count} listeners know no person: {listeners}: {why}", count=len(found), listeners=listed,
                 why=PAST_RIGHTS_MANY)

    def _dial(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        endpoint: Any
        problem = unixNameProblem(spec.path) if spec.path else None
        if problem is not None:
            # (Dialled, each connect was a TypeError inside Twisted, logged, then 30 s of nothing.)
            raise StartupError(f"line {config.name!r}: listener {quote(spec.text)}: {problem}")
        if spec.path:
            endpoint = UNIXClientEndpoint(self.reactor, spec.path)
        else:
            endpoint = HostnameEndpoint(self.reactor, spec.host, spec.port)
        if spec.tls is not None:
            endpoint = wrapClientTLS(clientOptions(spec.tls), endpoint)
        # A peer that accepts and closes at once is redialled ever more
        # rarely (ClientService alone starts the backoff again on each connection).
        backoff = CarriedBackoff(self.reactor, self.retryPolicy)
        # Keeps why the last dial failed, and the backoff's count, for the retry message (serialgw.app.logs.tidy).
        endpoint = LineDialEndpoint(endpoint, backoff, config.name, spec.path)
        dialer = ClientService(
            endpoint,
            self._factory(line, config, spec),
            retryPolicy=backoff,
            clock=self.reactor,
            prepareConnection=backoff.linkUp if spec.tls is None else linkOnHandshake(backoff),
        )
        dialer.name = config.name  # (its line, for a stop's messages: see Closing.hurry, app/closing.py)
        self._own("dialer", dialer)
        # (Named as the retry message names it: an IPv6 peer in brackets.)
        log.info("line {line}: dialing out to {target} ({protocol}), reconnecting with backoff",
                 line=config.name, target=describeUnix(spec.path) if spec.path else describeEndpoint(endpoint),
                 protocol=spec.protocol.value)

    def _udp(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        assert spec.udp is not None
        interface = spec.udp.sourceHost or ("::" if ":" in spec.udp.remoteHost else "")
        client = NetconsoleClient(line, spec.udp, Role.READONLY if spec.readOnly else Role.WRITER, self.reactor)
        try:
            port = self.reactor.listenUDP(spec.udp.sourcePort, client, interface=interface,
                                          maxPacketSize=MAX_INPUT_DATAGRAM)
        except CannotListenError as e:
            # Said in one line, as for TCP (another program holds the port).
            raise StartupError(f"line {config.name!r}: cannot listen on {spec.text!r}: {e}") from None
        self._own("closer", client.close)
        log.info("line {line}: netconsole to {remote} from {local}", line=config.name,
                 remote=client.peer.removeprefix("udp:"), local=describeAddress(port.getHost()))
        if not spec.readOnly and not all(network.network_address.is_loopback for network in client.allow):
            log.warn("line {line}: {peer} types on the console what comes from {allow} (a UDP source address is "
                     "easily forged); restrict it to a trusted network, or make it read-only: raw,ro+udp:...",
                     line=config.name, peer=client.peer, allow=",".join(spec.udp.allow))

    def _file(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        client = FileClient(line, spec.path, self.reactor, spec)
        if self._forget is not None:
            client.gone = partial(self._forget, config.name, spec)
        self._own("closer", client.close)
        log.info("line {line}: output appended to {path}", line=config.name, path=spec.path)

    def _pipe(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        # (Its FIFOs opened by a thread: a mount that hangs holds no line; the start waits for it, see pending.)
        pipe = PipeOpening(line, spec, self.reactor)
        if self._forget is not None:
            pipe.gone = partial(self._forget, config.name, spec)
        self._own("closer", pipe.close)
        self._pipes = [p for p in self._pipes if not p.opening.is_set()] + [pipe]
        log.info("line {line}: pipe {path}", line=config.name, path=spec.path)

    def pending(self) -> list[PipeOpening]:
        """The C{pipe:} listeners whose FIFOs were being opened (the start waits for them, see awaitOpens); forgotten here."""
        pipes, self._pipes = self._pipes, []
        return pipes

    def _pty(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        # (Its link made by a thread: a mount that hangs holds no line; the start waits for it, see awaitOpens.)
        client = PtyClient(line, spec.path, self.reactor, spec)
        if self._forget is not None:
            client.gone = partial(self._forget, config.name, spec)
        self._own("closer", client.close)
        where = f"{spec.path} -> {client.slaveName}" if spec.path else client.slaveName
        log.info("line {line}: pty {where} for a local program", line=config.name, where=where)

    def _stdio(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        transport = streamClient(line, self.reactor, spec)
        self._own("closer", transport.loseConnection)


def stopDialer(dialer: ClientService, reactor: Any, grace: float, cuts: Optional[list[Any]] = None) -> Any:
    """
    Stop a dial-out; what to wait for.  Its connection is closed cleanly,
    or aborted after C{grace} seconds: a clean close waits for the peer to
    take what is queued, and one that does not read would hold a stop or a
    reload (and every reload after it) for ever.  C{cuts}: where the
    abort's timer is kept while it waits (a hurried stop fires it at once).
    """
    if not dialer.running:
        return None
    connected: list[Any] = []
    dialer.whenConnected().addCallbacks(connected.append, lambda _: None)
    stopped = dialer.stopService()
    if connected and not stopped.called:
        abort = reactor.callLater(grace, connected[0].transport.abortConnection)
        if cuts is not None:
            cuts.append((dialer, abort))

        def closed(result: Any) -> Any:
            if abort.active():
                abort.cancel()
            if cuts is not None and (dialer, abort) in cuts:
                cuts.remove((dialer, abort))
            return result

        stopped.addBoth(closed)
    return stopped


def cutDials(cuts: list[tuple[Any, Any]], why: str) -> bool:
    """
    A hurried stop (C{why}: SIGTERM again): the dial-outs whose clean
    close waits for their peers (C{cuts}, see L{stopDialer}) cut now, said
    (they waited out their grace: "nothing is waited for" was said).
    Whether there were any.
    """
    waiting = [(dialer, call) for dialer, call in cuts if call.active()]
    if waiting:
        log.warn("{why} during the stop: cutting {count} dial-out(s) now, without waiting for their peers to take what "
                 "is queued ({lines})", why=why, count=len(waiting), lines=" ".join(d.name for d, _ in waiting))
        for _, call in waiting:
            call.reset(0)
    return bool(waiting)


def _exposed(spec: ListenerSpec, address: Any) -> bool:
    """A writable listener reachable beyond this machine without client certificates."""
    if not isinstance(address, (IPv4Address, IPv6Address)) or spec.readOnly or (spec.tls is not None and spec.tls.ca):
        return False
    try:
        ip = ipaddress.ip_address(address.host.split("%")[0])
    except ValueError:
        return True
    if spec.allow and all(ipaddress.ip_network(a, strict=False).network_address.is_loopback for a in spec.allow):
        return False
    return not ip.is_loopback


def _socatAddress(kind: str, name: str) -> str:
    """A socat address for a unix socket name, its , : ! and the like escaped for socat, then quoted for a shell."""
    escaped = "".join("\\" + c if c in "\\,:!'\"[]{}()" else c for c in name)
    return shellWord(f"{kind}:{escaped}")


def shellWord(text: str) -> str:
    """
    C{text} as one word a POSIX shell reads back as it is: quoted when it
    needs to be; as C{$'...'} with escapes when it holds what cannot be
    shown (a newline, an escape sequence, bytes not UTF-8), so that a log
    line shows no control character and the word can still be pasted.
    """
    if text.isprintable():
        return shlex.quote(text)
    out = []
    for byte in text.encode("utf-8", "surrogateescape").decode("latin-1"):
        if byte in "\\'":
            out.append("\\" + byte)
        elif " " <= byte <= "~":
            out.append(byte)
        else:
            out.append(f"\\x{ord(byte):02x}")
    return "$'" + "".join(out) + "'"


def _connectHint(protocol: Protocol, address: Any) -> Optional[str]:
    if not isinstance(address, (IPv4Address, IPv6Address)):
        name: Any = address.name if isinstance(address, UNIXAddress) else None
        if name is None:
            return None
        if isinstance(name, bytes):
            name = name.decode("utf-8", "surrogateescape")
        if isAbstract(name):
            target = _socatAddress("ABSTRACT-CONNECT", name[1:])
        else:
            target = _socatAddress("UNIX-CONNECT", name)
        if protocol is Protocol.TELNET:
            # A plain socat showed the telnet negotiation as junk (and
            # telnet cannot reach a unix socket): a telnet client through
            # a bridge on a local port.
            return f"socat TCP-LISTEN:2323,bind=127.0.0.1,reuseaddr {target} & telnet 127.0.0.1 2323"
        return f"socat -,raw,echo=0 {target}"
    host, port = address.host, address.port
    if host in ("0.0.0.0", "::"):
        host = "localhost"
    if protocol is Protocol.RAW:
        return f"nc {host} {port}"
    return f"telnet {host} {port}"
