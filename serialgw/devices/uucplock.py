"""
UUCP lock files: C{/var/lock/LCK..ttyS0} holds the PID of the process that
has C{/dev/ttyS0} open, as ten ASCII digits and a newline (C{"%10d\\n"}, the
form minicom, cu and ser2net write and read).  A lock whose process is gone
is stale and taken over; so is one whose PID now belongs to a process that
started after the lock was written (PIDs are reused: with pid_max 32768 a
busy machine goes round within the hour) and is seen not to have the
device open (a process whose descriptors cannot be looked at keeps its
lock: a clock set forward makes a holder look as young).  Every lock taken
over is logged, with why.

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
import time
from typing import Optional

from twisted.logger import Logger

from serialgw.config.specs import DEFAULT_LOCK_DIR
from serialgw.devices.access import stickyHint

log = Logger()

# A live process that started more than this many seconds after its lock
# was written (the file's mtime) and is seen not to have the device open
# did not write it: its PID is another's reused.  The margin is for
# timestamps' granularity and small clock corrections.  A clock set forward
# by more than it while a holder has its lock (a machine with no real-time
# clock setting its time from the network after boot) makes the holder
# look younger than its lock: so a lock is taken only when the process's
# descriptors are seen (root, or its user); one whose descriptors cannot
# be looked at keeps its lock (as cu, lockdev and ser2net, which ask only
# whether the PID lives), the refusal saying so.
REUSED_AFTER = 10.0

# An empty lock file younger than this (seconds, by its mtime) is being
# written: picocom, minicom and ser2net make the file (O_EXCL), then write
# their PID into it.  Older, it holds nothing and is stale.
EMPTY_WAIT = 10.0

# The most descriptors of a suspected stranger looked at for the device; a
# process with more is taken to have it open (its lock kept).
FDS_LOOKED_AT = 65536

# What a file that is no lock is, for people.
_NOT_FILES = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
              (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"))

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

    def __init__(self, device: str, path: str, pid: int, unseen: Optional[float] = None) -> None:
        """
        C{unseen}: the holder started that many seconds after the lock was
        written (its PID reused since, or the clock set forward), but its
        descriptors could not be looked at: kept, and said so.
        """
        if pid == os.getpid():
            # Another line of ours: the same device by another path (a
            # symlink pointed at it since), or a reload's new line.
            LockError.__init__(self, f"{device} is open on another line of this gateway (pid {pid}, {path})")
        elif unseen is not None:
            LockError.__init__(self, f"{device} is locked by process {pid}{processName(pid)} ({path}), which is "
                               f"alive; it started {unseen:.0f} s after the lock was written (its PID reused since, "
                               "or the clock set forward while it held the lock), but its open files could not be "
                               f"checked (/proc/{pid}/fd: another user's process, this gateway not root), so the "
                               f"lock is kept; if process {pid} does not use {device}, remove {path}")
        else:
            LockError.__init__(self, f"{device} is locked by process {pid}{processName(pid)} ({path})")
        self.device = device
        self.path = path
        self.pid = pid


class LockBeingTaken(LockHeld):
    """
    The device's lock file is there but still empty, made less than
    L{EMPTY_WAIT} s ago: its maker (picocom, minicom, ser2net: O_EXCL, then
    the PID) is taking it.  Held, by a process not known yet (C{pid} 0):
    the line waits as for any holder, and takes it as stale if it is still
    empty once EMPTY_WAIT s old.
    """

    def __init__(self, device: str, path: str) -> None:
        LockError.__init__(self, f"{device} is being locked by another program: {path} is empty, its maker writing "
                           f"its PID there (taken as stale if still empty {EMPTY_WAIT:g} s after it was made)")
        self.device = device
        self.path = path
        self.pid = 0


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
    return _inspect(path)[0]


def _inspect(path: str) -> tuple[Optional[int], Optional[float], str]:
    """
    What is at a lock's name: its PID (or C{None}), when it was last
    written (C{st_mtime}; C{None}: not a plain file) and, when it holds no
    PID, what it is instead, for the log (C{"it is a FIFO, not a lock
    file"}, C{"it is empty"}).  Raises C{FileNotFoundError} when there is
    no lock, C{OSError} when it cannot be read.
    """
    # Looked at before it is opened: a symlink is not followed, a device
    # node never opened, a FIFO never waited on.
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _NOT_FILES if test(mode)), "not a plain file")
        return None, None, f"it is {what}, not a lock file"
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced meanwhile
            return None, None, "it is not a plain file, not a lock file"
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    text = data.strip()
    if text.isdigit():
        return int(text), st.st_mtime, ""
    if len(data) == 4:
        return int(struct.unpack("=i", data)[0]), st.st_mtime, ""
    if not data:
        return None, st.st_mtime, "it is empty"
    return None, st.st_mtime, f"it holds no PID ({data[:16]!r}{'...' if len(data) > 16 else ''})"


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
        took: Optional[str] = None  # why the lock removed was stale
        for _ in range(2):
            try:
                os.link(tmp, path)
                _held.add(path)
                if took is not None:
                    log.info("{device}: stale lock {lock} taken over: {why}", device=device, lock=path, why=took)
                return path
            except FileExistsError:
                pass
            except OSError as e:
                raise LockError(f"cannot lock {device}: {path}: {e.strerror}") from None
            try:
                holder, written, what = _inspect(path)
            except FileNotFoundError:
                continue  # released meanwhile
            except OSError as e:
                raise LockError(f"cannot read lock {path} for {device}: {e.strerror}") from None
            if holder == pid and path not in _held:
                # Our PID, not held by any line: left by an earlier run that
                # had our PID (PID 1 in a container), or ours that could not
                # be removed at close (made as root before twistd's -u, in a
                # sticky /run/lock).  It says what ours would: taken as is.
                _held.add(path)
                log.info("{device}: lock {lock} names this process ({pid}), which held it for no line: taken as it is "
                         "(left by an earlier run with this PID, or not removable at its close)",
                         device=device, lock=path, pid=pid)
                return path
            took = _staleBecause(device, path, holder, written, what)
            # Stale: moved aside (atomic), then looked at again.  Another
            # taker may have found it stale too, removed it and linked its
            # own meanwhile: that one is put back, never removed.
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            except OSError as e:
                hint = stickyHint(path) if e.errno in (errno.EPERM, errno.EACCES) else ""
                raise LockError(f"cannot remove stale lock {path} ({took}) for {device}: {e.strerror}{hint}") from None
            if _pidAt(aside) != holder:
                took = None
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


def _staleBecause(device: str, path: str, holder: Optional[int], written: Optional[float], what: str) -> str:
    """
    Why the lock at C{path} is stale, for the log; raise L{LockHeld} when
    its holder may be alive (L{LockBeingTaken}: an empty file still being
    written), L{LockError} when it is neither (a directory).
    """
    if holder is None:
        if what == "it is a directory, not a lock file":
            # Not removed (nor moved aside): what is in it is someone's.
            raise LockError(f"cannot lock {device}: {path} is a directory, not a lock file: remove it, "
                            "or set lock-dir, or lock = false")
        if what == "it is empty" and written is not None and abs(time.time() - written) < EMPTY_WAIT:
            raise LockBeingTaken(device, path)
        return what
    if holder <= 0:
        return f"it names no process ({holder})"
    if not alive(holder):
        return f"process {holder} is gone"
    why = _stranger(device, holder, written)
    if why is None or isinstance(why, float):
        raise LockHeld(device, path, holder, unseen=why)
    return why


def heldNow(device: str, lockDir: str) -> Optional[LockHeld]:
    """
    Who holds C{device}'s lock now, as L{acquire} would refuse it (its
    message: C{"/dev/ttyS0 is locked by process 1234 (cu) (/var/lock/LCK..ttyS0)"}),
    looked at only: nothing taken, moved or removed.  None when it is free,
    stale (L{acquire} would take it over), or cannot be looked at.
    """
    path = lockPath(device, lockDir)
    try:
        holder, written, what = _inspect(path)
        _staleBecause(device, path, holder, written, what)
    except LockHeld as e:
        return e
    except (OSError, LockError):
        return None
    return None


def stranger(device: str, pid: int, written: Optional[float]) -> Optional[str]:
    """
    Why the live process C{pid} is not the maker of a lock written at
    C{written} (epoch seconds), or C{None} when it may be: it has exited
    (a zombie), or it started more than L{REUSED_AFTER} seconds after the
    lock was written (its PID reused) and is not seen to have the device
    open.  A process whose start cannot be read (C{hidepid}) may be.
    (For a unix socket's Twisted lock, which is removed only when nobody
    answers on the socket too: a process whose descriptors cannot be
    looked at is judged by its start alone.  A UUCP lock is not: see
    L{_stranger}.)
    """
    why = _stranger(device, pid, written)
    if isinstance(why, float):
        return (f"process {pid}{processName(pid)} started {why:.0f} s after the lock was written: not its maker "
                "(its PID was reused)")
    return why


def _stranger(device: str, pid: int, written: Optional[float]) -> Optional[str | float]:
    """
    L{stranger}'s finding: why C{pid} is not the lock's maker; C{None}
    when it may be; or, when it started more than L{REUSED_AFTER} seconds
    after the lock was written but its descriptors cannot be looked at
    (not ours, we not root), how many seconds after: not proven a stranger
    (a clock set forward while it held the lock looks the same).
    """
    started = _startedAt(pid)
    if started is None:
        return None
    state, since = started
    # (A process whose first thread has exited shows as a zombie too while
    # its other threads live on, the device open: only a zombie alone is.)
    if state == "Z" and _threads(pid) <= 1:
        return f"process {pid} has exited (a zombie not yet reaped)"
    if written is None:
        return None
    # The lock's mtime on the clock process start times are kept on (seconds since boot).
    writtenSince = written - (time.time() - time.clock_gettime(time.CLOCK_BOOTTIME))
    later = since - writtenSince
    if later <= REUSED_AFTER:
        return None
    seen = hasOpen(pid, device)
    if seen is True:
        return None
    if seen is None:
        return float(later)
    return (f"process {pid}{processName(pid)} started {later:.0f} s after the lock was written and has not "
            f"{device} open: not its maker (its PID was reused)")


def _startedAt(pid: int) -> Optional[tuple[str, float]]:
    """A process's state letter (C{Z}: a zombie) and start (seconds since boot), from /proc; None if unreadable."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            data = f.read(4096)
        # After the name, which may hold spaces and parentheses: the state, then field 22, starttime.
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0].decode("ascii", "replace"), int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _threads(pid: int) -> int:
    """How many threads process C{pid} has (/proc/PID/task, which anyone may list); 0 if it cannot be read."""
    try:
        return len(os.listdir(f"/proc/{int(pid)}/task"))
    except (OSError, ValueError):
        return 0


