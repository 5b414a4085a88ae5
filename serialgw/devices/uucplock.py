"""
UUCP lock files: C{/var/lock/LCK..ttyS0} holds the PID of the process that
has C{/dev/ttyS0} open, as ten ASCII digits and a newline (C{"%10d\\n"}, the
form minicom, cu and ser2net write and read).  A lock whose process is gone
is stale and taken over.

The lock is made atomically, as Taylor UUCP's cu does: the PID is written
to a temporary file in the lock directory, which is then hard-linked to the
lock's name (C{link} fails if the name exists, so two takers never both
win).  This is small local-file work done at open and close, never on the
data path; reopening runs it off the reactor thread.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import Optional

from serialgw.config.specs import DEFAULT_LOCK_DIR

# The locks this process holds now: a lock file naming our own PID that is
# not among them is ours to take (see acquire).
_held: set[str] = set()


class LockError(Exception):
    """
    A lock could not be taken (no lock directory, no permission); the
    message names the device and the lock file.
    """


class LockHeld(LockError):
    """
    A live process holds the device's lock: C{pid}, in C{path}.
    """

    def __init__(self, device: str, path: str, pid: int) -> None:
        if pid == os.getpid():
            # Another line of ours: the same device by another path (a
            # symlink pointed at it since), or a reload's new line.
            LockError.__init__(self, f"{device} is open on another line of this gateway (pid {pid}, {path})")
        else:
            LockError.__init__(self, f"{device} is locked by process {pid}{processName(pid)} ({path})")
        self.device = device
        self.path = path
        self.pid = pid


def processName(pid: int) -> str:
    """C{" (cu)"}: what a lock's holder runs, for people to know whom to ask; empty when it cannot be read."""
    try:
        with open(f"/proc/{int(pid)}/comm", "rb") as f:
            name = f.read(64).decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
    return f" ({name!r})" if name and not name.isprintable() else f" ({name})" if name else ""


def lockPath(device: str, lockDir: str) -> str:
    """
    The lock file for a device: C{LCK..} and the name of the device node,
    symlinks resolved (C{/dev/serial/by-id/usb-...} and C{/dev/ttyUSB0}
    share C{LCK..ttyUSB0}; C{/dev/pts/3} is C{LCK..3}, as cu names it).
    """
    return os.path.join(lockDir, "LCK.." + os.path.basename(os.path.realpath(device)))


def readPid(path: str) -> Optional[int]:
    """
    The PID in a lock file: ASCII (any width, as written by most), or the
    old 4-byte binary form; C{None} if it says nothing readable.
    Raises C{FileNotFoundError} when there is no lock.
    """
    # Not through a symlink, and never waiting on a FIFO someone put there:
    # what is not a plain file says nothing readable.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    text = data.strip()
    if text.isdigit():
        return int(text)
    if len(data) == 4:
        return int(struct.unpack("=i", data)[0])
    return None


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (one we may not signal counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False  # no process has a number that large
    return True


def acquire(device: str, lockDir: str = DEFAULT_LOCK_DIR) -> str:
    """
    Take the lock for C{device}; return the lock file's path.  Raise
    L{LockHeld} when a live process (this one included: another line)
    holds it, L{LockError} when it cannot be made.
    """
    path = lockPath(device, lockDir)
    pid = os.getpid()
    tmp = os.path.join(lockDir, f"LTMP.{pid}.{os.path.basename(path)}")
    aside = os.path.join(lockDir, f"LSTALE.{pid}.{os.path.basename(path)}")
    try:
        # Made anew (O_EXCL): a file or link left at that name is removed
        # first, never written through.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, b"%10d\n" % pid)
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
    except OSError as e:
        raise LockError(f"cannot lock {device}: {tmp}: {e.strerror} (set lock-dir, or lock = false)") from None
    try:
        # Twice at most: once, and once more after removing a stale lock.
        for _ in range(2):
            try:
                os.link(tmp, path)
                _held.add(path)
                return path
            except FileExistsError:
                pass
            except OSError as e:
                raise LockError(f"cannot lock {device}: {path}: {e.strerror}") from None
            try:
                holder = readPid(path)
            except FileNotFoundError:
                continue  # released meanwhile
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise LockError(f"cannot read lock {path} for {device}: {e.strerror}") from None
                holder = None  # a symlink: not a lock anyone made
            if holder == pid and path not in _held:
                # Our PID, not held by any line: left by an earlier run that
                # had our PID (PID 1 in a container), or ours that could not
                # be removed at close (made as root before twistd's -u, in a
                # sticky /run/lock).  It says what ours would: taken as is.
                _held.add(path)
                return path
            if holder is not None and alive(holder):
                raise LockHeld(device, path, holder)
            # Stale: moved aside (atomic), then looked at again.  Another
            # taker may have found it stale too, removed it and linked its
            # own meanwhile: that one is put back, never removed.
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise LockError(f"cannot remove stale lock {path} (pid {holder}) for {device}: {e.strerror}") from None
            if _pidAt(aside) != holder:
                try:
                    os.link(aside, path, follow_symlinks=False)
                except OSError:
                    pass
        raise LockError(f"cannot lock {device}: {path} keeps coming back")
    finally:
        for name in (tmp, aside):
            try:
                os.unlink(name)
            except OSError:
                pass


def _pidAt(path: str) -> Optional[int]:
    """L{readPid}, with a symlink or a file gone saying nothing readable."""
    try:
        return readPid(path)
    except OSError:
        return None


def release(path: str) -> None:
    """
    Remove a lock this process took; a lock that now names another process
    (taken over as stale by someone who thought us gone) is left alone.
    Raises C{OSError} when it cannot be removed.
    """
    _held.discard(path)
    try:
        holder = readPid(path)
    except FileNotFoundError:
        return
    if holder != os.getpid():
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
