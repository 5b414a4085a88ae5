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
serialgw's log (the first L{STDERR_KEPT} bytes, naming the line), not to
the device as conserver's does: an error message typed at a board's prompt
is run there.  Its environment adds C{SERIALGW_LINE} and C{SERIALGW_DEVICE}
(conserver's C{initsubst}).

Bounded, and never on the reactor's thread: it is a child process
(C{spawnProcess}); it is killed (SIGTERM, then SIGKILL L{KILL_WAIT} s
later if it is still there) once it has run C{init-timeout} seconds or
written L{WRITE_MOST} bytes to the device (or L{STDERR_MOST} to its
standard error); its output is read only while
the device takes input; what the device says while the command's standard
input is full (it does not read it) is not kept for it (counted).  The
device going (down, closed on demand) or the line let go kill it too.

It ends when its shell does, as conserver's: what the shell left running
holding its output (C{cmd &}) is ended L{LEFT_WAIT} s later (see
L{InitRun._leftRunning}).  Its end is told to the people on the line and
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

import os
import sys
from collections import deque
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.line.initsession import CHILD_FDS, CONTROL, KEEPER, KILL, RELEASE, STATUS, TERM, shellEnded
from serialgw.line.role import Role

log = Logger()

SHELL = "/bin/sh"
# What a run may write to the device, bytes: a login or a set-up is a few
# lines; past this it is a command gone wrong (a loop), killed.
WRITE_MOST = 65536
# How much of its standard error the log shows (the rest counted).
STDERR_KEPT = 512
# What it may write to its standard error, bytes (read on the reactor's thread, each byte of it: a command
# writing there in a loop took a core for its whole init-timeout, up to a day); past this it is killed.
STDERR_MOST = 1048576
# After SIGTERM, how long it has before SIGKILL.
KILL_WAIT = 2.0
# Its shell gone, how long its output may stay open (closed at the shell's exit: read within a turn or two) before
# what holds it (a process the shell started with &) is taken for one left running, and ended.
LEFT_WAIT = 0.5
# Starts at most within SPIN_WINDOW seconds; one due past that waits (conserver's initspinmax, initspintimer).
SPIN_MOST = 5
SPIN_WINDOW = 10.0
# init-timeout when left out, seconds.
DEFAULT_TIMEOUT = 60.0
# What systemd gives the gateway in its environment, kept from the command's.
_SYSTEMDS = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})


def seconds(value: float) -> str:
    return f"{value:.1f} s"


