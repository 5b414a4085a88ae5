"""
Client connections' transports: addresses for messages, who may connect
(C{allow=}), TCP_NODELAY, and the device-to-network hot path's direct send.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from serialgw.config.specs import describeUnix


def describeAddress(address: Any) -> str:
    """
    An address for messages: C{127.0.0.1:5000}, C{[::1]:5000}, C{unix:/path}.
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        host, port = address.host, address.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(address, UNIXAddress) and address.name is not None:
        return f"unix:{describeUnix(address.name)}"
    return str(address)


def addressAllowed(address: Any, networks: list[Any]) -> bool:
    """
    Whether a peer's address is in one of the networks (C{allow=}); a unix
    socket's peer always is (the file mode decides).
    """
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return True
    try:
        ip = ipaddress.ip_address(address.host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def peerName(transport: Any) -> str:
    """
    A transport's peer, for messages.  A unix socket client has no name of
    its own: it is the listener's name and the peer's process and user
    (SO_PEERCRED), so that C{w} tells two of them apart.
    """
    try:
        address = transport.getPeer()
        if isinstance(address, UNIXAddress) and not address.name:
            where = describeAddress(transport.getHost())
            try:
                credentials = transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            except (AttributeError, OSError):
                return where
            pid, uid, _ = _UCRED.unpack(credentials)
            return f"{where} (pid {pid}, uid {uid})"
        return describeAddress(address)
    except Exception:
        return "?"


# struct ucred: pid, uid, gid.
_UCRED = struct.Struct("3i")


def noDelay(transport: Any) -> None:
    """
    Send small writes at once (TCP_NODELAY): a keystroke or a prompt must
    not wait for Nagle's algorithm.  Not TCP (a unix socket, a pipe): nothing.
    """
    # TCP transports (Twisted's, or an SSH channel's over one) have it; others do not.
    setNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setNoDelay is None:
        return
    try:
        setNoDelay(True)
    except OSError:
        pass


def writeNow(transport: Any, data: bytes) -> None:
    """
    Write to a client without waiting for the reactor's next turn: on a
    plain TCP or unix connection with nothing queued, send at once; what the
    socket does not take, and every other case, goes through
    C{transport.write}.  This is the device-to-network hot path: one
    C{send} instead of queue, epoll_ctl, epoll_wait, send, epoll_ctl.
    """
    if (
        isinstance(transport, _SOCKET_TRANSPORTS)
        and not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport.TLS
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:  # BlockingIOError included: all of it goes through write
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


_SOCKET_TRANSPORTS = (tcp.Connection,)
