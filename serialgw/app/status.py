"""
The status endpoint (C{--status}): HTTP GET of C{/} answers JSON with every
line, its device and settings, its clients (address, role, protocol) and
its counters; C{/metrics} answers the same counters as Prometheus text
(through prometheus_client, with its process metrics), or OpenMetrics for
a scraper that asks for it (serialgw.app.metricsformat).  What the pages
say is here; how they are served over HTTP (bounded connections, pages
rendered at most once a second, GET and HEAD only) is
L{serialgw.app.statushttp}'s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Iterator, Optional

from twisted.web.resource import Resource

from serialgw import __version__
from serialgw.app.metricsformat import OPENMETRICS_TYPE, TEXT_TYPE, MetricsFormats
from serialgw.app.slices import jsonParts, metricsParts
from serialgw.app.statushttp import StatusChannel, StatusSite, ThrottledPage
from serialgw.app.statusroot import StatusRoot
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.clients.netconsole import NetconsoleClient
from serialgw.clients.tls import NAME_SHOWN
from serialgw.line.hub import Line


def clientProtocol(client: Any) -> str:
    """What a client speaks, for people: telnet, raw, netconsole, pty, ..., watch-all (a watcher's view of the line)."""
    name = type(client).__name__
    return "watch-all" if name == "LineTap" else name.replace("Client", "").lower()


def suspendedDrops(client: Any) -> int:
    """Device output dropped for an RFC 2217 client while it suspended it (FLOWCONTROL-SUSPEND)."""
    return int(client.comPort.dropped) if client.comPort is not None else 0


def unsentDrops(client: Any) -> int:
    """Device output a netconsole could not send (the kernel refused it; its remote name not resolved yet)."""
    return int(client.unsentBytes) if isinstance(client, NetconsoleClient) else 0


def logDrops(client: Any) -> int:
    """What a console log or a file: output's writer, behind a disk slow or stuck, did not take: bytes (typed ones too)."""
    if isinstance(client, ConsoleLog):
        return client.droppedAll()
    return int(client.behindDropped) if isinstance(client, FileClient) else 0


def shownUser(user: Optional[str]) -> Optional[str]:
    """A client's person for the page: a certificate's CN is its peer's to choose, so a long one is cut as the log cuts it."""
    if user is None or len(user) <= NAME_SHOWN:
        return user
    return f"{user[:NAME_SHOWN]}... ({len(user)} characters)"


def clientStatus(client: Any) -> dict[str, Any]:
    status = {
        "peer": client.peer,
        "user": shownUser(client.user),
        "role": client.role.value,
        "protocol": clientProtocol(client),
        "rfc2217": client.comPort is not None,
        "dropped": (client.guard.dropped if client.guard is not None else 0) + suspendedDrops(client)
        + unsentDrops(client) + logDrops(client),
    }
    if isinstance(client, NetconsoleClient):
        # Datagrams of output the kernel refused to send; datagrams for the device it dropped (its count).
        status["unsent_datagrams"] = client.unsent
        status["kernel_dropped_datagrams"] = client.dropped
    return status


def sshStatus(ssh: Any) -> dict[str, Any]:
    """The SSH listener's people: how many, and who has a password (their names; never a hash)."""
    return {"people": len(ssh.users), "with_password": sorted(u.name for u in ssh.users if u.password)}


def stamp(seconds: Optional[float]) -> Optional[str]:
    """A time on the reactor's clock (seconds since the epoch) for the page: ISO 8601 in UTC, to the millisecond; None: null."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lingerStatus(line: Line) -> Optional[dict[str, Any]]:
    """An on-demand line's on-demand-linger: its seconds, and while the device lingers open, when it is to close."""
    if not line.onDemand:
        return None
    return {"seconds": line.linger, "lingering_until": stamp(line.lingeringUntil)}


def idleStatus(line: Line) -> Optional[dict[str, Any]]:
    """A line's idle-timeout: its seconds, since when the device has been quiet (its last activity, or its coming up),
    when the idle-string is due (null while it would not be sent: the device down or closed on demand), how many
    were sent."""
    idle = line.idle
    if idle is None:
        return None
    quiet = line.up and bool(line.device.up)
    return {"seconds": idle.timeout, "idle_since": stamp(idle.last) if quiet else None,
            "idle_string_due": stamp(idle.last + idle.timeout) if quiet else None, "idle_strings_sent": idle.sent}


def initStatus(line: Line) -> Optional[dict[str, Any]]:
    """
    A line's init-command: running now (holding people's typing), its
    state, the pid of its process while that lives (a run killed lives on
    until reaped, its SIGKILL up to KILL_WAIT s away: it was said to be no
    process then), runs started, how the last one ended, when a run held by
    the bound on starts is due (or null).
    """
    if not line.initCommand and line.initLast is None:
        return None
    run, last = line.initRun, line.initLast
    living = run if run is not None else last if last is not None and not last.ended.called else None
    if run is not None:
        state = "running"
    elif living is not None:
        state = "killed, waiting for its exit"
    elif line.initHeldUntil is not None:
        state = "held"
    else:
        state = "ended" if last is not None else "not run yet"
    return {"command": line.initCommand or None, "running": run is not None, "state": state,
            "pid": living.pid if living is not None else None, "runs": line.initRuns,
            "last_outcome": last.outcome if last is not None else None, "held_until": stamp(line.initHeldUntil)}


def lineStatus(line: Line) -> dict[str, Any]:
    device = line.device
    settings = line.settings
    return {
        "name": line.name,
        "device": device.name,
        "up": bool(device.up),
        # The process whose UUCP lock keeps the device from us, or null.
        "locked_by": device.lockedBy,
        "down_reason": device.downReason,
        # Opened only while a client is connected (down_reason "closed (on demand)" meanwhile).
        "on_demand": line.onDemand,
        # Its on-demand-linger (null: not on demand): lingering_until, while the device stays open after the last left.
        "on_demand_linger": lingerStatus(line),
        # Its idle-timeout (null: none): idle_since, idle_string_due (null while the device is down or closed).
        "idle_timeout": idleStatus(line),
        # Its init-command (null: none): running, pid, runs, last_outcome, held_until.
        "init_command": initStatus(line),
        # A tcp:, unix: or telnet: console carries neither (null): the far end's port has its own.
        "settings": None if device.noSettings else {
            "baudrate": settings.baudrate,
            "bytesize": settings.bytesize,
            "parity": settings.parity,
            "stopbits": settings.stopbits,
            "xonxoff": settings.xonxoff,
            "rtscts": settings.rtscts,
            "text": settings.describe(),
        },
        # (None where no DTR or RTS reaches: a console that carries no settings, a pty: device.)
        "modem_lines": None if device.noSettings or getattr(device, "noModemLines", "") else dict(line.modemLines),
        "clients": [clientStatus(client) for client in line.clients],
        "bytes_to_device": line.bytesToDevice,
        "bytes_from_device": line.bytesFromDevice,
        "breaks": device.breaks,
        "dropped_while_down": device.dropped,
        "refused_bytes": line.refused,
    }


class StatusResource(Resource):
    """The JSON page: each of the service's C{lines}, with its listeners (C{listenersOf(name)})."""

    isLeaf = True

    def __init__(self, service: Any) -> None:
        Resource.__init__(self)
        self.service = service

    def renderParts(self, request: Any) -> Iterator[bytes]:
        """The page a slice of lines a part (L{ThrottledPage} takes one a turn)."""
        request.setHeader(b"content-type", b"application/json")
        service = self.service
        return jsonParts(__version__, list(service.lines.values()),
                         lambda line: dict(lineStatus(line), listeners=service.listenersOf(line.name)),
                         {"ssh": sshStatus(service.ssh)} if service.ssh is not None else None)

    def render_GET(self, request: Any) -> bytes:
        return b"".join(self.renderParts(request))


class MetricsCollector:
    """
    The gateway's counters for prometheus_client, read when scraped: nothing
    is counted twice, and the data path keeps only the counters it has.
    """

    def __init__(self, service: Any) -> None:
        self.service = service

    def describe(self) -> list[Any]:
        # Nothing to check at registration time (collect() reads live objects).
        return []

    def collect(self) -> Any:
        return self.families(list(self.service.lines.values()))

    def families(self, lines: list[Line]) -> list[Any]:
        """The gateway's metric families, with the samples of C{lines}."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        toDevice = CounterMetricFamily("serialgw_device_written_bytes",
                                       "Bytes from clients (and open/close-strings) the device has taken",
                                       labels=["line"])
        fromDevice = CounterMetricFamily("serialgw_device_read_bytes", "Bytes read from the device", labels=["line"])
        breaks = CounterMetricFamily("serialgw_breaks", "BREAKs sent on the line", labels=["line"])
        up = GaugeMetricFamily("serialgw_device_up", "1 while the line's device is open, 0 while it is down",
                               labels=["line"])
        resting = GaugeMetricFamily("serialgw_device_closed_on_demand", "1 while the line's device is closed "
                                    "because no client is connected (on-demand), else 0", labels=["line"])
        reopens = CounterMetricFamily("serialgw_device_reopens", "Times the device came back after going down",
                                      labels=["line"])
        clients = GaugeMetricFamily("serialgw_clients", "Clients attached, by role and protocol",
                                    labels=["line", "role", "protocol"])
        dropped = CounterMetricFamily("serialgw_client_dropped_bytes",
                                      "Device output dropped for clients that could not keep up, by listener policy",
                                      labels=["line", "policy"])
        downDropped = CounterMetricFamily("serialgw_device_down_dropped_bytes",
                                          "Client input dropped because the device was down, or queued for it "
                                          "when it went away or was closed", labels=["line"])
        refused = CounterMetricFamily("serialgw_refused_bytes", "Input from read-only clients, not written",
                                      labels=["line"])
        for line in lines:
            name = line.name
            device = line.device
            toDevice.add_metric([name], line.bytesToDevice)
            fromDevice.add_metric([name], line.bytesFromDevice)
            breaks.add_metric([name], device.breaks)
            up.add_metric([name], 1 if device.up else 0)
            resting.add_metric([name], 1 if line.closedOnDemand else 0)
            reopens.add_metric([name], line.reopens)
            counts: dict[tuple[str, str], int] = {}
            policies = dict(line.droppedGone)
            for client in line.clients:
                key = (client.role.value, clientProtocol(client))
                counts[key] = counts.get(key, 0) + 1
                guard = client.guard
                if guard is not None:
                    policies[guard.policy] = policies.get(guard.policy, 0) + guard.dropped
                if suspendedDrops(client):
                    policies["suspended"] = policies.get("suspended", 0) + suspendedDrops(client)
                if unsentDrops(client):
                    policies["unsent"] = policies.get("unsent", 0) + unsentDrops(client)
                if logDrops(client):
                    policies["log"] = policies.get("log", 0) + logDrops(client)
            for (role, protocol), count in sorted(counts.items()):
                clients.add_metric([name, role, protocol], count)
            for policy, count in sorted(policies.items()):
                dropped.add_metric([name, policy], count)
            downDropped.add_metric([name], device.dropped)
            refused.add_metric([name], line.refused)
        return [toDevice, fromDevice, breaks, up, resting, reopens, clients, dropped, downDropped, refused]


def metricsRegistry(service: Any) -> Any:
    """A registry of the gateway's metrics and the process's (CPU, memory, descriptors, GC)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(service))  # type: ignore[arg-type]
    processCollectors(registry)
    return registry


