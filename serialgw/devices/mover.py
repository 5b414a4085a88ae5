"""
What moves a flooding tty's bytes into a pipe (L{serialgw.devices.floodread}):
one loop, run by a thread of the gateway or by a process of its own
(C{python -I -S -c}: this module imports only what Python has built in).
"""

from __future__ import annotations

import os
import select
import sys
import threading

# A mover's niceness (the lowest priority there is): a flood's bulk gives
# way to the gateway's own thread, which has a keystroke to pass on.
NICE = 19


def yieldToTheGateway() -> None:
    """
    Run the calling thread at L{NICE} (Linux keeps a niceness per thread;
    raising one's own needs no privilege).  The scheduler then gives the
    reactor the CPU the moment it wakes (a quiet line's keystroke ready),
    where at an equal niceness the flood's bulk kept it runnable, waiting
    for a CPU.  Alone the mover keeps all the CPU it wants; beside a busy
    nice-0 thread it gets about 1.5 % of a core, enough for any serial
    line (4 Mbaud: 0.4 MiB/s).  A niceness weighs only against the threads
    of the same scheduling group (Linux's autogroup: the session; or the
    cgroup): a process mover stays in the gateway's session.
    """
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, NICE)
    except OSError:
        pass  # (kept from it: the mover runs as the gateway's threads do)


def move(tty: int, pipe: int, wake: int, idle: int, size: int) -> str:
    """
    Splice what the tty holds into the pipe until the tty has been quiet
    for C{idle} milliseconds (C{"quiet"}), the wake pipe says stop (its
    other end closed: C{"stopped"}), or anything else than bytes comes
    (C{"ended"}: a hang-up or an error, which the reactor's own read of
    the tty then finds).  A full pipe is waited for.  Never blocks anywhere
    but in a poll that also watches the wake pipe.

    Each splice comes after a poll that found the tty readable: a splice
    holds the pipe's lock while it reads the tty, and a tty read empty
    first waits for the tty's worker (as its poll does), so a splice
    tried at once after one that emptied the tty (a GIL hand-over saved
    a chunk) kept the reactor's read of the pipe waiting on that lock:
    traced, 12.5 % of the reactor's time blocked, 73 us each.
    """
    ttyPoll = select.poll()
    ttyPoll.register(tty, select.POLLIN)
    ttyPoll.register(wake, select.POLLIN)
    roomPoll = select.poll()
    roomPoll.register(pipe, select.POLLOUT)
    roomPoll.register(wake, select.POLLIN)
    while True:
        events = ttyPoll.poll(idle)
        if not events:
            return "quiet"
        mask = 0
        for what, happened in events:
            if what == wake:
                return "stopped"
            mask = happened
        moved = 0
        while True:
            try:
                moved = os.splice(tty, pipe, size, flags=os.SPLICE_F_NONBLOCK)
            except BlockingIOError:
                # The tty is empty (a tty with VMIN 1, as a pty's master,
                # says EAGAIN where VMIN 0 gives 0 bytes): with room in the
                # pipe, back to polling the tty.  Else the pipe is full (its
                # reader paused, or behind): wait for room.
                room = roomPoll.poll(0)
                if any(what == wake for what, _ in room):
                    return "stopped"
                if room:
                    moved = 0
                    break
                if any(what == wake for what, _ in roomPoll.poll()):
                    return "stopped"
                continue
            except InterruptedError:
                continue
            except OSError:
                return "ended"
            break
        if not moved and mask & (select.POLLHUP | select.POLLERR):
            return "ended"


def main(argv: list[str]) -> None:
    """The process: descriptors 3 (the tty), 4 (the pipe) and 5 (the wake pipe); idle and size as arguments."""
    idle, size = (int(a) for a in argv[:2])
    # Nothing of the gateway's but these (a descriptor it left inheritable
    # would stay open as long as this runs).
    os.closerange(6, os.sysconf("SC_OPEN_MAX"))
    yieldToTheGateway()
    try:
        move(3, 4, 5, idle, size)
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    os._exit(0)
