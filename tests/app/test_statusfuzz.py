"""
The status endpoint's HTTP parser attacked with hypothesis: random request
bytes (good and bad request lines, methods, headers, bodies, pipelining,
long lines, junk) split at random points, under a Clock: nothing raised or
logged as a failure, the same answers however the bytes are split, each
answer an HTTP response, every timer gone at the end.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.status import statusSite
from serialgw.line.hub import Line
from tests.fakes import CallObserver, Lines, RecordingDevice

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

REQUEST_LINES = st.sampled_from([
    b"GET / HTTP/1.1", b"HEAD /status.json HTTP/1.1", b"GET /status.json HTTP/1.0", b"GET /nope HTTP/1.1",
    b"GET /status.json HTTP/1.1", b"POST / HTTP/1.1", b"PUT /x HTTP/1.1", b"get / HTTP/1.1", b"GET", b"GET / HTTP/9.9",
    b"GET /%ff%00 HTTP/1.1", b"GET  /  HTTP/1.1", b"GET / HTTP/1.1 extra", b"", b"\x00\xff", b"GET /" + b"a" * 9000 + b" HTTP/1.1",
])
HEADERS = st.sampled_from([
    b"Host: x", b"Content-Length: 0", b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: x",
    b"Content-Length: 99999999999999999999", b"Transfer-Encoding: chunked", b"Connection: close",
    b"Connection: keep-alive", b"Expect: 100-continue", b" folded", b"NoColon", b":", b"Accept: */*",
    b"X: " + b"y" * 9000, b"Host: \xff\xfe",
])
ENDS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])
REQUEST = st.tuples(REQUEST_LINES, st.lists(HEADERS, max_size=4), ENDS, st.sampled_from([b"", b"", b"hello", b"0\r\n\r\n"])).map(
    lambda r: r[0] + b"\r\n" + b"".join(h + b"\r\n" for h in r[1]) + r[2] + r[3])
requests = st.lists(st.one_of(REQUEST, REQUEST, REQUEST, st.binary(max_size=20)), max_size=6).map(b"".join)


class TCPLikeTransport(StringTransport):
    """A StringTransport whose unregisterProducer is as a TCP transport's: nothing to do when none is registered."""

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


def answers(data: bytes) -> bytes:
    """The answers with their Date headers (the wall clock's) taken out (/metrics is not asked for: its process figures change)."""
    return re.sub(rb"(?i)date: [^\r\n]*\r\n", b"", data)


class HTTPFuzzTests(SynchronousTestCase):
    def exchange(self, data: bytes, points: list[int]) -> bytes:
        clock = Clock()
        line = Line("rack1", RecordingDevice(), clock=clock)
        site = statusSite(Lines(line), clock=clock)
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = TCPLikeTransport()
        channel.makeConnection(transport)
        marks = sorted({p % (len(data) + 1) for p in points} | {len(data)})
        last = 0
        for mark in marks:
            if not transport.disconnecting:
                channel.dataReceived(data[last:mark])
            last = mark
        # Renderings (at most one a second), deadlines.
        for _ in range(40):
            clock.advance(1)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(site.connections, 0)
        return answers(transport.value())

    @PROPERTY
    @given(requests, st.lists(st.integers(min_value=0), max_size=8))
    def test_anyBytesAnySplit(self, data: bytes, points: list[int]) -> None:
        """Random request bytes in random reads: no exception, no failure logged, the same answers as in one read, starting as an HTTP response, every timer gone, the connection uncounted."""
        failures: list[object] = []

        def failed(event: LogEvent) -> None:
            if "log_failure" in event:
                failures.append(event["log_failure"])

        observer = CallObserver(failed)
        globalLogPublisher.addObserver(observer)
        try:
            split = self.exchange(data, points)
            whole = self.exchange(data, [])
        finally:
            globalLogPublisher.removeObserver(observer)
        self.assertEqual(failures, [])
        self.assertEqual(split, whole)
        if whole:
            self.assertRegex(whole[:13], rb"^HTTP/1\.[01] [1-5]\d\d")
