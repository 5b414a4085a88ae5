"""
One run of a line's init-command (L{serialgw.line.initcommand}): a child
process, by C{/bin/sh -ec} in a session of its own that
L{serialgw.line.initsession}'s keeper holds, its standard input the
device's output and its standard output written to the device, its
standard error logged.  Bounded: killed (SIGTERM, then SIGKILL L{KILL_WAIT}
s later) past its init-timeout, past L{WRITE_MOST} bytes to the device or
L{STDERR_MOST} to its standard error; its output read only while the device
takes input; what its shell left running holding its output ended
L{LEFT_WAIT} s after the shell; its keeper found stopped from outside
(C{kill -STOP} of its pid) sent SIGCONT (L{KEEPER_LOOK}).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.line.initleft import endSession, pinChildren
from serialgw.line.initsession import CHILD_FDS, CONTROL, KEEPER, KILL, RELEASE, SHELL_RUNS, STATUS, TERM, shellEnded

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
# How often its keeper is looked at (/proc/PID/stat, a read): one stopped alone from outside (SIGSTOP to its pid, not
# its group) holds the command's output and never tells the shell's end, so the run lasted until init-timeout and
# KILL_WAIT s more; found stopped, it is sent SIGCONT (see InitRun._lookAtKeeper).
KEEPER_LOOK = 1.0
# Its shell gone, how long its output may stay open (closed at the shell's exit: read within a turn or two) before
# what holds it (a process the shell started with &) is taken for one left running, and ended.
LEFT_WAIT = 0.5
# What systemd gives the gateway in its environment, kept from the command's.
_SYSTEMDS = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"})


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def _childStat(pid: int) -> Optional[list[bytes]]:
    """
    Process C{pid}'s /proc/PID/stat fields after its name (its state
    first, then its parent's pid, its group's id...) if it is this
    process's child (not reaped: a zombie too), whose pid cannot be given
    to another process before this one reaps it; None if it is not (or gone).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields if int(fields[1]) == os.getpid() else None
    except (OSError, IndexError, ValueError):
        return None


def leadsItsGroup(pid: int) -> bool:
    """
    Whether process C{pid} is this process's child (not reaped: a zombie
    too) and leads its own process group (/proc/PID/stat): then
    C{killpg(pid)} reaches that group and no other, as its pid cannot be
    given to another process before this one reaps it.
    """
    fields = _childStat(pid)
    try:
        return fields is not None and int(fields[2]) == pid
    except (IndexError, ValueError):
        return False


