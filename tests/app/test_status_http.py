"""
The status endpoint's HTTP layer, for every path: GET and HEAD only, a
request size cap, header and idle timeouts under a Clock, bounded
pipelining for a client that does not read, and pages rendered at most
once a second however often they are polled; one real-socket check.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.status import statusSite
from serialgw.app.statushttp import StatusChannel, ThrottledPage
from serialgw.line.hub import Line
from tests.fakes import Lines, RecordingDevice
from tests.realio import Clients, connect, ptyLine, startedPty, startGateway
from tests.shortpaths import shortDirectory

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
REFUSED_405 = (b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")


class FullTransport(StringTransport):
    """A transport whose peer does not read: past C{limit} bytes it pauses its producer, as TCP would."""

    def __init__(self, limit: int) -> None:
        StringTransport.__init__(self)
        self.limit = limit

    def write(self, data: bytes) -> None:
        StringTransport.write(self, data)
        if len(self.value()) > self.limit and self.producer is not None and self.producerState == "producing":
            self.producer.pauseProducing()

    def drain(self) -> None:
        self.clear()
        if self.producer is not None:
            self.producer.resumeProducing()


def endOfInput(protocol: Any) -> None:
    """The peer shuts its side of the connection, as Twisted's TCP tells a protocol: readConnectionLost if it takes half-closes, else the connection is lost."""
    if IHalfCloseableProtocol.providedBy(protocol):
        protocol.readConnectionLost()
    else:
        protocol.connectionLost(Failure(ConnectionDone()))


class StatusHTTPTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("rack1", RecordingDevice(), clock=self.clock)
        self.site = statusSite(Lines(self.line), clock=self.clock)
        self.channels: list[StatusChannel] = []

    def connection(self, transport: Any = None, address: Any = None) -> tuple[StatusChannel, StringTransport]:
        address = address if address is not None else IPv4Address("TCP", "127.0.0.1", 5000)
        channel = self.site.buildProtocol(address)
        transport = transport if transport is not None else StringTransport()
        channel.makeConnection(transport)
        self.channels.append(channel)
        return channel, transport

    def answers(self, transport: StringTransport) -> int:
        return transport.value().count(b"HTTP/1.1 200 OK")

    def tearDown(self) -> None:
        for channel in self.channels:
            channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_otherMethodsRefusedBeforeBody(self) -> None:
        """POST, PUT, DELETE and made-up methods get 405 at the request line; the body is never read."""
        for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"BREW"):
            channel, transport = self.connection()
            channel.dataReceived(method + b" / HTTP/1.1\r\n")
            self.assertEqual(transport.value(), REFUSED_405)
            self.assertTrue(transport.disconnecting)
            channel.dataReceived(b"Content-Length: 67108864\r\n\r\n" + b"x" * 65536)
            self.assertEqual(transport.value(), REFUSED_405)
            self.assertEqual(channel.requests[0].content, None)

    def test_getWithBodyRefused(self) -> None:
        """A GET that announces a body (Content-Length or chunked) gets 413; nothing of it is kept."""
        for header in (b"Content-Length: 67108864", b"Transfer-Encoding: chunked"):
            channel, transport = self.connection()
            channel.dataReceived(b"GET / HTTP/1.1\r\n" + header + b"\r\n\r\n" + b"x" * 1000)
            self.assertEqual(transport.value(), REFUSED_405.replace(b"405 Method Not Allowed", b"413 Content Too Large"))
            self.assertTrue(transport.disconnecting)

    def test_headersCapped(self) -> None:
        """Request line and headers past 8 KiB: 400 and closed."""
        channel, transport = self.connection()
        channel.dataReceived(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 4000 + b"\r\n" + b"X-Pad: " + b"a" * 4200 + b"\r\n")
        self.assertEqual(transport.value(), b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(transport.disconnecting)

    def test_longLineCapped(self) -> None:
        """One line past 8 KiB (a request line, or a header), whole or in pieces, with or without its end: 400 and closed, as for many headers."""
        for chunks in ([b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"],
                       [b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"],
                       [b"GET / HTTP/1.1\r\nX-Big: ", b"a" * 4000, b"a" * 4000, b"a" * 4000]):
            channel, transport = self.connection()
            for chunk in chunks:
                channel.dataReceived(chunk)
            self.assertEqual(transport.value(), b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.assertTrue(transport.disconnecting)

    def test_tricklingClientCut(self) -> None:
        """A byte a second: the request is not whole 10 s after the connect, so the connection is cut; no answer."""
        channel, transport = self.connection()
        request = b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100
        for byte in request[:10]:
            channel.dataReceived(bytes((byte,)))
            self.clock.advance(0.999)
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(request[10:11])
        self.clock.advance(0.01)
        self.assertEqual((transport.value(), transport.disconnecting), (b"", True))

    def test_idleKeepAliveCut(self) -> None:
        """After an answer, a kept-alive connection with no whole new request for 10 s is cut."""
        channel, transport = self.connection()
        channel.dataReceived(GET)
        self.assertEqual(self.answers(transport), 1)
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_getAndHead(self) -> None:
        """GET / answers the JSON page; HEAD / the same headers without a body."""
        channel, transport = self.connection()
        channel.dataReceived(GET)
        head, body = transport.value().split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Type: application/json", head)
        self.assertEqual([line["name"] for line in json.loads(body)["lines"]], ["rack1"])
        self.clock.advance(1)
        channel, transport = self.connection()
        channel.dataReceived(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = transport.value().split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(body, b"")

    def test_pathsExact(self) -> None:
        """Only / and /metrics are pages (a query string aside): a further segment is a 404 saying which there are; //metrics answered the JSON page, /metrics/ and /metrics/x the metrics (Twisted's leaves take whatever follows them)."""
        def get(path: bytes) -> bytes:
            channel, transport = self.connection()
            channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.clock.advance(1)
            channel.connectionLost(Failure(ConnectionDone()))
            self.channels.remove(channel)
            return transport.value()

        notHere = b"not found: the status endpoint serves / (JSON) and /metrics only\n"
        for path in (b"//metrics", b"/metrics/", b"/metrics/x", b"//", b"/x", b"/%2fmetrics", b"/metrics%2f",
                     b"/metrics%2F", b"//metrics?x"):
            head, body = get(path).split(b"\r\n\r\n", 1)
            self.assertEqual((path, head.split(b"\r\n")[0], body), (path, b"HTTP/1.1 404 Not Found", notHere))
            self.assertIn(b"Content-Type: text/plain; charset=utf-8", head)
        for path in (b"/metrics", b"/metrics?x", b"/metrics?name[]=serialgw_up", b"/%6detrics"):
            answer = get(path)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), path)
            self.assertIn(b'serialgw_device_read_bytes_total{line="rack1"} 0.0', answer)
        for path in (b"/", b"/?x"):
            head, body = get(path).split(b"\r\n\r\n", 1)
            self.assertEqual(json.loads(body)["lines"][0]["name"], "rack1", path)
        channel, transport = self.connection()
        channel.dataReceived(b"HEAD //metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = transport.value().split(b"\r\n\r\n", 1)
        self.assertEqual((head.split(b"\r\n")[0], body), (b"HTTP/1.1 404 Not Found", b""))

    def test_listenersShown(self) -> None:
        """The JSON page shows each line's listeners as its gateway says them (GatewayService.listenersOf), after the line's other fields."""
        shown = [{"listener": "raw+tcp:0", "kind": "listen", "protocol": "raw", "address": "0.0.0.0:4001"}]
        self.site.resource.children[b""].page.service.listeners["rack1"] = shown  # type: ignore[attr-defined]
        channel, transport = self.connection()
        channel.dataReceived(GET)
        line = json.loads(transport.value().split(b"\r\n\r\n", 1)[1])["lines"][0]
        self.assertEqual((list(line)[-1], line["listeners"]), ("listeners", shown))

    def test_headNotHereLogsNothing(self) -> None:
        """HEAD of a path that is no page: a 404 saying the length its GET has, no body, and nothing logged (Twisted logged a line a request, 'Warning: HEAD request ... is returning a message body. I think I'll eat it.': 200 pipelined HEAD //x, 200 lines, no bound)."""
        channel, transport = self.connection()
        with capturedLogs() as events:
            channel.dataReceived(b"HEAD //metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        head, body = transport.value().split(b"\r\n\r\n", 1)
        self.assertEqual((head.split(b"\r\n")[0], transport.value().count(b"HTTP/1.1 404 Not Found")), (b"HTTP/1.1 404 Not Found", 3))
        self.assertIn(b"Content-Length: 65", head)
        self.assertEqual(transport.value().count(b"\r\n\r\n"), 3)
        self.assertTrue(transport.value().endswith(b"\r\n\r\n"))
        self.assertEqual([formatEvent(e) for e in events], [])

    def test_targetWithoutSlashNotHere(self) -> None:
        """A request target not beginning with / is no page of ours (404, saying which there are): Twisted drops its first byte whatever it is, so 'GET xmetrics' answered the metrics and 'GET x' the JSON page (seen with a raw request line: 200 and the metrics); an absolute URI is not taken either."""
        notHere = b"not found: the status endpoint serves / (JSON) and /metrics only\n"
        for target in (b"xmetrics", b"x", b"metrics", b"?", b"http://x/metrics", b"x/metrics"):
            channel, transport = self.connection()
            channel.dataReceived(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            self.clock.advance(1)
            head, body = transport.value().split(b"\r\n\r\n", 1)
            self.assertEqual((target, head.split(b"\r\n")[0], body), (target, b"HTTP/1.1 404 Not Found", notHere))

    def test_halfClosedClientAnswered(self) -> None:
        """A client that sends its request and shuts its side (printf ... | socat, nc -N) is answered, then closed, its answer waiting for the page's next rendering too (Twisted's HTTPChannel took the end of its input for the connection's: that request was answered to nobody, seen live with socat and HTTP/1.1); one that shuts its side with no whole request is closed at once."""
        first, _ = self.connection()
        first.dataReceived(GET)
        channel, transport = self.connection()
        channel.dataReceived(GET)
        self.assertEqual(self.answers(transport), 0)
        endOfInput(channel)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertEqual((self.answers(transport), transport.disconnecting), (1, True))
        for sent in (b"", b"GET / HTTP/1.1\r\nHost:"):
            other, transport = self.connection()
            other.dataReceived(sent)
            endOfInput(other)
            self.assertEqual((transport.value(), transport.disconnecting), (b"", True))

    def test_pipelinedBeforeHalfCloseAllAnswered(self) -> None:
        """Requests pipelined before the client shuts its side are all answered, in order, then the connection closed; a request left unfinished at the end is not waited for (only the first was answered: the half-close made the connection not persistent, so it closed after that one)."""
        for tail, answered in ((b"", 3), (b"GET /metrics HTTP/1.1\r\nHo", 3)):
            channel, transport = self.connection()
            channel.dataReceived(GET + b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                                 + tail)
            endOfInput(channel)
            for _ in range(3):
                self.clock.advance(1)  # (/ is rendered at most once a second: GET / and HEAD / wait for theirs)
            heads = [part.split(b"\r\n", 1)[0] for part in transport.value().split(b"HTTP/1.1 ")[1:]]
            self.assertEqual((heads, transport.disconnecting), ([b"200 OK"] * answered, True))
            self.assertIn(b"serialgw_device_read_bytes_total", transport.value())

    def test_renderedAtMostOnceASecond(self) -> None:
        """100 polls of each page within a second: rendered once at once, once more for all the others a second later, never stale."""
        pages = dict(self.site.resource.children)
        self.assertEqual(sorted(pages), [b"", b"metrics"])
        # /metrics: the Prometheus text's page (OpenMetrics has its own: test_metricsformat).
        pages[b"metrics"] = pages[b"metrics"].text  # type: ignore[attr-defined]
        self.assertTrue(all(isinstance(page, ThrottledPage) for page in pages.values()))
        self.site.maxConnections = self.site.maxPerAddress = 200  # all waiting at once (the bounds are tested below)
        transports = []
        for i in range(100):
            for path in (b"/", b"/metrics"):
                channel, transport = self.connection()
                channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                transports.append(transport)
            if i == 0:
                self.line.deviceDataReceived(b"12345")
            self.clock.advance(0.009)
        self.assertEqual([page.renders for page in pages.values()], [1, 1])  # type: ignore[attr-defined]
        self.assertEqual([self.answers(t) for t in transports[:4]], [1, 1, 0, 0])
        self.clock.advance(0.11)
        self.assertEqual([page.renders for page in pages.values()], [2, 2])  # type: ignore[attr-defined]
        self.assertEqual(sum(self.answers(t) for t in transports), 200)
        bodies = {t.value().split(b"\r\n\r\n", 1)[1] for t in transports[2::2]}
        self.assertEqual(len(bodies), 1)
        self.assertEqual(json.loads(bodies.pop())["lines"][0]["bytes_from_device"], 5)
        self.assertIn(b'serialgw_device_read_bytes_total{line="rack1"} 5.0', transports[3].value())

    def test_pipeliningBounded(self) -> None:
        """A client that pipelines 2000 GETs and reads nothing gets one answer at a time, and is not read, until it reads; then cut."""
        transport = FullTransport(limit=100)
        channel, _ = self.connection(transport)
        channel.dataReceived(GET * 2000)
        self.assertEqual((self.answers(transport), transport.producerState), (1, "paused"))
        self.clock.advance(1)
        self.assertEqual((self.answers(transport), transport.producerState), (1, "paused"))
        transport.drain()
        self.assertEqual((self.answers(transport), transport.producerState), (1, "paused"))
        # Not reading for 30 s: cut.
        self.clock.advance(29.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_connectionsBounded(self) -> None:
        """64 connections at once; the 65th and later are closed at accept (one log line a minute); one leaving makes room."""
        site: Any = self.site
        for n in range(64):
            self.connection(address=IPv4Address("TCP", f"192.0.2.{n}", 5000))
        address = IPv4Address("TCP", "198.51.100.1", 6000)
        with capturedLogs() as events:
            self.assertEqual([site.buildProtocol(address) for _ in range(3)], [None, None, None])
            self.clock.advance(59)
            self.assertIsNone(site.buildProtocol(address))
            self.clock.advance(1)
            self.assertIsNone(site.buildProtocol(address))
        self.assertEqual([formatEvent(e) for e in events if "refused" in e["log_format"]], [
            "status: connection from 198.51.100.1:6000 refused: 64 open already (1 refused so far)",
            "status: connection from 198.51.100.1:6000 refused: 64 open already (5 refused so far)",
        ])
        self.channels.pop().connectionLost(Failure(ConnectionDone()))
        self.assertEqual(site.connections, 63)
        channel, transport = self.connection(address=address)
        channel.dataReceived(GET)
        self.assertEqual(self.answers(transport), 1)
        self.assertIsNone(site.buildProtocol(address))

    def test_connectionsPerAddress(self) -> None:
        """One address holds at most 8 of the 64 places (an IPv4-mapped one is that address); more from it are closed at accept, logged once a minute for that address; others still get in."""
        site: Any = self.site
        mine = [self.connection(address=IPv4Address("TCP", "192.0.2.66", port))[0] for port in range(1, 9)]
        with capturedLogs() as events:
            self.assertIsNone(site.buildProtocol(IPv4Address("TCP", "192.0.2.66", 9)))
            self.assertIsNone(site.buildProtocol(IPv6Address("TCP", "::ffff:192.0.2.66", 10)))
            self.clock.advance(30)
            self.assertIsNone(site.buildProtocol(IPv4Address("TCP", "192.0.2.66", 11)))
            channel, transport = self.connection(address=IPv4Address("TCP", "192.0.2.77", 1))
            channel.dataReceived(GET)
            self.assertEqual(self.answers(transport), 1)
            self.clock.advance(30)
            self.assertIsNone(site.buildProtocol(IPv4Address("TCP", "192.0.2.66", 12)))
        self.assertEqual([formatEvent(e) for e in events if e.get("peer") == "192.0.2.66"], [
            "status: connection from 192.0.2.66 refused: 8 open from there already (at most 8 of 64)",
            "2 log messages about 192.0.2.66 left out in the last minute (over 1 a minute)",
            "status: connection from 192.0.2.66 refused: 8 open from there already (at most 8 of 64)",
        ])
        self.assertEqual((site.connections, site.sources.bySource), (9, {"192.0.2.66": 8, "192.0.2.77": 1}))
        mine[0].connectionLost(Failure(ConnectionDone()))
        self.connection(address=IPv4Address("TCP", "192.0.2.66", 13))
        self.assertEqual(site.sources.bySource, {"192.0.2.66": 8, "192.0.2.77": 1})

    def test_slowlorisFromOneAddress(self) -> None:
        """A client that keeps every place it may have, trickling headers and reconnecting each time it is cut, holds 8 places: another address is answered all along."""
        site: Any = self.site
        ports = iter(range(1, 1001))
        held: list[tuple[StatusChannel, StringTransport]] = []
        answered = refused = 0
        for second in range(60):
            self.reap()
            held = [(c, t) for c, t in held if not t.disconnecting]
            while True:
                protocol = site.buildProtocol(IPv4Address("TCP", "192.0.2.66", next(ports)))
                if protocol is None:
                    refused += 1
                    break
                transport = StringTransport()
                protocol.makeConnection(transport)
                self.channels.append(protocol)
                held.append((protocol, transport))
            for channel, _ in held:
                channel.dataReceived(b"GET / HTTP/1.1\r\n"[second % 10:][:1])
            channel, transport = self.connection(address=IPv4Address("TCP", "198.51.100.1", second))
            channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.clock.advance(1)
            answered += self.answers(transport)
            self.assertEqual(site.sources.of("192.0.2.66"), 8)
        self.assertEqual((answered, refused), (60, 60))
        # Each cut after 10 s: the attacker had 8 connections, then 8 more every 10 s.
        self.assertEqual(next(ports), 8 * 6 + 60 + 1)

    def reap(self) -> None:
        """Connections the site closed are gone (a StringTransport only marks them)."""
        for channel in list(self.channels):
            if channel.transport.disconnecting:
                self.channels.remove(channel)
                channel.connectionLost(Failure(ConnectionDone()))

class StatusSocketTests(TestCase):
    timeout = 30

    async def test_realSocket(self) -> None:
        """On a real socket: GET answers, POST gets 405 at once without its body being sent."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty), status="tcp:0:interface=127.0.0.1")
        number = service.statusPort.getHost().port
        client = await connect(number)
        client.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # type: ignore[union-attr]
        await client.closed
        self.assertTrue(client.received.data.startswith(b"HTTP/1.1 200 OK"))
        poster = await connect(number)
        poster.transport.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")  # type: ignore[union-attr]
        await poster.closed
        self.assertEqual(poster.received.data, REFUSED_405)

    async def test_perAddressOnRealSocket(self) -> None:
        """On a real socket: 8 idle connections from 127.0.0.1 are kept and answered; a 9th from there is closed at once without a byte."""
        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty), status="tcp:0:interface=127.0.0.1")
        number = service.statusPort.getHost().port
        clients = Clients()
        # (A Deferred: Twisted 22.10's trial never ran a coroutine given to addCleanup.)
        self.addCleanup(lambda: defer.ensureDeferred(clients.close()))
        held = [await clients.connect(number) for _ in range(8)]
        ninth = await clients.connect(number)
        await ninth.closed
        self.assertEqual((ninth.received.data, [c.closed.called for c in held]), (b"", [False] * 8))
        # Each answered and closed by the gateway (so its side is gone too when the test ends).
        for client in held:
            client.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # type: ignore[union-attr]
        for client in held:
            await client.closed
        self.assertEqual([c.received.data[:15] for c in held], [b"HTTP/1.1 200 OK"] * 8)

    def test_unixPathHeldSaid(self) -> None:
        """--status unix:PATH where another socket of this process listens (a line's, watch-all's) is refused saying so (Twisted said 'Address already in use' or 'Cannot acquire lock'), the socket left in place."""
        import os
        import socket
        import stat

        from serialgw.app.binding import StartupError
        from serialgw.app.service import GatewayService

        directory = shortDirectory(self)
        path = os.path.join(directory, "s.sock")
        bound = socket.socket(socket.AF_UNIX)
        bound.bind(path)
        bound.listen(1)
        self.addCleanup(bound.close)
        pty = startedPty(self)
        service = GatewayService([ptyLine(pty)], status=f"unix:{path}")
        self.addCleanup(service.stopService)
        with self.assertRaises(StartupError) as caught:
            service.startService()
        self.assertEqual(str(caught.exception), f"the status endpoint: {path!r} is one of this gateway's own sockets "
                                                "already (another of its listeners: a line's, watch-all's, the status "
                                                "endpoint's or SSH's; --check names which)")
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
