"""
Tests for serialgw.app.slices: the status pages of a large farm rendered a
slice of lines a turn of the reactor, the same bytes as in one go.  Work is
counted (lines described a turn), never timed.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw import __version__
from serialgw.app import status
from serialgw.app.slices import SLICE_CLIENTS, SLICE_LINES, jsonParts, metricsParts, slices
from serialgw.app.status import MetricsCollector, lineStatus, statusSite
from serialgw.clients.raw import RawClient
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import Lines, RecordingDevice, oneTurn


def farm(clock: Clock, count: int, clients: int = 1) -> Lines:
    """C{count} lines, each with C{clients} raw clients and some output."""
    lines = []
    for i in range(count):
        line = Line(f"rack{i}", RecordingDevice(), clock=clock)
        line.deviceDataReceived(b"x" * i)
        for c in range(clients):
            client = RawClient(line, Role.WRITER, listener=parseListener("raw+4444"), clock=clock)
            client.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1000 + c)))
        lines.append(line)
    # Their arrivals told (a second after each came).
    clock.advance(1)
    return Lines(*lines)


class SliceTests(SynchronousTestCase):
    def test_slices(self) -> None:
        """16 lines a slice; fewer when their clients reach 128 (a line with more is a slice of its own)."""
        clock = Clock()
        sizes = [len(part) for part in slices(farm(clock, 70).lines.values())]
        self.assertEqual(sizes, [SLICE_LINES] * 4 + [6])
        crowded = farm(clock, 5, clients=50).lines.values()
        self.assertEqual([len(part) for part in slices(crowded)], [3, 2])
        self.assertEqual([len(part) for part in slices(farm(clock, 2, clients=200).lines.values())], [1, 1])
        self.assertEqual((SLICE_LINES, SLICE_CLIENTS), (16, 128))

    def test_jsonAsInOneGo(self) -> None:
        """The JSON page in parts is json.dumps(indent=2) of the whole, for 0, 1, 32, 33 and 70 lines."""
        for count in (0, 1, 32, 33, 70):
            lines = list(farm(Clock(), count).lines.values())
            whole = json.dumps({"serialgw": __version__, "lines": [lineStatus(line) for line in lines]}, indent=2)
            parts = list(jsonParts(__version__, lines, lineStatus))
            self.assertEqual(b"".join(parts), whole.encode() + b"\n")
            self.assertEqual(len(parts), max(1, -(-count // SLICE_LINES)))

    def test_metricsAsInOneGo(self) -> None:
        """The gateway's Prometheus families in parts are generate_latest's text of them whole (the process's after them)."""
        for count in (0, 1, 70):
            service = farm(Clock(), count, clients=2)
            whole = CollectorRegistry(auto_describe=False)
            whole.register(MetricsCollector(service))  # type: ignore[arg-type]
            parts = list(metricsParts(MetricsCollector(service).families, list(service.lines.values()),
                                      CollectorRegistry(auto_describe=False)))
            self.assertEqual(b"".join(parts), generate_latest(whole))
            self.assertEqual(len(parts), max(1, -(-count // SLICE_LINES)) + 1)

    def test_openMetricsAsInOneGo(self) -> None:
        """In OpenMetrics the parts are its generate_latest's text of the whole: one # EOF, at the end."""
        from prometheus_client.openmetrics.exposition import generate_latest as openMetricsText

        for count in (0, 1, 70):
            service = farm(Clock(), count, clients=2)
            whole = CollectorRegistry(auto_describe=False)
            whole.register(MetricsCollector(service))  # type: ignore[arg-type]
            parts = list(metricsParts(MetricsCollector(service).families, list(service.lines.values()),
                                      CollectorRegistry(auto_describe=False), openMetrics=True))
            self.assertEqual(b"".join(parts), openMetricsText(whole))
            self.assertEqual(b"".join(parts).count(b"# EOF"), 1)


class TurnTests(SynchronousTestCase):
    """The status endpoint takes a part of a page a turn: the other lines are served in between."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.service = farm(self.clock, 100)
        self.site = statusSite(self.service, clock=self.clock)
        self.described: list[str] = []

        def counting(line: Any) -> Any:
            self.described.append(line.name)
            return lineStatus(line)

        self.patch(status, "lineStatus", counting)
        families = MetricsCollector.families

        def countingFamilies(collector: Any, lines: list[Any]) -> Any:
            self.described.extend(line.name for line in lines)
            return families(collector, lines)

        self.patch(MetricsCollector, "families", countingFamilies)

    def get(self, path: bytes) -> tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        return channel, transport

    def turns(self, transport: StringTransport) -> list[int]:
        """Lines described in the request's turn, then after each turn, until it is answered."""
        counts = [len(self.described)]
        while not transport.value():
            oneTurn(self.clock)
            counts.append(len(self.described))
        return counts

    def test_jsonPage(self) -> None:
        """GET / of 100 lines: 32 described in the request's turn, 16 each next turn, 4 the last, answered the turn after: the whole page."""
        _, transport = self.get(b"/")
        self.assertEqual(self.turns(transport), [32, 48, 64, 80, 96, 100, 100])
        body = json.loads(transport.value().split(b"\r\n\r\n", 1)[1])
        self.assertEqual([line["name"] for line in body["lines"]], [f"rack{i}" for i in range(100)])
        # Only the connection's own deadlines are left (a next request within 10 s, idle 30 s).
        self.assertEqual(sorted(call.getTime() for call in self.clock.getDelayedCalls()), [11.0, 31.0])

    def test_metricsPage(self) -> None:
        """GET /metrics of 100 lines: a slice of 16 lines a turn, two in the first; every line's samples there."""
        _, transport = self.get(b"/metrics")
        # (Then their text, then the process's metrics: a turn each.)
        self.assertEqual(self.turns(transport), [32, 48, 64, 80, 96, 100, 100, 100])
        text = transport.value().decode()
        self.assertIn('serialgw_device_read_bytes_total{line="rack99"} 99.0', text)
        self.assertEqual(text.count("# TYPE serialgw_device_read_bytes_total counter"), 1)
        self.assertIn("process_", text)

    def test_requestDuringRendering(self) -> None:
        """A request that comes while a page is being rendered waits for the next rendering (never older than the request): a second later."""
        _, first = self.get(b"/")
        _, second = self.get(b"/")
        self.assertEqual(self.turns(first), [32, 48, 64, 80, 96, 100, 100])
        self.assertEqual(second.value(), b"")
        self.clock.advance(1)
        self.assertTrue(second.value().startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(len(self.described), 200)

    def test_clientGoneMidRendering(self) -> None:
        """A client that goes while its page is rendered is not answered; the rendering ends, nothing left on the reactor."""
        channel, transport = self.get(b"/")
        channel.connectionLost(Failure(ConnectionDone()))
        for _ in range(7):
            oneTurn(self.clock)
        self.assertEqual(len(self.described), 100)
        self.assertEqual((transport.value(), self.clock.getDelayedCalls()), (b"", []))

    def test_firstGoneOthersAnswered(self) -> None:
        """Requests answered by one rendering: the one it was begun for goes meanwhile; the others get the page with its content type, not Twisted's text/html."""
        _, first = self.get(b"/")
        self.turns(first)
        gone, _ = self.get(b"/")
        _, waiting = self.get(b"/")
        # A second later: the next rendering begins, for both.
        self.clock.rightNow += 1
        oneTurn(self.clock)
        gone.connectionLost(Failure(ConnectionDone()))
        self.turns(waiting)
        head, body = waiting.value().split(b"\r\n\r\n", 1)
        self.assertIn(b"\r\nContent-Type: application/json\r\n", head + b"\r\n")
        self.assertEqual(len(json.loads(body)["lines"]), 100)
