"""
A line's own listeners bind its by-name clients (L{throughOwn}): a line is
given to a connection of a by-name listener only if one of the line's own
listeners taking connections would admit it (its C{allow=}, its
C{interface=}, a unix socket's, TLS, C{ca=} and C{subjects=}), and
read-only where each that does is C{ro} (or C{readonly=} for the
certificate).  Whether one of them may admit some connection of a by-name
listener at all (L{_mayAdmit}) says which listeners the status page lists
for a line.  The prompt that asks for the line is
L{serialgw.clients.byname}.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, Optional, Sequence

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from serialgw.config.listenerspecs import ListenerKind, ListenerSpec


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> Any:
    """An IP address text's address (an IPv4-mapped IPv6 one as its IPv4, a scope left out), or the text: no IP address."""
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return text
    return ip.ipv4_mapped or ip if ip.version == 6 else ip  # type: ignore[union-attr]


@functools.lru_cache(maxsize=4096)
def _bound(interface: str) -> Optional[frozenset[Any]]:
    """
    The addresses (of L{_ip}) a listener's C{interface=} binds: None, every
    one (0.0.0.0, ::, '::0'); localhost (any case) is 127.0.0.1, over tcp6
    too: Twisted binds a name over IPv4 (read as ::1 there, a line whose
    listener was tcp6:PORT:interface=localhost, bound at 127.0.0.1, was
    given to by-name connections on ::1 and refused to those on 127.0.0.1).
    """
    if interface.lower() == "localhost":
        return frozenset((ipaddress.ip_address("127.0.0.1"),))
    ip = _ip(interface)
    return None if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and ip.is_unspecified else frozenset((ip,))


@functools.lru_cache(maxsize=4096)
def _networks(allow: tuple[str, ...]) -> tuple[Any, ...]:
    """An C{allow=} list's networks, read once (a list of 1000 lines asks each line's listeners)."""
    return tuple(ipaddress.ip_network(a, strict=False) for a in allow)


def _admits(own: ListenerSpec, peer: Any, host: Any, ca: Optional[str], user: Optional[str]) -> bool:
    """
    Whether the line's listener C{own} would admit the by-name connection
    from C{peer} that came in on C{host} (each an address of L{_ip}, or
    None: not an IP connection; C{ca}: the by-name listener's CA file, ""
    none, None no TLS; C{user}: the person its certificate names, None
    none): its C{allow=} has C{peer}; a specific C{interface=} is C{host};
    a unix socket, a connection over a unix socket; TLS, a TLS connection
    (what is typed there, passwords too, is not sent in clear); C{ca=}, a
    certificate the same CA file verified, and C{subjects=} its CN among them.
    """
    if own.allow and not (isinstance(peer, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                          and any(peer in network for network in _networks(own.allow))):
        return False
    if own.path and peer is not UNIX:
        return False
    bound = _bound(own.host) if own.host else None
    if bound is not None and host not in bound:
        return False
    if isinstance(host, ipaddress.IPv6Address) and _ipv4Only(own):
        return False
    tls = own.tls
    if tls is not None and ca is None:
        return False
    if tls is not None and not tls.hostname and tls.ca:
        if user is None or ca != tls.ca:
            return False
        if tls.subjects and user not in set(tls.subjects) | set(tls.readOnlySubjects):
            return False
    return True


# A connection over a unix socket (see _admits).
UNIX = object()


def _ipv4Only(own: ListenerSpec) -> bool:
    """
    Whether the line's listener C{own} takes IPv4 connections only: a
    tcp: or tls: one on every address (bound 0.0.0.0: a bare port, or
    interface=0.0.0.0; one bound to an address is L{_bound}'s).  Read as
    every address, it let a by-name connection on ::1 or another IPv6
    address have a line no listener of its own takes IPv6 for (a host
    reached over IPv6 where IPv4 is kept off).
    """
    return own.host in ("", "0.0.0.0") and own.endpoint.startswith(("tcp:", "tls:"))


def _mayAdmit(own: ListenerSpec, byName: ListenerSpec) -> bool:
    """
    Whether the line's listener C{own} would admit some connection of the
    by-name listener C{byName} (L{_admits} with what no peer changes: a
    unix socket's, an C{allow=} or C{interface=} one's, TLS and C{ca=}).
    """
    bound = _bound(own.host) if own.host else None
    if own.path and not byName.path:
        return False
    if byName.path and (own.allow or bound is not None):
        return False  # (a connection over a unix socket has no address: no allow= nor interface= admits it)
    theirs = _bound(byName.host) if byName.host else None
    if bound is not None and theirs is not None and not bound & theirs:
        return False
    if _ipv4Only(own) and theirs is not None and all(isinstance(a, ipaddress.IPv6Address) for a in theirs):
        return False
    tls, their = own.tls, byName.tls
    if tls is not None and their is None:
        return False
    return not (tls is not None and not tls.hostname and tls.ca and tls.ca != their.ca)  # type: ignore[union-attr]


def _where(address: Any) -> Any:
    """A connection's address for L{_admits}: its IP address (L{_ip}), L{UNIX}, or None."""
    if isinstance(address, (IPv4Address, IPv6Address)):
        return _ip(address.host)
    return UNIX if isinstance(address, UNIXAddress) else None


def throughOwn(listeners: Sequence[ListenerSpec], transport: Any, ca: Optional[str], user: Optional[str]) -> Optional[bool]:
    """
    What a line's own C{listeners} would let the by-name connection on
    C{transport} do (see L{_admits}): None, nothing (none of those taking
    connections admits it: the line is not given); True, read (each that
    does is C{ro}, or C{readonly=} for its certificate); False, write as
    far as they go (one is neither, or the line has no listener taking
    connections: the by-name listener's options alone).
    """
    taking = [own for own in listeners if own.kind is ListenerKind.LISTEN]
    if not taking:
        return False
    peer, host = _where(transport.getPeer()), _where(transport.getHost())
    readOnly: Optional[bool] = None
    for own in taking:
        if not _admits(own, peer, host, ca, user):
            continue
        tls = own.tls
        if not (own.readOnly or (tls is not None and user is not None and user in tls.readOnlySubjects)):
            return False
        readOnly = True
    return readOnly
