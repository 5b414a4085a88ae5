"""
What running under twistd adds to the gateway service: a start-up failure
as one line on stderr, signals (SIGHUP reloads the file, SIGUSR1 reopens
the logs), the collector frozen after start-up, the descriptor limit raised.
The reload from the file SIGHUP asks for is L{serialgw.app.filereload}.
Under C{-u}, what the start made as root is handed over by
L{serialgw.app.runas}.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.components import Componentized
from twisted.python.logfile import BaseLogFile

from serialgw.app.binding import StartupError
from serialgw.app.filereload import FileReloads
from serialgw.app.logs import appendOnly, rotatedOnlyIfAFile, twistdLogFile
from serialgw.app.runas import giveFiles, givePtys, warnUnwritable
from serialgw.app.service import GatewayService
from serialgw.app.twistdlog import TwistdLogReopens

log = Logger()


class TwistdGatewayService(FileReloads):
    """
    Under twistd, a start-up failure is one line on stderr and exit status 1,
    not a traceback; with a configuration file, SIGHUP reloads it.
    """

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
        rotatedOnlyIfAFile(self.twistdLog)

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
