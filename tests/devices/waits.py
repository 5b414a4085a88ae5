"""
Waits, in tests.devices, for what happens in its own time: the bytes a
test writes to a pty's master reach the slave through a kernel worker a
moment later; a mover thread or process moves a tty's bytes into a pipe,
and ends. These take what the machine gives them: a few milliseconds,
longer on a loaded core.

Each wait is bounded by L{WAIT} seconds, a bound for a failure, not a
measure: far beyond what any takes (the longest seen, these tests run
on one core shared with two busy loops: 124 ms, a mover process's start),
so that a slow machine never fails a test, and what never comes fails it
saying what it waited for and how long. Descriptors are
waited on with poll(): select() refuses one numbered 1024 or more
('filedescriptor out of range in select()'), which a process running a
long suite may hand out.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import threading
import time
from typing import Any, Callable

WAIT = 60.0

# How often a wait for a count or a process looks again (seconds).
STEP = 0.01


def readableWithin(fd: int, timeout: float) -> bool:
    """Whether C{fd} is readable within C{timeout} s (0: now)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def readable(case: Any, fd: int, what: str) -> None:
    """Wait until C{fd} is readable; fail with C{what} (what never came) after L{WAIT} s."""
    case.assertTrue(readableWithin(fd, WAIT), f"{what} (waited {WAIT:g} s)")


def held(fd: int) -> int:
    """How many bytes C{fd} (a tty or a pipe) holds to be read."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def until(case: Any, done: Callable[[], bool], what: str, fd: int = -1) -> None:
    """
    Wait until C{done()}, looking again each L{STEP} s (or as soon as
    C{fd}, if given, is readable); fail with C{what} after L{WAIT} s.
    """
    deadline = time.monotonic() + WAIT
    while not done():
        case.assertLess(time.monotonic(), deadline, f"{what} (waited {WAIT:g} s)")
        if fd >= 0:
            readableWithin(fd, STEP)
        else:
            time.sleep(STEP)


def holds(case: Any, fd: int, size: int, what: str) -> None:
    """Wait until C{fd} holds at least C{size} bytes to be read; fail with C{what} after L{WAIT} s."""
    until(case, lambda: held(fd) >= size, what)


def joined(case: Any, thread: threading.Thread, what: str) -> None:
    """Wait until C{thread} has ended; fail with C{what} after L{WAIT} s."""
    thread.join(WAIT)
    case.assertFalse(thread.is_alive(), f"{what} (waited {WAIT:g} s)")


def exited(case: Any, pid: int, what: str) -> None:
    """Wait until child C{pid} has exited, leaving it to be collected; fail with C{what} after L{WAIT} s."""
    until(case, lambda: os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None, what)
