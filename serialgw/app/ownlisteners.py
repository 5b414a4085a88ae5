"""
The gateway's own listeners, beside the lines': the status page (JSON,
/metrics), SSH (people and their keys; a reload changes them in place)
and the watch-all views, each opened at start for a L{GatewayService}
and closed with what it owns.

Apart from the service because none of them belongs to a line: a reload
of lines leaves them as they are (but SSH's people, L{reloadSSH}).
"""

from __future__ import annotations

import typing
from typing import Any, Optional

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from serialgw.app.binding import StartupError, listening, removeStaleSocket
from serialgw.app.listen import ListenerOpener
from serialgw.app.reload import namesBrief
from serialgw.clients.transports import describeAddress
from serialgw.config.endpointstrings import unixServerPath
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.people import SSHSpec
from serialgw.config.specs import LineConfig, isAbstract
from serialgw.line.hub import Line

log = Logger()


class ListeningGateway(typing.Protocol):
    """
    What its own listeners' openings use of the gateway (L{serialgw.app.service.GatewayService}):
    declared here, since the service imports this module.
    """

    reactor: Any
    configs: list[LineConfig]
    lines: dict[str, Line]
    listeners: ListenerOpener
    ssh: Optional[SSHSpec]
    # The listeners' ports and factories, as they listen.
    statusPort: Any
    sshPort: Any
    sshFactory: Any
    watchers: list[Any]
    watchAllPorts: list[Any]
    byNameFactories: list[Any]

    def _own(self, kind: str, thing: Any) -> None: ...


def serveStatus(service: ListeningGateway, description: str) -> None:
    from serialgw.app.status import statusSite

    site = statusSite(service, service.reactor)
    endpoint = serverFromString(service.reactor, description)
    path = unixServerPath(description)
    if path is not None and not isAbstract(path):
        # As for a line's or watch-all's socket: a stale one replaced, a live
        # one named (Twisted said 'Address already in use' or 'Cannot acquire lock').
        removeStaleSocket(path, "status", owner="the status endpoint")
    service.statusPort = listening(endpoint, site, f"cannot serve status on {description!r}")
    service._own("closer", service.statusPort.stopListening)
    log.info("status page (JSON) on http://{address}/, Prometheus metrics on /metrics", address=describeAddress(service.statusPort.getHost()))


def serveSSH(service: ListeningGateway, spec: SSHSpec) -> None:
    from serialgw.clients.ssh import makeFactory
    from serialgw.clients.sshhostkey import SSHError

    try:
        factory = makeFactory(spec, lambda: service.lines, service.reactor)
        endpoint = serverFromString(service.reactor, spec.listener.endpoint)
    except SSHError as e:
        raise StartupError(str(e)) from None
    except Exception as e:
        raise StartupError(f"bad SSH listener {spec.listener.text!r}: {e}") from None
    service.sshPort = listening(endpoint, factory, f"cannot listen for SSH on {spec.listener.text!r}")
    service.sshFactory = factory
    service._own("closer", service.sshPort.stopListening)
    withPassword = sum(1 for u in spec.users if u.password)
    log.info("ssh listener ready on {address} for {count} user(s){passwords}; {hint}",
             address=describeAddress(service.sshPort.getHost()), count=len(spec.users),
             passwords=f" ({withPassword} with a password: user name PERSON+LINE)" if withPassword else "",
             hint=sshHint(service.sshPort.getHost(), list(service.lines)))
    for problem in spec.problems:  # (a person's keys file: theirs, not the start's)
        log.warn("ssh: {problem}", problem=problem)


def sshHint(address: Any, names: list[str]) -> str:
    """How to connect to the SSH listener at C{address} (as a line's listeners say it): its port, the line's name."""
    user = names[0] if len(names) == 1 else "LINE"
    which = f" (LINE: a line's name, e.g. {names[0]})" if len(names) > 1 else ""
    if not isinstance(address, (IPv4Address, IPv6Address)):
        return "ssh -p PORT LINE@HOST"  # (a systemd socket's address, a unix socket: said as before)
    host = "localhost" if address.host in ("0.0.0.0", "::") else address.host
    return f"connect with: ssh -p {address.port} {user}@{host}{which}"


