"""
Client connections' transports: addresses for messages, who may connect
(C{allow=}).  TCP_NODELAY and the device-to-network hot path's direct send
are L{serialgw.wire.sockets}' (remote devices' links use them too).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any, Sequence

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


def cameIn(transport: Any) -> str:
    """
    Where a connection came in (a banner's {port}, ser2net's \\p): its
    listener's TCP port, a unix socket's path; '' for anything else (a
    pty, a file, a datagram).
    """
    try:
        address = transport.getHost()
    except Exception:
        return ""
    if isinstance(address, (IPv4Address, IPv6Address)):
        return str(address.port)
    if isinstance(address, UNIXAddress) and address.name is not None:
        return describeUnix(address.name)
    return ""


def addressAllowed(address: Any, networks: list[Any]) -> bool:
    """
    Whether a peer's address is in one of the networks (C{allow=}); a unix
    socket's peer has none, so it is in none (the configuration refuses
    C{allow=} on a unix socket; a C{systemd:} socket passed as another
    family than its domain said still lets none in).
    """
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return False
    try:
        ip = ipaddress.ip_address(address.host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def admittedBy(allow: Sequence[str], address: Any) -> bool:
    """Whether an C{allow=} list (CIDR texts; empty: no restriction) admits a peer's address."""
    return not allow or addressAllowed(address, [ipaddress.ip_network(a, strict=False) for a in allow])


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


def sourceOf(address: Any) -> str:
    """
    Where a connection comes from, for limits per source: an IPv4 address
    without its port (an IPv4-mapped IPv6 one too), the /64 of an IPv6
    one (a host has a whole /64: each address one more source let one host
    take every place), anything else as L{describeAddress} says it.
    """
    if isinstance(address, (IPv4Address, IPv6Address)):
        host: str = address.host
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return host
        if ip.version == 6 and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    return describeAddress(address)


class SourceCounts:
    """
    Connections open at once, in all (C{total}) and from each source
    (L{sourceOf}), for a listener that bounds both so that one address
    cannot take every place (the SSH listener's logins, the status
    endpoint).  A source is kept only while it has a connection open: the
    counts are as bounded as the connections.
    """

    def __init__(self) -> None:
        self.total = 0
        self.bySource: dict[str, int] = {}

    def of(self, source: str) -> int:
        return self.bySource.get(source, 0)

    def add(self, source: str) -> None:
        self.total += 1
        self.bySource[source] = self.bySource.get(source, 0) + 1

    def remove(self, source: str) -> None:
        self.total -= 1
        left = self.bySource.pop(source, 1) - 1
        if left > 0:
            self.bySource[source] = left
