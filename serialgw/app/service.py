"""
The gateway as a Twisted service: it opens each line's device, listens on
each line's endpoints, keeps what each line opened so that a reload can
close one line or one listener alone, applies reloads, and closes
everything at stop.  How a line and its device are made is
L{serialgw.app.lines}; how listeners are opened, L{serialgw.app.listen};
the gateway's own listeners (status, SSH, watch-all),
L{serialgw.app.ownlisteners}; what a reload changes and whether it can,
L{serialgw.app.reload}; how it is applied, L{serialgw.app.applying}, and
to a line that stays, L{serialgw.app.retuning}; how what a line opened
is closed (a reload's, a stop's), L{serialgw.app.closing}.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any, Callable, Optional, Sequence

import attrs
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.address import UNIXAddress

from serialgw.app.applying import applyReload
from serialgw.app.binding import StartupError, keyed
from serialgw.app.closing import Closing
from serialgw.app.lastoutput import LastOutput
from serialgw.app.lines import dropFirstOpens, fileRefused, firstOpens, linesStatus, makeDevice, makeLine
from serialgw.app.listen import ListenerOpener
from serialgw.app.lookups import installLookups
from serialgw.app.notify import Notifier
from serialgw.app.ownlisteners import reloadSSH, serveByName, serveSSH, serveStatus, serveWatchAll
from serialgw.app.reopening import Reopens
from serialgw.app.retuning import LinkLooks, restoreLinks
from serialgw.app.startlooks import lookAtStart
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.clients.logfile import awaitOpens
from serialgw.clients.logwriter import drained
from serialgw.clients.ptylink import PtyClient
from serialgw.clients.transports import describeAddress
from serialgw.clients.watchall import matches
from serialgw.config.listenerspecs import ListenerSpec, WatchAllSpec
from serialgw.config.people import SSHSpec
from serialgw.config.specs import LineConfig, quote
from serialgw.config.where import Places
from serialgw.devices.errors import DeviceError
from serialgw.devices.ports import openPort
from serialgw.devices.reopenpool import FirstOpen
from serialgw.interfaces import IPort
from serialgw.line.hub import Line


class GatewayService(Closing):
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
        # Name lookups on threads of their own, not the reactor's pool (see lookups).
        installLookups(reactor)
        self.configs = list(lines)
        self._openPort = openPort
        # Dial-outs reconnect after 1 s (ClientService counts its first retry as attempt 1), doubling up to
        # 30 s, plus up to 1 s of jitter.
        self.retryPolicy = retryPolicy or backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0)
        # A vanished device is tried again after 0.5 s, doubling up to 10 s, with jitter.
        self.reopenPolicy = reopenPolicy or backoffPolicy(initialDelay=0.5, maxDelay=10.0, factor=2.0)
        # Opens each line's listeners; what they open is ours (_own) to close.
        self.listeners = ListenerOpener(self.reactor, self.retryPolicy, self._own, self._forget)
        self.lines: dict[str, Line] = {}
        # Its reloads' looks at the ptys' links (see restoreLinks).
        self.linkLooks = LinkLooks()
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
        # Devices of lines a reload closed, still taking their close-strings
        # (see closeLine): a stop waits for them too.
        self._closing: list[defer.Deferred[Any]] = []
        # Lines let go (a stop, a reload) whose devices are not closed yet:
        # a hurried stop (see hurry) closes them at once.
        self._lettingGo: list[Line] = []
        # At the stop: the people still connected taking their last output (see stopService).
        self._lastOutput: Optional[LastOutput] = None
        self._dialCuts: list[tuple[Any, Any]] = []  # dial-outs waiting for their peers, their cut timers (stopDialer)
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
        self._reopens = Reopens(self)
        self.byNameFactories = []

    # The SSH listener's factory, once it listens (see serialgw.app.ownlisteners.serveSSH).
    sshFactory: Any
    # One port for many consoles ([by-name], a ByNameSpec, or None), and its listeners' factories once they listen.
    byName: Any = None
    byNameFactories: list[Any]
    # The file the lines come from (a FileConfig: its path and text), or None: see placed.
    source: Any = None
    _places: Optional[Places] = None

    def placed(self, name: str, key: Optional[str], message: str) -> str:
        """
        C{message} about line C{name}, found on disk at a start or a reload,
        begun with the file's line of its C{key} (C{farm.toml:12: line 'a':
        cannot open log ...}), as every other error about the file is.
        """
        if self.source is None:
            return message
        if self._places is None or self._places.text is not self.source.text:
            self._places = Places(self.source.path, self.source.text)
        return f"{self._places.of(name, key)}: {message}"

    def privilegedStartService(self) -> None:
        MultiService.privilegedStartService(self)
        if self._opened:
            return
        # The TLS files and the SSH host key read first by a thread, waited for a few seconds (a read can hang).
        hung = lookAtStart(self.configs, self.ssh, self.reactor)
        if hung is not None:
            name, problem = hung
            raise StartupError(self.placed(name, "listen", problem) if name else problem)
        # Local ttys opened at once off this thread (an open can hang), waited for a few seconds.
        begun = firstOpens(self.configs, self.reactor, self._openPort)
        try:
            for config in self.configs:
                try:
                    self._openLine(config, begun=begun.pop(config.name, None))
                except StartupError as e:
                    raise StartupError(self.placed(config.name, e.key, str(e))) from None
            self._awaitLogs()
            if self.status:
                serveStatus(self, self.status)
            if self.ssh is not None:
                serveSSH(self, self.ssh)
            if self.watchAll is not None:
                for spec in self.watchAll.listeners:
                    serveWatchAll(self, spec, self.watchAll.lines)
            self.byNameFactories = []
            if self.byName is not None:
                for spec in self.byName.listeners:
                    serveByName(self, spec, self.byName.lines)
        except StartupError:
            self._closeAll(tell=False)
            dropFirstOpens(begun)
            raise
        self._opened = True

    def _own(self, kind: str, thing: Any) -> None:
        lists: dict[str, list[Any]] = {"closer": self._closers, "port": self.ports, "dialer": self._dialers}
        lists[kind].append(thing)
        if self._opening is not None:
            self._owned.setdefault(self._opening, []).append((kind, thing))
            if self._openingKey is not None:
                self._keyed.setdefault(self._opening, []).append((self._openingKey, (kind, thing)))

    def _openLine(self, config: LineConfig, offThread: bool = False, begun: Optional[FirstOpen] = None) -> None:
        self._opening = config.name
        try:
            self._openLineNow(config, offThread, begun)
        finally:
            self._opening = None

    def _openLineNow(self, config: LineConfig, offThread: bool, begun: Optional[FirstOpen]) -> None:
        try:
            device = makeDevice(config, self.reactor, self._openPort, self.retryPolicy, self.reopenPolicy,
                                self.waitForDevices, offThread, begun, partial(self.unixSockets, config.name))
        except DeviceError as e:
            raise keyed(StartupError(f"line {config.name!r}: {e}"), "device") from None
        line = makeLine(config, device, self.reactor)
        self.lines[config.name] = line
        for watcher in self.watchers:
            watcher.lineOpened(line)
        if config.log is not None:
            self._openLog(line, config)
        for spec in config.listeners:
            self._listen(line, config, spec)

    def listenersOf(self, name: str) -> list[dict[str, Any]]:
        """
        Line C{name}'s listeners open now, as the status page shows them
        (ser2net's showport, conserver's console -x): each as written, its
        kind and protocol, and where one that listens is bound (a port 0's
        port: the one it got); a dial-out, a file, a pipe or a pty: C{null}.
        """
        shown: dict[ListenerSpec, dict[str, Any]] = {}
        for key, (kind, thing) in self._keyed.get(name, []):
            if not isinstance(key, ListenerSpec):
                continue  # (its console log)
            entry = shown.setdefault(key, {"listener": key.text or key.endpoint, "kind": key.kind.value,
                                           "protocol": key.protocol.value, "address": None})
            if kind == "port":
                entry["address"] = describeAddress(thing[1].getHost())
        line = self.lines.get(name)
        # A [by-name] listener that gives this line (its lines patterns; a line with write / read only where it knows people;
        # one of its listeners open now may admit a connection of it: they are given, not looked up among every line's).
        byName = [{"listener": factory.spec.text or factory.spec.endpoint, "kind": "by-name",
                   "protocol": factory.spec.protocol.value, "address": describeAddress(factory.port.getHost())}
                  for factory in self.byNameFactories if line is not None and factory.port is not None and factory.offers(line, tuple(shown))]
        return list(shown.values()) + byName

    def _listen(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None:
        self._openingKey = spec
        try:
            self.listeners.open(line, config, spec)
        except StartupError as e:
            raise keyed(e, "listen") from None
        finally:
            self._openingKey = None

    def _openLog(self, line: Line, config: LineConfig) -> None:
        assert config.log is not None
        try:
            consoleLog = ConsoleLog(line, config.log, self.reactor)
        except OSError as e:
            raise fileRefused(config.name, config.log, e) from None
        consoleLog.gone = partial(self._forget, config.name, config.log)
        consoleLog.typedGone = partial(self._typedGone, config.name, consoleLog)
        self._openingKey = ("log", config.log)
        try:
            self._own("closer", consoleLog.close)
        finally:
            self._openingKey = None

    def _awaitLogs(self) -> None:
        """At start: the console logs' and file: outputs' first opens waited for (see L{awaitOpens}); one refused fails the start."""
        failed = awaitOpens([made for line in self.lines.values() for one in line.clients
                             for made in (one.files() if isinstance(one, ConsoleLog) else
                                          [one] if isinstance(one, (FileClient, PtyClient)) else [])]
                            + self.listeners.pending())
        if failed is not None:
            error = fileRefused(failed[0].line.name, failed[0], failed[1])
            raise StartupError(self.placed(failed[0].line.name, error.key, str(error)))

    def _forget(self, name: str, part: Any) -> None:
        """Line C{name}'s log or file: output C{part} could not be opened once it ran: out of the running configuration (a reload of the same file tries it again)."""
        self.configs = [attrs.evolve(c, log=None if c.log == part else c.log, listeners=tuple(
            s for s in c.listeners if s != part)) if c.name == name else c for c in self.configs]

    def _typedGone(self, name: str, consoleLog: ConsoleLog) -> None:
        """
        Line C{name}'s C{consoleLog} runs on without its LOG.typed, which
        could not be opened: log-typed off in the running configuration (a
        reload of the same file opens the log anew, LOG.typed with it).
        """
        spec = next((c.log for c in self.configs if c.name == name), None)
        if spec is None or spec != consoleLog.spec or spec.typed == "off":
            return  # (not the running one's any more)
        running = attrs.evolve(spec, typed="off")
        self.configs = [attrs.evolve(c, log=running) if c.name == name else c for c in self.configs]
        self._keyed[name] = [(("log", running) if key == ("log", spec) else key, entry)
                             for key, entry in self._keyed.get(name, [])]
        consoleLog.gone = partial(self._forget, name, running)

    def reloadUsers(self, ssh: Optional[SSHSpec]) -> None:
        """New people, keys and listener options (ro, allow= reach those connected) for the running SSH listener (a reload; None: [ssh] removed, nobody); its address and host key stay until a restart."""
        reloadSSH(self, ssh)

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

    def unixSockets(self, name: str) -> dict[str, str]:
        """
        The names line C{name}'s unix listeners, and the unix watch-all
        listeners watching it, are bound to, each with what it is: its
        remote device reaching one is a loop (another line's listener is a
        chain, which the start's check follows: L{serialgw.config.loops}).
        """
        names = {}
        for kind, thing in self._owned.get(name, []):
            port = thing[1] if kind == "port" else None
            address = port.getHost() if port is not None else None
            if isinstance(address, UNIXAddress) and address.name:
                bound = os.fsdecode(address.name)
                names[bound] = (f"its own line's listener {quote(bound)}: what is written to it would come back to it "
                                "for ever")
        # (serveWatchAll appends each factory and its port together.)
        for factory, port in zip(self.watchers, self.watchAllPorts, strict=False):
            address = port.getHost()
            if isinstance(address, UNIXAddress) and address.name and not factory.removed \
                    and matches(name, factory.patterns):
                bound = os.fsdecode(address.name)
                names[bound] = (f"the watch-all listener {quote(bound)}, which watches line {quote(name)}: each line "
                                "of its output would come back to it from there, prefixed, for ever")
        return names

    def statusText(self) -> str:
        """One line for systemd's STATUS= (see L{linesStatus})."""
        return linesStatus(list(self.lines.values()))

    def stopService(self) -> Any:
        """
        Let each line go (its close-string sent if people are on it), stop
        listening, close devices once they have taken that (at most
        LET_GO_LIMIT s); the Deferred fires when all is closed.
        """
        self.notifier.stopping()
        self._stopped = True
        # Once the devices are closed, their people take what waits for them (at most LAST_OUTPUT_WAIT s).
        lastOutput = self._lastOutput = LastOutput(self.reactor, [c for line in self.lines.values() for c in line.clients])
        waits = [MultiService.stopService(self)] + list(self._closing) + self._closeAll()
        # Then what file: outputs' writers still have to write (at most STOP_WAIT s: see serialgw.clients.logwriter).
        return defer.gatherResults([w for w in waits if isinstance(w, defer.Deferred)]).addCallback(
            lambda _: lastOutput.close()).addCallback(lambda _: drained(self.reactor))

    def reopenLogs(self) -> defer.Deferred[int]:
        """
        SIGUSR1 (logrotate moved the files): every console log and every
        C{file:} listener opens its path again, in turns of the reactor (see
        L{serialgw.app.reopening}).  Fires with how many could (those that
        could not said why, and write on to the file in hand).
        """
        return self._reopens.reopen()

    def reload(self, configs: Sequence[LineConfig]) -> Any:
        """
        Apply a new configuration, all or nothing.  First every listener
        it would bind anew is bound and closed again (one held by another
        process refuses the reload: C{{"refused": [reason]}}, nothing
        changed).  Then lines removed, and lines whose device changes, are
        closed; other changes are applied to the running line (L{serialgw.app.retuning.retune}:
        its device and sessions stay; settings go to the open device);
        lines added or reopened, and new listeners, are opened once the
        closed ones have let go of their ports and devices.  Return a
        Deferred that fires with what changed; reloads run one at a time.
        """
        configs = list(configs)
        return self.queueReload(lambda: self._reload(configs))

    def queueReload(self, work: Callable[[], Any]) -> defer.Deferred[Any]:
        """C{work} (a reload) once the reloads before it are done; a Deferred of its result."""
        done: defer.Deferred[Any] = defer.Deferred()
        self._reloading.addCallback(lambda _: defer.maybeDeferred(work).chainDeferred(done))
        return done

    def _reload(self, configs: list[LineConfig]) -> Any:
        # (In turns of the reactor: see serialgw.app.applying.)
        return defer.maybeDeferred(applyReload, self, configs).addCallback(partial(restoreLinks, self))
