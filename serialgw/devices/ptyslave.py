"""
Whose a pty slave at a line's device path is, when the line opens it again
(its device went, or was not there at start): a pty's number goes to the
next pty made when its program ends, so /dev/pts/N (QEMU's C{-serial pty})
may be another program's now.  Each check says why the pty is not the
line's, or None; it stats the path, never opens it (run where the open
runs: off the reactor thread).
"""

from __future__ import annotations

import fcntl
import os
import stat
import termios
from typing import Optional

from twisted.logger import Logger

from serialgw.devices.floodread import moverPids
from serialgw.devices.links import PTY_SLAVE_MAJORS, holdsMaster, ptyHolders, ttyControllers
from serialgw.devices.termio import exclusivelyHeld

log = Logger()

# A pty slave as it was made: its device number and the time devpts made its
# node (st_ctime, which only a chmod or chown changes since: every pty made
# gets a node of its own, with the same inode number for the same index).
PtyNode = tuple[int, int]


def _isPtySlave(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_SLAVE_MAJORS


def ptyNode(fd: int) -> Optional[PtyNode]:
    """The pty slave open at C{fd} (see L{PtyNode}), or None for any other file."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_rdev, st.st_ctime_ns) if _isPtySlave(st) else None


def otherPtyProblem(path: str, had: Optional[PtyNode]) -> Optional[str]:
    """
    Why the pty slave at C{path} is not the line's, or None.  C{had}: the
    pty slave the line last had open there (None: none yet, or not a pty).
    A path that is the pty's own node (QEMU's /dev/pts/N) with another pty
    there now than the one the line had: that one went (its program ended),
    this is the next pty given its number.  A symlink older than the pty it
    points at: not made for it (left by a program that ended without
    removing it, killed -9), a link its program makes anew with each pty is
    followed.
    """
    try:
        lst = os.lstat(path)
        st = os.stat(path)
    except OSError:
        return None  # the open says why
    if not _isPtySlave(st):
        return None
    real = os.path.realpath(path)
    if stat.S_ISLNK(lst.st_mode) and lst.st_mtime_ns < st.st_ctime_ns:
        return (f"cannot open device {path!r}: it is a link older than the pty it points at, {real} (a link its program "
                "left when it ended: the number went to the next pty made, another program's); not opened")
    if not stat.S_ISLNK(lst.st_mode) and had is not None and had != (st.st_rdev, st.st_ctime_ns):
        return (f"cannot open device {path!r}: it is a new pty, made after the line's went (a pty's number goes to the "
                "next pty made when its program ends: another program's); not opened: point the line at a link its "
                "program makes with each pty (QEMU's -chardev pty,path=LINK, socat's PTY,link=LINK), or restart "
                "the gateway to take this one")
    return None


def terminalProblem(path: str) -> Optional[str]:
    """
    Why the pty slave at C{path} is refused as someone's terminal, or None:
    a process's controlling terminal, or held open by processes without its
    master: someone's terminal (a login shell, whose master is sshd's or a
    terminal emulator's; a script(1) session, whose script holds both).  A
    line on QEMU's /dev/pts/3, reopened after QEMU exited, opened the next
    ssh session's terminal, its keystrokes read by the line's clients and
    their typing on its screen.  A pty nobody holds (QEMU's: it keeps the
    master only), or one of whose holders has its master too (socat's PTY,
    another gateway's, and a program on it), is a serial port's stand-in.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None  # the open says why
    if not _isPtySlave(st):
        return None
    index = (os.major(st.st_rdev) - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(st.st_rdev)
    real = os.path.realpath(path)
    # A session's terminal whatever holds it (script(1) holds master and slave as socat does).
    session = ttyControllers(st.st_rdev)
    if session:
        return (f"cannot open device {path!r}: it is {real}, a terminal now, the controlling terminal of pid "
                f"{_pids(session)} (another session's: a pty's number goes to the next pty when its "
                "program ends); not opened")
    holders = _others(ptyHolders(real))
    # A holder with the master too provides the pty (socat, a gateway; others may have it open through it).
    terminal = [] if any(holdsMaster(pid, index) is True for pid in holders) else holders
    if terminal:
        return (f"cannot open device {path!r}: it is {real}, a terminal now, held open by pid "
                f"{_pids(terminal)} without its master (another session's: a pty's number goes to "
                "the next pty when its program ends); not opened")
    return None


def _others(holders: list[int]) -> list[int]:
    """
    The holders that are not the gateway: neither its process nor a mover
    process of its (told to stop with its device and not ended yet, it was
    taken for another session's terminal: the reopen refused).
    """
    own = moverPids() | {os.getpid()}
    return [pid for pid in holders if pid not in own]


def _pids(pids: list[int]) -> str:
    """At most five pids, then how many more (a session may have thousands of processes)."""
    more = f" and {len(pids) - 5} more" if len(pids) > 5 else ""
    return ", ".join(map(str, sorted(pids)[:5])) + more


def heldExclusively(fd: int, path: str) -> bool:
    """
    Whether another program holds the tty open at C{fd} (C{path})
    exclusively (TIOCEXCL: gpsd, ModemManager).  A pty slave's exclusive
    mode outlives the program that set it while the master is open
    (QEMU's): set on a slave no other process has open, it is cleared
    (TIOCNXCL) and logged, not held.
    """
    if not exclusivelyHeld(fd):
        return False
    if ptyNode(fd) is None or _others(ptyHolders(path)):
        return True
    try:
        fcntl.ioctl(fd, termios.TIOCNXCL)
    except OSError:
        return True
    log.info("{device}: exclusive mode (TIOCEXCL), left by a program that has closed it, cleared", device=path)
    return False
