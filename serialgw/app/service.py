"""
The gateway as a Twisted service: it opens each line's device, listens on
each line's endpoints, and closes everything at stop.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
from typing import Any, Callable, Optional, Sequence

import attrs
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXClientEndpoint,
    serverFromString,
    wrapClientTLS,
)
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.protocol import Protocol as BaseProtocol
from twisted.internet.unix import Port as UNIXPort
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.app.notify import Notifier
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient, fifoPair, streamClient
from serialgw.clients.netconsole import NetconsoleClient
from serialgw.clients.ptylink import PtyClient
from serialgw.clients.raw import RawClient
from serialgw.clients.session import Session
from serialgw.clients.telnet import TelnetClient
from serialgw.clients.tls import (
    HandshakeGate,
    RefusingTLSFactory,
    ServerContextFactory,
    TLSError,
    clientOptions,
    peerSubject,
)
from serialgw.config.specs import (
    LineConfig,
    ListenerKind,
    ListenerSpec,
    Protocol,
    SSHSpec,
    WatchAllSpec,
    describeUnix,
    isAbstract,
)
from serialgw.devices.device import AbsentPort, DeviceError, DeviceLocked, PtyPort, SerialDevice, openPort
from serialgw.devices.links import linkProblem
from serialgw.devices.remote import CarriedBackoff, RemoteDevice
from serialgw.interfaces import IPort
from serialgw.line.hub import Line, Role, addressAllowed, describeAddress, peerName
from serialgw.logflood import Peer, clientLog

log = Logger()
# Connections a listener refuses at accept, limited per listener (logflood):
# a connect flood cannot flood the log.
refusals = clientLog()


class StartupError(Exception):
    """
    The gateway cannot start; the message names what and why.
    """


class _Refused(BaseProtocol):
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
    # TLS connections whose handshake is under way, at most, per listener.
    maxHandshakes = 64

    def __init__(self, line: Line, spec: ListenerSpec, signature: Optional[str] = None, clock: Any = None) -> None:
        self.line = line
        self.spec = spec
        self.signature = signature
        self.clock = clock
        self.role = Role.READONLY if spec.readOnly else Role.WRITER
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        self.refused = 0
        self.handshakes: set[Any] = set()
        # The log budget of this listener's refusals: every connection
        # comes from a new port, so the address cannot be the key.
        self.refusalKey = Peer(f"{line.name} listener {spec.text or spec.endpoint}")

    def buildProtocol(self, addr: Any) -> Any:
        if self.line.full():
            refusals.warn("{line}: connection from {address} refused: {count} clients already (max-clients)",
                          line=self.line.name, address=describeAddress(addr), count=self.line.maxClients,
                          peer=self.refusalKey)
            if self.spec.tls is not None:
                # Closed at accept, before any TLS (RefusingTLSFactory).
                return None
            return _Refused(f"\r\n[serialgw: {self.line.name} is full: {self.line.maxClients} clients "
                            "(max-clients)]\r\n".encode("utf-8", "replace"))
        if self.allow and not self._allowed(addr):
            self.refused += 1
            refusals.warn("{line}: connection from {address} refused: not in {allow}", line=self.line.name,
                          address=describeAddress(addr), allow=",".join(self.spec.allow), peer=self.refusalKey)
            return None
        if self.spec.tls is not None and len(self.handshakes) >= self.maxHandshakes:
            refusals.warn("{line}: connection from {address} refused: {count} TLS handshakes under way already",
                          line=self.line.name, address=describeAddress(addr), count=len(self.handshakes),
                          peer=self.refusalKey)
            return None
        client: Any
        if self.spec.protocol is Protocol.RAW:
            client = RawClient(self.line, self.role, listener=self.spec, clock=self.clock)
        else:
            client = TelnetClient(self.line, self.role, rfc2217=self.spec.rfc2217, signature=self.signature,
                                  listener=self.spec, clock=self.clock)
        client.factory = self
        if self.spec.tls is not None:
            # Attached to the line only once its handshake is done and verified.
            return HandshakeGate(client, self.clock, self.spec.tls.handshakeTimeout, self.handshakes,
                                 lambda transport: self._admit(transport, client), self.refusalKey)
        return client

    def _admit(self, transport: Any, client: Any = None) -> bool:
        """
        A TLS client is verified: is there still room on the line, and may
        the certificate's CN (a user name) use it (the line's write / read)?
        """
        if self.line.full():
            log.warn("{line}: TLS client {peer} refused after its handshake: {count} clients already (max-clients)",
                     line=self.line.name, peer=peerName(transport), count=self.line.maxClients)
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
                log.warn("{line}: TLS client {peer} ({user}) refused: not in the line's write or read",
                         line=self.line.name, peer=peerName(transport), user=user or "no CN")
                return False
            if right == "read":
                client.role = Role.READONLY
        return True

    def _allowed(self, addr: Any) -> bool:
        return addressAllowed(addr, self.allow)


class GatewayService(MultiService):
    """
    Serial lines and their listeners in one reactor.

    Devices are opened and endpoints bound in C{privilegedStartService}
    (before twistd drops privileges); a failure there closes what was opened
    and raises L{StartupError}.  Reading starts in C{startService}.
    """

    def __init__(
        self,
        lines: Sequence[LineConfig],
        reactor: Any = None,
        openPort: Callable[..., IPort] = openPort,
        retryPolicy: Optional[Callable[[int], float]] = None,
        reopenPolicy: Optional[Callable[[int], float]] = None,
        status: Optional[str] = None,
        ssh: Optional[SSHSpec] = None,
        watchAll: Optional[WatchAllSpec] = None,
        waitForDevices: bool = False,
    ) -> None:
        MultiService.__init__(self)
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.configs = list(lines)
        self._openPort = openPort
        # Dial-outs reconnect after 0.5 s, doubling up to 30 s, with jitter.
        self.retryPolicy = retryPolicy or backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0)
        # A vanished device is tried again after 0.5 s, doubling up to 10 s, with jitter.
        self.reopenPolicy = reopenPolicy or backoffPolicy(initialDelay=0.5, maxDelay=10.0, factor=2.0)
        self.lines: dict[str, Line] = {}
        self._reloading: defer.Deferred[None] = defer.succeed(None)
        self.ports: list[tuple[ListenerSpec, Any]] = []
        self._dialers: list[ClientService] = []
        self._closers: list[Callable[[], Any]] = []
        # What each line opened, so a reload can close one line alone.
        self._owned: dict[str, list[tuple[str, Any]]] = {}
        self._opening: Optional[str] = None
        # The same, by what opened it (a listener's spec, or ("log", LogSpec)),
        # so a reload can close one listener or log of a line that stays.
        self._keyed: dict[str, list[tuple[Any, tuple[str, Any]]]] = {}
        self._openingKey: Any = None
        self._opened = False
        # Stopped: a reload still waiting (queued, or for what it closed) opens nothing.
        self._stopped = False
        # Retuned lines whose new console log a reload opened at once.
        self._logsOpened: set[str] = set()
        self.status = status
        self.statusPort: Any = None
        self.ssh = ssh
        # One view of all consoles: its listeners' factories (see serialgw.clients.watchall).
        self.watchAll = watchAll
        self.watchers: list[Any] = []
        self.watchAllPorts: list[Any] = []
        self.sshPort: Any = None
        self.notifier = Notifier(self.reactor, self.statusText)
        # A local device that cannot be opened at start: an error that stops
        # the gateway (False), or a line that starts down and tries again
        # with the reopen backoff (True: --config, --wait-for-device).
        self.waitForDevices = waitForDevices

    def privilegedStartService(self) -> None:
        MultiService.privilegedStartService(self)
        if self._opened:
            return
        try:
            for config in self.configs:
                self._openLine(config)
            if self.status:
                self._serveStatus(self.status)
            if self.ssh is not None:
                self._serveSSH(self.ssh)
            if self.watchAll is not None:
                for spec in self.watchAll.listeners:
                    self._serveWatchAll(spec, self.watchAll.lines)
        except StartupError:
            self._closeAll()
            raise
        self._opened = True

    def _own(self, kind: str, thing: Any) -> None:
        lists: dict[str, list[Any]] = {"closer": self._closers, "port": self.ports, "dialer": self._dialers}
        lists[kind].append(thing)
        if self._opening is not None:
            self._owned.setdefault(self._opening, []).append((kind, thing))
            if self._openingKey is not None:
                self._keyed.setdefault(self._opening, []).append((self._openingKey, (kind, thing)))

    def _openLine(self, config: LineConfig) -> None:
        self._opening = config.name
        try:
            self._openLineNow(config)
        finally:
            self._opening = None

    def _openLineNow(self, config: LineConfig) -> None:
        device = self._makeDevice(config)
        line = Line(config.name, device, clock=self.reactor, configured=config.settings,
                    restoreSettings=config.restoreSettings)
        line.notices = config.notices
        line.mode = config.mode
        line.maxClients = config.maxClients
        line.rights = config.rights
        line.backlogSize = config.backlog
        line.coalesce(config.coalesceMin, config.coalesceMax, config.coalesceOn)
        device.sink = line
        line.openString, line.closeString = config.openString, config.closeString
        line.modemAttached = {"dtr": config.dtr, "rts": config.rts}
        line.modemIdle = {"dtr": config.idleDtr, "rts": config.idleRts}
        # Right after open, before any data: nobody is attached yet.
        line.applyModemLines()
        if config.pace or config.paceLine:
            if isinstance(device, SerialDevice):
                device.setPace(config.pace, config.paceLine)
            else:
                log.warn("line {line}: pace and pace-line apply to local devices; {device} is not paced",
                         line=config.name, device=config.device.describe())
        self.lines[config.name] = line
        for watcher in self.watchers:
            watcher.lineOpened(line)
        line.waitForClient = any(spec.wait for spec in config.listeners)
        if config.log is not None:
            self._openLog(line, config)
        for spec in config.listeners:
            self._listen(line, config, spec)

    def _openLog(self, line: Line, config: LineConfig) -> None:
        assert config.log is not None
        try:
            consoleLog = ConsoleLog(line, config.log, self.reactor)
        except OSError as e:
            raise StartupError(f"line {config.name!r}: cannot open log {config.log.path!r}: {e.strerror}") from None
        self._openingKey = ("log", config.log)
        try:
            self._own("closer", consoleLog.close)
        finally:
            self._openingKey = None

    def _serveStatus(self, description: str) -> None:
        from serialgw.app.status import statusSite

        site = statusSite(self)
        self.statusPort = _listening(serverFromString(self.reactor, description), site,
                                     f"cannot serve status on {description!r}")
        self._own("closer", self.statusPort.stopListening)
        log.info("status page (JSON) on http://{address}/, Prometheus metrics on /metrics", address=describeAddress(self.statusPort.getHost()))

    def _serveSSH(self, spec: SSHSpec) -> None:
        from serialgw.clients.ssh import SSHError, makeFactory

        try:
            factory = makeFactory(spec, lambda: self.lines, self.reactor)
            endpoint = serverFromString(self.reactor, spec.listener.endpoint)
        except SSHError as e:
            raise StartupError(str(e)) from None
        except Exception as e:
            raise StartupError(f"bad SSH listener {spec.listener.text!r}: {e}") from None
        self.sshPort = _listening(endpoint, factory, f"cannot listen for SSH on {spec.listener.text!r}")
        self.sshFactory = factory
        self._own("closer", self.sshPort.stopListening)
        log.info("ssh listener ready on {address} for {count} user(s); ssh -p PORT LINE@HOST",
                 address=describeAddress(self.sshPort.getHost()), count=len(spec.users))

    def _serveWatchAll(self, spec: ListenerSpec, patterns: tuple[str, ...]) -> None:
        from serialgw.clients.watchall import WatchAllFactory, matches

        if spec.path and not isAbstract(spec.path):
            _removeStaleSocket(spec.path, "watch-all")
        try:
            endpoint = serverFromString(self.reactor, spec.endpoint)
        except Exception as e:
            raise StartupError(f"watch-all: bad listener {spec.text or spec.endpoint!r}: {e}") from None
        factory = WatchAllFactory(spec, patterns, lambda: self.lines, self.reactor)
        port = _listening(endpoint, factory, f"watch-all: cannot listen on {spec.text or spec.endpoint!r}")
        self.watchers.append(factory)
        self._own("closer", port.stopListening)
        self._own("closer", factory.closeAll)
        self.watchAllPorts.append(port)
        log.info("watch-all listener ready on {address} for lines {patterns}",
                 address=describeAddress(port.getHost()), patterns=" ".join(patterns))
        if not any(matches(name, patterns) for name in self.lines):
            log.warn("watch-all: lines {patterns} match no line (of {names}): its watchers see nothing "
                     "until a reload adds one", patterns=" ".join(patterns), names=" ".join(self.lines) or "none")

    def reloadUsers(self, ssh: Optional[SSHSpec]) -> None:
        """New people and keys for the running SSH listener (a reload); its address and host key stay."""
        if ssh is None or self.ssh is None or self.sshPort is None:
            if (ssh is None) != (self.sshPort is None):
                log.warn("reload: [ssh] added or removed: restart the gateway to apply it")
            return
        if (ssh.listener, ssh.hostKey) != (self.ssh.listener, self.ssh.hostKey):
            log.warn("reload: [ssh] listen or host-key changed: restart the gateway to apply it")
        self.sshFactory.setUsers(ssh.users)
        self.ssh = attrs.evolve(self.ssh, users=ssh.users)
        log.info("reload: {count} SSH user(s)", count=len(ssh.users))

    def _makeDevice(self, config: LineConfig) -> Any:
        if config.device.remote:
            log.info("line {line}: device {device}, a console elsewhere", line=config.name,
                     device=config.device.describe())
            return RemoteDevice(config.device, self.reactor, config.breakDuration, config.settings,
                                retryPolicy=self.retryPolicy)
        # A local tty takes its UUCP lock (a pty made here, none).
        lockDir = config.lockDir if config.lock and config.device.kind == "tty" else None

        # A device that vanishes (USB unplugged, a pty's far end gone) is
        # opened again at the same path (a pty: a new one behind the link).
        def opener(spec: Any = config.device, settings: Any = config.settings) -> IPort:
            return self._openPort(spec, settings, lockDir)

        def absent(e: DeviceError) -> SerialDevice:
            # Down from the start, opened again with backoff.
            return SerialDevice(AbsentPort(config.device.describe(), config.settings), self.reactor,
                                config.breakDuration, opener=opener, reopenPolicy=self.reopenPolicy,
                                downReason=str(e))

        try:
            port = self._openPort(config.device, config.settings, lockDir)
        except DeviceLocked as e:
            # Someone else has the line (cu, minicom): down until they let go.
            device = absent(e)
            device.noteFailure(e)
            return device
        except DeviceError as e:
            if not self.waitForDevices:
                raise StartupError(f"line {config.name!r}: {e}") from None
            log.warn("line {line}: {reason}; the line starts down and the device is tried again with backoff",
                     line=config.name, reason=str(e))
            return absent(e)
        if isinstance(port, PtyPort):
            where = f"{port.link} -> {port.slaveName}" if port.link else port.slaveName
            log.info(
                "line {line}: pty {where}; a local program plays the device there, "
                "e.g. socat -,raw,echo=0 {path},raw,echo=0",
                line=config.name,
                where=where,
                path=port.link or port.slaveName,
            )
        else:
            log.info("line {line}: device {device} at {settings}", line=config.name, device=port.name,
                     settings=port.settings.describe())
        return SerialDevice(port, self.reactor, config.breakDuration, opener=opener, reopenPolicy=self.reopenPolicy)

    def _listen(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        handlers = {
            ListenerKind.LISTEN: self._serve,
            ListenerKind.CONNECT: self._dial,
            ListenerKind.UDP: self._udp,
            ListenerKind.FILE: self._file,
            ListenerKind.PIPE: self._pipe,
            ListenerKind.STDIO: self._stdio,
            ListenerKind.PTY: self._pty,
        }
        self._openingKey = spec
        try:
            handlers[spec.kind](line, config, spec)
        except TLSError as e:
            raise StartupError(f"line {config.name!r}: listener {spec.text!r}: {e}") from None
        except OSError as e:
            raise StartupError(
                f"line {config.name!r}: cannot open listener {spec.text!r}: {e.strerror or e}"
            ) from None
        finally:
            self._openingKey = None

    def _endpoint(self, name: str, spec: ListenerSpec, factory: Any) -> tuple[Any, Any]:
        """The server endpoint a listener binds, and the factory to give it."""
        try:
            if spec.tls is not None:
                # Plain TCP under our own TLS factory: allow= and max-clients
                # refuse at accept, before any handshake.
                tcp = TCP6ServerEndpoint if ":" in spec.host else TCP4ServerEndpoint
                endpoint: Any = tcp(self.reactor, spec.port, interface=spec.host)
                factory = RefusingTLSFactory(ServerContextFactory(spec.tls), False, factory, self.reactor)
            else:
                from serialgw.app.check import systemdProblem

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
            _removeStaleSocket(spec.path, config.name)
        endpoint, factory = self._endpoint(config.name, spec, LineFactory(line, spec, config.signature, self.reactor))
        result = _listening(endpoint, factory, f"line {config.name!r}: cannot listen on {spec.text or spec.endpoint!r}")
        if spec.path and not isAbstract(spec.path) and isinstance(result, UNIXPort):
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
        if spec.path and isAbstract(spec.path):
            log.warn(
                "line {line}: {address} is an abstract unix socket: it has no file mode, so every process "
                "in this network namespace may connect",
                line=config.name, address=describeAddress(address),
            )
        hint = _connectHint(spec.protocol, address)
        if hint and not spec.tls:
            log.info("line {line}: connect with: {hint}", line=config.name, hint=hint)

    def _dial(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        endpoint: Any
        if spec.path:
            endpoint = UNIXClientEndpoint(self.reactor, spec.path)
        else:
            endpoint = HostnameEndpoint(self.reactor, spec.host, spec.port)
        if spec.tls is not None:
            endpoint = wrapClientTLS(clientOptions(spec.tls), endpoint)
        # A peer that accepts and closes at once is redialled ever more
        # rarely (ClientService alone starts the backoff again on each connection).
        backoff = CarriedBackoff(self.reactor, self.retryPolicy)
        dialer = ClientService(
            endpoint,
            LineFactory(line, spec, config.signature, self.reactor),
            retryPolicy=backoff,
            clock=self.reactor,
            prepareConnection=backoff.linkUp,
        )
        self._own("dialer", dialer)
        log.info("line {line}: dialing out to {target} ({protocol}), reconnecting with backoff",
                 line=config.name, target=describeUnix(spec.path) if spec.path else f"{spec.host}:{spec.port}",
                 protocol=spec.protocol.value)

    def _udp(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        assert spec.udp is not None
        interface = spec.udp.sourceHost or ("::" if ":" in spec.udp.remoteHost else "")
        client = NetconsoleClient(line, spec.udp)
        port = self.reactor.listenUDP(spec.udp.sourcePort, client, interface=interface)
        self._own("closer", port.stopListening)
        log.info("line {line}: netconsole to {remote}:{rport} from {local}", line=config.name,
                 remote=spec.udp.remoteHost, rport=spec.udp.remotePort, local=describeAddress(port.getHost()))

    def _file(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        client = FileClient(line, spec.path, self.reactor, spec)
        self._own("closer", client.close)
        log.info("line {line}: output appended to {path}", line=config.name, path=spec.path)

    def _pipe(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        fdIn, fdOut = fifoPair(spec.path)
        transport = streamClient(line, self.reactor, spec, fdIn, fdOut, name=f"pipe:{spec.path}")
        self._own("closer", transport.loseConnection)
        log.info("line {line}: pipe {path}", line=config.name, path=spec.path)

    def _pty(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        client = PtyClient(line, spec.path, self.reactor)
        self._own("closer", client.close)
        where = f"{spec.path} -> {client.slaveName}" if spec.path else client.slaveName
        log.info("line {line}: pty {where} for a local program", line=config.name, where=where)

    def _stdio(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        transport = streamClient(line, self.reactor, spec)
        self._own("closer", transport.loseConnection)

    def startService(self) -> None:
        if not self._opened:
            self.privilegedStartService()
        MultiService.startService(self)
        for line in self.lines.values():
            if not line.waitForClient:
                line.device.start()
        for dialer in self._dialers:
            dialer.startService()
        self.notifier.ready()

    def statusText(self) -> str:
        """One line for systemd's STATUS=: lines up and down (the first few down by name), clients."""
        lines = list(self.lines.values())
        down = [line.name for line in lines if not getattr(line.device, "up", True)]
        clients = sum(len(line.clients) for line in lines)
        text = f"{len(lines)} line(s), {len(lines) - len(down)} up, {len(down)} down"
        if down:
            text += f" ({', '.join(down[:5])}{', ...' if len(down) > 5 else ''})"
        return f"{text}; {clients} client(s)"

    def stopService(self) -> Any:
        """Stop listening, close devices; the Deferred fires when all is closed."""
        self.notifier.stopping()
        self._stopped = True
        waits = [MultiService.stopService(self)] + self._closeAll()
        return defer.gatherResults([w for w in waits if isinstance(w, defer.Deferred)])

    def reopenLogs(self) -> int:
        """
        SIGUSR1 (logrotate moved the files): every console log and every
        C{file:} listener opens its path again.  Return how many did.
        """
        count = 0
        for line in self.lines.values():
            for client in list(line.logs) + [c for c in line.clients if isinstance(c, FileClient)]:
                client.reopen()
                count += 1
        log.info("reopened {count} log file(s)", count=count)
        return count

    def closeLine(self, name: str, notice: str = "this line was removed from the configuration") -> list[Any]:
        """Close one line: its listeners, dial-outs, logs, clients (told C{notice}) and device."""
        waits = [self._release(kind, thing) for kind, thing in self._owned.pop(name, [])]
        self._keyed.pop(name, None)
        line = self.lines.pop(name, None)
        if line is not None:
            for watcher in self.watchers:
                watcher.lineClosed(line)
            for client in list(line.clients):
                transport = getattr(client, "transport", None)
                if isinstance(client, Session):
                    # Off the line at once, and cut after CLOSE_GRACE s if it
                    # does not take its last output (loseConnection alone
                    # waited for ever on a client that never reads).
                    client.notice(notice)
                    client.disconnect()
                elif transport is not None and hasattr(transport, "loseConnection"):
                    client.notice(notice)
                    transport.loseConnection()
            waits.append(line.device.close())
        return waits

    def _release(self, kind: str, thing: Any) -> Any:
        """Close one thing a line opened; what to wait for."""
        if kind == "port":
            self.ports.remove(thing)
            return thing[1].stopListening()
        if kind == "dialer":
            self._dialers.remove(thing)
            return self._stopDialer(thing)
        self._closers.remove(thing)
        return thing()

    # How long a dial-out's clean close may wait for its peer to take what
    # is queued before the connection is aborted.
    dialCloseGrace = 2.0

    def _stopDialer(self, dialer: ClientService) -> Any:
        """
        Stop a dial-out; what to wait for.  Its connection is closed cleanly,
        or aborted after C{dialCloseGrace} seconds: a clean close waits for
        the peer to take what is queued, and one that does not read would
        hold a stop or a reload (and every reload after it) for ever.
        """
        if not dialer.running:
            return None
        connected: list[Any] = []
        dialer.whenConnected().addCallbacks(connected.append, lambda _: None)
        stopped = dialer.stopService()
        if connected and not stopped.called:
            abort = self.reactor.callLater(self.dialCloseGrace, connected[0].transport.abortConnection)

            def closed(result: Any) -> Any:
                if abort.active():
                    abort.cancel()
                return result

            stopped.addBoth(closed)
        return stopped

    def _closeKeyed(self, name: str, key: Any) -> list[Any]:
        """Close what one listener (or the log) of a line opened; the line and its sessions stay."""
        waits, kept = [], []
        for k, entry in self._keyed.get(name, []):
            if k == key:
                self._owned[name].remove(entry)
                waits.append(self._release(*entry))
            else:
                kept.append((k, entry))
        self._keyed[name] = kept
        return waits

    def reload(self, configs: Sequence[LineConfig]) -> Any:
        """
        Apply a new configuration, all or nothing.  First every listener
        it would bind anew is bound and closed again (one held by another
        process refuses the reload: C{{"refused": [reason]}}, nothing
        changed).  Then lines removed, and lines whose device changes, are
        closed; other changes are applied to the running line (L{_retune}:
        its device and sessions stay; settings go to the open device);
        lines added or reopened, and new listeners, are opened once the
        closed ones have let go of their ports and devices.  Return a
        Deferred that fires with what changed; reloads run one at a time.
        """
        done: defer.Deferred[dict[str, list[str]]] = defer.Deferred()

        def run(_: Any) -> Any:
            return defer.maybeDeferred(self._reload, list(configs)).chainDeferred(done)

        self._reloading.addCallback(run)
        return done

    # A change of these reopens the line's device (and cuts its sessions);
    # every other change is applied to the running line.
    DEVICE_FIELDS = ("device", "lock", "lockDir")

    def _reload(self, configs: list[LineConfig]) -> Any:
        if self._stopped:
            return {"refused": ["the gateway is stopping"]}
        old = {c.name: c for c in self.configs}
        new = {c.name: c for c in configs}
        removed = [n for n in old if n not in new]
        different = [n for n in old if n in new and new[n] != old[n]]
        changed = [n for n in different
                   if any(getattr(old[n], f) != getattr(new[n], f) for f in self.DEVICE_FIELDS)]
        retuned = [n for n in different if n not in changed]
        added = [n for n in new if n not in old]

        # What this reload binds anew, and what it lets go of.
        opening: list[tuple[str, ListenerSpec]] = []
        releasing: list[tuple[str, ListenerSpec]] = []
        reopened: dict[str, list[ListenerSpec]] = {}
        for name in changed + removed:
            releasing += [(name, spec) for spec in old[name].listeners]
        for name in changed + added:
            opening += [(name, spec) for spec in new[name].listeners]
        for name in retuned:
            gone, fresh = _listenerChanges(old[name], new[name])
            releasing += [(name, spec) for spec in gone]
            opening += [(name, spec) for spec in fresh]
            reopened[name] = fresh
        logs = [(name, new[name].log) for name in changed + added + retuned
                if new[name].log is not None and (name not in retuned or new[name].log != old[name].log)]
        probes: list[Any] = []
        released = {spec.path for _, spec in releasing if spec.kind is ListenerKind.PTY and spec.path}
        problem = _checkFiles(opening, logs, released) or self._checkBinds(opening, releasing, probes)
        waits: list[Any] = [probe.stopListening() for probe in probes]
        if problem is not None:
            log.error("reload refused, the running configuration stays: {reason}", reason=problem)
            # Answered once what the check bound is closed again.
            probed = defer.gatherResults([w for w in waits if isinstance(w, defer.Deferred)], consumeErrors=True)
            return probed.addBoth(lambda _: {"refused": [problem]})

        for name in removed:
            waits += self.closeLine(name)
        for name in changed:
            # Closed and opened again: its sessions are told why, not that the line is gone.
            what = "device" if old[name].device != new[name].device else "lock setting"
            waits += self.closeLine(name, f"{name}: {what} changed by a reload; reconnect")
        for name in retuned:
            waits += self._retune(old[name], new[name])
        self.configs = [c for c in self.configs if c.name not in removed and c.name not in changed]
        closed = defer.gatherResults([w for w in waits if isinstance(w, defer.Deferred)], consumeErrors=True)
        closed.addErrback(lambda f: log.failure("reload: closing lines", f))

        def reopen(_: Any) -> dict[str, list[str]]:
            if self._stopped:
                log.info("reload: the gateway stopped before the reload was done; nothing opened")
                return {"refused": ["the gateway stopped before the reload was done"]}
            leftOut: list[str] = []
            for name in changed + added:
                try:
                    self._openLine(new[name])
                except StartupError as e:
                    log.error("reload: {reason}; line {line} left out", reason=str(e), line=name)
                    self.closeLine(name)
                    leftOut.append(name)
                    continue
                self.configs.append(new[name])
                line = self.lines[name]
                if self.running and not line.waitForClient:
                    line.device.start()
                for kind, thing in self._owned.get(name, []):
                    if kind == "dialer" and self.running:
                        thing.startService()
            for name in retuned:
                self._reopenParts(old[name], new[name], reopened[name])
            # A line left out is neither added nor changed: it is not running.
            addedNow = [n for n in added if n not in leftOut]
            changedNow = [n for n in changed + retuned if n not in leftOut]
            log.info("reload: added {added}, changed {changed}, removed {removed}, {kept} unchanged{more}",
                     added=addedNow or "none", changed=changedNow or "none", removed=removed or "none",
                     kept=len(old) - len(removed) - len(different),
                     more=f", left out {leftOut}" if leftOut else "")
            result = {"added": addedNow, "changed": changedNow, "removed": removed}
            if leftOut:
                result["left out"] = leftOut
            return result

        return closed.addCallback(reopen)

    def _checkBinds(self, opening: list[tuple[str, ListenerSpec]], releasing: list[tuple[str, ListenerSpec]],
                    probes: list[Any]) -> Optional[str]:
        """
        Whether every listener a reload would bind can bind: each is bound
        now (and closed again: C{probes}), unless one of ours that the
        reload lets go of holds its address.  The first problem, or None.
        """
        endpoints = {spec.endpoint for _, spec in releasing}
        paths = {spec.path for _, spec in releasing if spec.path}
        udpPorts = {spec.udp.sourcePort for _, spec in releasing if spec.udp is not None}
        ports: set[int] = set()
        for name, spec in releasing:
            for key, (kind, thing) in self._keyed.get(name, []):
                if key == spec and kind == "port":
                    ports.add(getattr(thing[1].getHost(), "port", -1))
        for name, spec in opening:
            if spec.kind is ListenerKind.UDP and spec.udp is not None:
                if spec.udp.sourcePort and spec.udp.sourcePort not in udpPorts:
                    problem = _probeUDP(name, spec)
                    if problem is not None:
                        return problem
                continue
            if spec.kind is ListenerKind.CONNECT and spec.tls is not None:
                # A dial-out binds nothing, but its TLS files are read when it is made.
                try:
                    clientOptions(spec.tls)
                except TLSError as e:
                    return f"line {name!r}: listener {spec.text!r}: {e}"
            if spec.kind is not ListenerKind.LISTEN or spec.endpoint in endpoints or spec.path in paths:
                continue
            try:
                if spec.path and not isAbstract(spec.path):
                    _removeStaleSocket(spec.path, name)
                quiet = Factory()
                quiet.noisy = False
                endpoint, factory = self._endpoint(name, spec, quiet)
            except StartupError as e:
                return str(e)
            except TLSError as e:
                return f"line {name!r}: listener {spec.text!r}: {e}"
            result = _listenAtOnce(endpoint, factory)
            if result is None:
                continue
            if isinstance(result, Failure):
                why = result.value
                if isinstance(why, CannotListenError) and why.port in ports:
                    continue  # ours, let go of by this reload
                return f"line {name!r}: cannot listen on {spec.text or spec.endpoint!r}: {why}"
            probes.append(result)
        return None

    def _retune(self, old: LineConfig, new: LineConfig) -> list[Any]:
        """
        Apply a line's new configuration to the running line: its device
        and its sessions stay.  Listeners and a log that went are closed
        here (what to wait for); a new log is opened here, first, and new
        listeners by L{_reopenParts}.
        """
        name = new.name
        line = self.lines[name]
        device = line.device
        if new.settings != old.settings:
            line.configured = new.settings
            effective = line.applySettings(new.settings)
            log.info("line {line}: settings {wanted} (reload); in effect: {settings}", line=name,
                     wanted=new.settings.describe(), settings=effective.describe())
        device.breakDuration = new.breakDuration
        line.restoreSettings = new.restoreSettings
        line.notices = new.notices
        line.setMode(new.mode)
        line.maxClients = new.maxClients
        if new.rights != old.rights:
            line.applyRights(new.rights)
        line.backlogSize = new.backlog
        line.coalesce(new.coalesceMin, new.coalesceMax, new.coalesceOn)
        line.openString, line.closeString = new.openString, new.closeString
        modem = (new.dtr, new.rts, new.idleDtr, new.idleRts)
        if modem != (old.dtr, old.rts, old.idleDtr, old.idleRts):
            line.modemAttached = {"dtr": new.dtr, "rts": new.rts}
            line.modemIdle = {"dtr": new.idleDtr, "rts": new.idleRts}
            line.applyModemLines()
        if (new.pace, new.paceLine) != (old.pace, old.paceLine) and isinstance(device, SerialDevice):
            device.setPace(new.pace, new.paceLine)
        waits: list[Any] = []
        if new.log != old.log and new.log is not None and not any(
                consoleLog.spec.path == new.log.path
                for other in self.lines.values() if other is not line for consoleLog in other.logs):
            # The new log is opened before the old one closes (unless another
            # line still writes its path): output while the reload waits for
            # what it closes (a dial-out, up to dialCloseGrace) is in one of them.
            self._logsOpened.add(name)
            self._openNewLog(line, new)
        if new.log != old.log and old.log is not None:
            waits += self._closeKeyed(name, ("log", old.log))
        for spec in _listenerChanges(old, new)[0]:
            waits += self._closeKeyed(name, spec)
        if line.waitForClient and not any(spec.wait for spec in new.listeners):
            line.waitForClient = False
            if self.running:
                device.start()
        self.configs = [new if c.name == name else c for c in self.configs]
        return waits

    def _reopenParts(self, old: LineConfig, new: LineConfig, fresh: list[ListenerSpec]) -> None:
        """A retuned line's new log and listeners; one that fails is logged, the rest stays."""
        line = self.lines[new.name]
        if new.log != old.log and new.log is not None and new.name not in self._logsOpened:
            self._openNewLog(line, new)
        self._logsOpened.discard(new.name)
        self._opening = new.name
        try:
            for spec in fresh:
                try:
                    self._listen(line, new, spec)
                except StartupError as e:
                    log.error("reload: {reason}; the line runs without that listener", reason=str(e))
                    continue
                for key, (kind, thing) in self._keyed.get(new.name, []):
                    if key == spec and kind == "dialer" and self.running:
                        thing.startService()
        finally:
            self._opening = None

    def _openNewLog(self, line: Line, config: LineConfig) -> None:
        """A retuned line's new console log; one that cannot be opened is logged, the line goes on."""
        self._opening = config.name
        try:
            self._openLog(line, config)
        except StartupError as e:
            log.error("reload: {reason}; the line runs without it", reason=str(e))
        finally:
            self._opening = None

    def _closeAll(self) -> list[Any]:
        self._keyed = {}
        waits: list[Any] = []
        for dialer in self._dialers:
            waits.append(self._stopDialer(dialer))
        self._dialers = []
        for close in self._closers:
            waits.append(close())
        self._closers = []
        self.watchers, self.watchAllPorts = [], []
        for _spec, port in self.ports:
            waits.append(port.stopListening())
        self.ports = []
        for line in self.lines.values():
            waits.append(line.device.close())
        self.lines = {}
        self._owned = {}
        self._opened = False
        return waits


