"""
C{systemd:} listeners against the sockets systemd passed us ($LISTEN_FDS,
$LISTEN_FDNAMES): an index or a name that picks none, or a socket of
another domain than the string says.  Asked when the options are read
(L{serialgw.app.tap}), when a line's listener opens (L{serialgw.app.listen},
a reload's too) and by C{--check} (L{serialgw.app.check}).
"""

from __future__ import annotations

import re
import socket
from typing import Any, Callable, Mapping, Optional

from serialgw.config.parsers import isDecimal
from serialgw.config.specs import describeUnix


def _fields(endpoint: str) -> tuple[list[str], dict[str, str]]:
    """A Twisted endpoint string's positional and named fields (C{\\:} escapes a colon)."""
    parts = [p.replace("\\:", ":") for p in re.split(r"(?<!\\):", endpoint)]
    positional = [p for p in parts if "=" not in p]
    named = dict(p.split("=", 1) for p in parts if "=" in p)
    return positional, named


_DOMAINS = {socket.AF_INET: "INET", socket.AF_INET6: "INET6", socket.AF_UNIX: "UNIX"}


def passedSocket(fd: int) -> Optional[tuple[str, str]]:
    """The domain (C{INET}, C{INET6}, C{UNIX}) and address of a socket passed in, or None (not one of those)."""
    try:
        sock = socket.socket(fileno=fd)  # its family read from the descriptor
    except OSError:
        return None
    try:
        domain, address = _DOMAINS.get(sock.family), sock.getsockname()
    except OSError:
        return None
    finally:
        sock.detach()
    if domain is None:
        return None
    if domain == "UNIX":
        return domain, describeUnix(address.decode(errors="replace") if isinstance(address, bytes) else address)
    return domain, f"[{address[0]}]:{address[1]}" if domain == "INET6" else f"{address[0]}:{address[1]}"


def systemdProblem(endpoint: str, environ: Optional[Mapping[str, str]] = None,
                   passed: Optional[Callable[[int], Optional[tuple[str, str]]]] = None) -> Optional[str]:
    """
    Why a C{systemd:} endpoint string names no socket systemd passed us
    ($LISTEN_FDS, $LISTEN_FDNAMES), or one of another domain (Twisted reads
    an INET6 socket's addresses as INET's: garbage in logs, the status page
    and allow=), or None (also for other endpoints).  C{passed} tells a
    descriptor's domain and address (L{passedSocket} for our own sockets,
    when C{environ} is not given).
    """
    positional, named = _fields(endpoint)
    if not positional or positional[0].lower() != "systemd":
        return None
    fds: Any
    if environ is None:
        # What Twisted's systemd: parser took from the environment when it
        # was imported (reading it removes LISTEN_PID and LISTEN_FDS).
        from twisted.internet.endpoints import _SystemdParser

        fds = _SystemdParser._sddaemon
    else:
        from twisted.python.systemd import ListenFDs

        fds = ListenFDs.fromEnvironment(dict(environ))
    if len(positional) > 2:
        named.setdefault("index", positional[2])  # systemd:DOMAIN:INDEX, Twisted's positional form
    descriptors = fds.inheritedDescriptors()
    if not descriptors:
        return ("systemd passed no sockets: start the gateway through its .socket unit "
                "(each ListenStream= there is one socket, index=0 the first)")
    if "index" in named:
        index = named["index"]
        if not isDecimal(index) or int(index) >= len(descriptors):
            return (f"index={index}: systemd passed {len(descriptors)} socket(s), "
                    f"index=0 to index={len(descriptors) - 1}")
        picked, fd = f"index={index}", descriptors[int(index)]
    elif "name" in named:
        names = fds.inheritedNamedDescriptors()
        if named["name"] not in names:
            return (f"name={named['name']}: the sockets systemd passed are named "
                    f"{', '.join(sorted(names))} (FileDescriptorName= in the .socket unit)")
        picked, fd = f"name={named['name']}", names[named["name"]]
    else:
        return "name=NAME or index=N is needed to pick one of the sockets systemd passed"
    domain = named.get("domain", positional[1] if len(positional) > 1 else "")
    found = (passed or (passedSocket if environ is None else lambda fd: None))(fd)
    if found is not None and domain and found[0] != domain:
        why = " (ListenStream=PORT is an INET6 socket, taking IPv4 too)" if found[0] == "INET6" else ""
        return (f"domain={domain}, but the socket systemd passed as {picked} is {'a' if found[0] == 'UNIX' else 'an'} "
                f"{found[0]} one, {found[1]}{why}: write domain={found[0]}")
    return None
