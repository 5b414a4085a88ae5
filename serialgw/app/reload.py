"""
What a reload changes, and whether it can: the difference between two
configurations (lines removed, added, reopened because their device
changes, or retuned in place), and the checks that make a reload all or
nothing (every file it opens can be opened, every address it binds is free)
before anything running is touched.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Collection
from typing import Any, Callable, Optional

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure

from serialgw.app.binding import StartupError, listenAtOnce, removeStaleSocket
from serialgw.app.portholder import holds, listenHint
from serialgw.app.startchecks import unixNameProblem
from serialgw.clients.loglock import lockedElsewhere
from serialgw.clients.ptylink import keptInPlace
from serialgw.clients.streams import fifoPair
from serialgw.clients.tls import ServerContextFactory, clientOptions
from serialgw.clients.tlsfiles import TLSError
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.logspec import LogSpec
from serialgw.config.paths import NOT_FOLLOWED, notFollowed
from serialgw.config.specs import LineConfig, isAbstract, quote
from serialgw.devices.links import linkProblem

# Line names a reload's log line lists (a [defaults] change touches every
# line: 2000 names made a line of 16 KB); past them, a count.
REPORTED_NAMES = 5


def namesBrief(names: list[str]) -> str:
    """Line names for the reload's log line: all of a few, else the count, the first few and how many more."""
    if not names:
        return "none"
    if len(names) <= REPORTED_NAMES:
        return str(names)
    return f"{len(names)} lines: {names[:REPORTED_NAMES]} and {len(names) - REPORTED_NAMES} more"


def deviceOf(config: LineConfig) -> tuple[Any, ...]:
    """
    What in a line's configuration, changed, reopens its device (and
    cuts its sessions); every other change is applied to the running line.
    The lock settings only for a local tty: a pty made here and a console
    elsewhere take no lock (lock-dir changed in [defaults] reopened them all).
    """
    return (config.device, config.lock, config.lockDir) if config.device.kind == "tty" else (config.device,)


@attrs.frozen
class ReloadPlan:
    """What a reload does, by line name, and the listeners and logs it lets go of and opens."""

    removed: list[str]
    # Reopened: their device (or its lock) changes.
    changed: list[str]
    # Applied to the running line: its device and sessions stay.
    retuned: list[str]
    added: list[str]
    # Lines the same in both.
    kept: int
    opening: list[tuple[str, ListenerSpec]]
    releasing: list[tuple[str, ListenerSpec]]
    # A retuned line's listeners opened anew.
    reopened: dict[str, list[ListenerSpec]]
    # The console logs opened anew.
    logs: list[tuple[str, LogSpec]]


def planReload(configs: list[LineConfig], newConfigs: list[LineConfig]) -> ReloadPlan:
    """What a reload from C{configs} to C{newConfigs} changes."""
    old = {c.name: c for c in configs}
    new = {c.name: c for c in newConfigs}
    removed = [n for n in old if n not in new]
    different = [n for n in old if n in new and new[n] != old[n]]
    changed = [n for n in different if deviceOf(old[n]) != deviceOf(new[n])]
    retuned = [n for n in different if n not in changed]
    added = [n for n in new if n not in old]

    # What this reload binds anew, and what it lets go of.
    opening: list[tuple[str, ListenerSpec]] = []
    releasing: list[tuple[str, ListenerSpec]] = []
    reopened: dict[str, list[ListenerSpec]] = {}
    for name in changed + removed:
        releasing += [(name, spec) for spec in old[name].listeners]
    for name in changed + added:
        opening += [(name, spec) for spec in new[name].listeners]
    for name in retuned:
        gone, fresh = listenerChanges(old[name], new[name])
        releasing += [(name, spec) for spec in gone]
        opening += [(name, spec) for spec in fresh]
        reopened[name] = fresh
    logs: list[tuple[str, LogSpec]] = [
        (name, log) for name in changed + added + retuned
        if (log := new[name].log) is not None and (name not in retuned or log != old[name].log)]
    return ReloadPlan(removed=removed, changed=changed, retuned=retuned, added=added,
                      kept=len(old) - len(removed) - len(different), opening=opening, releasing=releasing,
                      reopened=reopened, logs=logs)


# Lines a reload opens in one turn of the reactor: one (a pty, its link,
# its listener) takes 1-5 ms, and a reload adding 1000 held every other
# line 3-5 s (see serialgw.app.applying).
LINES_PER_TURN = 8


def releasedPorts(keyed: dict[str, list[tuple[Any, tuple[str, Any]]]],
                  releasing: list[tuple[str, ListenerSpec]]) -> set[tuple[str, int]]:
    """
    The addresses and TCP ports of the listeners a reload lets go of
    (theirs to bind again), from what each line opened (C{keyed}).
    """
    ports: set[tuple[str, int]] = set()
    for name, spec in releasing:
        for key, (kind, thing) in keyed.get(name, []):
            if key == spec and kind == "port":
                host = thing[1].getHost()
                if isinstance(host, (IPv4Address, IPv6Address)):
                    ports.add((host.host, host.port))
    return ports


