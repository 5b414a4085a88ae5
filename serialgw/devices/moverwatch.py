"""
A mover watched for a stall (L{serialgw.devices.floodread}): a process
stopped (SIGSTOP, a debugger, a frozen cgroup) or hung, or a thread stuck
(in a read of a tty whose driver hangs), alive but moving nothing,
stalled its line silently for good, the tty full and nothing in the
pipe.  The watch looks on the reactor's clock; a process found stalled is
killed, a thread left to end on its own (it cannot be killed), and the
tty read by the reactor.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
from typing import Any

# A process mover that moves nothing while its tty has input (readable, the
# pipe empty, not paused) at STALL_LOOKS looks in a row, STALL_CHECK seconds
# apart, is stalled; one runnable at the deciding look (its state R: waiting
# for a CPU, starved by busier processes or a spent cgroup quota) at
# STARVED_LOOKS in a row (spinning, then: it got none of it moving nothing).
STALL_CHECK = 1.0
STALL_LOOKS = 2
STARVED_LOOKS = 10


def held(fd: int) -> int:
    """How many bytes C{fd} (a pipe, a tty) holds to be read; 0 for one that cannot say (a tty hung up)."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def processState(pid: int) -> str:
    """
    Process C{pid}'s state as /proc/PID/stat says it (C{R} runnable, C{S}
    sleeping, C{D} in a driver, C{T} stopped, C{t} traced, C{Z}...), or
    C{""} if it cannot be read (gone, no /proc).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode("ascii", "replace")
    except (OSError, IndexError):
        return ""


def readable(fd: int) -> bool:
    """
    Whether C{fd} (a tty; the mover's pipe) has input, or a hang-up, to be
    read now: what the mover's own poll waits for.  A pipe's poll takes
    no lock, where its FIONREAD (L{held}) waits for the pipe's lock, held
    by a splice into it for as long as that splice's read of the tty lasts.
    """
    look = select.poll()
    look.register(fd, select.POLLIN)
    return bool(look.poll(0))


class StallWatch:
    """
    Looks every STALL_CHECK seconds whether C{reader}'s mover is stalled:
    nothing delivered since the last look, not paused since, the pipe empty
    (what it holds the reactor reads: a mover waiting for room is not
    stalled) and the tty readable (input, or a hang-up the mover would have
    taken).  At STALL_LOOKS such looks in a row it ends and tells the
    reader (C{stalled(why)}), which kills the mover: its end of the pipe
    closes, the reactor delivers what it had moved, then reads the tty
    itself, where the bytes it had not taken still are.  A healthy mover at
    nice 19 beside a busy gateway still gets the CPU for a splice within
    milliseconds: a second is far from a false alarm.  But a process mover
    runnable at the deciding look (L{processState} C{R}) is waiting for a
    CPU, not stopped or hung (a machine saturated by busier work, its
    cgroup's CPU quota spent): it is given STARVED_LOOKS looks (before, it
    was killed at the second, said 'stopped or hung').  The reader tells it
    of each delivery (L{moved}) and pause (L{paused}).
    """

    def __init__(self, reader: Any, fd: int) -> None:
        self.reader = reader
        # (Its own dup of the tty: the device's descriptor may be closed, its number another file's.)
        self.tty = os.dup(fd)
        self.delivered = 0
        self.pausedSince = False
        self.stalls = 0
        self._call: Any = reader.reactor.callLater(STALL_CHECK, self._look)

    def moved(self, size: int) -> None:
        self.delivered += size

    def paused(self) -> None:
        self.pausedSince = True

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self.tty >= 0:
            os.close(self.tty)
            self.tty = -1

    def _look(self) -> None:
        self._call = None
        reader = self.reader
        # (The pipe looked at by poll, not FIONREAD: a mover stuck in a splice, a tty's driver hanging in its read,
        # holds the pipe's lock, and FIONREAD waited for it, the reactor with it, as long as the tty hung.)
        stalled = (not self.pausedSince and not reader.isPaused() and not self.delivered
                   and not readable(reader.pipeFileno()) and readable(self.tty))
        self.stalls = self.stalls + 1 if stalled else 0
        self.delivered, self.pausedSince = 0, False
        # (Its state looked at only once it would be killed: a read of /proc a look while it idles, none while it moves.)
        runnable = (self.stalls >= STALL_LOOKS and reader.mode == "process" and reader.pid is not None
                    and processState(reader.pid) == "R")
        if self.stalls < (STARVED_LOOKS if runnable else STALL_LOOKS):
            self._call = reader.reactor.callLater(STALL_CHECK, self._look)
            return
        took = f"{self.stalls * STALL_CHECK:.0f} s"
        if reader.mode == "thread":
            why = (f"its thread moved nothing for {took} while the tty held {held(self.tty)} bytes (stuck): left to "
                   "end on its own")
        elif runnable:
            why = (f"its process, pid {reader.pid}, runnable, moved nothing for {took} while the tty held "
                   f"{held(self.tty)} bytes (spinning, or starved of CPU): killed")
        else:
            why = (f"its process, pid {reader.pid}, moved nothing for {took} while the tty held {held(self.tty)} bytes "
                   "(stopped or hung): killed")
        self.stop()
        reader.stalled(why)
