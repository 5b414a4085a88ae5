"""
A console log is one gateway's: each file a console log writes is held
with an advisory lock (C{flock}, exclusive), so a second gateway (another
process: a second unit on the same file, a copy started by hand) is
refused that file, naming the process that holds it, instead of both
writing it, their lines interleaved and each rotating the other's.

The lock is this process's, not one descriptor's: C{flock} is held by an
open file description, and this process opens one file more than once
(a reload opens a line's new log before it closes the old; SIGUSR1 opens
the path again before the file in hand is closed).  A file already held
here is taken again without a lock of its own, and the descriptor that
holds the lock stays open until the last of this process's users of that
file lets it go.  Logs' writers take and let go from their own threads
(a rotation, a reopen, a close): the table is theirs in turn.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from typing import Optional

from serialgw.config.paths import NotRegular, openIfRegular

# (device, inode) of each file held -> [the descriptor holding its lock, how many of ours use it].
_held: dict[tuple[int, int], list[int]] = {}
_heldLock = threading.Lock()

# What flock says of a lock taken elsewhere.
_TAKEN = (errno.EWOULDBLOCK, errno.EAGAIN)


def take(fd: int) -> Optional[tuple[int, int]]:
    """
    The lock of the file open at C{fd}, for this process: its key (see
    L{release}), or None on a file system without such locks.  Raise
    OSError (EWOULDBLOCK, saying who holds it) when another process holds it.
    """
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino)
    with _heldLock:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
            return key
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in _TAKEN:
                raise OSError(errno.EWOULDBLOCK, heldBy(st)) from None
            return None  # (ENOLCK, EOPNOTSUPP: no locks there; written as before)
        _held[key] = [fd, 1]
    return key


def release(fd: int, key: Optional[tuple[int, int]]) -> None:
    """
    C{fd} closed, taken with C{key} (see L{take}): the lock goes with the
    last of this process's users of the file (the descriptor holding it is
    kept open until then).
    """
    closing = [fd]
    with _heldLock:
        entry = _held.get(key) if key is not None else None
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]  # type: ignore[arg-type]
                if entry[0] != fd:
                    closing.append(entry[0])
            elif entry[0] == fd:
                return  # (it holds the lock for the others)
            else:
                _closeKeeping(fd, entry[0])
                return
    # (Closed out of the table's lock: a close that waits, NFS flushing, holds no other log's.)
    for done in closing:
        os.close(done)


def _closeKeeping(fd: int, holder: int) -> None:
    """
    Close C{fd}, a descriptor of a file this process holds with C{holder}:
    on NFS the lock is a POSIX lock, which any close of the file takes from
    the process, so it is taken again on the descriptor that holds it (a
    no-op where flock is flock).
    """
    os.close(fd)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass  # (another process took it in between: nothing left to do but write on)


def lockedElsewhere(path: str) -> Optional[str]:
    """Why the file at C{path} cannot be a console log of ours (another process holds its lock), or None; nothing is made."""
    try:
        # Open for writing, as the log is (nothing written, nothing made):
        # on NFS an exclusive flock is a POSIX lock, and a read-only
        # descriptor gets EBADF, which found nobody's lock.  Only a regular
        # file is opened (a tty swapped in since the path was looked at is
        # not, nor does one become our controlling terminal: O_NOCTTY); nor
        # is a symlink followed, nor a FIFO waited on.
        fd = openIfRegular(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, NotRegular):
        return None  # (not there, or not ours to write: the open itself tells)
    entry = None
    try:
        st = os.fstat(fd)
        # The probing flock under the table's lock, as take() takes its own:
        # a writer's take() of this file (a rotation, a reopen: their own
        # threads, as this look's) never finds the probe's and refuses our log.
        with _heldLock:
            entry = _held.get((st.st_dev, st.st_ino))
            if entry is not None:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                return heldBy(st) if e.errno in _TAKEN else None
            fcntl.flock(fd, fcntl.LOCK_UN)  # (let go here too, not at the close below)
            return None
    finally:
        if entry is not None:
            _closeKeeping(fd, entry[0])  # (ours: on NFS this close would take our lock away)
        else:
            os.close(fd)  # (its lock, if taken, with it)


def heldBy(st: os.stat_result) -> str:
    """Who holds the lock of the file C{st} (from /proc/locks), as the refusal says it."""
    pid = _holder(st)
    if pid is None:
        who = "another process"
    else:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read(4096).replace(b"\0", b" ").strip().decode("utf-8", "replace")
        except OSError:
            command = ""
        # (Its arguments as one line of printable characters, bounded: they reach the log.)
        command = " ".join("".join(c if c.isprintable() else " " for c in command).split())
        shown = command if len(command) <= 120 else command[:117] + "..."
        who = f"process {pid}" + (f" ({shown})" if shown else "")
    return f"it is locked by {who}, which writes it (another gateway?): two writers would interleave in one file"


def _holder(st: os.stat_result) -> Optional[int]:
    """The process holding a lock on the file C{st} in /proc/locks, or None."""
    wanted = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        with open("/proc/locks") as f:
            rows = f.read(1 << 20).splitlines()
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a waiter's has "->" after the number)
        if len(fields) < 6 or fields[1] == "->":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            found = (int(major, 16), int(minor, 16), int(inode))
            pid = int(fields[4])
        except ValueError:
            continue
        if found == wanted and pid > 0 and pid != os.getpid():
            return pid
    return None