def boundPorts(keyed: dict[str, list[tuple[Any, tuple[str, Any]]]], *others: Any) -> set[tuple[str, int]]:
    """
    The addresses and TCP ports the lines' listeners (C{keyed}) and the
    gateway's own (C{others}, None for one it has not) are bound to: a
    port of the gateway's on another address is another program's.
    """
    hosts = [thing[1].getHost() for entries in keyed.values() for _, (kind, thing) in entries if kind == "port"]
    hosts += [port.getHost() for port in others if port is not None]
    return {(host.host, host.port) for host in hosts if isinstance(host, (IPv4Address, IPv6Address))}


def bindChecker(releasing: list[tuple[str, ListenerSpec]], ports: set[tuple[str, int]],
                endpoint: Callable[[str, ListenerSpec, Any], tuple[Any, Any]],
                probes: list[Any], bound: Collection[tuple[str, int]] = ()) -> Callable[[str, ListenerSpec], Optional[str]]:
    """
    Whether a listener a reload would bind can bind, one at a time (a
    reload checks a few a turn: see L{serialgw.app.applying}): it is bound
    now (and closed again once all are checked: C{probes}), unless one of
    ours that the reload lets go of holds its address (C{ports}: the
    addresses and TCP ports of the listeners it releases).  Its problem, or
    None; one of C{bound} (the addresses and TCP ports the gateway is bound
    to) in use is said to be the gateway's own, not another program's.
    """
    endpoints = {spec.endpoint for _, spec in releasing}
    paths = {spec.path for _, spec in releasing if spec.path}
    udpPorts = {spec.udp.sourcePort for _, spec in releasing if spec.udp is not None}

    def check(name: str, spec: ListenerSpec) -> Optional[str]:
        if spec.kind is ListenerKind.UDP and spec.udp is not None:
            if spec.udp.sourcePort and spec.udp.sourcePort not in udpPorts:
                return probeUDP(name, spec)
            return None
        problem = unixNameProblem(spec.path) if spec.kind is ListenerKind.CONNECT and spec.path else None
        if problem is not None:
            return f"line {name!r}: listener {quote(spec.text)}: {problem}"
        if spec.kind is ListenerKind.CONNECT and spec.tls is not None:
            # A dial-out binds nothing, but its TLS files are read when it is made.
            try:
                clientOptions(spec.tls)
            except TLSError as e:
                return f"line {name!r}: listener {spec.text!r}: {e}"
        if spec.kind is ListenerKind.LISTEN and spec.tls is not None and (spec.endpoint in endpoints or spec.path in paths):
            # Its address is the reload's own to let go of (a listener whose
            # TLS files were rewritten), so it is not bound; its files are read
            # all the same: unreadable ones closed the listener and opened none.
            try:
                ServerContextFactory(spec.tls)
            except TLSError as e:
                return f"line {name!r}: listener {spec.text!r}: {e}"
        if spec.kind is not ListenerKind.LISTEN or spec.endpoint in endpoints or spec.path in paths:
            return None
        try:
            if spec.path and not isAbstract(spec.path):
                removeStaleSocket(spec.path, name)
            quiet = Factory()
            quiet.noisy = False
            server, factory = endpoint(name, spec, quiet)
        except StartupError as e:
            return str(e)
        except TLSError as e:
            return f"line {name!r}: listener {spec.text!r}: {e}"
        result = listenAtOnce(server, factory)
        if result is None:
            return None
        if isinstance(result, Failure):
            why = result.value
            if isinstance(why, CannotListenError) and holds(ports, str(why.interface or ""), why.port):
                return None  # ours, let go of by this reload
            return f"line {name!r}: cannot listen on {spec.text or spec.endpoint!r}: {str(why).rstrip('.')}{listenHint(why, look=False, ours=bound)}"
        probes.append(result)
        return None

    return check


def listenerChanges(old: LineConfig, new: LineConfig) -> tuple[list[ListenerSpec], list[ListenerSpec]]:
    """
    A line's listeners that a reload closes, and those it opens (a new
    signature reopens none: see ListenerOpener.resign; a C{pty:} listener
    that keeps its link is changed in place: see L{keptInPlace}).
    """
    inPlace = keptInPlace(old.listeners, new.listeners)
    gone = [s for s in old.listeners if s not in new.listeners and s not in inPlace]
    fresh = [s for s in new.listeners if s not in old.listeners and s not in inPlace.values()]
    return list(dict.fromkeys(gone)), list(dict.fromkeys(fresh))


