"""
Paths from the configuration, made absolute when it is read, and what a
path is on disk.

A relative path in a configuration file is taken from the file's directory
(as named, a symlink to the file not followed), one on the command line
from the working directory at start: either way it is made absolute when
the configuration is read, so twistd's change of directory (C{--rundir}, a
daemon's C{/}) moves nothing, and a reload reads the same paths.

L{identity} tells one device or file reached by two paths (a by-id
symlink and the node it names, a symlink to another's log): a stat, which
opens nothing (a tty's open would raise DTR; a FIFO's would wait).
"""

from __future__ import annotations

import os
import stat
from typing import Any, Optional

import attrs

from serialgw.config.endpointstrings import unixEndpointFor
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.specs import DeviceSpec, LineConfig, isAbstract


def absolute(path: str, base: str) -> str:
    """C{path} taken from the directory C{base} when relative (normalised); an absolute or abstract one as it is."""
    if not path or path.startswith("/") or isAbstract(path):
        return path
    return os.path.normpath(os.path.join(base, path))


def baseOf(configPath: str) -> str:
    """The directory a configuration file's relative paths are taken from."""
    return os.path.dirname(os.path.abspath(configPath))


def absoluteDevice(device: DeviceSpec, base: str) -> DeviceSpec:
    """A tty path, a pty's link or a unix socket's path made absolute."""
    if device.kind in ("tty", "pty", "unix") and absolute(device.path, base) != device.path:
        return attrs.evolve(device, path=absolute(device.path, base))
    return device


def absoluteListener(spec: ListenerSpec, base: str) -> ListenerSpec:
    """
    A listener's paths made absolute: a C{file:}, C{pipe:} or C{pty:}
    path, a unix socket's (listening, in its Twisted endpoint string too,
    or dialing out), and TLS files.
    """
    changes: dict[str, Any] = {}
    tls = spec.tls
    if tls is not None and (tls.cert, tls.key, tls.ca) != tuple(absolute(p, base) for p in (tls.cert, tls.key, tls.ca)):
        tls = changes["tls"] = attrs.evolve(tls, cert=absolute(tls.cert, base), key=absolute(tls.key, base),
                                            ca=absolute(tls.ca, base))
    if tls is not None and stampTLS(tls) != tls.stamp:
        changes["tls"] = attrs.evolve(tls, stamp=stampTLS(tls))
    path = absolute(spec.path, base)
    if path != spec.path:
        changes["path"] = path
        if spec.kind in (ListenerKind.FILE, ListenerKind.PIPE, ListenerKind.PTY):
            changes["endpoint"] = path
        elif spec.kind is ListenerKind.CONNECT:
            changes["endpoint"] = f"unix:{path}"
        elif spec.kind is ListenerKind.LISTEN:
            changes["endpoint"] = unixEndpointFor(spec.endpoint, path)
    return attrs.evolve(spec, **changes) if changes else spec