def processCollectors(registry: Any) -> Any:
    """The process's metrics (CPU, memory, descriptors, GC) in C{registry}."""
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def statusSite(service: Any, clock: Any) -> Any:
    """
    The status endpoint's site: every path through L{StatusChannel} (GET and
    HEAD only, bounded requests, timeouts, bounded pipelining) and rendered
    at most once a second (L{ThrottledPage}); no access-log line per GET
    (scrapers come every few seconds).
    """
    root = statusRoot(service)
    for name, child in list(root.children.items()):
        if isinstance(child, MetricsFormats):
            # (Each format its own renderings: one rendering answers every request waiting for it.)
            child.text, child.openMetrics = (ThrottledPage(page, clock) for page in child.pages())
        else:
            root.putChild(name, ThrottledPage(child, clock))
    site = StatusSite(root, timeout=StatusChannel.idleTimeout, reactor=clock)
    site.protocol = StatusChannel  # type: ignore[assignment]
    return site


def statusRoot(service: Any) -> Resource:
    """C{/}: the JSON page; C{/metrics}: Prometheus text, or OpenMetrics when asked for."""
    root = StatusRoot()
    root.putChild(b"", StatusResource(service))
    root.putChild(b"metrics", MetricsFormats(MetricsPage(service), MetricsPage(service, openMetrics=True)))
    return root


class MetricsPage(Resource):
    """
    Prometheus text, rendered on the reactor thread: the collector reads the
    lines where they live (no thread reading them while the reactor changes
    them), a slice of lines a part, and L{ThrottledPage} bounds how often.
    The same text as C{generate_latest(metricsRegistry(service))}.
    """

    isLeaf = True

    def __init__(self, service: Any, openMetrics: bool = False) -> None:
        from prometheus_client import CollectorRegistry

        Resource.__init__(self)
        self.service = service
        self.openMetrics = openMetrics
        self.collector = MetricsCollector(service)
        self.process = processCollectors(CollectorRegistry(auto_describe=False))

    def renderParts(self, request: Any) -> Iterator[bytes]:
        request.setHeader(b"content-type", OPENMETRICS_TYPE if self.openMetrics else TEXT_TYPE)
        request.setHeader(b"vary", b"Accept")
        return metricsParts(self.collector.families, list(self.service.lines.values()), self.process,
                            self.openMetrics)

    def render_GET(self, request: Any) -> bytes:
        return b"".join(self.renderParts(request))