def hasOpen(pid: int, device: str) -> Optional[bool]:
    """
    Whether process C{pid} has C{device} (symlinks resolved) open, from
    its descriptors' links in /proc (read, never followed: a descriptor
    on a stuck mount cannot hold us); C{None} when they cannot be seen (a
    process of another user, we not root); C{True} when there are more
    than L{FDS_LOOKED_AT} to look at.
    """
    node = os.path.realpath(device)
    try:
        with os.scandir(f"/proc/{int(pid)}/fd") as entries:
            for count, entry in enumerate(entries):
                if count >= FDS_LOOKED_AT:
                    return True
                try:
                    if os.readlink(entry.path) == node:
                        return True
                except OSError:
                    continue  # closed meanwhile
    except (OSError, ValueError):
        return None
    return False


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



def flockHolder(device: str) -> int:
    """
    Who holds an C{flock} on C{device} (symlinks resolved), as
    /proc/locks gives it (picocom's lock, pyserial's C{exclusive=True}:
    they take no UUCP lock file); 0 when none is found.
    """
    try:
        st = os.stat(device)
        node = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            for row in f:
                fields = row.split()
                # "1: FLOCK  ADVISORY  WRITE 488 00:05:10 0 EOF"; a waiter's row has "->" after the number.
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == node and fields[4].isdigit():
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return 0