def _listenAtOnce(endpoint: Any, factory: Any) -> Any:
    """
    Listen, and the outcome now: the port, a Failure, or None if the
    endpoint did not answer at once (the ones the gateway uses all do).
    """
    results: list[Any] = []
    endpoint.listen(factory).addBoth(results.append)
    return results[0] if results else None


def _listening(endpoint: Any, factory: Any, cannot: str) -> Any:
    """The listening port, or a StartupError: C{cannot}, then why (C{cannot listen on 'tcp:1': ...})."""
    result = _listenAtOnce(endpoint, factory)
    if result is None or isinstance(result, Failure):
        reason = result.value if result is not None else "did not start at once"
        raise StartupError(f"{cannot}: {reason}")
    return result


def _listenerChanges(old: LineConfig, new: LineConfig) -> tuple[list[ListenerSpec], list[ListenerSpec]]:
    """
    A line's listeners that a reload closes, and those it opens; a new
    signature is given by every listener and dial-out made anew.
    """
    renewed = (ListenerKind.LISTEN, ListenerKind.CONNECT) if new.signature != old.signature else ()
    gone = [s for s in old.listeners if s not in new.listeners or s.kind in renewed]
    fresh = [s for s in new.listeners if s not in old.listeners or s.kind in renewed]
    return list(dict.fromkeys(gone)), list(dict.fromkeys(fresh))


