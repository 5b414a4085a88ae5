"""
The symlink a pty device is reached by (C{pty:LINK}): made atomically,
taken over only when stale (a gateway that died left it), removed at close
only while it is still ours.  Used by L{serialgw.devices.ports.PtyPort}
and by client ptys (L{serialgw.clients.ptylink}).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from typing import Optional


def replaceSymlink(target: str, link: str) -> None:
    """
    Point C{link} at C{target} atomically.  Something already at C{link} is
    taken over only when it is a symlink that dangles or points at a pty
    whose slave nobody has open, or only processes that do not have its
    master (what a gateway that died leaves behind, its pty's number given
    to another program's pty since); the live link of another gateway, a
    link to anything else, a regular file or a directory is an error, never
    touched.
    """
    if os.path.lexists(link):
        if not os.path.islink(link):
            raise FileExistsError(errno.EEXIST, "exists and is not a symlink")
        _mayTakeOver(link)
    # Named apart from the link: LINK.PID.tmp passed the 255 bytes of a
    # file name where LINK itself fitted (a name of 246 bytes or more).
    tmp = os.path.join(os.path.dirname(link), f".serialgw-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        os.unlink(tmp)
        raise


# Unix98 pty slaves (/dev/pts/N): majors 136 to 143.
PTY_SLAVE_MAJORS = range(136, 144)


def linkProblem(link: str) -> Optional[str]:
    """Why L{replaceSymlink} would refuse C{link}, or None; nothing is changed (a reload's check)."""
    if not os.path.lexists(link):
        return None
    if not os.path.islink(link):
        return "exists and is not a symlink"
    try:
        _mayTakeOver(link)
    except FileExistsError as e:
        return e.strerror
    return None


def _mayTakeOver(link: str) -> None:
    """Raise FileExistsError unless the symlink C{link} is stale (see replaceSymlink)."""
    old = os.readlink(link)
    try:
        st = os.stat(link)
    except FileNotFoundError:
        return  # dangling
    if not (stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_SLAVE_MAJORS):
        raise FileExistsError(errno.EEXIST, f"is a symlink to {old}, which is not a pty: not ours to replace")
    index = (os.major(st.st_rdev) - PTY_SLAVE_MAJORS[0]) * 256 + os.minor(st.st_rdev)
    # A gateway holds both ends of its pty.  A pty whose holders have no
    # master of it is another program's (an ssh session's, a tmux pane's)
    # that was given the number of a dead gateway's pty since (killed -9,
    # its link left): that link is stale, as a dangling one.
    holders = [pid for pid in ptyHolders(os.path.realpath(link)) if holdsMaster(pid, index) is not False]
    if holders:
        raise FileExistsError(
            errno.EEXIST,
            f"is the live link to {old}, held open by pid {', '.join(map(str, holders))} "
            "(another gateway?): not replaced",
        )


def ptyHolders(path: str) -> list[int]:
    """
    The processes (that we may look at) with the pty slave C{path} open,
    from /proc/PID/fd.
    """
    holders = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                    holders.append(int(pid))
                    break
            except OSError:
                continue
    return holders


def ttyControllers(rdev: int) -> list[int]:
    """
    The processes (that we may look at) whose controlling terminal is the
    tty C{rdev} (its st_rdev): field 7, tty_nr, of /proc/PID/stat.
    """
    controllers = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        # After the command's name: state, ppid, pgrp, session, tty_nr.
        if len(fields) > 4 and int(fields[4]) == rdev:
            controllers.append(int(pid))
    return controllers


PTMX = ("/dev/ptmx", "/dev/pts/ptmx")


def holdsMaster(pid: int, index: int) -> Optional[bool]:
    """
    Whether process C{pid} has the master of pty C{index} (/dev/pts/INDEX)
    open: a ptmx descriptor whose fdinfo says C{tty-index: INDEX} (Linux
    4.14 and later).  None when that cannot be told (the process cannot be
    looked at, or a ptmx descriptor says no index).
    """
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    known = True
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") not in PTMX:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as info:
                fields = dict(line.partition(b":")[::2] for line in info.read().splitlines())
        except OSError:
            continue
        value = fields.get(b"tty-index")
        if value is None:
            known = False
        elif int(value) == index:
            return True
    return False if known else None


def restoreSymlink(target: str, link: str) -> Optional[str]:
    """
    C{link}, ours to C{target}, made again if it is gone (removed by hand,
    by a cleanup of /tmp): what was done, or what is at its path instead
    (left as it is); None when it is there as it was.
    """
    if not link:
        return None
    try:
        now = os.readlink(link)
    except FileNotFoundError:
        replaceSymlink(target, link)
        return "was gone: made again"
    except OSError:
        return "is not a symlink now: left as it is"
    return None if now == target else f"is a symlink to {now!r} now: left as it is"


def removeSymlink(link: str, target: str) -> None:
    """Remove C{link} if it still points at C{target} (not someone else's)."""
    if not link:
        return
    try:
        if os.readlink(link) == target:
            os.unlink(link)
    except OSError:
        pass


def givePty(slave: int, link: str, uid: int, gid: int) -> None:
    """
    A pty made before twistd dropped privileges (-u, -g) is root's: given to
    the user and group the gateway runs as (-1: unchanged), its link too
    (so that user may remove it from a sticky /tmp at stop).
    """
    os.fchown(slave, uid, gid)
    if link:
        os.lchown(link, uid, gid)


# /dev/ptmx (and devpts' own ptmx): each open makes a new pty.
PTMX_DEVICE = os.makedev(5, 2)


def isMultiplexer(path: str) -> bool:
    """
    Whether C{path} is the pty multiplexer: opened as a device, it is a new
    pty's master whose slave no program can open (it is locked); a line was
    up on it for ever, what its clients typed swallowed.
    """
    try:
        st = os.stat(path)
    except OSError:
        return False  # the open says why
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == PTMX_DEVICE
