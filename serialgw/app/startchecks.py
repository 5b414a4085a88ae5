"""
What the start and a reload refuse or warn of before opening anything,
each said alike by C{--check} (L{serialgw.app.check}): a unix socket name
too long, a lock directory that is none, a listener that lets anyone type
on a line whose write / read name people.
"""

from __future__ import annotations

import os
from typing import Optional

from serialgw.config.optionsreach import systemdUnix
from serialgw.config.specs import LineConfig, ListenerKind, ListenerSpec, describeUnix, quote, unixNameLimit

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
