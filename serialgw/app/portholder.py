"""
Why a TCP listener could not bind, for people: who listens on the port
already (ser2net left running is the common case of someone moving to
serialgw), or that a port below 1024 needs a privilege, with what to do.
Twisted says only C{Couldn't listen on any:4001: [Errno 98] Address
already in use.}
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import sys
from collections.abc import Collection
from typing import Optional

from twisted.internet.error import CannotListenError

from serialgw.devices.uucplock import processName

# How many processes' descriptors are looked through for the listener (an
# error's path only; another user's cannot be read unless we are root).
PROCESSES_LOOKED_AT = 4096
_LISTEN = "0A"  # the state of a listening socket in /proc/net/tcp
_TIME_WAIT = "06"  # (holds no port from a listener's bind: Twisted's listeners set SO_REUSEADDR)
WILDCARDS = ("", "0.0.0.0", "::")
AGAIN = "stop it, or give the listener another port"


def _plain(host: str) -> str:
    """An address as one text for one address (C{::ffff:127.0.0.1} is 127.0.0.1, C{::0} is ::); a name as it is."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return str(mapped if mapped is not None else address)


def sameAddress(a: str, b: str) -> bool:
    """Whether binds of one TCP port on C{a} and on C{b} clash: the same address, or either every address."""
    a, b = _plain(a), _plain(b)
    return a == b or a in WILDCARDS or b in WILDCARDS


def holds(taken: Collection[tuple[str, int]], host: str, port: int) -> bool:
    """Whether one of C{taken} (addresses and TCP ports bound) keeps a listener on C{host}, C{port} from binding."""
    return any(port == other and sameAddress(host, otherHost) for otherHost, other in taken)


def listenHint(error: object, look: bool = True, ours: Collection[tuple[str, int]] = ()) -> str:
    """
    What to add to a TCP listener's failure to bind (C{error}, Twisted's
    CannotListenError): C{": port 4001 is in use by another process: 812
    (ser2net): stop it, or give the listener another port"}; empty for
    anything else.  C{look}: look through /proc for the socket holding the
    port on a clashing address and its process (not on a serving reactor:
    a reload says how to find it instead); C{ours}: the addresses and TCP
    ports this gateway's listeners are bound to, known without looking.
    """
    if not isinstance(error, CannotListenError) or not isinstance(error.socketError, OSError):
        return ""
    code = error.socketError.errno
    port = error.port
    if code == errno.EADDRINUSE and isinstance(port, int) and port > 0:
        host = error.interface if isinstance(error.interface, str) else ""
        own = f": port {port} is one of this gateway's own listeners already (--check names which)"
        if holds(ours, host, port):
            return own
        if not look:
            return (f": another program holds port {port} (ss -tanp 'sport = :{port}' names one that listens or is "
                    f"connected from it; one bound and not listening is listed nowhere): {AGAIN}")
        pid, listening = holderOf(port, host)
        if pid == os.getpid():
            return own if listening else f": port {port} is held by a connection of this gateway's own from it"
        if pid is not None:
            how = "" if listening else " (bound to it, not listening: a connection from the port)"
            return f": port {port} is in use by another process: {pid}{processName(pid)}{how}: {AGAIN}"
        if listening:
            return f": another program listens on port {port} (ss -ltnp 'sport = :{port}' names it): {AGAIN}"
        if listening is not None:
            return (f": another program's connection from port {port} holds it, not listening (ss -tanp "
                    f"'sport = :{port}' names it): {AGAIN}")
        return (f": no socket listens on port {port} or is connected from it: a program has bound it without "
                "listening, which neither ss nor /proc/net/tcp lists: find the program that bound it and stop it, "
                "or give the listener another port")
    if code == errno.EACCES and isinstance(port, int) and 0 < port < 1024:
        return (": a port below 1024 needs root or CAP_NET_BIND_SERVICE (the shipped unit has neither: use a port "
                "of 1024 or more, or serialgw.socket, where systemd binds it)")
    return ""


def _address(hexed: str) -> str:
    """An address of /proc/net/tcp or tcp6 (32-bit words, each written in the host's order) as text."""
    raw = b"".join(int(hexed[at:at + 8], 16).to_bytes(4, sys.byteorder) for at in range(0, len(hexed), 8))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _sockets(port: int) -> list[tuple[str, bool, str]]:
    """
    The TCP sockets (IPv4 and IPv6) on local C{port} that keep a listener
    from binding it: their address, whether each listens, its inode; from
    /proc/net (a socket bound and neither listening nor connected is in no
    table).
    """
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) <= 9 or fields[3] == _TIME_WAIT:
                continue
            hexed, _, hexPort = fields[1].rpartition(":")
            if hexPort == f"{port:04X}":
                try:
                    found.append((_address(hexed), fields[3] == _LISTEN, fields[9]))
                except (ValueError, OSError):
                    continue
    return found


def holderOf(port: int, host: str = "") -> tuple[Optional[int], Optional[bool]]:
    """
    Who holds TCP C{port} on an address a bind on C{host} clashes with:
    the PID of a process with such a socket among its descriptors (None
    when none can be seen), and whether that socket listens (a listener
    before a connection from the port; None when no such socket is seen).
    """
    rows = [(listens, inode) for address, listens, inode in _sockets(port) if sameAddress(address, host)]
    if not rows:
        return None, None
    listening = any(listens for listens, _ in rows)
    inodes = {f"socket:[{inode}]" for listens, inode in rows if listens == listening and inode != "0"}
    return _processOf(inodes), listening


def listenerOf(port: int, host: str = "") -> Optional[int]:
    """The PID of a process that holds a socket listening on TCP C{port} (on an address C{host} clashes with), or None when none can be seen."""
    pid, listening = holderOf(port, host)
    return pid if listening else None


def _processOf(inodes: set[str]) -> Optional[int]:
    """The PID of a process (this one looked at first) with one of C{inodes}' sockets among its descriptors, or None."""
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