def _writable(path: str) -> Optional[str]:
    """Why a file could not be opened for appending (created if missing), or None; nothing is made."""
    if os.path.lexists(path):
        return None if os.access(path, os.W_OK) else os.strerror(errno.EACCES)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return os.strerror(errno.ENOENT)
    return None if os.access(directory, os.W_OK | os.X_OK) else os.strerror(errno.EACCES)


def _checkFiles(opening: list[tuple[str, ListenerSpec]], logs: list[tuple[str, Any]],
                releasedLinks: frozenset[str] | set[str] = frozenset()) -> Optional[str]:
    """
    Whether the console logs, output files, FIFO pairs and client pty links
    a reload opens anew can be opened (as a bind is checked): the first
    problem, or None.  A pty link the reload lets go of is ours to replace.
    """
    for name, logSpec in logs:
        path = logSpec.path
        if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
            why: Optional[str] = "it is not a regular file"  # ConsoleLog would refuse it
        else:
            why = _writable(path)
        if why is not None:
            return f"line {name!r}: cannot open log {logSpec.path!r}: {why}"
    for name, spec in opening:
        if spec.kind is ListenerKind.FILE:
            why = _writable(spec.path)
        elif spec.kind is ListenerKind.PIPE:
            try:
                fdIn, fdOut = fifoPair(spec.path)
            except OSError as e:
                why = e.strerror or str(e)
            else:
                os.close(fdIn)
                if fdOut != fdIn:
                    os.close(fdOut)
                why = None
        elif spec.kind is ListenerKind.PTY and spec.path:
            directory = os.path.dirname(spec.path) or "."
            why = None if os.path.isdir(directory) else os.strerror(errno.ENOENT)
            if why is None and spec.path not in releasedLinks:
                why = linkProblem(spec.path)
        else:
            continue
        if why is not None:
            return f"line {name!r}: cannot open listener {spec.text or spec.path!r}: {why}"
    return None


