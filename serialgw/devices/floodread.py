"""
A flooding tty read off the reactor's thread, through a pipe (issue 15,
target 1), when the reactor asks for it: serialgw's own reactor asks for a
process mover unless C{SERIALGW_READER} says C{thread} or C{reactor} (none:
L{serialgw.app.oneshot.moversFromEnvironment}); another reactor reads the
tty itself.

When C{epoll_wait} looks again at a level-triggered tty whose input a read
has just emptied, the line discipline's poll waits for the kernel worker
that moves the writer's bytes in (C{flush_work}), and a keystroke's socket
ready in the same epoll is handed back only after that wait.  So a tty
that keeps coming back full (when: L{serialgw.devices.floodhandoff}, the
device's side) leaves the reactor's epoll: a mover (L{serialgw.devices.mover},
in a thread, or in a process of its own: no GIL shared with the reactor)
polls it and C{splice}s what it holds into a pipe, where the wait now
happens, and the reactor reads the pipe as it read the tty (a pipe's
poll never waits).

Everything goes through the pipe, so nothing needs more than its order:
  - the bytes come out in the order the tty gave them;
  - back-pressure: while the device is paused the reactor stops reading
    the pipe; once it is full (L{PIPE_SIZE}) the mover waits for room,
    and the tty fills as when the reactor stopped reading it;
  - the mover ends when the tty has been quiet for L{IDLE} seconds (a
    process L{PROCESS_IDLE}), or on
    anything else than bytes (a hang-up, an error): its end of the pipe
    closes, and after the last bytes the reactor reads the pipe's end and
    watches the tty again itself, where its own read finds a hang-up or
    an error and takes the device's one loss path, as without a mover;
  - the mover works on its own C{dup} of the tty, polled with a wake pipe,
    and blocks nowhere but in that poll: a stop (the device closed or
    lost) closes the wake pipe's other end and reaches it there, and a
    close of the device's descriptor (whose number may be given to another
    file at once) never has it touch another file.  What the pipe holds
    at a stop is dropped (a purge); a device closed or lost delivers it
    first (its output from before:
    L{serialgw.devices.floodhandoff.FloodReading._movedBeforeLoss});
  - a process mover that stops moving while alive (SIGSTOP, a hang) is
    killed by its stall watch (L{serialgw.devices.moverwatch}): its pipe's
    end then gives the tty back, as above; a thread mover stuck (in a
    read of a tty whose driver hangs) is left behind, the tty given back.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from typing import Any, Callable, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.devices import mover
from serialgw.devices.moverwatch import StallWatch, held

log = Logger()

# Quiet this long (seconds), the mover gives the tty back to the reactor.
IDLE = 0.2
# A process mover waits longer (its start costs a process's, 10-20 ms of
# CPU): a device sending 32 KB every 0.3 s started one for each burst.
PROCESS_IDLE = 2.0
# The pipe's size (bytes): the most that waits between the mover and the reactor.
PIPE_SIZE = 64 * 1024
# What the reactor reads of the pipe at a time.
PIPE_READ = 16 * 1024
# The most one splice moves (a line discipline holds 4095 bytes).
SPLICE_SIZE = 65536
# How often (seconds) an ended mover process is looked for until it is collected.
REAP_DELAY = 0.1
MODES = ("thread", "process")

# The mover process: serialgw.devices.mover.main, found where this package is.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_MAIN = "import sys; sys.path.insert(0, sys.argv[1]); from serialgw.devices.mover import main; main(sys.argv[2:])"

# This gateway's mover processes not collected yet (replaced, never changed:
# read by the reopen's look off the reactor thread).  One told to stop may
# not have ended yet (nice 19, a loaded machine) and still holds its tty:
# the gateway's own child, not another program (see moverPids).
_movers: frozenset[int] = frozenset()


def moverPids() -> frozenset[int]:
    """The pids of this gateway's mover processes not collected yet: their ttys' holders are the gateway itself."""
    return _movers


def _moverLiving(pid: int, living: bool) -> None:
    global _movers
    _movers = _movers | {pid} if living else _movers - {pid}


class FloodReader:
    """
    One tty moved into a pipe by a thread or a process, the pipe read by
    the reactor: C{deliver} (bytes) and C{back} (the mover ended: the
    device reads the tty itself again) are called in the reactor's
    thread, in order.

    Who owns what: the mover its C{dup} of the tty, the pipe's write end
    and the wake pipe's read end (a thread closes them as it ends; a
    process has its own copies, ours closed once it is started); the
    reactor the pipe's read end and the wake pipe's write end (closed at
    L{stop}).  A thread mover suspends the reactor's busy-polling while it
    runs: polling without sleeping, the reactor takes the GIL back after
    each poll before the woken thread can, which then waits out the
    switch interval (5 ms) for each chunk.  While a process mover runs,
    the reactor gives its CPU up after each empty poll (sched_yield):
    spinning, it kept its CPU from the mover at nice 19 (paced at 20
    MiB/s, 17 MiB/s moved for 46 s of CPU a GiB, against 19.3 for 28 with
    the polling suspended).
    """

    def __init__(self, reactor: Any, fd: int, name: str, deliver: Callable[[bytes], None],
                 back: Callable[[], None], mode: str = "thread", start: bool = True,
                 failed: Optional[Callable[[str], None]] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"no such mover: {mode!r}")
        self.reactor = reactor
        self.name = name
        self.mode = mode
        self._deliver, self._back, self._failed = deliver, back, failed
        # Why a thread mover failed (set before it closes its ends): told to failed() as the tty goes back.
        self.failure: Optional[str] = None
        self._paused = False
        # What the pipe held went past this pause (FloodReading._movedBeforeMarking): once.
        self.heldPastThePause = False
        self.stopped = False
        self.pid: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._reapCall: Any = None
        self._exitWatched = False
        self._counted = False
        # A process mover's stall watch (moverwatch); whether it killed the mover.
        self._watch: Optional[StallWatch] = None
        self._killed = False
        made = [os.dup(fd)]
        try:
            made += os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            made += os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            # (All made so far: a wake pipe refused left the data pipe's two open for good.)
            for end in made:
                os.close(end)
            raise
        self._tty, self._pipeR, self._pipeW, self._wakeR, self._wakeW = made
        try:
            fcntl.fcntl(self._pipeW, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # (the default size: over pipe-max-size, or the user's pipe limits)
        self._busyPoll = getattr(reactor, "busyPoll", None)
        if self._busyPoll is not None:
            if mode == "process":
                self._busyPoll.yielding += 1
            else:
                self._busyPoll.suspended += 1
        self._pipe = _Pipe(self)
        reactor.addReader(self._pipe)
        # (Counted until its stop: floodhandoff.MOST_MOVERS.)
        reactor.moving = getattr(reactor, "moving", 0) + 1
        self._counted = True
        try:
            self._watch = StallWatch(self, fd)
        except OSError:
            self._closeMoversEnds()
            self.stop()
            raise
        if not start:
            return  # (tests: the mover's loop is run by them, with moverEnds)
        try:
            if mode == "process":
                self.pid = self._spawn()
                _moverLiving(self.pid, True)
            else:
                self._thread = threading.Thread(target=self._run, name=f"serialgw mover {name}", daemon=True)
                self._thread.start()
        except BaseException:
            self._closeMoversEnds()
            self.stop()
            raise
        if mode == "process":
            # It has its copies.
            self._closeMoversEnds()

    def moverEnds(self) -> tuple[int, int, int]:
        """The mover's descriptors: the tty (a dup), the pipe's write end, the wake pipe's read end."""
        return self._tty, self._pipeW, self._wakeR

    def _closeMoversEnds(self) -> None:
        """Close the mover's descriptors (once: their numbers may be another file's after)."""
        ends, (self._tty, self._pipeW, self._wakeR) = self.moverEnds(), (-1, -1, -1)
        for fd in ends:
            if fd >= 0:
                os.close(fd)

    def _run(self) -> None:
        try:
            mover.yieldToTheGateway()
            mover.move(*self.moverEnds(), int(IDLE * 1000), SPLICE_SIZE)
        except BaseException as e:
            if self._killed:
                return  # (left behind by the stall watch, said then: back from its stuck call, it finds its pipe gone)
            self.failure = f"its thread failed: {e!r}"
            # Logged on the reactor's thread: twistd's log file is written without a lock.
            self.reactor.callFromThread(log.failure, "{device}: its mover thread failed", failure=Failure(),
                                        device=self.name)
        finally:
            self._closeMoversEnds()

    def _spawn(self) -> int:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, self._tty, 3),
            (os.POSIX_SPAWN_DUP2, self._pipeW, 4),
            (os.POSIX_SPAWN_DUP2, self._wakeR, 5),
        ]
        argv = [sys.executable, "-I", "-S", "-c", _MAIN, _ROOT, str(int(PROCESS_IDLE * 1000)), str(SPLICE_SIZE)]
        # Its own process group (a terminal's ^C to twistd -n is not its),
        # in the gateway's session: Linux schedules each session as a group
        # of its own (autogroups), where its niceness (mover.NICE) would
        # weigh against nothing of the gateway's, and the group against
        # the gateway's whole session.
        return os.posix_spawn(sys.executable, argv, {}, file_actions=actions, setpgroup=0)

    # -- the reactor's thread ---------------------------------------------

    def pause(self) -> None:
        """Stop reading the pipe (it fills, then the mover waits, then the tty fills)."""
        if not self._paused and not self.stopped:
            self._paused = True
            if self._watch is not None:
                self._watch.paused()
            self.reactor.removeReader(self._pipe)

    def resume(self) -> None:
        if self._paused and not self.stopped:
            self._paused = False
            self.heldPastThePause = False
            self.reactor.addReader(self._pipe)

    def stop(self) -> None:
        """No more deliveries; what the pipe holds is dropped; the mover ends at its next poll."""
        if self.stopped:
            return
        self.stopped = True
        if self._counted:
            self._counted = False
            self.reactor.moving -= 1
        if self._busyPoll is not None:
            if self.mode == "process":
                self._busyPoll.yielding -= 1
            else:
                self._busyPoll.suspended -= 1
        if not self._paused:
            self.reactor.removeReader(self._pipe)
        os.close(self._pipeR)
        os.close(self._wakeW)
        self._pipeR = self._wakeW = -1
        if self._watch is not None:
            self._watch.stop()
        if self.pid is not None:
            # A process stopped (SIGSTOP) would never see its wake pipe close: it stayed for good,
            # the tty open.  Going on, it finds it closed and ends (a running one is not touched).
            try:
                os.kill(self.pid, signal.SIGCONT)
            except OSError:
                pass  # (ended already)
        self._reap()

    # -- the stall watch's (moverwatch.StallWatch) -------------------------

    def isPaused(self) -> bool:
        return self._paused

    def pipeFileno(self) -> int:
        return self._pipeR

    def leftBehind(self) -> bool:
        """A thread mover the stall watch left behind, still stuck (see L{stalled})."""
        return self._killed and self._thread is not None and self._thread.is_alive()

    def stalled(self, why: str) -> None:
        """
        The mover is stopped or hung (StallWatch): killed, said once with the
        reason; its pipe's end then gives the tty back to the device, as
        after a mover that failed (the reactor reads it for REFUSED_WAIT s).
        """
        self._killed = True
        if self.mode == "thread":
            # A thread cannot be killed (nor stopped alone): it is left to end on its own (its wake pipe and
            # its pipe's read end closed, it ends at its next poll or write), and the tty goes back now.  It
            # left its line silent for good (a tty whose driver hangs in a read or a splice).
            if self._failed is not None:
                self._failed(why)
            self.stop()
            self._back()
            return
        try:
            killMover(self.pid)
        except OSError as e:
            why += f" ({e.strerror})"  # (gone already: its pipe's end says so)
        if self._failed is not None:
            self._failed(why)

    def _reap(self) -> None:
        """
        Collect the mover process's exit: when the reactor says it has
        ended (GatewayReactor.watchExit: no timer left behind, a test's
        reactor clean while the mover still ends), else looking again
        every REAP_DELAY seconds until it is there.
        """
        self._reapCall = None
        if self.pid is None:
            return
        status = 0
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid:
            _moverLiving(self.pid, False)
            self.pid = None
            code = os.waitstatus_to_exitcode(status)
            if self._killed:
                return  # (said as it was killed: stalled)
            # (Not a SIGTERM: a service's stop sends it to all of its processes at once, systemd's
            # KillMode=control-group, while the gateway still closes its lines.)
            if code and code != -signal.SIGTERM and self._failed is not None:
                # (Its stderr is /dev/null: a process that cannot run, its code not found, was
                # started again, unsaid, every FULL_READS reads.)
                self._failed(f"its process exited with status {code}" if code > 0 else
                             f"its process was killed by signal {-code}")
        elif not self._exitWatched and getattr(self.reactor, "watchExit", lambda *a: False)(self.pid, self._reap):
            # (Once: should its end be seen and the process not be there yet, looked for by the timer.)
            self._exitWatched = True
        else:
            self._reapCall = self.reactor.callLater(REAP_DELAY, self._reap)

    def discard(self) -> int:
        """
        Drop what the pipe holds (a purge of the input); how many bytes.
        Only what it held when asked: a mover refilling it as fast as it is
        read (a flood) kept the reactor here for as long as that lasted.
        """
        return self._takeHeld(None)

    def deliverHeld(self) -> None:
        """
        Deliver what the pipe holds, paused or not: the device is being lost
        and these are its last bytes (only what it held when asked, as
        L{discard}).
        """
        self._takeHeld(self._deliver)

    def _takeHeld(self, deliver: Optional[Callable[[bytes], None]]) -> int:
        """Read what the pipe holds now, each read handed to C{deliver} (None: dropped); how many bytes."""
        taken = 0
        if self.stopped:
            return 0
        holding = held(self._pipeR)
        while not self.stopped and taken < holding:
            try:
                data = os.read(self._pipeR, min(SPLICE_SIZE, holding - taken))
            except BlockingIOError:
                break
            if not data:
                break  # (its end: read again by doRead, which gives the tty back)
            taken += len(data)
            self._moving(len(data))
            if deliver is not None:
                deliver(data)
        return taken

    def doRead(self) -> None:
        """The pipe is readable: deliver what it holds; at its end, the tty goes back to the device."""
        if self.stopped:
            return
        try:
            data = os.read(self._pipeR, PIPE_READ)
        except BlockingIOError:
            return
        if data:
            self._moving(len(data))
            self._deliver(data)
            return
        self._ended()

    def _moving(self, size: int) -> None:
        if self._watch is not None:
            self._watch.moved(size)

    def _ended(self) -> None:
        """The pipe's end, all delivered: stopped, a thread's failure told, the tty given back."""
        self.stop()
        if self.failure is not None and self._failed is not None:
            self._failed(self.failure)
        self._back()

    def dropped(self) -> None:
        """
        The reactor dropped the pipe: at its end, which epoll says as a
        hang-up (EPOLLHUP without EPOLLIN: the mover's end closed, the pipe
        empty), so Twisted calls connectionLost, never doRead; or at the
        reactor's own shutdown.  What the pipe holds is delivered, then the
        tty goes back (a mover still running is stopped); paused meanwhile,
        the rest waits for the resume, which watches the pipe again.
        """
        while not self.stopped and not self._paused:
            try:
                data = os.read(self._pipeR, PIPE_READ)
            except BlockingIOError:
                break
            if not data:
                break
            self._deliver(data)
        if not self.stopped and not self._paused:
            self._ended()


def killMover(pid: Optional[int]) -> None:
    """Kill a stalled mover process (SIGKILL ends a stopped one too)."""
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


class _Pipe:
    """The pipe's read end in the reactor."""

    def __init__(self, reader: FloodReader) -> None:
        self.reader = reader

    def fileno(self) -> int:
        return self.reader._pipeR

    def doRead(self) -> None:
        try:
            self.reader.doRead()
        except Exception:
            # Never let the reactor drop the pipe: the device's bytes would stay in it.
            log.failure("{device}: reading what its mover moved failed", device=self.reader.name)

    def connectionLost(self, reason: Any) -> None:
        try:
            self.reader.dropped()
        except Exception:
            log.failure("{device}: giving the tty back after its mover failed", device=self.reader.name)

    def logPrefix(self) -> str:
        return f"serialgw mover {self.reader.name}"
