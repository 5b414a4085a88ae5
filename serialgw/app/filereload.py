"""
SIGHUP with a configuration file: the file read again, off the reactor's
thread, and applied once the reload under way is done (the SIGHUPs that
come meanwhile answered by that one reading); with --shard, a refused
reload tried again; the file's [watch-all], [by-name] and [tls] retuned
in place.  The rest of what twistd adds (the signals themselves) is
L{serialgw.app.process}.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.app.service import GatewayService
from serialgw.app.startchecks import firstClash
from serialgw.clients.factory import samePlace
from serialgw.config.file import FileConfig, loadFile
from serialgw.config.listenerspecs import ByNameSpec, WatchAllSpec
from serialgw.config.loops import runningWatchAllLoop
from serialgw.config.paths import placeKeys
from serialgw.config.people import SSHSpec
from serialgw.config.shard import Shard, ownListeners, selectLines
from serialgw.config.specs import ConfigError, LineConfig
from serialgw.config.where import where

# (The namespace its events had before this module was split from process.)
log = Logger(namespace="serialgw.app.process")
_T = TypeVar("_T")


# --shard: when a refused reload is tried again (seconds after each refusal).
SHARD_RETRIES = (1.0, 2.0, 4.0)


class FileReloads(GatewayService):
    """
    A gateway service that reloads its configuration file (L{reloadFile}:
    what SIGHUP calls, under twistd).
    """

    configPath: Optional[str] = None
    # --shard I/N: this process serves its share of the file's lines.
    shard: Optional[Shard] = None
    # The file's [watch-all] at start (--watch-all listeners come on top).
    watchAllInFile: Any = None
    # --watch-all's listeners (as given, not a --shard process's copies) and their lines filter: None without it.
    watchAllByOption: Any = None

    # The SIGHUPs waiting for the reload under way, answered by one reading
    # of the file once it is done (None: no reload from the file waits).
    _hupsWaiting: Optional[list[defer.Deferred[Any]]] = None

    # A SIGHUP's call to reloadFile on its way to the reactor.
    _hangupDue = False

    def _hangup(self) -> None:
        self._hangupDue = False
        self.reloadFile()

    # --shard: a refused reload is tried again after these many seconds (see _refused).
    _retryCall: Optional[IDelayedCall] = None
    _retries = 0

    def reloadFile(self) -> Any:
        """
        SIGHUP: read the file again and apply it once the reload under way
        (if any) is done; systemd hears RELOADING=1, then READY=1.  The
        SIGHUPs that come meanwhile wait for that same one: it reads the
        file when it begins (a storm of them was a reading of the whole
        file each, in turn, holding the reactor).
        """
        assert self.configPath is not None
        if self._stopped:
            log.info("SIGHUP during the stop: {path} not reloaded", path=self.configPath)
            return defer.succeed(None)
        # It takes the place of a retry waiting (see _refused), and counts anew.
        self._cancelRetry()
        self._retries = 0
        return self._fileReload()

    def _cancelRetry(self) -> None:
        if self._retryCall is not None and self._retryCall.active():
            self._retryCall.cancel()
        self._retryCall = None

    def _retry(self) -> None:
        self._retryCall = None
        self._retries += 1
        self._fileReload()

    def _refused(self) -> None:
        """
        A reload of a process of --shard refused (a listener's address, a
        unix socket, a pty link or a lock in use): a line moving to this
        process from another that has not reloaded yet (both signalled at
        once) finds what it needs still held there; tried again after 1,
        2 and 4 s.
        """
        if self.shard is None or self._stopped or self._retries >= len(SHARD_RETRIES):
            return
        if self._hupsWaiting is not None or (self._retryCall is not None and self._retryCall.active()):
            return  # a reload from the file waits already: it reads it anew
        delay = SHARD_RETRIES[self._retries]
        log.warn("reload: trying again in {delay} s ({count} of {most}): with --shard, a line joining this process may "
                 "still be held by the process it leaves, until that one reloads", delay=delay,
                 count=self._retries + 1, most=len(SHARD_RETRIES))
        self._retryCall = self.reactor.callLater(delay, self._retry)

    def _fileReload(self) -> Any:
        """A reload from the file, queued (see L{reloadFile})."""
        if self._hupsWaiting is not None:
            joined: defer.Deferred[Any] = defer.Deferred()
            self._hupsWaiting.append(joined)
            return joined
        waiting: list[defer.Deferred[Any]] = []
        self._hupsWaiting = waiting

        def begin() -> Any:
            self._hupsWaiting = None
            if waiting:
                log.info("reload: {count} more SIGHUP(s) came while one was under way: {path} is read once for them",
                         count=len(waiting), path=self.configPath)
            return self._reloadFileNow()

        def tell(result: Any) -> Any:
            for joined in waiting:
                joined.callback(result)
            return result

        return self.queueReload(begin).addBoth(tell)

    def _reloadFileNow(self) -> Any:
        """Read the file and apply it (see L{reloadFile}); what changed."""
        assert self.configPath is not None
        if self._stopped:
            log.info("SIGHUP during the stop: {path} not reloaded", path=self.configPath)
            return None
        self.notifier.reloading()
        path, shard = self.configPath, self.shard
        held = self.ssh.users if self.ssh is not None else ()  # (A key copied into another's file stays theirs.)
        # The watch-all listeners that run (read here, on the reactor's thread).
        inFile, byOption = self.watchAllInFile, self.watchAllByOption

        def read() -> tuple[tuple[list[LineConfig], Optional[SSHSpec], Optional[WatchAllSpec]], FileConfig]:
            loaded = loadFile(path, shards=shard.count if shard is not None else None, held=held)
            loop = runningWatchAllLoop(loaded.lines, loaded.watchAll, inFile, byOption,
                                       shard.count if shard is not None else None, loaded.pins, placeKeys)
            if loop is not None:
                raise ConfigError(f"{where(loaded.path, loaded.text, f'lines.{loop[0]}', 'device')}: "
                                  f"[lines.{loop[0]}] device: {loop[1]}")
            # Two lines of the file on one port or path (every line: --shard's processes share the machine),
            # refused as --check says it: the bind said only "one of this gateway's own listeners already".
            clash = firstClash(loaded.lines)
            if clash is not None:
                name, key, message = clash
                raise ConfigError(f"{where(loaded.path, loaded.text, f'lines.{name}', key)}: {message}")
            lines = selectLines(loaded.lines, shard, loaded.pins) if shard is not None else loaded.lines
            ssh = ownListeners(shard.index, None, loaded.ssh, None)[1] if shard is not None else loaded.ssh
            return (lines, ssh, loaded.watchAll), loaded

        # Read and parsed off the reactor (0.4 s for 1000 lines, every line held).
        return offTheReactor(self.reactor, read).addCallbacks(lambda got: self._applyFile(*got), self._unreadable)

    def _unreadable(self, failure: Failure) -> None:
        if failure.check(ConfigError):
            log.error("reload refused, the running configuration stays: {reason}", reason=str(failure.value))
        else:
            # A mistake of ours reading the file: the running configuration
            # stays all the same, and systemd is not left at RELOADING=1.
            log.failure("reload refused, the running configuration stays: reading {path} failed", failure,
                        path=self.configPath)
        self.notifier.reloaded("reload refused, see the log")

    def _retuneWatchAll(self, watchAll: Optional[WatchAllSpec]) -> None:
        """
        The file's new [watch-all]: its lines filter and its listeners'
        options (allow=, ...) apply to the running listeners and their
        watchers now (a line taken out of the filter was shown on until a
        restart); a listener added, removed or moved, or the table added or
        removed, waits for a restart (said).
        """
        old: Optional[WatchAllSpec] = self.watchAllInFile
        if old is not None and watchAll is None:
            log.warn("reload: [watch-all] removed: nobody may watch over its listeners from now on; restart the "
                     "gateway to close them")
            for factory in self.watchers[:len(old.listeners)]:
                factory.shut()
            self.watchAllInFile = None  # (put back, it waits for a restart too)
            return
        if old is None or watchAll is None or len(old.listeners) != len(watchAll.listeners):
            log.warn("reload: [watch-all] added, removed, or its listeners: restart the gateway to apply it")
            return
        running = []
        # The file's listeners come first (--watch-all's after them take its lines filter too).
        for factory, was, spec in zip(self.watchers, old.listeners, watchAll.listeners, strict=False):
            if not samePlace(was, spec):
                log.warn("reload: [watch-all] listener {listener} moved: restart the gateway to listen there (its "
                         "options apply now)", listener=spec.text or spec.endpoint)
            running.append(attrs.evolve(spec, endpoint=was.endpoint, host=was.host, port=was.port, path=was.path))
            factory.retune(attrs.evolve(running[-1], endpoint=factory.spec.endpoint, host=factory.spec.host,
                                        port=factory.spec.port, path=factory.spec.path), watchAll.lines)
        for factory in self.watchers[len(running):]:
            factory.retune(factory.spec, watchAll.lines)
        if self.watchAllByOption is not None:
            self.watchAllByOption = attrs.evolve(self.watchAllByOption, lines=watchAll.lines)
        self.watchAllInFile = attrs.evolve(watchAll, listeners=tuple(running))

    def _retuneByName(self, byName: Optional[ByNameSpec]) -> None:
        """
        The file's new [by-name]: its lines filter applies at once to the
        running listeners (a line taken out is no longer given, nor listed);
        removed, its listeners give no line from now on; a listener added,
        removed or changed waits for a restart (said).
        """
        old: Optional[ByNameSpec] = self.byName
        if byName is None:
            log.warn("reload: [by-name] removed: its listeners give no line from now on; restart the gateway to close "
                     "them")
            patterns: tuple[str, ...] = ()
        else:
            if old is None or old.listeners != byName.listeners:
                log.warn("reload: [by-name] added, or its listeners changed: restart the gateway to apply it (its "
                         "lines filter applies now)")
            patterns = byName.lines
        for factory in self.byNameFactories:
            factory.patterns = patterns
        if old is not None:
            self.byName = attrs.evolve(old, lines=patterns)

    def _retuneTLS(self, most: int) -> None:
        """A reload's [tls] sessions-per-person, for the TLS clients let in from now on (those over it stay)."""
        table = self.listeners.handshakes
        if most != table.sessionsPerPerson:
            log.info("reload: [tls] sessions-per-person {most} (was {was}), for the TLS clients let in from now on",
                     most=most, was=table.sessionsPerPerson)
            table.sessionsPerPerson = most

    def _applyFile(self, read: tuple[list[LineConfig], Optional[SSHSpec], Optional[WatchAllSpec]],
                   loaded: Optional[FileConfig] = None) -> Any:
        """What L{_reloadFileNow} read (from C{loaded}), applied."""
        lines, ssh, watchAll = read
        if self._stopped:
            log.info("reload: the gateway is stopping: {path} read, nothing reloaded", path=self.configPath)
            return None
        if loaded is not None:
            # What the reload finds on disk is said at the new file's lines.
            self.source = loaded

        def done(changes: Any) -> Any:
            if isinstance(changes, dict) and "refused" in changes:
                # All or nothing: the SSH users of a refused file stay out too.
                self.notifier.reloaded("reload refused, see the log")
                self._refused()
                return changes
            if isinstance(changes, dict):
                self.reloadUsers(ssh)
                if loaded is not None:
                    self._retuneTLS(loaded.tlsSessionsPerPerson)
                if watchAll != self.watchAllInFile:
                    self._retuneWatchAll(watchAll)
                if loaded is not None and loaded.byName != self.byName:
                    self._retuneByName(loaded.byName)
                self.notifier.reloaded("reloaded: " + ", ".join(f"{len(v)} {k}" for k, v in changes.items()))
            else:
                self.notifier.reloaded("reload failed, see the log")
            return changes

        return defer.maybeDeferred(self._reload, lines).addBoth(done)


def offTheReactor(reactor: Any, work: Callable[[], _T]) -> defer.Deferred[_T]:
    """
    C{work()} on a thread of its own (not the reactor's pool, which a device
    open that hangs may fill), its result back on the reactor; in line on a
    reactor without threads (a test's clock).
    """
    if not IReactorThreads.providedBy(reactor):
        return defer.maybeDeferred(work)
    done: defer.Deferred[_T] = defer.Deferred()

    def run() -> None:
        try:
            result = work()
        except BaseException:
            reactor.callFromThread(done.errback, Failure())
        else:
            reactor.callFromThread(done.callback, result)

    threading.Thread(target=run, name="serialgw-reload", daemon=True).start()
    return done
