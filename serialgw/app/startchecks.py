"""
What the start and a reload refuse or warn of before opening anything,
each said alike by C{--check} (L{serialgw.app.check}): a unix socket name
too long, a lock directory that is none, a listener that lets anyone type
on a line whose write / read name people, two listeners on one port or
path (L{Claims}).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Optional, Sequence

from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.optionsreach import systemdUnix
from serialgw.config.specs import LineConfig, describeUnix, isAbstract, quote, unixNameLimit

# Why a listener passes a line's write / read by (see pastRights).
PAST_RIGHTS = ("knows no person: whoever connects there types, whatever the line's write / read say (they name the "
               "people of SSH keys and TLS client certificates); give it ro, or TLS with ca=")


def pastRights(line: LineConfig, spec: ListenerSpec) -> bool:
    """
    Whether C{spec} lets whoever reaches it type on C{line} though the
    line's write / read name who may: a writable TCP listener that asks
    for no client certificate (a unix socket's file mode says who connects).
    """
    return ((line.rights.write is not None or line.rights.read is not None) and spec.kind is ListenerKind.LISTEN
            and not spec.readOnly and not spec.path and not systemdUnix(spec.endpoint)
            and not (spec.tls is not None and spec.tls.ca))


def unixNameProblem(path: str) -> Optional[str]:
    """Why C{path} cannot name a unix socket (too long: bind() and connect() would say "path too long"), or None."""
    size, limit = len(os.fsencode(path)), unixNameLimit(path)
    if size <= limit:
        return None
    return f"unix socket {quote(describeUnix(path))} is {size} bytes, past the {limit} of a unix socket name: give a shorter path"


def unixDeviceProblem(config: LineConfig) -> Optional[str]:
    """Why a line's C{unix:} device cannot be dialled (its path too long), as a start would say it; or None."""
    problem = unixNameProblem(config.device.path) if config.device.kind == "unix" else None
    return None if problem is None else f"line {config.name!r}: device {quote(config.device.describe())}: {problem}"


def lockDirProblem(line: LineConfig, writable: bool = False) -> Optional[str]:
    """
    Why a local tty's UUCP lock cannot be made in its lock-dir (not a
    directory; with C{writable}, not writable by this process), or None.
    --check asks only the first (it may run as another user); the start
    and a reload ask both: such a line would stay down for good.
    """
    if line.device.kind != "tty" or not line.lock:
        return None
    if not os.path.isdir(line.lockDir):
        return (f"lock-dir {quote(line.lockDir)} is not a directory: the UUCP lock for {quote(line.device.path)} cannot be made "
                "(set lock-dir, or lock = false)")
    if writable and not os.access(line.lockDir, os.W_OK | os.X_OK):
        return (f"lock-dir {quote(line.lockDir)} is not writable: the UUCP lock for {quote(line.device.path)} cannot be made "
                "(set lock-dir, or lock = false)")
    return None


_IPV4_WILDCARDS = ("", "0.0.0.0")


def listenerKey(spec: ListenerSpec) -> Optional[tuple[str, str, str]]:
    """
    What a listener takes for itself: C{("tcp", interface, port)},
    C{("udp", interface, port)} or C{("path", path, "")}; None for what
    takes nothing exclusive (port 0, dial-outs, stdio, systemd sockets).
    """
    if spec.kind is ListenerKind.UDP and spec.udp is not None:
        return ("udp", asBound(spec.udp.sourceHost), str(spec.udp.sourcePort)) if spec.udp.sourcePort else None
    if spec.kind in (ListenerKind.PIPE, ListenerKind.PTY):
        return ("path", placed(spec.path), "") if spec.path else None
    if spec.kind is not ListenerKind.LISTEN:
        return None
    # tcp:, tcp6:, unix: and tls: listeners carry what Twisted will bind
    # (serialgw.config.listeners); systemd: sockets are systemd's.
    if spec.path:
        return ("path", placed(spec.path), "")
    return ("tcp", asBound(spec.host), str(spec.port)) if spec.port else None


def placed(path: str) -> str:
    """
    A path the gateway makes (a unix socket, a pty's link, a FIFO) as where
    it will be: its directory's symlinks followed, its own name not (the
    bind or the link makes that name).  Compared as written,
    'unix:/srv/gw/a.sock' beside 'unix:/run/gw/a.sock' with /run/gw a link
    to /srv/gw passed --check, and the start failed at the second bind
    ("... one of this gateway's own sockets already (... --check names
    which)").  An abstract name as it is.
    """
    if isAbstract(path):
        return path
    return os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))


