"""
Whether a host a remote device dials is this host, at the address a
listener of this gateway is bound to, without a name looked up (no DNS
where a configuration is read): localhost's names and addresses, an
address in any of inet_aton's forms, this host's own addresses as the
kernel has them (bound to every address: L{localNetworks}), a name
/etc/hosts gives one of them (the resolver reads that file first), this
host's own name.  What L{serialgw.config.loops} asks of a remote device,
and L{serialgw.config.sharing} of two lines' dial-outs (L{hostAsDialled}).
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Union

# Addresses of this host a remote device may name, and the families they reach.
_LOOPBACK = {"localhost": {4, 6}, "ip6-localhost": {6}, "ip6-loopback": {6}, "::1": {6}}


def _reaches(host: str, bound: str) -> bool:
    """
    Whether a connection to C{host} reaches a listener bound to C{bound}
    ('' and 0.0.0.0: every IPv4 address; '::': every address): Linux
    connects an address (L{_dialled}) to a listener bound to that very
    address, or to one bound to every address of its family where it is
    one of this host's (loopback's 127.0.0.0/8, a local interface's,
    L{localNetworks}); never to one bound to another (127.0.0.2 and
    Debian's 127.0.1.1 do not reach a listener bound to 127.0.0.1).  A
    host name other than localhost's is taken as the resolver takes it
    first, without DNS (L{_ownName}).
    """
    host, bound = _asResolved(host), _asResolved(bound)
    if host == bound:
        return True
    if host not in _LOOPBACK and _address(host) is None:
        return _ownName(host, bound)
    wildcard = {"": {4}, "0.0.0.0": {4}, "::": {4, 6}}.get(bound)
    if wildcard is None:
        at = _address("127.0.0.1" if bound == "localhost" else bound)  # (bind() takes localhost as 127.0.0.1)
        return at is not None and at in _dialled(host)
    return any(address.version in wildcard and (address.is_loopback or any(
        address in network for network in localNetworks() if network.version == address.version))
        for address in _dialled(host))


def _dialled(host: str) -> list[Union[IPv4Address, IPv6Address]]:
    """
    The addresses a connection to C{host} (as resolved: localhost's names,
    or an address) goes to: localhost's 127.0.0.1 and ::1; the unspecified
    0.0.0.0 and :: as Linux takes them, 127.0.0.1 and ::1; an IPv4-mapped
    address as its IPv4; another as it is.
    """
    if host in _LOOPBACK and _address(host) is None:
        return [address for family, address in ((4, IPv4Address("127.0.0.1")), (6, IPv6Address("::1")))
                if family in _LOOPBACK[host]]
    address = _address(host)
    if address is None:
        return []
    if address.is_unspecified:
        return [IPv4Address("127.0.0.1") if address.version == 4 else IPv6Address("::1")]
    return [address]


def _asResolved(host: str) -> str:
    """
    C{host} as the resolver takes it, without asking it: a name in
    lower case without the root's dot (LOCALHOST, localhost.), and an
    IPv4 address in one of inet_aton's forms (0, 127.1, 0x7f000001) as
    its dotted quad.
    """
    name = host.lower().rstrip(".") or host
    if re.fullmatch(r"[0-9a-fx.]+", name) and ":" not in name:
        try:
            return str(IPv4Address(socket.inet_aton(name)))
        except (OSError, ValueError):
            pass
    return name


def hostAsDialled(host: str) -> str:
    """
    One spelling for a host a connection dials, without a lookup: a name
    in lower case without the root's dot (L{_asResolved}: LOCALHOST,
    localhost.), an IPv4 address in any of inet_aton's forms (127.1,
    0x7f000001) as its dotted quad, an IPv6 one as ipaddress writes it, an
    IPv4-mapped one as its IPv4.  (localhost and 127.0.0.1 stay apart: the
    resolver may give the name ::1 first.)
    """
    host = _asResolved(host)
    address = _address(host)
    return host if address is None else str(address)


def _address(host: str) -> Union[IPv4Address, IPv6Address, None]:
    """C{host} as an address (an IPv4-mapped one as its IPv4), or None for a name."""
    try:
        address: Union[IPv4Address, IPv6Address] = ip_address(host)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _readLocalNetworks() -> list[Union[IPv4Network, IPv6Network]]:
    """
    This host's own addresses, as the kernel has them (no name looked
    up): IPv4 from its local routing table (/proc/net/fib_trie's C{host
    LOCAL} entries: 127.0.0.0/8 is one), IPv6 from /proc/net/if_inet6.
    Read only for a remote device at an address that may be one of them,
    on a listener's port bound to every address.  Empty where they cannot
    be read (not Linux).
    """
    networks: list[Union[IPv4Network, IPv6Network]] = []
    try:
        with open("/proc/net/fib_trie", encoding="ascii", errors="replace") as f:
            last = ""
            for text in f:
                text = text.strip()
                if text.startswith("|--"):
                    last = text[3:].strip()
                elif text.startswith("/") and text.endswith(" host LOCAL") and last:
                    try:
                        networks.append(ip_network(f"{last}{text.split()[0]}", strict=False))
                    except ValueError:
                        pass
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6", encoding="ascii", errors="replace") as f:
            for text in f:
                field = text.split()[0] if text.split() else ""
                try:
                    networks.append(ip_network(IPv6Address(int(field, 16))))
                except ValueError:
                    pass
    except OSError:
        pass
    return networks


# (Tests put their own addresses here.)
localNetworks = _readLocalNetworks


# Where the resolver looks first (nsswitch's files), and this host's own name.  (Tests put their own.)
HOSTS_FILE = "/etc/hosts"
hostName = socket.gethostname
# The most of /etc/hosts read (a file of that size is no hosts file).
HOSTS_FILE_MOST = 1 << 20


def hostsFile() -> dict[str, list[str]]:
    """
    /etc/hosts as the resolver's files source reads it: each name (in
    lower case, no root dot) to the addresses of the lines that give it,
    in order; comments left out.  Empty where it cannot be read.
    """
    names: dict[str, list[str]] = {}
    try:
        with open(HOSTS_FILE, encoding="utf-8", errors="replace") as f:
            text = f.read(HOSTS_FILE_MOST)
    except OSError:
        return names
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            names.setdefault(_asResolved(name), []).append(fields[0])
    return names


def _ownName(name: str, bound: str) -> bool:
    """
    Whether host name C{name} (as resolved, L{_asResolved}) reaches a
    listener bound to C{bound} on this host, without DNS: an /etc/hosts
    name reaches it if one of its addresses there does (the resolver
    reads that file first: Debian's C{127.0.1.1 gw1.example.org gw1}, an
    interface's address); this host's own name (gethostname) not in that
    file reaches a listener on every address (systemd's resolver and
    nss-myhostname give it this host's addresses).  A name only DNS gives
    this host is not caught (README).
    """
    addresses = hostsFile().get(name)
    if addresses:
        return any(_address(address) is not None and _reaches(address, bound) for address in addresses)
    try:
        own = _asResolved(hostName())
    except OSError:
        return False
    return name == own and bound in ("", "0.0.0.0", "::")
