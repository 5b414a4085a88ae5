"""
Binding a listener, the same for a line's listeners, the gateway's own
(status page, SSH, watch-all) and a reload's checks: L{StartupError} (the
start or a reload cannot go on, and why), listen now or fail with the
reason, and a unix socket's file: one left by a gateway that died removed,
one a live process answers on named, the gateway's own removed at stop
only while it is still the socket it made.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from typing import Any, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.app.portholder import listenHint
from serialgw.devices.uucplock import processName, stranger

# In the namespace its lines had in serialgw.app.listen, which an operator may filter on.
log = Logger(namespace="serialgw.app.listen")


class StartupError(Exception):
    """
    The gateway cannot start; the message names what and why.  C{key}: the
    line's key it is about ("device", "log", "listen"), for the file's line
    of it (see L{serialgw.config.where.Places}); None when not known.
    """

    key: Optional[str] = None


def keyed(error: StartupError, key: str) -> StartupError:
    """C{error}, about the line's C{key} unless it says already which."""
    if error.key is None:
        error.key = key
    return error


def listenAtOnce(endpoint: Any, factory: Any) -> Any:
    """
    Listen, and the outcome now: the port, a Failure, or None if the
    endpoint did not answer at once (the ones the gateway uses all do).
    """
    results: list[Any] = []
    endpoint.listen(factory).addBoth(results.append)
    return results[0] if results else None


def listening(endpoint: Any, factory: Any, cannot: str, look: bool = True) -> Any:
    """
    The listening port, or a StartupError: C{cannot}, then why (C{cannot
    listen on 'tcp:1': ...}), and for a TCP port in use who holds it
    (C{look}: looked for in /proc, as at start; a serving reactor says how
    to find it instead).
    """
    result = listenAtOnce(endpoint, factory)
    if result is None or isinstance(result, Failure):
        reason = result.value if result is not None else "did not start at once"
        raise StartupError(f"{cannot}: {str(reason).rstrip('.')}{listenHint(reason, look)}")
    return result


class OwnSocketPort:
    """
    A listening unix socket that, at stop, removes its file only if the file
    at the path is still the socket it made (same device and inode): one
    put there since (another gateway's, anything) is left alone.
    """

    def __init__(self, port: Any, path: str) -> None:
        self.port = port
        self.path = path
        st = os.lstat(path)
        self.identity = (st.st_dev, st.st_ino)
        self.factory = port.factory

    def getHost(self) -> Any:
        return self.port.getHost()

    def ours(self) -> bool:
        try:
            st = os.lstat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.identity and stat.S_ISSOCK(st.st_mode)

    def stopListening(self) -> Any:
        if not self.ours():
            log.warn("{path} is no longer the socket this gateway made: left in place", path=self.path)
            # Twisted's unix port removes its path when it closes, unless the
            # name is abstract: make it so, and nothing is removed.  The path
            # is in _bindPath since Twisted 26.10, in .port before (22.10).
            name = "_bindPath" if hasattr(self.port, "_bindPath") else "port"
            bound = getattr(self.port, name)
            setattr(self.port, name, b"\0" + bound if isinstance(bound, bytes) else "\0" + bound)
        return self.port.stopListening()


def removeStaleSocket(path: str, lineName: str, owner: Optional[str] = None) -> None:
    """
    A unix socket file left by a gateway that died is removed; one that a
    live process answers on, or a file that is not a socket, is an error
    (naming that process; this one: another of the gateway's own listeners
    there, which it had called "another process").  Its Twisted lock file
    (C{path}.lock) naming a live process that is not its maker (uucplock's
    rule: started well after it was written, its PID reused) is removed too,
    when nobody answers on the socket.  C{owner}: who wants the path, in
    messages (default C{line 'NAME'}; watch-all is no line).
    """
    who = owner if owner is not None else f"line {lineName!r}"
    said = owner if owner is not None else f"line {lineName}"  # (in the log, as the line's other events)
    try:
        mode: Optional[int] = os.lstat(path).st_mode
    except FileNotFoundError:
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            # Twisted's own words were "No such file or directory: '826' -> b'/x/a.sock.lock'".
            raise StartupError(f"{who}: cannot make unix socket {path!r}: directory {directory!r} "
                               "does not exist") from None
        mode = None
    if mode is not None and not stat.S_ISSOCK(mode):
        raise StartupError(f"{who}: {path!r} exists and is not a socket")
    lock = path + ".lock"
    holder, reused = _lockHolder(lock, path)
    if holder is not None and reused is None:
        # Twisted's unix port would refuse it anyway ("Cannot acquire lock"),
        # after the socket had been removed from under the holder.
        raise StartupError(f"{who}: {path!r} is locked by process {holder} "
                           f"({lock!r}), which is still there")
    if mode is not None and not _removeIfStale(path, who, said):
        return
    if holder is not None:
        # Twisted's lock would refuse a live PID, its maker or not.
        try:
            if os.readlink(lock) == str(holder):
                os.unlink(lock)
                log.info("{owner}: removed stale lock {lock}: {why}", owner=said, lock=lock, why=reused)
        except OSError:
            pass


def _removeIfStale(path: str, who: str, said: str) -> bool:
    """Remove the socket at C{path} if nobody answers on it (True); raise if someone does (named); False if it cannot be told."""
    # Not blocking: a connect to a live listener whose backlog is full
    # waits until it accepts, and this runs on the reactor (a reload).
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            log.info("{owner}: removed stale socket {path}", owner=said, path=path)
            return True
        except BlockingIOError:
            pass  # a live listener, its backlog full
        except OSError:
            return False
        # Who listens there (as it was when it called listen); 0 while a full backlog keeps us unconnected.
        try:
            pid = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
        except OSError:
            pid = 0
    finally:
        probe.close()
    if pid == os.getpid():
        raise StartupError(f"{who}: {path!r} is one of this gateway's own sockets already (another of its "
                           "listeners: a line's, watch-all's, the status endpoint's or SSH's; --check names which)")
    raise StartupError(f"{who}: {path!r} is in use by another process" + (f": {pid}{processName(pid)}" if pid > 0 else ""))


def _lockHolder(lock: str, path: str) -> tuple[Optional[int], Optional[str]]:
    """
    The live process other than this one that Twisted's lock file C{lock}
    names, if any; and why it is not the lock's maker (its PID reused
    since, see L{stranger}), or None when it may be.
    """
    try:
        pid = int(os.readlink(lock))
        written = os.lstat(lock).st_mtime
    except (OSError, ValueError):
        return None, None
    if pid <= 0 or pid == os.getpid():
        return None, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None, None
    except PermissionError:
        pass
    return pid, stranger(path, pid, written)
