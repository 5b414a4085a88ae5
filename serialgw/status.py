"""
The status endpoint (C{--status}): HTTP GET of C{/} answers JSON with every
line, its device and settings, its clients (address, role, protocol) and
its counters; C{/metrics} answers the same counters as Prometheus text
(through prometheus_client, with its process metrics).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource

from serialgw import __version__


def clientProtocol(client: Any) -> str:
    """What a client speaks, for people: telnet, raw, netconsole, pty, ..."""
    return type(client).__name__.replace("Client", "").lower()


def lineStatus(line: Any) -> dict[str, Any]:
    device = line.device
    settings = line.settings
    return {
        "name": line.name,
        "device": getattr(getattr(device, "port", None), "name", None) or getattr(device, "name", ""),
        "up": bool(getattr(device, "up", True)),
        "down_reason": getattr(device, "downReason", None),
        "settings": {
            "baudrate": settings.baudrate,
            "bytesize": settings.bytesize,
            "parity": settings.parity,
            "stopbits": settings.stopbits,
            "xonxoff": settings.xonxoff,
            "rtscts": settings.rtscts,
            "text": settings.describe(),
        },
        "modem_lines": dict(line.modemLines),
        "clients": [
            {
                "peer": client.peer,
                "role": client.role.value,
                "protocol": clientProtocol(client),
                "rfc2217": getattr(client, "comPort", None) is not None,
                "dropped": getattr(getattr(client, "guard", None), "dropped", 0),
            }
            for client in line.clients
        ],
        "bytes_to_device": line.bytesToDevice,
        "bytes_from_device": line.bytesFromDevice,
        "breaks": getattr(device, "breaks", 0),
        "dropped_while_down": getattr(device, "dropped", 0),
        "refused_bytes": line.refused,
    }


class StatusResource(Resource):
    isLeaf = True

    def __init__(self, service: Any) -> None:
        Resource.__init__(self)
        self.service = service

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        body = {
            "serialgw": __version__,
            "lines": [lineStatus(line) for line in self.service.lines.values()],
        }
        return json.dumps(body, indent=2).encode() + b"\n"


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
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        toDevice = CounterMetricFamily("serialgw_device_written_bytes", "Bytes from clients written to the device",
                                       labels=["line"])
        fromDevice = CounterMetricFamily("serialgw_device_read_bytes", "Bytes read from the device", labels=["line"])
        breaks = CounterMetricFamily("serialgw_breaks", "BREAKs sent on the line", labels=["line"])
        up = GaugeMetricFamily("serialgw_device_up", "1 while the line's device is open, 0 while it is down",
                               labels=["line"])
        reopens = CounterMetricFamily("serialgw_device_reopens", "Times the device came back after going down",
                                      labels=["line"])
        clients = GaugeMetricFamily("serialgw_clients", "Clients attached, by role and protocol",
                                    labels=["line", "role", "protocol"])
        dropped = CounterMetricFamily("serialgw_client_dropped_bytes",
                                      "Device output dropped for clients that could not keep up, by listener policy",
                                      labels=["line", "policy"])
        downDropped = CounterMetricFamily("serialgw_device_down_dropped_bytes",
                                          "Client input dropped because the device was down", labels=["line"])
        refused = CounterMetricFamily("serialgw_refused_bytes", "Input from read-only clients, not written",
                                      labels=["line"])
        for line in list(self.service.lines.values()):
            name = line.name
            device = line.device
            toDevice.add_metric([name], line.bytesToDevice)
            fromDevice.add_metric([name], line.bytesFromDevice)
            breaks.add_metric([name], getattr(device, "breaks", 0))
            up.add_metric([name], 1 if getattr(device, "up", True) else 0)
            reopens.add_metric([name], line.reopens)
            counts: dict[tuple[str, str], int] = {}
            policies = dict(line.droppedGone)
            for client in line.clients:
                key = (client.role.value, clientProtocol(client))
                counts[key] = counts.get(key, 0) + 1
                guard = getattr(client, "guard", None)
                if guard is not None:
                    policies[guard.policy] = policies.get(guard.policy, 0) + guard.dropped
            for (role, protocol), count in sorted(counts.items()):
                clients.add_metric([name, role, protocol], count)
            for policy, count in sorted(policies.items()):
                dropped.add_metric([name, policy], count)
            downDropped.add_metric([name], getattr(device, "dropped", 0))
            refused.add_metric([name], line.refused)
        return [toDevice, fromDevice, breaks, up, reopens, clients, dropped, downDropped, refused]


def metricsRegistry(service: Any) -> Any:
    """A registry of the gateway's metrics and the process's (CPU, memory, descriptors, GC)."""
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(service))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def statusSite(service: Any) -> Any:
    """The status endpoint's site: no access-log line per GET (scrapers come every few seconds)."""
    from twisted.web.server import Site

    class QuietSite(Site):
        noisy = False

        def log(self, request: Any) -> None:
            pass

    return QuietSite(statusRoot(service))


def statusRoot(service: Any) -> Resource:
    """C{/}: the JSON page; C{/metrics}: Prometheus text."""
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"", StatusResource(service))
    root.putChild(b"metrics", MetricsResource(metricsRegistry(service)))
    return root