def serveWatchAll(service: ListeningGateway, spec: ListenerSpec, patterns: tuple[str, ...]) -> None:
    from serialgw.clients.watchall import WatchAllFactory, matches

    if spec.path and not isAbstract(spec.path):
        removeStaleSocket(spec.path, "watch-all", owner="watch-all")
    try:
        endpoint = serverFromString(service.reactor, spec.endpoint)
    except Exception as e:
        raise StartupError(f"watch-all: bad listener {spec.text or spec.endpoint!r}: {e}") from None
    factory = WatchAllFactory(spec, patterns, lambda: service.lines, service.reactor)
    port = listening(endpoint, factory, f"watch-all: cannot listen on {spec.text or spec.endpoint!r}")
    service.watchers.append(factory)
    # (Its watchers are closed after the lines' devices: see Closing._closeAll, app/closing.py.)
    service._own("closer", port.stopListening)
    service.watchAllPorts.append(port)
    log.info("watch-all listener ready on {address} for lines {patterns}",
             address=describeAddress(port.getHost()), patterns=" ".join(patterns))
    if not any(matches(name, patterns) for name in service.lines):
        log.warn("watch-all: lines {patterns} match no line (of {names}): its watchers see nothing "
                 "until a reload adds one", patterns=" ".join(patterns), names=namesBrief(list(service.lines)))


def serveByName(service: ListeningGateway, spec: ListenerSpec, patterns: tuple[str, ...]) -> None:
    """A [by-name] listener: its clients name the line they want (see serialgw.clients.byname)."""
    from serialgw.clients.byname import ByNameFactory
    from serialgw.clients.tlsfiles import TLSError
    from serialgw.clients.watchall import matches

    if spec.path and not isAbstract(spec.path):
        removeStaleSocket(spec.path, "by-name", owner="by-name")
    # (Each line's own listeners bind its by-name clients: see serialgw.clients.bynameown.throughOwn.)
    factory = ByNameFactory(spec, patterns, lambda: service.lines, service.reactor, service.listeners.handshakes,
                            service.listeners.signatureOf,
                            listeners=lambda: {config.name: config.listeners for config in service.configs})
    try:
        endpoint, wrapped = service.listeners.endpoint("by-name", factory.spec, factory)
    except TLSError as e:
        raise StartupError(f"by-name: listener {spec.text or spec.endpoint!r}: {e}") from None
    port = listening(endpoint, wrapped, f"by-name: cannot listen on {spec.text or spec.endpoint!r}")
    factory.port = port
    service.byNameFactories.append(factory)
    service._own("closer", port.stopListening)
    service._own("closer", factory.closeAll)
    log.info("by-name listener ready on {address} for lines {patterns}",
             address=describeAddress(port.getHost()), patterns=" ".join(patterns))
    if not any(matches(name, patterns) for name in service.lines):
        log.warn("by-name: lines {patterns} match no line (of {names}): its clients find no console "
                 "until a reload adds one", patterns=" ".join(patterns), names=namesBrief(list(service.lines)))


def reloadSSH(service: ListeningGateway, ssh: Optional[SSHSpec]) -> None:
    """New people, keys and listener options (ro, allow= reach those connected) for the running SSH listener (a reload; None: [ssh] removed, nobody); its address and host key stay until a restart."""
    if service.ssh is None or service.sshPort is None:
        if ssh is not None:
            log.warn("reload: [ssh] added: restart the gateway to apply it")
        return
    if ssh is None:  # (Its keys went with it: they let nobody in, sessions cut, until a restart.)
        log.warn("reload: [ssh] removed: nobody may log in over SSH from now on; restart the gateway to close its listener")
    elif ssh.hostKey != service.ssh.hostKey:
        log.warn("reload: [ssh] host-key changed: restart the gateway to apply it")
    listener = service.ssh.listener if ssh is None or ssh.listener == service.ssh.listener else service.sshFactory.setListener(ssh.listener)
    users = ssh.users if ssh is not None else ()
    service.sshFactory.setUsers(users)
    for problem in ssh.problems if ssh is not None else ():
        log.warn("reload: ssh: {problem}", problem=problem)
    gateway = service.sshFactory.gateway
    most = ssh.sessionsPerPerson if ssh is not None else service.ssh.sessionsPerPerson
    if most != gateway.sessionsPerPerson:
        # (Those over it stay: it holds the sessions that start from now on.)
        log.info("reload: [ssh] sessions-per-person {most} (was {was}), for the sessions that start from now on",
                 most=most, was=gateway.sessionsPerPerson)
        gateway.sessionsPerPerson = most
    service.ssh = attrs.evolve(service.ssh, users=users, listener=listener, sessionsPerPerson=most)
    log.info("reload: {count} SSH user(s)", count=len(users))
