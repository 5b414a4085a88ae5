"""
Why a TCP listener could not bind, for people: who listens on the port
already (ser2net left running is the common case of someone moving to
serialgw), or that a port below 1024 needs a privilege, with what to do.
Twisted says only C{Couldn't listen on any:4001: [Errno 98] Address
already in use.}
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection
from typing import Optional

from twisted.internet.error import CannotListenError

from serialgw.devices.uucplock import processName

# How many processes' descriptors are looked through for the listener (an
# error's path only; another user's cannot be read unless we are root).
PROCESSES_LOOKED_AT = 4096
_LISTEN = "0A"  # the state of a listening socket in /proc/net/tcp


def listenHint(error: object, look: bool = True, ours: Collection[int] = ()) -> str:
    """
    What to add to a TCP listener's failure to bind (C{error}, Twisted's
    CannotListenError): C{": port 4001 is in use by another process: 812
    (ser2net): stop it, or give the listener another port"}; empty for
    anything else.  C{look}: look through /proc for the process (not on
    a serving reactor: a reload says how to find it instead); C{ours}: the
    TCP ports this gateway's listeners are bound to, known without looking.
    """
    if not isinstance(error, CannotListenError) or not isinstance(error.socketError, OSError):
        return ""
    code = error.socketError.errno
    port = error.port
    if code == errno.EADDRINUSE and isinstance(port, int) and port > 0:
        pid = os.getpid() if port in ours else listenerOf(port) if look else None
        if pid == os.getpid():
            return f": port {port} is one of this gateway's own listeners already (--check names which)"
        if pid is not None:
            return f": port {port} is in use by another process: {pid}{processName(pid)}: stop it, or give the listener another port"
        return (f": another program listens on port {port} (ss -ltnp 'sport = :{port}' names it): stop it, "
                "or give the listener another port")
    if code == errno.EACCES and isinstance(port, int) and 0 < port < 1024:
        return (": a port below 1024 needs root or CAP_NET_BIND_SERVICE (the shipped unit has neither: use a port "
                "of 1024 or more, or serialgw.socket, where systemd binds it)")
    return ""


def _listeningInodes(port: int) -> set[str]:
    """The inodes of the TCP sockets (IPv4 and IPv6) listening on C{port} now, from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[1].rsplit(":", 1)[-1] == f"{port:04X}":
                inodes.add(fields[9])
    return inodes


def listenerOf(port: int) -> Optional[int]:
    """The PID of a process that holds a socket listening on TCP C{port}, or None when none can be seen."""
    inodes = {f"socket:[{inode}]" for inode in _listeningInodes(port) if inode != "0"}
    if not inodes:
        return None
    try:
        pids = sorted((int(name) for name in os.listdir("/proc") if name.isdigit()), key=lambda pid: pid != os.getpid())
    except OSError:
        return None
    for pid in pids[:PROCESSES_LOOKED_AT]:
        try:
            with os.scandir(f"/proc/{pid}/fd") as entries:
                for entry in entries:
                    try:
                        if os.readlink(entry.path) in inodes:
                            return pid
                    except OSError:
                        continue
        except OSError:
            continue
    return None