def stampTLS(tls: Any) -> tuple[Any, ...]:
    """
    What a TLS spec's files are on disk now (device, inode, size, mtime
    of its cert, key and CA; None for one not there), or () when none is:
    a file rewritten in place (a renewed certificate, a CA taken out of
    the bundle) makes the listener another one at a reload, which opens it
    with the files as they are (its string unchanged, it kept the old).
    """
    stamps = []
    for path in (tls.cert, tls.key, tls.ca):
        try:
            info = os.stat(path) if path else None
        except OSError:
            info = None
        stamps.append(None if info is None else (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stamps) if any(stamps) else ()


def absoluteLine(config: LineConfig, base: str) -> LineConfig:
    """Every path of a line's configuration made absolute: its device, listeners and console log."""
    log = config.log
    if log is not None and absolute(log.path, base) != log.path:
        log = attrs.evolve(log, path=absolute(log.path, base))
    device = absoluteDevice(config.device, base)
    listeners = tuple(absoluteListener(spec, base) for spec in config.listeners)
    if device is config.device and log is config.log and all(a is b for a, b in zip(listeners, config.listeners, strict=True)):
        return config  # (all absolute already: a farm of 2000 lines is read at each reload, on the reactor)
    return attrs.evolve(config, device=device, log=log, listeners=listeners)


def identity(path: str) -> Optional[tuple[Any, ...]]:
    """
    What C{path} is now, symlinks followed: a character or block device's
    number (two nodes of one device are one), another file's device and
    inode; None when there is nothing there (yet: a USB adapter not
    plugged in, a log not made) or it cannot be looked at.
    """
    if not path or isAbstract(path):
        return None
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return ("device", st.st_rdev)
    return ("file", st.st_dev, st.st_ino)


def whereWritten(path: str, there: Optional[tuple[Any, ...]]) -> str | tuple[Any, ...]:
    """
    What writing the file at C{path} writes to: the file there now (its
    L{identity}, C{there}), or, with nothing there yet, the path the
    symlinks on the way lead to (a dangling link's target, through a
    linked directory), where the file will be made: a C{file:} listener
    through a link to another line's log not made yet wrote into that log
    once the start made it.
    """
    return there if there is not None else os.path.realpath(path)


def symlinkHops(path: str, most: int = 40) -> list[str]:
    """
    C{path} (absolute), then each path its symlinks lead to in turn, each
    with its directory's symlinks resolved: where that name is.  Not past
    a hop that is not a symlink, nor round a ring.  A device through a
    symlink to a pty: listener's link (not made yet, or left by a former
    run, to its pty) passes that link: a loop the paths as written hide.
    """
    hops: list[str] = []
    while len(hops) < most:
        try:
            placed = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        except (OSError, ValueError):
            break
        if placed in hops:
            break
        hops.append(placed)
        try:
            target = os.readlink(placed)
        except (OSError, ValueError):
            break
        path = os.path.join(os.path.dirname(placed), target)
    return hops or [os.path.normpath(path)]


def placeKeys(path: str) -> list[str]:
    """
    L{symlinkHops}, each hop said by what its directory is (its device and
    inode: one directory by two paths, a bind mount, is one) and its name:
    what the pty loop check compares (see L{serialgw.config.loops.ptyLoop}).
    A hop whose directory is not there is said by its path.
    """
    keys = []
    for hop in symlinkHops(path):
        directory, name = os.path.split(hop)
        try:
            st = os.stat(directory)
        except (OSError, ValueError):
            keys.append(hop)
            continue
        keys.append(f"{st.st_dev}:{st.st_ino}/{name}")
    return keys


# Why a file: listener's open fails on such a link (see noFollow).
NOT_FOLLOWED = ("another user's symbolic link in a directory everyone may write (sticky, as /tmp): not followed "
                "(the kernel's fs.protected_symlinks rule)")


def noFollow(path: str) -> int:
    """
    C{os.O_NOFOLLOW} for opening C{path} (a C{file:} listener's) when its
    directory is sticky and writable by everyone (C{/tmp}) and what is
    there is not a symlink of this process's user or of the directory's
    owner; else 0: a symlink is followed (C{/dev/stdout}, a link to a FIFO).
    That is the kernel's C{fs.protected_symlinks} rule, kept whatever the
    sysctl says (0 is the kernel's default, and many containers'), so a
    link planted in /tmp cannot point the gateway's writes at a file of its
    choosing.  No race: the sticky bit keeps others from replacing a link
    they do not own, and one made after this look is not followed.
    """
    try:
        directory = os.stat(os.path.dirname(os.path.abspath(path)))
    except (OSError, ValueError):
        return 0
    if not (directory.st_mode & stat.S_ISVTX and directory.st_mode & stat.S_IWOTH):
        return 0
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return os.O_NOFOLLOW
    if stat.S_ISLNK(st.st_mode) and st.st_uid in (os.geteuid(), directory.st_uid):
        return 0
    return os.O_NOFOLLOW


def notFollowed(path: str) -> bool:
    """Whether C{path} is now a symlink a C{file:} listener does not follow (L{noFollow})."""
    return bool(noFollow(path)) and os.path.islink(path)


class NotRegular(Exception):
    """What is at a path to be read is not a regular file (its C{st_mode} in C{.mode}); it was not opened."""

    def __init__(self, mode: int) -> None:
        Exception.__init__(self, mode)
        self.mode = mode


def openRegular(path: str, follow: bool = True) -> int:
    """
    A descriptor (C{O_CLOEXEC}) for reading the regular file at C{path}
    (an admin's or a person's: a key, a certificate, the configuration);
    L{NotRegular} if it is anything else, which is never opened.  Looked at
    through an C{O_PATH} descriptor (no open), then opened as that very
    inode, C{O_NOCTTY|O_NONBLOCK}: an open of a tty made it the gateway's
    controlling terminal (its hangup a SIGHUP), a FIFO's waited for a
    writer, a watchdog device starts counting.  C{follow=False}: a symlink
    is not followed (L{NotRegular} with C{S_IFLNK}, or C{OSError} ELOOP).
    C{OSError} (or C{ValueError}, a NUL in it) as C{os.open} raises it.
    """
    place = getattr(os, "O_PATH", 0)
    nofollow = 0 if follow else os.O_NOFOLLOW
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | nofollow
    if place:
        where = os.open(path, place | os.O_CLOEXEC | nofollow)
        try:
            mode = os.fstat(where).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegular(mode)
            try:
                return os.open(f"/proc/self/fd/{where}", flags & ~nofollow)
            except FileNotFoundError:
                pass  # (no /proc: looked at, then opened by its path)
        finally:
            os.close(where)
    else:
        mode = os.stat(path, follow_symlinks=follow).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(mode)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(mode)
    return fd


def openIfRegular(path: str, flags: int) -> int:
    """
    C{path} opened with C{flags} (for writing too: a console log's, a
    look at its lock) only if it is a regular file: looked at first
    through an C{O_PATH} descriptor, a symlink not followed, then opened
    as that very inode; anything else (a tty, a FIFO, a symlink:
    C{S_IFLNK}) is L{NotRegular}, never opened.  C{FileNotFoundError}
    when nothing is there (the caller may make it).  Without C{O_PATH}
    or C{/proc}: opened by its path with C{O_NOFOLLOW}, looked at after.
    Give C{O_NOCTTY} and C{O_NONBLOCK} in C{flags}: a file swapped in
    between the look and the open is opened by its path.
    """
    place = getattr(os, "O_PATH", 0)
    if place:
        where = os.open(path, place | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            mode = os.fstat(where).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegular(mode)
            try:
                return os.open(f"/proc/self/fd/{where}", flags & ~(os.O_NOFOLLOW | os.O_CREAT | os.O_EXCL))
            except FileNotFoundError:
                pass  # (no /proc)
        finally:
            os.close(where)
    fd = os.open(path, (flags | os.O_NOFOLLOW) & ~(os.O_CREAT | os.O_EXCL))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(mode)
    return fd
