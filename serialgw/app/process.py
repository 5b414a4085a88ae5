"""
What running under twistd adds to the gateway service: a start-up failure
as one line on stderr, signals (SIGHUP reloads the file, SIGUSR1 reopens
the logs), the collector frozen after start-up, the descriptor limit raised.
Under C{-u}, what the start made as root is handed over by
L{serialgw.app.runas}.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Optional, TypeVar

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorThreads
from twisted.logger import Logger
from twisted.python.components import Componentized
from twisted.python.failure import Failure
from twisted.python.logfile import BaseLogFile

from serialgw.app.binding import StartupError
from serialgw.app.logs import appendOnly, twistdLogFile
from serialgw.app.runas import giveFiles, givePtys, warnUnwritable
from serialgw.app.service import GatewayService
from serialgw.app.twistdlog import TwistdLogReopens
from serialgw.clients.factory import samePlace
from serialgw.config.file import FileConfig, loadFile
from serialgw.config.loops import runningWatchAllLoop
from serialgw.config.paths import placeKeys
from serialgw.config.shard import Shard, ownListeners, selectLines
from serialgw.config.specs import ByNameSpec, ConfigError, LineConfig, SSHSpec, WatchAllSpec
from serialgw.config.where import where

log = Logger()
_T = TypeVar("_T")


# --shard: when a refused reload is tried again (seconds after each refusal).
SHARD_RETRIES = (1.0, 2.0, 4.0)


class TwistdGatewayService(GatewayService):
    """
    Under twistd, a start-up failure is one line on stderr and exit status 1,
    not a traceback; with a configuration file, SIGHUP reloads it.
    """

    configPath: Optional[str] = None
    # --shard I/N: this process serves its share of the file's lines.
    shard: Optional[Shard] = None
    # The file's [watch-all] at start (--watch-all listeners come on top).
    watchAllInFile: Any = None
    # --watch-all's listeners (as given, not a --shard process's copies) and their lines filter: None without it.
    watchAllByOption: Any = None
    # twistd's log file, when it writes one (reopened on SIGUSR1).
    twistdLog: Optional[BaseLogFile] = None
    # twistd's log observer, made by serialgw.app.logs (None: twistd's own).
    logObserver: Any = None
    # twistd -u / -g: the user and group it runs as once everything is open (-1: unchanged).
    runAs: tuple[int, int] = (-1, -1)

    def setServiceParent(self, parent: Any) -> Any:
        # twistd uses the application's ILogObserver component unless
        # --logger is given: the journal's format, or its own tidied.
        # twistd's application is Componentized; a plain MultiService (a test's) is not.
        if self.logObserver is not None and isinstance(parent, Componentized):
            from twisted.logger import ILogObserver

            parent.setComponent(ILogObserver, self.logObserver)
        return GatewayService.setServiceParent(self, parent)

    def privilegedStartService(self) -> None:
        if self.configPath is not None:
            # Before anything listens: a SIGHUP must never find the default action.
            import signal

            def hangup(signum: int, frame: Any) -> None:
                # One call on its way at a time: the SIGHUPs before it has
                # begun (while the file is read, say) are answered by it.
                if not self._hangupDue:
                    self._hangupDue = True
                    self.reactor.callFromThread(self._hangup)

            signal.signal(signal.SIGHUP, hangup)
        else:
            # systemctl reload (Type=notify-reload) sends SIGHUP: with nothing
            # to re-read, say so rather than die of the default action.
            import signal

            def nothing(signum: int, frame: Any) -> None:
                self.reactor.callFromThread(self.reloadNothing)

            signal.signal(signal.SIGHUP, nothing)
        import signal

        # SIGUSR1 (logrotate's postrotate, conserver's habit): reopen the
        # console logs and twistd's log file, instead of dying of the default
        # action or twistd renaming its file a second time.
        self.twistdLog = twistdLogFile(signal.getsignal(signal.SIGUSR1))
        appendOnly(self.twistdLog)

        def reopen(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self.reopenLogs)

        signal.signal(signal.SIGUSR1, reopen)
        # Twisted's SIGTERM and SIGINT handlers are the reactor's, put in as it starts.
        whenRunning = getattr(self.reactor, "callWhenRunning", None)
        if whenRunning is not None:
            if not getattr(self.reactor, "running", True):
                self._takeTwistedsHandlers()
            whenRunning(self._guardStopSignals)
        try:
            GatewayService.privilegedStartService(self)
        except StartupError as e:
            raise SystemExit(f"serialgw: error: {e}") from None
        givePtys(self)
        giveFiles(self)
        warnUnwritable(self)

    def reopenLogs(self) -> defer.Deferred[int]:
        # twistd's own log first (the count's line goes to the new file; its open waited for
        # REOPEN_WAIT s at most, off this thread), then the lines' files, in turns.
        return self._reopenTwistdLog().addCallback(
            lambda count: GatewayService.reopenLogs(self).addCallback(lambda reopened: reopened + count))

    _twistdReopens: Optional[TwistdLogReopens] = None

    def _reopenTwistdLog(self) -> defer.Deferred[int]:
        logFile = self.twistdLog
        if logFile is None:
            return defer.succeed(0)
        if self._twistdReopens is None or self._twistdReopens.logFile is not logFile:
            self._twistdReopens = TwistdLogReopens(logFile, self.reactor)
        return self._twistdReopens.reopen()

    def startService(self) -> None:
        GatewayService.startService(self)
        # What start-up made lives as long as the process: out of the
        # collector's sight, so full collections stay short while serving.
        import gc

        gc.collect()
        gc.freeze()

    # A stop asked (a signal Twisted's handler took, or the stop begun), and a
    # second signal's hurry waiting for the stop to begin (see _stopSignal).
    _stopAsked = False
    _hurryDue: Optional[str] = None

    # The reactor's handlers as they were before _takeTwistedsHandlers (None: its class's).
    _reactorHandlers: Optional[dict[str, Any]] = None

    def _takeTwistedsHandlers(self) -> None:
        """
        Before the reactor starts: its C{sigTerm} and C{sigInt}, which
        Twisted reads and installs as the reactor starts, made ours
        (L{_stopSignal} in front of them), so that no signal reaches
        Twisted's own between that install ("during startup") and
        L{_guardStopSignals} ("after startup"): one there logged from inside
        the signal handler (60d7ab4's deadlock, had the main thread been in
        a log observer then: nothing logs there now), and left a second to
        stop the reactor again.  Given back once the reactor runs.
        """
        taken: dict[str, Any] = {}
        for name in ("sigTerm", "sigInt"):
            twisted = getattr(self.reactor, name, None)
            if callable(twisted):
                taken[name] = vars(self.reactor).get(name)
                setattr(self.reactor, name, functools.partial(self._stopSignal, twisted))
        self._reactorHandlers = taken

    def _guardStopSignals(self) -> None:
        """
        Once the reactor runs (its SIGTERM and SIGINT handlers in): the
        first of those signals goes to Twisted's handler (the log line, the
        exit status), the others hurry the stop (L{_stopAgain}).  Twisted's
        handler asks the reactor to stop on its next turn: two signals in one
        turn (C{kill -TERM $pid; kill -TERM $pid}, a busy reactor) asked
        twice, the second stop of a stopping reactor a critical
        ReactorNotRunning traceback in the log.  What Twisted installed is
        ours already if the reactor's were taken before it started.
        """
        import signal

        for name, was in (self._reactorHandlers or {}).items():
            if was is None:
                delattr(self.reactor, name)
            else:
                setattr(self.reactor, name, was)
        self._reactorHandlers = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            twisted = signal.getsignal(signum)
            if isinstance(twisted, functools.partial) and twisted.func == self._stopSignal:
                continue
            if callable(twisted):
                signal.signal(signum, functools.partial(self._stopSignal, twisted))

    def _stopSignal(self, twisted: Callable[[int, Any], Any], signum: int, frame: Any) -> None:
        import signal

        if not self._stopAsked:
            self._stopAsked = True
            # On the reactor's next turn, not here: Twisted's handler logs
            # ("Received SIGTERM"), and a signal that came while the main
            # thread was inside a log observer holding its lock (twistd's
            # file observer: a pure-Python RLock, half taken) waited on it
            # for ever (seen on CI, Twisted 22.10: a deadlocked gateway).
            self.reactor.callFromThread(twisted, signum, None)
        else:
            self.reactor.callFromThread(self._stopAgain, signal.Signals(signum).name)

    def _stopAgain(self, why: str) -> None:
        """A second stop signal: the stop hurried (L{hurry}), once it has begun if it has not yet."""
        if self._stopped:
            self.hurry(why)
        elif self._hurryDue is None:
            self._hurryDue = why

    def stopService(self) -> Any:
        """
        The stop; while it waits for devices to take their close-strings, a
        second SIGTERM or SIGINT hurries it (L{hurry}): Twisted's handler
        would stop the stopping reactor again, a traceback, and wait on.
        One that came before the stop began hurries it now.
        """
        import signal

        self._stopAsked = True

        def again(signum: int, frame: Any) -> None:
            self.reactor.callFromThread(self.hurry, signal.Signals(signum).name)

        # Taken before the stop begins: a signal sent as soon as the log
        # says the close-string went finds it.
        previous = {signum: signal.signal(signum, again) for signum in (signal.SIGTERM, signal.SIGINT)}

        def restore(result: Any) -> Any:
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            return result

        self._cancelRetry()
        stopping = GatewayService.stopService(self)
        if self._hurryDue is not None:
            self.hurry(self._hurryDue)
        return stopping.addBoth(restore)

    def reloadNothing(self) -> None:
        if self._stopped:
            log.info("SIGHUP during the stop: nothing reloaded")
            return
        log.info("SIGHUP: no configuration file to re-read (the options stay; --config FILE can be reloaded)")
        self.notifier.reloading()
        self.notifier.reloaded("nothing to reload without --config")

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


def raiseFileLimit() -> None:
    """
    Many lines mean many descriptors: raise the soft RLIMIT_NOFILE to the
    hard limit (Twisted's epoll reactor has no 1024 ceiling).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still needs a number for the soft one; the
    # hard limit itself is left as it is.
    wanted = (1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as e:
            log.warn("cannot raise the descriptor limit from {soft} to {wanted}: {reason}", soft=soft,
                     wanted=wanted, reason=str(e))