@implementer(IPushProducer)
class InitRun(ProcessProtocol):
    """One run of a line's init-command (see the module)."""

    def __init__(self, line: Any, command: str, timeout: float, reactor: Any) -> None:
        self.line = line
        self.command = command
        self.timeout = timeout
        self.reactor = reactor
        self.began = reactor.seconds()
        self.pid: Optional[int] = None
        # Bytes it wrote to the device; device output not given it (its standard input full, or after its end).
        self.written = 0
        self.dropped = 0
        self.stderr = b""
        self.stderrMore = 0
        # How it ended, for people (None while it runs), and whether that is a failure.
        self.outcome: Optional[str] = None
        self.failed = False
        # Fires once the process is gone (reaped, its pipes closed).
        self.ended: Deferred[None] = Deferred()
        self._stdinFull = False
        self._timer: Optional[IDelayedCall] = None
        self._killTimer: Optional[IDelayedCall] = None
        # Its shell gone and its output still open: when what holds it is taken for one left running (LEFT_WAIT).
        self._leftTimer: Optional[IDelayedCall] = None
        # Its pipes are read (not while the device is behind: deviceTakes).
        self._read = True
        # Its transport (an IProcessTransport, with the producer's methods too), once spawned.
        self.process: Any = None
        # What the keeper said of the shell's end (initsession.STATUS), and how: ("exit", 0), ("signal", 9).
        self._statusSaid = b""
        self.shellEnd: Optional[tuple[str, int]] = None
        # The command's standard output and error closed (by all that held them); the keeper told to go; its control
        # pipe gone (the keeper gone: nothing can be asked of it).
        self._outputsOpen = {1, 2}
        self._released = False
        self._controlGone = False

    def start(self) -> bool:
        """Started: whether it could be (a failure is logged, naming the line)."""
        # (Not systemd's to the gateway: its notify socket, watchdog and sockets passed are the gateway's alone.)
        env = {key: value for key, value in os.environ.items() if key not in _SYSTEMDS}
        env["SERIALGW_LINE"] = self.line.name
        env["SERIALGW_DEVICE"] = str(self.line.device.name)
        try:
            self.reactor.spawnProcess(self, sys.executable, [sys.executable, "-I", "-S", "-c", KEEPER, SHELL,
                                                             self.command], env=env, childFDs=CHILD_FDS)
        except Exception as e:
            self.ended.callback(None)
            self._over(f"not started: {e}", True)
            return False
        self._timer = self.reactor.callLater(self.timeout, self.kill,
                                             f"still running after {self.timeout:g} s (init-timeout)")
        return True

    # The process

    def connectionMade(self) -> None:
        self.process = self.transport
        self.pid = self.process.pid
        # Told when its standard input is full (it does not read what the device says): see deviceOutput.
        self.process.registerProducer(self, True)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == STATUS:
            self._statusSaid = (self._statusSaid + data)[:32]
            if self._statusSaid.endswith(b"\n") and self.shellEnd is None:
                self.shellEnd = shellEnded(self._statusSaid)
                self._release()
                if self._outputsOpen and self.outcome is None:
                    self._leftTimer = self.reactor.callLater(LEFT_WAIT, self._leftRunning)
            return
        if childFD == 2:
            kept = data[:max(0, STDERR_KEPT - len(self.stderr))]
            self.stderr += kept
            self.stderrMore += len(data) - len(kept)
            if len(self.stderr) + self.stderrMore > STDERR_MOST:
                self.kill(f"wrote more than {STDERR_MOST} bytes to its standard error")
            return
        if self.outcome is not None:
            return
        room = WRITE_MOST - self.written
        if len(data) > room:
            if room:
                self.written += room
                self.line.initWrote(self, data[:room])
            self.kill(f"wrote more than {WRITE_MOST} bytes to the device")
            return
        self.written += len(data)
        self.line.initWrote(self, data)

    def childConnectionLost(self, childFD: int) -> None:
        if childFD == CONTROL:
            self._controlGone = True
        elif childFD in self._outputsOpen:
            self._outputsOpen.discard(childFD)
            self._release()

    def _leftRunning(self) -> None:
        """
        The shell ended L{LEFT_WAIT} s ago and its output is still open: a
        process it started holds it (C{cmd &}).  The run is over, as
        conserver's ends at its shell's end (people's typing waited until
        init-timeout, then it was killed), how the shell ended its outcome;
        what it left holding the console's pipes (it could still write to
        the device, or read it) is ended: SIGTERM, then SIGKILL once its
        output is closed (or after L{KILL_WAIT} s).  One that let go of them
        (C{cmd >/dev/null 2>&1 &}) stays, as after any run that ends well.
        """
        self._leftTimer = None
        if self.outcome is not None or self.ended.called:
            return
        if not self._read:
            # (The device behind: its pipes are not read, so their end is not seen; looked at again later.)
            self._leftTimer = self.reactor.callLater(LEFT_WAIT, self._leftRunning)
            return
        outcome, failed = self._shellOutcome(self.shellEnd)
        self._over(f"{outcome}; what it left running holding its output was ended", failed)
        self.kill("its shell ended, what it left running held its output")

    def _shellOutcome(self, how: Optional[tuple[str, Optional[int]]]) -> tuple[str, bool]:
        """How its shell ended (C{how}: as L{shellEnd}), for people, and whether that is a failure."""
        took = seconds(self.reactor.seconds() - self.began)
        if how == ("exit", 0):
            return f"done (exit 0, {took})", False
        if how is not None and how[0] == "signal":
            return f"failed: ended by signal {how[1]} ({took})", True
        return f"failed: exit status {how[1] if how is not None else None} ({took})", True

    def _release(self) -> None:
        """
        The shell has ended and its output is closed: the keeper is let go,
        or, the run being killed (SIGTERM sent, SIGKILL due), told to send
        the group SIGKILL: a process the shell started that takes no
        SIGTERM is not left running once the SIGKILL's timer is cancelled.
        """
        if self.shellEnd is None or self._outputsOpen or self._released:
            return
        self._released = True
        if self._leftTimer is not None and self._leftTimer.active():
            self._leftTimer.cancel()
        self._leftTimer = None
        self._ask(KILL if self._killTimer is not None and self._killTimer.active() else RELEASE)

    def processEnded(self, reason: Failure) -> None:
        for call in (self._timer, self._killTimer, self._leftTimer):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._killTimer = self._leftTimer = None
        if self.outcome is None:
            # (The shell's end as its keeper saw it; without it, the keeper's own: one that could not start.)
            ended: Any = reason.value
            how = self.shellEnd or (("exit", 0) if reason.check(ProcessDone) else
                                    ("signal", ended.signal) if getattr(ended, "signal", None) else
                                    ("exit", getattr(ended, "exitCode", None)))
            self._over(*self._shellOutcome(how))
        self.ended.callback(None)

    # Its standard input's producer: paused while its pipe is full

    def pauseProducing(self) -> None:
        self._stdinFull = True

    def resumeProducing(self) -> None:
        self._stdinFull = False

    def stopProducing(self) -> None:
        self._stdinFull = True

    # The line's side

    def deviceOutput(self, data: bytes) -> None:
        """What the device said: to its standard input, unless that is full (dropped, counted)."""
        if self.outcome is not None or self._stdinFull:
            self.dropped += len(data)
            return
        self.process.write(data)

    def deviceTakes(self, writable: bool) -> None:
        """The device takes input (or not, behind): its output is read only while it does."""
        if self.outcome is not None:
            return
        self._read = writable
        if writable:
            self.process.resumeProducing()
            if self._leftTimer is not None and self._leftTimer.active():
                self._leftTimer.reset(LEFT_WAIT)  # (its output's end, if there, read first)
        else:
            self.process.pauseProducing()

    def kill(self, why: str) -> None:
        """
        Over now (C{why}, for people): SIGTERM, its pipes closed, SIGKILL
        after L{KILL_WAIT} s, or once its shell is gone if that is sooner.
        """
        for call in (self._timer, self._leftTimer):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._leftTimer = None
        if self.outcome is None:
            self._over(f"killed: {why}", True)
        if self._killTimer is not None or self.ended.called:
            return
        self._ask(TERM)
        # (Read again if the device was behind: the keeper's word of the shell's end comes on a pipe of its own, which
        # stays open; the command's output, closed here, is not read.)
        self.process.resumeProducing()
        self.process.loseConnection()
        self._killTimer = self.reactor.callLater(KILL_WAIT, self.killNow)

    def killNow(self) -> None:
        """SIGKILL (once SIGTERM was sent)."""
        if self._killTimer is not None and self._killTimer.active():
            self._killTimer.cancel()
        self._killTimer = None
        self._ask(KILL)

    def _ask(self, request: bytes) -> None:
        """
        C{request} to the keeper (L{serialgw.line.initsession}), which
        signals its group itself: the gateway never signals a group by a pid
        that may have been reaped and given to another process.
        """
        if self.ended.called or self.process is None or self._controlGone:
            return
        self.process.writeToChild(CONTROL, request)

    def _over(self, outcome: str, failed: bool) -> None:
        self.outcome, self.failed = outcome, failed
        self.line.initOver(self)

    def said(self) -> str:
        """What it said on its standard error, for the log (bounded), or empty."""
        if not self.stderr:
            return ""
        text = self.stderr.decode("utf-8", "replace").strip()
        more = f" (and {self.stderrMore} byte(s) more)" if self.stderrMore else ""
        return f"; it said: {text!r}{more}"


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