def _probeUDP(name: str, spec: ListenerSpec) -> Optional[str]:
    """Whether a netconsole listener's source port can be bound now."""
    assert spec.udp is not None
    host = spec.udp.sourceHost or ("::" if ":" in spec.udp.remoteHost else "0.0.0.0")
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((host, spec.udp.sourcePort))
    except OSError as e:
        return f"line {name!r}: cannot listen on {spec.text or spec.endpoint!r}: {e.strerror or e}"
    finally:
        probe.close()
    return None


def _exposed(spec: ListenerSpec, address: Any) -> bool:
    """A writable listener reachable beyond this machine without client certificates."""
    host = getattr(address, "host", None)
    if host is None or spec.readOnly or (spec.tls is not None and spec.tls.ca):
        return False
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return True
    if spec.allow and all(ipaddress.ip_network(a, strict=False).network_address.is_loopback for a in spec.allow):
        return False
    return not ip.is_loopback


class OwnSocketPort:
    """
    A listening unix socket that, at stop, removes its file only if the file
    at the path is still the socket it made (same device and inode): one
    put there since (another gateway's, anything) is left alone.
    """

    def __init__(self, port: Any, path: str) -> None:
        self.port = port
        self.path = path
        st = os.lstat(path)
        self.identity = (st.st_dev, st.st_ino)
        self.factory = port.factory

    def getHost(self) -> Any:
        return self.port.getHost()

    def ours(self) -> bool:
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.identity and stat.S_ISSOCK(st.st_mode)

    def stopListening(self) -> Any:
        if not self.ours():
            log.warn("{path} is no longer the socket this gateway made: left in place", path=self.path)
            # Twisted's unix port removes its path when it closes, unless the
            # name is abstract: make it so, and nothing is removed.  The path
            # is in _bindPath since Twisted 26.10, in .port before (22.10).
            name = "_bindPath" if hasattr(self.port, "_bindPath") else "port"
            bound = getattr(self.port, name)
            setattr(self.port, name, b"\0" + bound if isinstance(bound, bytes) else "\0" + bound)
        return self.port.stopListening()


def _removeStaleSocket(path: str, lineName: str) -> None:
    """
    A unix socket file left by a gateway that died is removed; one that a
    live process answers on, or a file that is not a socket, is an error.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError(f"line {lineName!r}: {path!r} exists and is not a socket")
    # Not blocking: a connect to a live listener whose backlog is full
    # waits until it accepts, and this runs on the reactor (a reload).
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        log.info("line {line}: removed stale socket {path}", line=lineName, path=path)
        return
    except BlockingIOError:
        pass  # a live listener, its backlog full
    except OSError:
        return
    finally:
        probe.close()
    raise StartupError(f"line {lineName!r}: {path!r} is in use by another process")


def _connectHint(protocol: Protocol, address: Any) -> Optional[str]:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None or port is None:
        name = getattr(address, "name", None)
        if name is None:
            return None
        if isinstance(name, bytes):
            name = name.decode()
        if isAbstract(name):
            return f"socat -,raw,echo=0 ABSTRACT-CONNECT:{name[1:]}"
        return f"socat -,raw,echo=0 UNIX-CONNECT:{name}"
    if host in ("0.0.0.0", "::"):
        host = "localhost"
    if protocol is Protocol.RAW:
        return f"nc {host} {port}"
    return f"telnet {host} {port}"
