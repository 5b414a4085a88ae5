"""
What an init-command's session (L{serialgw.line.initsession}) still runs
once nobody in it can be asked to end it: its keeper and the keeper's
reader of requests both ended from outside (C{kill -9} of both pids; a
C{pkill -f serialgw-init} matches both), the shell and what it started
ran on for good, their session's id the keeper's pid.

The gateway then signals the session's processes itself, by pidfd, never
by a pid alone: a process group's or a session's id, once its leader is
reaped, is a number the kernel may give another process as soon as no
process is in that group or session.  So the keeper's children (its
shell and its reader) are pinned by pidfds while the keeper is the
gateway's child not yet reaped (L{pinChildren}): one of them not exited
and still in the session holds its id, and while it does, a process whose
/proc/PID/stat says that session is one of ours (L{endSession}).  One that
has left it (C{exec setsid ...}: a session of its own) holds it no more.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Optional

# Rounds of looking for the session's processes and stopping them (one not yet stopped may start another meanwhile;
# one stopped starts none): a session that forks faster than that is ended as far as it was found.
ROUNDS = 8


def _stat(pid: int) -> Optional[list[bytes]]:
    """Process C{pid}'s /proc/PID/stat fields after its name (state, parent, group, session...), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields if len(fields) > 3 else None
    except (OSError, IndexError):
        return None


def _pinned(pid: int, check: int, value: int) -> Optional[int]:
    """A pidfd of process C{pid} if, once it is open, its stat field C{check} is C{value} and it has not exited."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None  # (gone; or no pidfd on this kernel)
    fields = _stat(pid)
    try:
        if fields is not None and fields[0] != b"Z" and int(fields[check]) == value and not exited(fd):
            return fd
    except ValueError:
        pass
    os.close(fd)
    return None


def exited(pidfd: int) -> bool:
    """
    Whether the process of C{pidfd} has exited (a zombie too): its pidfd
    polls as readable.  (poll, not select: select refuses a descriptor past
    1023, which a gateway with many clients has.)
    """
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def pinChildren(parent: int) -> dict[int, int]:
    """
    The children of process C{parent}, each pinned by a pidfd opened while
    it is C{parent}'s child: C{{pid: pidfd}}.  The caller makes sure
    C{parent} is its own child not reaped (so that pid is nobody else's).
    Empty where the kernel does not say (no C{children} file, no pidfds).
    """
    try:
        with open(f"/proc/{parent}/task/{parent}/children", "rb") as f:
            pids = [int(word) for word in f.read().split()]
    except (OSError, ValueError):
        return {}
    pins = {}
    for pid in pids:
        fd = _pinned(pid, 1, parent)
        if fd is not None:
            pins[pid] = fd
    return pins


def _members(session: int) -> list[int]:
    """The processes /proc says are in session C{session} and have not exited (a few ms for a few hundred)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and fields[0] != b"Z" and fields[3] == b"%d" % session:
                found.append(int(name))
    return found


def _inSession(pid: int, pidfd: int, session: int) -> bool:
    """
    Whether process C{pid} (pinned by C{pidfd}) is in session C{session}
    and has not exited: it then holds that id.  A process leaves a session
    only for one of its own (setsid), never to come back: one in it before
    and after a look was in it all along.
    """
    fields = _stat(pid)
    return fields is not None and fields[0] != b"Z" and fields[3] == b"%d" % session and not exited(pidfd)


def _signal(fd: int, number: int) -> None:
    try:
        signal.pidfd_send_signal(fd, number)
    except OSError:
        pass  # (exited meanwhile)


def endSession(session: int, pins: dict[int, int]) -> list[int]:
    """
    What session C{session} still runs, sent SIGKILL: its pinned processes
    (C{pins}: L{pinChildren}) that have not exited, and, while one of them
    holds the session's id (in it before and after /proc is looked at: one
    gone to a session of its own by setsid holds it no more, and the id may
    be another's), every process /proc says is in it, each pinned by a
    pidfd before it is signalled.  They are stopped first (SIGSTOP),
    round after round until no new one is found (a stopped process starts
    no other), then killed.  Returns their pids (none: nothing ran on, as
    when the keeper's reader ended the session as asked); closes C{pins}.
    """
    held = {}
    for pid, fd in pins.items():
        if exited(fd):
            os.close(fd)
        else:
            held[pid] = fd
    try:
        if not held:
            return []
        for fd in held.values():
            _signal(fd, signal.SIGSTOP)
        for _ in range(ROUNDS):
            holding = [pid for pid, fd in held.items() if _inSession(pid, fd, session)]
            if not holding:
                break  # (the id may be another's: only ours, by pidfd, are signalled)
            found = {}
            for pid in _members(session):
                if pid not in held:
                    pinned = _pinned(pid, 3, session)
                    if pinned is not None:
                        found[pid] = pinned
            if not any(_inSession(pid, held[pid], session) for pid in holding):
                # (None of ours held the session's id all along: what was found may be another's.)
                for fd in found.values():
                    os.close(fd)
                break
            if not found:
                break
            for fd in found.values():
                _signal(fd, signal.SIGSTOP)
            held.update(found)
        for fd in held.values():
            _signal(fd, signal.SIGKILL)
        return sorted(held)
    finally:
        for fd in held.values():
            os.close(fd)