def asBound(host: str) -> str:
    """
    An interface as the kernel binds it, one spelling for one address:
    localhost (any case) 127.0.0.1, over tcp6: too (Twisted binds a name
    over IPv4); an address as ipaddress writes it, an IPv4-mapped one as
    its IPv4 ('0:0:0:0:0:0:0:1' is '::1', '::ffff:127.0.0.1' 127.0.0.1:
    the kernel refuses the second bind of each).  Compared as written,
    'interface=localhost' beside 'interface=127.0.0.1' on one port passed
    --check, and the start failed at the second bind.  One with a scope
    (fe80::1%eth0), or no address, as written.
    """
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _clash(a: tuple[str, str, str], b: tuple[str, str, str]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "path":
        return os.path.normpath(a[1]) == os.path.normpath(b[1])
    return a[2] == b[2] and _sameAddresses(a[1], b[1])


def _sameAddresses(a: str, b: str) -> bool:
    """
    Whether two interfaces (as bound) on one port take an address in
    common, as the kernel sees it: '::' (Twisted's tcp6: leaves IPv6-only
    off) takes every address of both families; an IPv4 wildcard (a bare
    port, no interface=, 0.0.0.0) every IPv4 address and no IPv6 one: the
    kernel binds 0.0.0.0 and '::1' (or a public IPv6 address) on one port
    side by side, which was refused as a clash.
    """
    if a == b or "::" in (a, b):
        return True
    if a in _IPV4_WILDCARDS:
        return ":" not in b
    if b in _IPV4_WILDCARDS:
        return ":" not in a
    return False


class Claims:
    """
    What listeners (and pty: devices' links) take for themselves, by what
    can clash: a path, or a protocol's port (any interface); each compared
    only with its own kind (a farm of 5000 lines took 40 s comparing every
    listener with every other).  A clash is appended to C{errors}, said as
    --check says it.  No I/O but a path's directory looked at (L{placed}).
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.taken: dict[tuple[str, str], list[tuple[tuple[str, str, str], str]]] = {}

    def claim(self, key: tuple[str, str, str], owner: str, thing: str) -> None:
        bucket = self.taken.setdefault((key[0], os.path.normpath(key[1]) if key[0] == "path" else key[2]), [])
        for other, otherOwner in bucket:
            if _clash(key, other):
                what = f"{key[0].upper()} port {key[2]}" if key[0] != "path" else f"path {quote(key[1])}"
                self.errors.append(f"{owner}: {thing} takes {what}, as {otherOwner} already does")
                return
        bucket.append((key, f"{owner}, {thing}"))

    def device(self, line: LineConfig) -> None:
        """A pty: device's link: the gateway makes a symlink there, as for a pty: listener."""
        if line.device.kind == "pty" and line.device.path:
            self.claim(("path", placed(line.device.path), ""), f"line {quote(line.name)}",
                       f"device {quote(line.device.describe())}")

    def listener(self, spec: ListenerSpec, owner: str) -> None:
        key = listenerKey(spec)
        if key is not None:
            self.claim(key, owner, f"listener {quote(spec.text or spec.endpoint)}")


def lineClashes(lines: Sequence[LineConfig]) -> list[tuple[str, str]]:
    """
    The lines' clashes with each other (two listeners on one port or path,
    a pty: device's link where another's listener is), each with the name
    of the line that comes second, as --check says them (the start and a
    reload refuse them: a bind would have said only that the port is
    taken).  No I/O but the paths' directories looked at (L{placed}).
    """
    clashes: list[tuple[str, str]] = []
    claims = Claims([])
    for line in lines:
        claims.device(line)
        for spec in line.listeners:
            claims.listener(spec, f"line {quote(line.name)}")
        clashes += [(line.name, error) for error in claims.errors]
        claims.errors.clear()
    return clashes


def firstClash(lines: Sequence[LineConfig]) -> Optional[tuple[str, str, str]]:
    """
    The lines' first clash (L{lineClashes}) as the start and a reload
    refuse it: the name of the line that comes second, its key that takes
    the port or path (C{"listen"} or C{"device"}: where in the file), and
    the message, with how many more there are; None when there is none.
    """
    clashes = lineClashes(lines)
    if not clashes:
        return None
    name, clash = clashes[0]
    key = "device" if clash.startswith(f"line {quote(name)}: device") else "listen"
    more = f" (and {len(clashes) - 1} more such clash(es): --check names them)" if len(clashes) > 1 else ""
    return name, key, f"{clash}{more}"


def ownClash(lines: Sequence[LineConfig], own: Sequence[tuple[str, ListenerSpec]]) -> Optional[str]:
    """
    The first clash of the gateway's own listeners (C{own}: the status
    endpoint, the SSH listener, watch-all's, by-name's, each with its name
    as --check says it) with the lines' or with each other, as --check
    says it (the start refuses it: the bind said only "one of this
    gateway's own listeners already"); None.  No I/O but the paths'
    directories looked at.
    """
    errors: list[str] = []
    claims = Claims(errors)
    for line in lines:
        claims.device(line)
        for spec in line.listeners:
            claims.listener(spec, f"line {quote(line.name)}")
    errors.clear()  # (the lines' own clashes: firstClash)
    for owner, spec in own:
        claims.listener(spec, owner)
        if errors:
            return errors[0]
    return None