def stoppedChild(pid: int) -> bool:
    """Whether process C{pid} is this process's child, stopped by a signal (/proc/PID/stat's state C{T})."""
    fields = _childStat(pid)
    return fields is not None and fields[0] == b"T"


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
        # What the keeper said (initsession.STATUS) and not read yet: that the shell runs (a SIGTERM to its group
        # reaches it: before, TERM is held in _termHeld), and how it ended: ("exit", 0), ("signal", 9).
        self._statusSaid = b""
        self.shellRuns = False
        self._termHeld = False
        self.shellEnd: Optional[tuple[str, int]] = None
        # The command's standard output and error closed (by all that held them); the keeper told to go; its control
        # pipe gone (the keeper gone: nothing can be asked of it).
        self._outputsOpen = {1, 2}
        self._released = False
        self._controlGone = False
        # SIGKILL asked of the keeper (K): its own end by SIGKILL is then no surprise.
        self._killAsked = False
        # The next look at the keeper (KEEPER_LOOK); how many times it was found stopped and sent SIGCONT.
        self._lookTimer: Optional[IDelayedCall] = None
        self.keeperContinued = 0
        # The keeper's children (its shell, its reader of requests) pinned by pidfds once its shell runs, and the look,
        # KILL_WAIT s after a keeper ended from outside, at what its session still runs (see _sessionLeft).
        self._pins: dict[int, int] = {}
        self._leftCall: Optional[IDelayedCall] = None

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
        self._lookTimer = self.reactor.callLater(KEEPER_LOOK, self._lookAtKeeper)
        return True

    # The process

    def connectionMade(self) -> None:
        self.process = self.transport
        self.pid = self.process.pid
        # Told when its standard input is full (it does not read what the device says): see deviceOutput.
        self.process.registerProducer(self, True)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == STATUS:
            self._statusSaid = (self._statusSaid + data)[:64]  # (two short lines: bounded all the same)
            while b"\n" in self._statusSaid:
                said, self._statusSaid = self._statusSaid.split(b"\n", 1)
                self._keeperSaid(said)
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

    def _keeperSaid(self, said: bytes) -> None:
        """A line the keeper said on L{STATUS}: its shell runs (L{SHELL_RUNS}), or how it ended."""
        if said == SHELL_RUNS and not self.shellRuns and self.shellEnd is None:
            self.shellRuns = True
            keeper = self.process.pid if self.process is not None and not self.ended.called else None
            if keeper is not None and _childStat(keeper) is not None:
                self._pins = pinChildren(keeper)  # (its pid nobody else's: see initleft)
            if self._termHeld:
                self._termHeld = False
                self._ask(TERM)
            return
        if self.shellEnd is not None:
            return
        self.shellEnd = shellEnded(said)
        self._release()
        if self._outputsOpen and self.outcome is None:
            self._leftTimer = self.reactor.callLater(LEFT_WAIT, self._leftRunning)

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

    def processExited(self, reason: Failure) -> None:
        """
        Its keeper is reaped (its pipes may still be open: L{processEnded}
        comes once they are closed).  Ended by a signal nobody here asked
        for (C{kill -9} of its pid from outside, the OOM killer) before it
        told the shell's end, its shell and what that started would run on
        until init-timeout, nobody left to say how the shell ends: the run is
        over now, what its session runs sent SIGKILL by the keeper's reader
        of requests (still in the group, so the group's id, the keeper's pid,
        is nobody else's) and its pipes closed; people type again.
        """
        self._lookedAtEnough()  # (reaped: its pid may be another's now)
        if self._released or self._killAsked or self.shellEnd is not None or self.ended.called:
            return
        ended = reason.value
        if not isinstance(ended, ProcessTerminated) or ended.signal is None:
            return  # (it exited: one that could not start; processEnded says how)
        for call in (self._timer, self._killTimer, self._leftTimer):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._killTimer = self._leftTimer = None
        if self.outcome is None:
            self._over(f"killed: its keeper (pid {self.pid}) was ended by signal {ended.signal}, not by "
                       "serialgw", True)
        self._ask(KILL)
        if self._pins:
            self._leftCall = self.reactor.callLater(KILL_WAIT, self._sessionLeft)
        self.process.resumeProducing()  # (as in kill: the pipes' end read even with the device behind)
        self.process.loseConnection()

    def _lookAtKeeper(self) -> None:
        """
        Every L{KEEPER_LOOK} s until it is reaped: the keeper, found stopped
        (by a signal from outside: C{kill -STOP} of its pid), is sent
        SIGCONT, said as a warning naming the line and its pid.  Stopped, it
        still holds the command's output and never tells the shell's end, so
        a shell that ended held people's typing until init-timeout and the
        run was then killed (SIGKILL L{KILL_WAIT} s later), said as a hang;
        now the run ends within L{KEEPER_LOOK} s of its shell, as the shell
        did.  Only the keeper is continued, never the command's own
        processes: a command stopped (its group stopped whole) stays so,
        killed at init-timeout as before.  The keeper's pid is looked at
        (C{/proc}) and signalled only while it is this process's child not
        reaped (L{stoppedChild}): it is nobody else's.  One held by a
        debugger (state C{t}) is left to it.
        """
        self._lookTimer = None
        keeper = self.process.pid if self.process is not None and not self.ended.called else None
        if keeper is None:
            return
        if stoppedChild(keeper):
            try:
                os.kill(keeper, signal.SIGCONT)
            except OSError:
                pass  # (gone meanwhile: its reaping says the rest)
            else:
                self.keeperContinued += 1
                if self.keeperContinued == 1:  # (one stopped again and again is said once)
                    log.warn("line {line}: init-command's keeper (pid {pid}) was found stopped, not by serialgw: "
                             "sent SIGCONT (stopped, it holds the command's output and cannot tell its end)",
                             line=self.line.name, pid=keeper)
        self._lookTimer = self.reactor.callLater(KEEPER_LOOK, self._lookAtKeeper)

    def _sessionLeft(self) -> None:
        """
        L{KILL_WAIT} s after its keeper was ended from outside: what its
        session still runs (its shell, what that started), which the
        keeper's reader of requests did not end as asked (K): it was ended
        from outside too (a C{pkill -f serialgw-init} matches both), and
        nobody was left to signal the session.  Sent SIGKILL by the gateway,
        by pidfd (L{serialgw.line.initleft.endSession}), said as a warning
        naming the line and the pids; before, they ran on for good.
        """
        self._leftCall = None
        pins, self._pins = self._pins, {}
        assert self.pid is not None
        ran = endSession(self.pid, pins)
        if ran:
            log.warn("line {line}: init-command's session (its keeper, pid {pid}, and the keeper's reader of requests "
                     "ended from outside) still ran {pids}: sent SIGKILL by serialgw", line=self.line.name,
                     pid=self.pid, pids=ran)

    def _lookedAtEnough(self) -> None:
        """The keeper is reaped: no more looks at its pid."""
        if self._lookTimer is not None and self._lookTimer.active():
            self._lookTimer.cancel()
        self._lookTimer = None

    def processEnded(self, reason: Failure) -> None:
        self._lookedAtEnough()
        if self._leftCall is None:
            for fd in self._pins.values():
                os.close(fd)
            self._pins = {}
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
        The SIGTERM is asked for once the shell runs (its keeper says so):
        one sent before would end nothing (see L{serialgw.line.initsession}).
        """
        for call in (self._timer, self._leftTimer):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._leftTimer = None
        if self.outcome is None:
            self._over(f"killed: {why}", True)
        if self._killTimer is not None or self._killAsked or self.ended.called:
            return
        if self.shellRuns or self.shellEnd is not None:
            self._ask(TERM)
        else:
            self._termHeld = True
        # (Read again if the device was behind: the keeper's word of the shell's end comes on a pipe of its own, which
        # stays open; the command's output, closed here, is not read.)
        self.process.resumeProducing()
        self.process.loseConnection()
        self._killTimer = self.reactor.callLater(KILL_WAIT, self.killNow)

    def killNow(self) -> None:
        """
        SIGKILL (once SIGTERM was sent): asked of the keeper, and sent to its
        group by the gateway itself while the keeper is its child not reaped
        and its group's leader (L{leadsItsGroup}): a group stopped as a whole
        (SIGSTOP to it: the keeper's reader of requests stopped too) read no
        request, and the run, and a stop of the gateway waiting for it, never
        ended.
        """
        if self._killTimer is not None and self._killTimer.active():
            self._killTimer.cancel()
        self._killTimer = None
        self._termHeld = False  # (SIGKILL ends it whether or not its shell runs yet)
        self._ask(KILL)
        keeper = self.process.pid if self.process is not None and not self.ended.called else None
        if keeper is not None and leadsItsGroup(keeper):
            try:
                os.killpg(keeper, signal.SIGKILL)
            except OSError:
                pass  # (gone meanwhile: nothing left to end)

    def _ask(self, request: bytes) -> None:
        """
        C{request} to the keeper (L{serialgw.line.initsession}), which
        signals its group itself: the gateway never signals a group by a pid
        that may have been reaped and given to another process.
        """
        self._killAsked = self._killAsked or request == KILL
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
