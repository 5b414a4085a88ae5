"""
What the gateway's lines opened, closed: one line alone (a reload took it
out or changed its device), one listener or console log of a line that
stays, or everything at a stop.  A line is let go first (its close-string
sent while its device is open), its device closed once it took that, and
what reads the line's output (console logs, file: outputs, client ptys,
watch-all views) closed after its device, so that the device's last words
are recorded; a second SIGTERM hurries a stop.  The base of
L{serialgw.app.service.GatewayService}, which keeps what each line opened.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from twisted.application.internet import ClientService
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.logger import Logger

from serialgw.app.listen import cutDials, stopDialer
from serialgw.line.hub import Line

if TYPE_CHECKING:
    from serialgw.app.lastoutput import LastOutput
    from serialgw.app.listen import ListenerOpener
    from serialgw.config.listenerspecs import ListenerSpec

# (The namespace its events had before this module was split from service.)
log = Logger(namespace="serialgw.app.service")


class Closing(MultiService):
    """Closing what lines opened (set up by L{serialgw.app.service.GatewayService})."""

    reactor: Any
    listeners: ListenerOpener
    lines: dict[str, Line]
    watchers: list[Any]
    watchAllPorts: list[Any]
    ports: list[tuple[ListenerSpec, Any]]
    _owned: dict[str, list[tuple[str, Any]]]
    _keyed: dict[str, list[tuple[Any, tuple[str, Any]]]]
    _closers: list[Callable[[], Any]]
    _dialers: list[ClientService]
    _closing: list[defer.Deferred[Any]]
    _lettingGo: list[Line]
    _lastOutput: Optional[LastOutput]
    _dialCuts: list[tuple[Any, Any]]
    _opened: bool

    def closeLine(self, name: str, notice: str = "this line was removed from the configuration") -> list[Any]:
        """
        Close one line: its listeners, dial-outs, logs, clients (told
        C{notice}) and device, once that has taken the close-string (the
        line let go first, as at stop).
        """
        owned = self._owned.pop(name, [])
        self.listeners.retire(name)
        # What its people read by closes after the device (see _closeDevice).
        later = self._readers(name, owned)
        waits = [self._release(kind, thing) for kind, thing in owned if thing not in later]
        self._keyed.pop(name, None)
        line = self.lines.pop(name, None)
        if line is not None:  # (later is empty otherwise)
            for watcher in self.watchers:
                watcher.lineClosed(line)
            # The close-string (people on it) while the device is open;
            # their leaving below sends nothing more.
            letGo = line.letGo()
            # What the device read before (a mover's pipe) reaches its people before they go (not held to coalesce:
            # flushed by the close, after they went).
            line.device.deliverRead()
            line.flushHeld()
            for client in list(line.clients):
                # A session is off the line at once, and cut after
                # CLOSE_GRACE s if it does not take its last output
                # (loseConnection alone waited for ever on a client that
                # never reads); a file or datagram peer closes; what is
                # another's to close (a client pty, a watch-all view) stays.
                client.notice(notice)
                client.disconnect(notice)
            for thing in later:
                self._closers.remove(thing)
            closed = self._closeDevice(line, letGo, later)
            if not closed.called:
                self._closing.append(closed)
                closed.addBoth(self._closed, closed)
            waits.append(closed)
        return waits

    def _closed(self, result: Any, closed: defer.Deferred[Any]) -> Any:
        self._closing.remove(closed)
        return result

    def _readers(self, name: str, owned: list[tuple[str, Any]]) -> list[Callable[[], Any]]:
        """Of what line C{name} C{owned}, what reads its output (console log, file:, pty:, ...): closed after its device."""
        return [thing for kind, thing in owned if kind == "closer"] if name in self.lines else []

    def _closeDevice(self, line: Line, letGo: defer.Deferred[None],
                     readers: Sequence[Callable[[], Any]] = ()) -> defer.Deferred[Any]:
        """
        A line's device closed once the line is let go (L{Line.letGo}), then
        C{readers} (see L{_readers}: what the device said meanwhile, its
        answer to the close-string, is recorded too); what to wait for.
        """
        self._lettingGo.append(line)

        def close(_: Any) -> Any:
            self._lettingGo.remove(line)
            waits = [line.device.close()]
            for closer in readers:
                try:
                    waits.append(closer())
                except Exception:
                    log.failure("{line}: closing what reads it failed", line=line.name)
            return defer.gatherResults([w for w in waits if isinstance(w, defer.Deferred)])

        return letGo.addCallback(close)

    def hurry(self, why: str) -> None:
        """The stop hurried (C{why}: SIGTERM again while it waits): devices taking close-strings closed now, dial-outs cut."""
        cut = cutDials(self._dialCuts, why)
        if self._lastOutput is not None and self._lastOutput.hurry(why):
            cut = True
        if not self._lettingGo:
            if not cut:
                log.info("{why} during the stop: nothing is waited for", why=why)
            return
        log.warn("{why} during the stop: closing {count} device(s) now, without waiting for them to take "
                 "their close-strings ({lines})", why=why, count=len(self._lettingGo),
                 lines=" ".join(line.name for line in self._lettingGo))
        for line in list(self._lettingGo):
            line.hurryLetGo()

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
        """Stop a dial-out (see L{stopDialer}); what to wait for."""
        return stopDialer(dialer, self.reactor, self.dialCloseGrace, self._dialCuts)

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

    def _closeAll(self, tell: bool = True) -> list[Any]:
        # Each line let go first, while its device is open: its close-string
        # (people on it) is sent before anything else closes, and the people
        # who leave later (the reactor drops them) send nothing more.
        letGos = {name: line.letGo() for name, line in self.lines.items()}
        for line in self.lines.values() if tell else ():
            # Its people and console log told (logged for a line with people:
            # a farm's quiet lines make no log line each).
            if line.people:
                line.announce("the gateway is stopping", everyone=True)
            for consoleLog in [] if line.people else line.logs:
                consoleLog.event("the gateway is stopping")
        readers = {name: self._readers(name, self._owned.get(name, [])) for name in self.lines}
        # (By identity: a farm's thousands of closers, each the object owned.)
        later = {id(closer) for closers in readers.values() for closer in closers}
        self._keyed = {}
        waits: list[Any] = []
        for dialer in self._dialers:
            waits.append(self._stopDialer(dialer))
        self._dialers = []
        for close in self._closers:
            if id(close) not in later:
                waits.append(close())
        self._closers = []
        # Watch-all views are readers of every line they watch: each one
        # closes once its lines' devices are (see WatchAllFactory.closeAll).
        watchers, self.watchers, self.watchAllPorts = self.watchers, [], []
        for watcher in watchers:
            watcher.closeAll()
        for _spec, port in self.ports:
            waits.append(port.stopListening())
        self.ports = []
        for name, line in self.lines.items():
            views: list[Callable[[], Any]] = [partial(watcher.lineClosed, line) for watcher in watchers]
            waits.append(self._closeDevice(line, letGos[name], readers[name] + views))
        self.lines = {}
        self._owned = {}
        self._opened = False
        return waits
