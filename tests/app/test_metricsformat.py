"""
/metrics in the format the scraper asks for, with its exact Content-Type:
Prometheus text 0.0.4 by default, OpenMetrics 1.0 when the Accept header
prefers it (as Prometheus's does): counters' families named without
_total, their samples with it, and one # EOF at the end.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.metricsformat import MetricsFormats, wantsOpenMetrics
from serialgw.app.status import statusSite
from serialgw.app.statushttp import ThrottledPage
from serialgw.line.hub import Line
from tests.fakes import Lines, RecordingDevice

# What Prometheus 2.x and 3.x send (scrape_protocols by default).
PROMETHEUS_2 = (b"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROMETHEUS_3 = (b"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;"
                b"version=0.0.1;q=0.9,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.8,"
                b"text/plain;version=0.0.4;q=0.7,*/*;q=0.6")

COUNTERS = [("device_written_bytes", "Bytes from clients (and open/close-strings) the device has taken", 0),
            ("device_read_bytes", "Bytes read from the device", 5),
            ("breaks", "BREAKs sent on the line", 0)]


def families(openMetrics: bool) -> bytes:
    """The first families of the page, as each format writes them, for line rack1 after 5 bytes of output."""
    text = ""
    for name, help_, value in COUNTERS:
        family = f"serialgw_{name}" if openMetrics else f"serialgw_{name}_total"
        text += (f"# HELP {family} {help_}\n# TYPE {family} counter\n"
                 f'serialgw_{name}_total{{line="rack1"}} {value}.0\n')
    return (text + "# HELP serialgw_device_up 1 while the line's device is open, 0 while it is down\n"
                   "# TYPE serialgw_device_up gauge\n"
                   'serialgw_device_up{line="rack1"} 1.0\n').encode()


class MetricsFormatTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("rack1", RecordingDevice(), clock=self.clock)
        self.line.deviceDataReceived(b"12345")
        self.site = statusSite(Lines(self.line), clock=self.clock)
        self.channels: list[Any] = []

    def tearDown(self) -> None:
        for channel in self.channels:
            channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def get(self, accept: bytes = b"") -> tuple[list[bytes], bytes]:
        """The headers (Server and Date left out) and the body of GET /metrics with this Accept header."""
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        channel.makeConnection(transport)
        self.channels.append(channel)
        channel.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + (b"Accept: " + accept + b"\r\n" if accept else b"")
                             + b"\r\n")
        self.clock.advance(1)
        head, body = transport.value().split(b"\r\n\r\n", 1)
        headers = [h for h in head.split(b"\r\n") if not h.startswith((b"Server:", b"Date:"))]
        return headers, body

    def test_textByDefault(self) -> None:
        """No Accept, */*, text/plain or OpenMetrics 0.0.1 only: Prometheus text 0.0.4, said exactly, no # EOF."""
        for accept in (b"", b"*/*", b"text/plain", b"application/openmetrics-text;version=0.0.1",
                       b"application/openmetrics-text;q=0.4,text/plain;q=0.5", b"application/openmetrics-text;q=0"):
            headers, body = self.get(accept)
            self.assertEqual(headers, [b"HTTP/1.1 200 OK", b"Content-Type: text/plain; version=0.0.4; charset=utf-8",
                                       b"Vary: Accept", b"Content-Length: %d" % len(body)], accept)
            self.assertTrue(body.startswith(families(openMetrics=False)), body[:600])
            self.assertNotIn(b"# EOF", body)

    def test_openMetricsForPrometheus(self) -> None:
        """Prometheus's Accept header: OpenMetrics 1.0.0, counters' families without _total, one # EOF at the end."""
        for accept in (PROMETHEUS_2, PROMETHEUS_3, b"application/openmetrics-text"):
            headers, body = self.get(accept)
            self.assertEqual(headers, [b"HTTP/1.1 200 OK",
                                       b"Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8",
                                       b"Vary: Accept", b"Content-Length: %d" % len(body)], accept)
            self.assertTrue(body.startswith(families(openMetrics=True)), body[:600])
            self.assertTrue(body.endswith(b"\n# EOF\n"), body[-100:])
            self.assertEqual(body.count(b"# EOF"), 1)
            # The strict parser of the spec's reference library reads it whole.
            parsed = {f.name: f for f in text_string_to_metric_families(body.decode())}
            self.assertEqual(parsed["serialgw_device_read_bytes"].type, "counter")
            self.assertEqual([(s.name, s.value) for s in parsed["serialgw_device_read_bytes"].samples],
                             [("serialgw_device_read_bytes_total", 5.0)])
            self.assertIn("process_cpu_seconds", parsed)

    def test_eachFormatThrottled(self) -> None:
        """Each format is its own page rendered at most once a second; asking for one never answers with the other."""
        formats = self.site.resource.children[b"metrics"]
        self.assertIsInstance(formats, MetricsFormats)
        self.assertTrue(all(isinstance(page, ThrottledPage) for page in formats.pages()))
        for _ in range(3):
            self.assertIn(b"# EOF", self.get(PROMETHEUS_2)[1])
            self.assertNotIn(b"# EOF", self.get()[1])
        self.assertEqual([page.renders for page in formats.pages()], [3, 3])

    def test_acceptHeaders(self) -> None:
        """Which Accept headers prefer OpenMetrics: a 1.x version or none, above 0, at least text/plain's quality."""
        cases = {
            b"": False, b"*/*": False, b"text/plain;version=0.0.4": False, b"application/json": False,
            PROMETHEUS_2: True, PROMETHEUS_3: True, b"application/openmetrics-text": True,
            b"Application/OpenMetrics-Text; Version=1.0.0": True,
            b"application/openmetrics-text;version=0.0.1": False, b"application/openmetrics-text;version=2.0.0": False,
            b"application/openmetrics-text;q=0": False, b"application/openmetrics-text;q=zero": False,
            b"application/openmetrics-text;q=2": False, b"text/plain;q=0.5,application/openmetrics-text;q=0.5": True,
            b"text/plain,application/openmetrics-text;q=0.9": False, b",,;;=,": False, b"\xff\xfe": False,
        }
        for accept, wanted in cases.items():
            self.assertEqual(wantsOpenMetrics(accept), wanted, accept)
