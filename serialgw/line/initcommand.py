"""
conserver's C{initcmd} for a line (C{init-command}, C{init-timeout}): a
command run each time the line's device comes up (opened at start, back
after a loss, opened on demand), by C{/bin/sh -ec} as conserver runs it
(in a session of its own, kept by L{serialgw.line.initsession}'s keeper: a
kill reaches what it started, and the gateway's end, even by SIGKILL,
ends it),
with the device's output on its standard input and its standard output
written to the device: a login made, a board set up.

While it runs the device's output still goes to every client and the
console log (people watch it), and what people type waits (their clients
are not read, as while the device is behind: L{InitCommandLine.writable}),
to go once it has ended, as conserver holds it.  Its standard error goes to
serialgw's log (the first L{initrun.STDERR_KEPT} bytes, naming the line), not to
the device as conserver's does: an error message typed at a board's prompt
is run there.  Its environment adds C{SERIALGW_LINE} and C{SERIALGW_DEVICE}
(conserver's C{initsubst}).

Bounded, and never on the reactor's thread: it is a child process
(C{spawnProcess}); it is killed (SIGTERM, then SIGKILL L{initrun.KILL_WAIT} s
later if it is still there) once it has run C{init-timeout} seconds or
written L{initrun.WRITE_MOST} bytes to the device (or L{initrun.STDERR_MOST} to its
standard error); its output is read only while
the device takes input; what the device says while the command's standard
input is full (it does not read it) is not kept for it (counted).  The
device going (down, closed on demand) or the line let go kill it too.

It ends when its shell does, as conserver's: what the shell left running
holding its output (C{cmd &}) is ended L{initrun.LEFT_WAIT} s later (see
L{initrun.InitRun._leftRunning}).  Its end is told to the people on the line and
the console log (C{[serialgw: init-command done (exit 0, 1.2 s)]}); a
failure (an exit status not 0, a signal, a kill, a command that cannot
start) is logged as a warning naming the line, with what it said on its
standard error.  One run at a time: a device up again runs it again, but
not more than L{SPIN_MOST} starts within L{SPIN_WINDOW} s (a client opening an
on-demand line in a loop, a device that keeps going and coming back): one
due past that waits until the oldest of those is L{SPIN_WINDOW} s old (said
to the people, the log and the status page), as conserver bounds its
initcmd's restarts (initspinmax, initspintimer).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from serialgw.line.initrun import InitRun, seconds
from serialgw.line.role import Role

log = Logger()

# Starts at most within SPIN_WINDOW seconds; one due past that waits (conserver's initspinmax, initspintimer).
SPIN_MOST = 5
SPIN_WINDOW = 10.0
# init-timeout when left out, seconds.
DEFAULT_TIMEOUT = 60.0


class InitCommandLine:
    """A line's init-command, mixed into L{serialgw.line.hub.Line} (see the module)."""

    # The command ("": none), its bound, and what runs it (an IReactorProcess; None: nothing is run).
    initCommand = ""
    initTimeout = DEFAULT_TIMEOUT
    initReactor: Any = None
    # At most initSpinMost runs start within initSpinWindow s (init-spin-max, init-spin-window).
    initSpinMost = SPIN_MOST
    initSpinWindow = SPIN_WINDOW
    # The run under way, if any; the last one started (under way or over); runs started.
    initRun: Optional[InitRun] = None
    initLast: Optional[InitRun] = None
    initRuns = 0
    # Whether the device takes input now (its own flow control: deviceWritable); people type only
    # while it does and no init-command runs (writable).
    deviceTakes = True
    writable = True
    _initSoon: Optional[IDelayedCall] = None
    # Whether a run waits for the last one's reaping (see runInitCommand).
    _initAfterLast = False
    # When the last SPIN_MOST runs started; when a run held by that bound is due (None: none held); when a hold was
    # last said (the log and the people told once in SPIN_WINDOW s: a client's connect loop holds one each time).
    _initStarts: Optional[deque[float]] = None
    initHeldUntil: Optional[float] = None
    _initHeldSaid: Optional[float] = None

    def setInitCommand(self, command: str, timeout: float, reactor: Any, spinMost: int = SPIN_MOST,
                       spinWindow: float = SPIN_WINDOW) -> None:
        """
        The command run at each coming up of the device from now on (C{""}:
        none), and the bound on its starts (init-spin-max, init-spin-window:
        the starts counted so far are kept); a run under way goes on.
        """
        self.initCommand, self.initTimeout, self.initReactor = command, timeout, reactor
        self.initSpinMost, self.initSpinWindow = spinMost, spinWindow

    def initSoon(self) -> None:
        """
        Run next turn: a device up before its line was set up (opened at
        start), once its logs are attached; or once the last run is reaped.
        """
        if self.initCommand and self.initReactor is not None and self._initSoon is None:
            self._initSoon = self.initReactor.callLater(0, self.runInitCommand)

    def runInitCommand(self) -> None:
        """The device is up: the init-command is run (not while one runs, nor once the line is let go)."""
        line: Any = self
        soon, self._initSoon = self._initSoon, None
        if soon is not None and soon.active():
            soon.cancel()
        self.initHeldUntil = None
        if not self.initCommand or self.initReactor is None or self.initRun is not None or line._letGo:
            return
        if not line.up:
            return
        last = self.initLast
        if last is not None and not last.ended.called:
            # The last run was killed and is not reaped yet (its SIGKILL due in L{KILL_WAIT} s at most):
            # this one starts once it is, so a line runs one process of its command at a time (a client
            # opening an on-demand line in a loop starts no more).
            if not self._initAfterLast:
                self._initAfterLast = True
                last.ended.addBoth(self._lastReaped)
            return
        if self._initSpun():
            return
        run = InitRun(line, self.initCommand, self.initTimeout, self.initReactor)
        self.initRun = self.initLast = run
        self.initRuns += 1
        self.peopleMayType(False)
        if not run.start():
            return  # (initOver said it)
        if not self.deviceTakes:
            run.deviceTakes(False)  # (behind already: its output waits)
        log.info("line {line}: init-command started (pid {pid}): {command!r}", line=line.name, pid=run.pid,
                 command=run.command[:200])
        line.announce("init-command started: what you type waits until it ends", logged=False)

    def _initSpun(self) -> bool:
        """
        Whether L{initSpinMost} runs started within the last
        L{initSpinWindow} s: then this one is held until the oldest of them
        is that old (run then if the device is still up), said once in
        L{initSpinWindow} s; otherwise its start is counted.
        """
        line: Any = self
        now = self.initReactor.seconds()
        most, window = self.initSpinMost, self.initSpinWindow
        starts = self._initStarts
        if starts is None or starts.maxlen != most:
            # (A reload's new bound: the newest starts so far kept.)
            starts = self._initStarts = deque(starts or (), maxlen=most)
        if len(starts) < most or starts[0] + window <= now:
            starts.append(now)
            return False
        due = starts[0] + window
        self.initHeldUntil = due
        self._initSoon = self.initReactor.callLater(due - now, self.runInitCommand)
        if self._initHeldSaid is None or self._initHeldSaid + window <= now:
            self._initHeldSaid = now
            text = (f"init-command held: {most} runs started in the last {window:g} s; it runs in "
                    f"{seconds(due - now)} if the device is still up")
            log.info("line {line}: {text}", line=line.name, text=text)
            line.announce(text, logged=False)
        return True

    def _lastReaped(self, result: object) -> object:
        """The last run, killed, is reaped: the run due meanwhile is started next turn (if still due then)."""
        self._initAfterLast = False
        self.initSoon()
        return result

    def stopInitCommand(self, why: str) -> Optional[Deferred[None]]:
        """
        The device went, or the line is let go: a run under way is killed,
        one due is not started; the last run's end (it is reaped), if it is
        not over yet (the line let go waits for it: L{KILL_WAIT} s at most).
        """
        soon, self._initSoon = self._initSoon, None
        if soon is not None and soon.active():
            soon.cancel()
        self.initHeldUntil = None
        if self.initRun is not None:
            self.initRun.kill(why)
        last = self.initLast
        return last.ended if last is not None and not last.ended.called else None

    def hurryInitCommand(self) -> None:
        """The stop is hurried (SIGTERM again): a run killed and not gone yet is sent SIGKILL now."""
        last = self.initLast
        if last is not None and not last.ended.called and last.process is not None:
            last.kill("the stop is hurried")
            last.killNow()

    def initWrote(self, run: InitRun, data: bytes) -> None:
        """The command wrote C{data}: to the device, as a person's typing is (counted, log-typed)."""
        line: Any = self
        if run is not self.initRun:
            return
        line.device.write(data, run)
        if line.idle is not None:
            line.idle.touch()
        if line.up:
            line.bytesGiven += len(data)
            for consoleLog in list(line.logs):
                try:
                    consoleLog.typed("init-command", data)
                except Exception:
                    log.failure("{line}: writing {peer} failed; it is cut off", line=line.name, peer=consoleLog.peer)
                    line._cutOff(consoleLog)

    def initOver(self, run: InitRun) -> None:
        """C{run} is over (ended, or killed): people type again, and are told how it went."""
        line: Any = self
        if run is not self.initRun:
            return
        self.initRun = None
        text = f"init-command {run.outcome}"
        if run.dropped:
            text += f"; {run.dropped} byte(s) of device output it did not read were not kept for it"
        # (Said once in the gateway's log: with what it said on its standard error, if anything; a failure as a warning.)
        if run.failed:
            log.warn("line {line}: {outcome}{said} (the command: {command!r})", line=line.name, outcome=text,
                     said=run.said(), command=run.command[:200], pid=run.pid)
        elif run.stderr:
            log.info("line {line}: {outcome}{said}", line=line.name, outcome=text, said=run.said(), pid=run.pid)
        line.announce(text, logged=not run.failed and not run.stderr)
        self.peopleMayType(self.deviceTakes)

    def peopleMayType(self, writable: bool) -> None:
        """Whether the device takes people's typing now: writers' clients read, or not (their typing waits)."""
        line: Any = self
        self.writable = writable
        # (A copy: a person's typing that waited goes now, and a console log
        # cut meanwhile, its LOG.typed failing, left the list under us.)
        for client in list(line.clients):
            if client.role is Role.WRITER:  # (let go too: resumed, what it sends is refused, not left unread)
                if writable:
                    client.resumeInput()
                else:
                    client.pauseInput()
