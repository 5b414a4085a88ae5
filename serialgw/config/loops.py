"""
Loops a configuration would make: a line's device that leads back to the
line (a tty path that is the link of its own pty: listener, or of a line's
whose device leads back to it; a remote device that is one of the
gateway's own listeners): a byte typed on it goes round for ever.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from ipaddress import IPv4Address, IPv6Address, ip_address
from os.path import normpath
from typing import Callable, Optional, Sequence, Union

from serialgw.config.specs import DeviceSpec, LineConfig, ListenerKind, ListenerSpec, WatchAllSpec, quote


def _asWritten(path: str) -> list[str]:
    return [normpath(path)]


def ptyLoop(lines: Sequence[LineConfig],
            hops: Callable[[str], list[str]] = _asWritten) -> Optional[tuple[str, str]]:
    """
    A line whose device (a tty path) is the link of a pty: listener of its
    own, or of a line whose device leads back to it: what is typed on it
    goes to that pty, whose client hands it to the device again, for ever
    (one byte kept a core a quarter busy).  So with a remote device that is
    one of the gateway's own listeners (L{_ownListener}).  The first such
    line's name and why, or None.  C{hops}: a path, then those its symlinks
    lead to in turn (L{serialgw.config.paths.placeKeys}, which looks at the
    disk: each said by what its directory is); the first is where a pty:
    link is made.
    """
    links = {hops(spec.path)[0]: config.name for config in lines for spec in config.listeners
             if spec.kind is ListenerKind.PTY and spec.path}
    feeds: dict[str, Optional[tuple[str, str]]] = {}
    for config in lines:
        if config.device.kind == "tty" and config.device.path:
            line = next((links[hop] for hop in hops(config.device.path) if hop in links), None)
            feeds[config.name] = None if line is None else (line, "pty")
        elif config.device.remote:
            feeds[config.name] = _ownListener(config.device, lines)
    for start, first in feeds.items():
        chain, step = [start], first
        while step is not None and step[0] not in chain:
            chain.append(step[0])
            step = feeds.get(step[0])
        if step is not None and step[0] == start:
            device = dict((c.name, c.device) for c in lines)[start]
            path = quote(device.path if device.kind == "tty" else device.describe())
            how = first[1] if first is not None else ""
            ring = "".join(f", line {quote(a)}'s device is line {quote(b)}'s"
                           for a, b in zip(chain[1:], chain[2:] + [start], strict=True)) if len(chain) > 1 else ""
            if how == "pty":
                whose = "its own pty: listener" if len(chain) == 1 else f"line {quote(chain[1])}'s pty: listener"
                return start, f"{path} is the link of {whose}{ring}: {_LOOP}"
            whose = "its own listener" if len(chain) == 1 else f"line {quote(chain[1])}'s listener"
            return start, f"{path} is {whose} {quote(how)}{ring}: {_LOOP}"
    return None


_LOOP = "what is written to it would come back to it for ever (a loop)"
# Addresses of this host a remote device may name, and the families they reach.
_LOOPBACK = {"localhost": {4, 6}, "ip6-localhost": {6}, "ip6-loopback": {6}, "::1": {6}}


def _ownListener(device: DeviceSpec, lines: Sequence[LineConfig]) -> Optional[tuple[str, str]]:
    """
    The line and listener (as written) of this gateway's that a remote
    device reaches, if it is one: a unix: socket at a unix listener's path;
    a TCP address on a listener's port that is that listener's own
    (loopback where it listens on every address or on loopback; the very
    address it is bound to).  A TLS listener is no loop (no handshake).
    """
    for config in lines:
        for spec in config.listeners:
            if _isListener(device, spec):
                return config.name, spec.text
    return None


def _isListener(device: DeviceSpec, spec: ListenerSpec) -> bool:
    """Whether a remote device dials that listener (see L{_ownListener})."""
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        return False
    if device.kind == "unix":
        return bool(spec.path) and normpath(spec.path) == normpath(device.path)
    return not spec.path and spec.port == device.port and _reaches(device.host, spec.host)


def watchAllLoop(lines: Sequence[LineConfig], watchAll: Optional[WatchAllSpec]) -> Optional[tuple[str, str]]:
    """
    A line whose remote device dials a watch-all listener that watches it:
    each line of its output comes back to it, prefixed, for ever (one line
    typed on another line kept the gateway at 99 % of a core).  Its name
    and why, or None.
    """
    if watchAll is None:
        return None
    for config in lines:
        if not (config.device.remote and any(fnmatchcase(config.name, p) for p in watchAll.lines)):
            continue
        for spec in watchAll.listeners:
            if _isListener(config.device, spec):
                return config.name, (f"{quote(config.device.describe())} is the watch-all listener {quote(spec.text)}, "
                                     f"which watches line {quote(config.name)}: each line of its output would come "
                                     "back to it from there, prefixed, for ever (a loop)")
    return None


def _reaches(host: str, bound: str) -> bool:
    """Whether a connection to C{host} reaches a listener bound to C{bound} ('' and 0.0.0.0: every IPv4 address; '::': every address)."""
    if host == bound:
        return True
    families = _LOOPBACK.get(host) or _hostFamilies(host)
    if not families:
        return False
    listens = {"": {4}, "0.0.0.0": {4}, "::": {4, 6}, "::1": {6}}.get(bound) or ({4} if bound.startswith("127.") else set())
    return bool(families & listens)


def _hostFamilies(host: str) -> set[int]:
    """The families of this host's loopback an address reaches: a loopback one, or the unspecified 0.0.0.0 and :: (Linux connects them to 127.0.0.1 and ::1); an IPv4-mapped one as its IPv4."""
    try:
        address: Union[IPv4Address, IPv6Address] = ip_address(host)
    except ValueError:
        return {4} if host.startswith("127.") else set()
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return {address.version} if address.is_loopback or address.is_unspecified else set()
