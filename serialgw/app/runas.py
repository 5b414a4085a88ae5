"""
Under C{twistd -u} (and C{-g}): what the start made as root, before
privileges dropped, given to the user and group the gateway then runs as
(its ptys, unix sockets and their locks, console logs and C{file:}
outputs), and the directories of the lines' logs, links and sockets that
user may not write, said once at start (what that will cost).

Apart from L{serialgw.app.process} because it is all about one thing,
the change of user: nothing here runs without C{-u}.
"""

from __future__ import annotations

import os
import stat
import typing
from typing import Any, Optional, Sequence

from twisted.internet.address import UNIXAddress
from twisted.logger import Logger

from serialgw.clients.ptylink import PtyClient
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.specs import LineConfig
from serialgw.devices.device import SerialDevice
from serialgw.devices.ports import PtyPort
from serialgw.line.hub import Line

log = Logger()


class RunningAs(typing.Protocol):
    """
    What the start's hand-over uses of the gateway (L{serialgw.app.process.TwistdGatewayService}):
    declared here, since the service imports this module.
    """

    # twistd's -u and -g (-1: not given).
    runAs: tuple[int, int]
    configs: list[LineConfig]
    lines: dict[str, Line]
    ports: list[tuple[ListenerSpec, Any]]
    statusPort: Any
    sshPort: Any
    watchAllPorts: list[Any]



def _mayWrite(directory: str, uid: int, gids: list[int]) -> bool:
    """Whether C{uid} (with groups C{gids}) may make and remove names in C{directory}, by its mode."""
    try:
        st = os.stat(directory)
    except OSError:
        return True  # (what is not there is said at start or by --check)
    need = stat.S_IWOTH | stat.S_IXOTH
    if uid == 0:
        return True
    if st.st_uid == uid:
        need <<= 6
    elif st.st_gid in gids:
        need <<= 3
    return st.st_mode & need == need


def _unixPath(port: Any) -> Optional[str]:
    """The file of a listening port's unix socket; None for TCP, an abstract name, or no port."""
    address = port.getHost() if port is not None else None
    if not isinstance(address, UNIXAddress) or not address.name:
        return None
    name = os.fsdecode(address.name)
    return None if name.startswith("\0") else name


# The most paths (and lines) one warning of unwritable() names.
UNWRITABLE_LISTED = 4


def unwritable(configs: list[LineConfig], uid: int, gids: list[int], who: str = "",
               gateway: Sequence[tuple[str, str]] = ()) -> list[str]:
    """
    Under twistd -u: a line's directories that user may not write, each
    with what lives there and what that costs: a console log or C{file:}
    output cannot be rotated or made again at SIGUSR1 (logrotate moved
    it), a pty link or unix socket is left there at stop.
    """
    # By directory over all the lines: a farm's 1000 logs in one directory are one warning.
    found: dict[str, list[tuple[str, str, str]]] = {}
    for config in configs:
        paths = [("log", config.log.path)] if config.log is not None else []
        paths += [("pty link", config.device.path)] if config.device.kind == "pty" and config.device.path else []
        for spec in config.listeners:
            if spec.kind is ListenerKind.FILE:
                paths.append(("file: output", spec.path))
            elif spec.kind is ListenerKind.PTY:
                paths.append(("pty link", spec.path))
            elif spec.kind is ListenerKind.LISTEN and spec.path and not spec.path.startswith("\0"):
                paths.append(("unix socket", spec.path))
        for what, path in paths:
            found.setdefault(os.path.dirname(path), []).append((config.name, what, path))
    # The gateway's own unix sockets (--status, watch-all, SSH): no line's.
    for what, path in gateway:
        found.setdefault(os.path.dirname(path), []).append(("", what, path))
    said = []
    for directory, things in found.items():
        if _mayWrite(directory, uid, gids):
            continue
        kinds = {what for _, what, _ in things}
        costs = ([f"the {'log' if 'log' in kinds else 'file: output'} cannot be rotated nor made again at "
                  "SIGUSR1"] if kinds & {"log", "file: output"} else [])
        left = [name for name, kind in (("links", "pty link"), ("sockets", "unix socket")) if kind in kinds]
        if "sockets" not in left and any(not name for name, _, _ in things):
            left.append("sockets")  # (the gateway's)
        costs += [f"the {' and '.join(left)} are left there at stop"] if left else []
        names = [name for name in dict.fromkeys(name for name, _, _ in things) if name]
        listed = ", ".join(f"{what} {path}" for _, what, path in things[:UNWRITABLE_LISTED])
        listed += f" and {len(things) - UNWRITABLE_LISTED} more" if len(things) > UNWRITABLE_LISTED else ""
        whose = ("" if not names else f"line {names[0]}" if len(names) == 1 else
                 f"lines {', '.join(names[:UNWRITABLE_LISTED])}"
                 + (f" and {len(names) - UNWRITABLE_LISTED} more" if len(names) > UNWRITABLE_LISTED else ""))
        if any(not name for name, _, _ in things):
            whose = f"{whose} and the gateway" if whose else "the gateway"
        said.append(f"{whose}: {who or f'uid {uid}'} may not write {directory} (where its {listed} "
                    f"{'are' if len(things) > 1 else 'is'}): {', '.join(costs)}; give the directory to that "
                    "user, or use one it owns")
    return said