def sharesAddress(a: ListenerSpec, b: ListenerSpec, bound: frozenset[int] | set[int] = frozenset()) -> bool:
    """
    Whether listener C{b} binds what listener C{a} holds: the same TCP port
    (whatever the interface: Linux refuses 127.0.0.1:N while *:N listens;
    C{bound}, the ports C{a} is bound to, for a port 0), the same unix path,
    or both a socket systemd passed.
    """
    if a.kind is not ListenerKind.LISTEN or b.kind is not ListenerKind.LISTEN:
        return False
    if a.endpoint.startswith("systemd:") or b.endpoint.startswith("systemd:"):
        return a.endpoint.startswith("systemd:") and b.endpoint.startswith("systemd:")
    if a.path or b.path:
        return a.path == b.path
    return bool(b.port) and (b.port == a.port or b.port in bound)


def movedAway(gone: list[ListenerSpec], opening: list[tuple[str, ListenerSpec]],
              bound: Callable[[ListenerSpec], set[int]]) -> list[ListenerSpec]:
    """
    The listeners of C{gone} (a retuned line's, closed by the reload) whose
    address nothing the reload opens (C{opening}, every line's) binds: these
    are closed only once the line's new ones listen (see
    L{serialgw.app.applying}), a line never without a listener because its
    new one could not be opened.  The others must close first.
    """
    return [spec for spec in gone if spec.kind is ListenerKind.LISTEN and not spec.endpoint.startswith("systemd:")
            and not any(sharesAddress(spec, other, bound(spec)) for _, other in opening)]


def rekeyed(keyed: list[tuple[Any, tuple[str, Any]]], old: LineConfig, new: LineConfig) -> list[tuple[Any, tuple[str, Any]]]:
    """What a retuned line opened (see C{GatewayService._keyed}), a C{pty:} listener changed in place recorded under its new spec."""
    inPlace = keptInPlace(old.listeners, new.listeners)
    return [(inPlace.get(key, key), entry) for key, entry in keyed]


def writable(path: str) -> Optional[str]:
    """Why a file could not be opened for appending (created if missing), or None; nothing is made."""
    if os.path.isdir(path):
        return os.strerror(errno.EISDIR)  # writable by access(), not by open()
    if os.path.lexists(path):
        return None if os.access(path, os.W_OK) else os.strerror(errno.EACCES)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return os.strerror(errno.ENOENT)
    return None if os.access(directory, os.W_OK | os.X_OK) else os.strerror(errno.EACCES)


def checkFiles(opening: list[tuple[str, ListenerSpec]], logs: list[tuple[str, Any]],
                releasedLinks: frozenset[str] | set[str] = frozenset()) -> Optional[str]:
    """
    Whether the console logs, output files, FIFO pairs and client pty links
    a reload opens anew can be opened (as a bind is checked): the first
    problem, or None.  A pty link the reload lets go of is ours to replace.
    """
    for name, logSpec in logs:
        for path in [logSpec.path] + ([logSpec.path + ".typed"] if logSpec.typed != "off" else []):
            if os.path.lexists(path) and (os.path.islink(path) or not os.path.isfile(path)):
                why: Optional[str] = "it is not a regular file"  # ConsoleLog would refuse it
            else:
                why = writable(path) or lockedElsewhere(path)
            if why is not None:
                return f"line {name!r}: cannot open log {path!r}: {why}"
    for name, spec in opening:
        if spec.kind is ListenerKind.FILE:
            why = f"{quote(spec.path)} is {NOT_FOLLOWED}" if notFollowed(spec.path) else writable(spec.path)
        elif spec.kind is ListenerKind.PIPE:
            try:
                fdIn, fdOut = fifoPair(spec.path)
            except OSError as e:
                why = e.strerror or str(e)
            else:
                os.close(fdIn)
                if fdOut != fdIn:
                    os.close(fdOut)
                why = None
        elif spec.kind is ListenerKind.PTY and spec.path:
            directory = os.path.dirname(spec.path) or "."
            why = None if os.path.isdir(directory) else os.strerror(errno.ENOENT)
            if why is None and spec.path not in releasedLinks:
                why = linkProblem(spec.path)
        else:
            continue
        if why is not None:
            return f"line {name!r}: cannot open listener {spec.text or spec.path!r}: {why}"
    return None


def checkLocks(configs: list[LineConfig]) -> Optional[str]:
    """Whether the lines a reload opens anew can take their UUCP locks: the first problem, or None."""
    from serialgw.app.startchecks import lockDirProblem

    for config in configs:
        problem = lockDirProblem(config, writable=True)
        if problem is not None:
            return f"line {config.name!r}: {problem}"
    return None


def probeUDP(name: str, spec: ListenerSpec) -> Optional[str]:
    """Whether a netconsole listener's source port can be bound now."""
    assert spec.udp is not None
    host = spec.udp.sourceHost or ("::" if ":" in spec.udp.remoteHost else "0.0.0.0")
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((host, spec.udp.sourcePort))
    except OSError as e:
        return f"line {name!r}: cannot listen on {spec.text or spec.endpoint!r}: {e.strerror or e}"
    finally:
        probe.close()
    return None