def warnUnwritable(service: RunningAs) -> None:
    """Under -u, the directories of the lines' logs, links and sockets that user may not write, said once at start."""
    uid, gid = service.runAs
    if uid == -1 or os.geteuid() != 0:
        return
    import pwd

    try:
        user = pwd.getpwuid(uid)
        name, gids = user.pw_name, os.getgrouplist(user.pw_name, user.pw_gid if gid == -1 else gid)
    except (KeyError, OSError):
        name, gids = "", [gid]
    ports = [("status", service.statusPort), ("SSH", service.sshPort)] + [("watch-all", p) for p in service.watchAllPorts]
    gateway = [(f"{what} socket", path) for what, port in ports if (path := _unixPath(port)) is not None]
    for text in unwritable(service.configs, uid, gids, f"user {name} (twistd -u)" if name else "", gateway):
        log.warn("{text}", text=text)


def givePtys(service: RunningAs) -> None:
    """
    The ptys made before twistd drops privileges (pty: devices and
    listeners) are root's, 0600 or 0620: the programs of the user it runs
    as (-u) could not open them, and their links in a sticky /tmp were
    left at stop.  Given to that user and group; later ones (a reload, a
    reopen) are made as that user.
    """
    uid, gid = service.runAs
    if (uid, gid) == (-1, -1) or os.geteuid() != 0:
        return
    for line in service.lines.values():
        ptys: list[Any] = [c for c in line.clients if isinstance(c, PtyClient)]
        if isinstance(line.device, SerialDevice) and isinstance(line.device.port, PtyPort):
            ptys.append(line.device.port)
        for pty in ptys:
            try:
                pty.giveTo(uid, gid)
            except OSError as e:
                log.warn("line {line}: {pty} cannot be given to uid {uid}: {reason}", line=line.name,
                         pty=pty.name if isinstance(pty, PtyPort) else pty.peer, uid=uid, reason=e.strerror)


def giveFiles(service: RunningAs) -> None:
    """
    Under -u, what the start made as root besides ptys is given to the
    user and group the gateway runs as: its unix sockets (their lock
    files too: 0600, root's, neither that user nor, with mode=660, its
    group could connect), and its console logs (LOG.typed too) and
    file: outputs' regular files (root's 0640: the user could not open
    them again, SIGUSR1 with nothing moved said 'Permission denied' and
    a reload changing a log key was refused).  A file only where that
    user may make and remove names (it could put its own there anyway),
    with one link, root's and no symlink; another's is left as it is.
    """
    uid, gid = service.runAs
    if (uid, gid) == (-1, -1) or os.geteuid() != 0:
        return
    import pwd

    try:
        user = pwd.getpwuid(uid)
        gids = os.getgrouplist(user.pw_name, user.pw_gid if gid == -1 else gid)
    except (KeyError, OSError):
        gids = [gid]
    files: list[str] = []
    for config in service.configs:
        if config.log is not None:
            files += [config.log.path] + ([config.log.path + ".typed"] if config.log.typed != "off" else [])
        files += [spec.path for spec in config.listeners if spec.kind is ListenerKind.FILE]
    ports = [port for _spec, port in service.ports] + [service.statusPort, service.sshPort, *service.watchAllPorts]
    sockets = [path for port in ports if (path := _unixPath(port)) is not None]
    for path in files + sockets + [path + ".lock" for path in sockets]:
        # What is looked at is what is given: the path is opened (not
        # followed) and that file checked and changed, not whatever the
        # path names a moment later (a hard link to a root file swapped
        # in by that user where it may write).
        try:
            fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if st.st_uid != 0:
                continue
            if path in files:
                directory = os.path.dirname(path)
                if (not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or not _mayWrite(directory, uid, gids)
                        or os.stat(directory).st_mode & stat.S_ISVTX):
                    continue
            elif not (stat.S_ISSOCK(st.st_mode) and st.st_nlink == 1 or stat.S_ISLNK(st.st_mode)):
                continue  # (A socket, or Twisted's lock: a symlink.)
            # (Through /proc, the opened file itself: a symlink's own owner, never its target's.)
            os.chown(f"/proc/self/fd/{fd}", uid, gid)
        except OSError as e:
            log.warn("{path} cannot be given to uid {uid}: {reason}", path=path, uid=uid, reason=e.strerror)
        finally:
            os.close(fd)
