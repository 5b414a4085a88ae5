"""
The gateway's own errors in handling a client's doing (a traceback, at
critical) pass the real log limiter (logflood.peerLimiter) as one budget
for all clients: 20 a minute, each with its traceback, the rest counted in
one line when the minute is over.  They passed it untouched: a bug any
client could reach logged a traceback each time, without bound.
"""

from __future__ import annotations

import gc
import os
import select
import socket
import struct
from typing import Any, Iterator

from twisted.internet import reactor, tcp
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.boundedports import BoundedUDPPort
from serialgw.app.reactor import GatewayReactor
from serialgw.clients.ptylink import PtyClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import OWN_ERRORS, UNHANDLED, limitUnhandledDeferreds, peerLimiter
from serialgw.wire.rfc2217 import COM_PORT_OPTION as CPO
from serialgw.wire.telnetcodes import IAC, WILL
from tests.clients.test_ssh import Harness
from tests.fakes import LogEvents, RecordingDevice
from tests.telnetpeer import sb

TIMES = 30


class Bug(Exception):
    """A bug of the gateway's, as a client's doing reaches it."""


def broken(*args: Any, **kwargs: Any) -> Any:
    raise Bug("a bug of the gateway's")


class Counting:
    """The real limiter on a clock of the test's; the log's critical events and summaries, as they reach the log."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.case = case
        self.clock = Clock()
        self.clock.advance(1000)
        case.patch(peerLimiter, "now", self.clock.seconds)
        self.events = LogEvents(case)

    def failures(self, words: str) -> list[dict[str, Any]]:
        return [e for e in self.events.events if e.get("log_level") is LogLevel.critical and words in formatEvent(e)]

    def check(self, words: str) -> None:
        """TIMES failures: 20 logged with their tracebacks; the minute over, the other 10 said in one line."""
        passed = self.failures(words)
        self.case.assertEqual(len(passed), peerLimiter.burst)
        self.case.assertTrue(all(isinstance(e["log_failure"].value, Bug) for e in passed))
        self.case.assertEqual(len(self.case.flushLoggedErrors(Bug)), peerLimiter.burst)
        self.case.assertEqual(self.summaries(), [])
        self.clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.case.assertEqual(self.summaries(), [
            f"{TIMES - peerLimiter.burst} log messages about {OWN_ERRORS} left out in the last minute (over 20 a minute)"])

    def summaries(self) -> list[str]:
        return [formatEvent(e) for e in self.events.events if "left out" in e.get("log_format", "")]


class ClientsOwnErrorsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = Counting(self)
        self.line = Line("ttyS0", RecordingDevice(SerialSettings(115200)), clock=self.log.clock)

    def telnet(self, listener: str = "telnet+4444") -> tuple[TelnetClient, StringTransport]:
        client = TelnetClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.log.clock)
        transport = StringTransport()
        client.makeConnection(transport)
        return client, transport

    def test_sessionStartsFailing(self) -> None:
        """30 connections whose session's start fails (session.startSession): 20 tracebacks, 10 counted; each connection still ended."""
        self.patch(self.line, "attach", broken)
        for _ in range(TIMES):
            client, transport = self.telnet("raw+4444")
            self.assertTrue(transport.disconnecting)
        self.log.check("starting the session of")

    def test_comPortOptionsFailing(self) -> None:
        """A client's 30 SET-BAUDRATE whose handling fails (rfc2217 ComPortControl.handle): 20 tracebacks, 10 counted."""
        client, _ = self.telnet()
        client.dataReceived(bytes([IAC, WILL, CPO]))
        self.patch(self.line, "clientSettings", broken)
        for _ in range(TIMES):
            client.dataReceived(sb(1, 0, 0, 0x25, 0x80))
        self.log.check("COM-PORT-OPTION")

    def test_clientsTogether(self) -> None:
        """30 clients, one failure each: one budget for all of them (each is a peer of its own: each passed)."""
        client, _ = self.telnet()
        self.patch(self.line, "clientSettings", broken)
        for _ in range(TIMES):
            client, _ = self.telnet()
            client.dataReceived(bytes([IAC, WILL, CPO]) + sb(1, 0, 0, 0x25, 0x80))
        self.log.check("COM-PORT-OPTION")

    def test_sshRequestsFailing(self) -> None:
        """An SSH session's 30 break requests whose handling fails (sshsession.requestReceived): 20 tracebacks, 10 counted, each refused."""
        h = Harness()
        h.clock = self.log.clock
        channel, _ = h.channel()
        channel.channelOpen(b"")
        self.assertTrue(channel.requestReceived(b"shell", b""))
        self.patch(h.lines["con1"], "clientBreak", broken)
        for _ in range(TIMES):
            self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 500)))
        self.log.check("request failed")

    def test_criticalWithoutAPeerPasses(self) -> None:
        """The gateway's own criticals about no client (its start, a line's device) pass untouched, however many."""
        for _ in range(TIMES):
            Logger(observer=peerLimiter).critical("device gone")
        self.assertEqual(len([e for e in self.log.events.events if e["log_format"] == "device gone"]), TIMES)

    def test_clientsChatterDoesNotHideThem(self) -> None:
        """A client that spent its own budget (20 lines) still has the gateway's error in handling it said."""
        client, _ = self.telnet()
        client.dataReceived(bytes([IAC, WILL, CPO]))
        for _ in range(25):
            client.dataReceived(sb(1, 0, 0, 0x25, 0x80 + 1))
            client.dataReceived(sb(1, 0, 0, 0x25, 0x80))
        self.patch(self.line, "clientSettings", broken)
        client.dataReceived(sb(1, 0, 0, 0x25, 0x80))
        self.assertEqual(len(self.log.failures("COM-PORT-OPTION")), 1)
        self.assertEqual(len(self.flushLoggedErrors(Bug)), 1)


class PtyOwnErrorsTests(TestCase):
    def test_ptyInputFailing(self) -> None:
        """A pty: listener's program typing 30 times, each handling failing (ptylink.doRead): 20 tracebacks, 10 counted; still reading."""
        log = Counting(self)
        line = Line("t", RecordingDevice(SerialSettings(115200)))
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        slave = os.open(client.slaveName, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, slave)
        self.patch(line, "clientData", broken)
        for _ in range(TIMES):
            os.write(slave, b"x")
            # (Each read when the byte is there: one failure a write, whatever the kernel's timing.)
            select.select([client.fileno()], [], [], 10)
            client.doRead()
        log.check("handling input from")


class Buggy(Protocol):
    """A client's protocol whose handling of what it is sent reaches a bug of the gateway's."""

    lost = 0

    def dataReceived(self, data: bytes) -> None:
        broken()

    def connectionLost(self, reason: Any = None) -> None:
        Buggy.lost += 1


class BuggyDatagrams(DatagramProtocol):
    """A datagram client's listener whose handling of a datagram reaches a bug of the gateway's."""

    received = 0

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received += 1
        broken()


class _Port:
    """What tcp.Server asks of the port that took the connection."""

    _realPortNumber = 4444
    _type = "TCP"
    _addressType = IPv4Address


class ReactorOwnErrorsTests(TestCase):
    def test_connectionsReachingABug(self) -> None:
        """30 clients' bytes whose handling raises in the reactor's dispatch (Twisted logged an 'Unhandled Error' traceback each): 20 tracebacks about them, 10 counted; each disconnected."""
        log = Counting(self)
        Buggy.lost = 0
        for n in range(TIMES):
            ours, peer = socket.socketpair()
            self.addCleanup(peer.close)
            self.addCleanup(ours.close)
            peer.send(b"typed")
            server = tcp.Server(ours, Buggy(), ("192.0.2.7", 40000 + n), _Port(), n, reactor)  # type: ignore[arg-type]
            GatewayReactor._doReadOrWrite(reactor, server, server.fileno(), select.POLLIN)  # type: ignore[arg-type]
            self.assertTrue(server.disconnected)
        self.assertEqual(Buggy.lost, TIMES)
        self.assertEqual([e["peer"] for e in log.failures("handling its connection")][:2],
                         ["192.0.2.7:40000", "192.0.2.7:40001"])
        log.check("handling its connection")

    def test_datagramsReachingABug(self) -> None:
        """30 datagrams whose handling raises (a netconsole's line reaching a bug), from one sender: 20 tracebacks, 10 counted."""
        log = Counting(self)
        handler = BuggyDatagrams()
        port = reactor.listenUDP(0, handler, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        for _ in range(TIMES):
            sender.sendto(b"typed", ("127.0.0.1", port.getHost().port))
        for _ in range(TIMES):
            if handler.received == TIMES:
                break
            # (Read as the reactor would, once they are there.)
            select.select([port.fileno()], [], [], 10)
            BoundedUDPPort.doRead(port)
        log.check("a datagram from")


class StatusPageOwnErrorsTests(SynchronousTestCase):
    def test_renderingFailing(self) -> None:
        """30 GETs of a status page whose rendering fails, a second apart (it is rendered at most once a second): 20 tracebacks, 10 counted; each answered 500."""
        from serialgw.app.status import statusSite
        from tests.fakes import Lines

        log = Counting(self)
        line = Line("rack1", RecordingDevice(), clock=log.clock)
        site = statusSite(Lines(line), clock=log.clock)
        page = site.resource.children[b""]

        def brokenParts(request: Any) -> Iterator[bytes]:
            broken()
            yield b""

        self.patch(page.page, "renderParts", brokenParts)
        for n in range(TIMES):
            address = IPv4Address("TCP", "192.0.2.9", 40000 + n)
            channel = site.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            channel.makeConnection(transport)
            channel.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            log.clock.advance(1)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
            channel.connectionLost(None)
        self.assertEqual(log.failures("rendering")[0]["peer"], "192.0.2.9:40000")
        log.check("rendering")

    def test_processingFailing(self) -> None:
        """30 GETs whose processing fails at once, in twisted.web's own handling (finding the page raises: Twisted's processingFailed logged a traceback a request, naming nobody, past the limiter): 20 tracebacks naming the client, 10 counted; each answered 500."""
        from serialgw.app.status import statusSite
        from tests.fakes import Lines

        log = Counting(self)
        line = Line("rack1", RecordingDevice(), clock=log.clock)
        site = statusSite(Lines(line), clock=log.clock)
        self.patch(site.resource, "getChildWithDefault", broken)
        for n in range(TIMES):
            address = IPv4Address("TCP", "192.0.2.9", 40000 + n)
            channel = site.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            channel.makeConnection(transport)
            channel.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
            channel.connectionLost(None)
        said = log.failures("/metrics")
        self.assertEqual([(e["peer"], e["path"]) for e in said[:2]], [("192.0.2.9:40000", "'/metrics'"), ("192.0.2.9:40001", "'/metrics'")])
        self.assertEqual(formatEvent(said[0]), "status: 192.0.2.9:40000's 'GET' of '/metrics' failed (the gateway's error, "
                         "not the client's): answered 500")
        log.check("/metrics")


class StatusDeadlineTests(SynchronousTestCase):
    def test_silentConnectionsCountAgainstTheEndpoint(self) -> None:
        """30 status connections that send no request (each a new peer), cut at their deadline: 20 log lines and the rest counted in one line, against the endpoint's budget; each was a line past the limiter."""
        from serialgw.app.status import statusSite
        from tests.fakes import Lines

        log = Counting(self)
        site = statusSite(Lines(Line("rack1", RecordingDevice(), clock=log.clock)), clock=log.clock)
        transports = []
        for n in range(TIMES):
            address = IPv4Address("TCP", f"192.0.2.{n + 1}", 40000)
            channel = site.buildProtocol(address)
            transport = StringTransport(peerAddress=address)
            channel.makeConnection(transport)
            transports.append((channel, transport))
        log.clock.advance(10)
        for channel, transport in transports:
            self.assertTrue(transport.disconnecting)
            channel.connectionLost(None)
        said = [formatEvent(e) for e in log.events.events if "sent no whole request" in formatEvent(e)]
        self.assertEqual((said[0], len(said)), ("status: 192.0.2.1:40000 sent no whole request in time: disconnected", 20))
        log.clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.assertEqual(log.summaries(), ["10 log messages about the status endpoint left out in the last minute (over 20 a minute)"])


class ConchOwnErrorsTests(SynchronousTestCase):
    def test_channelOpensFailing(self) -> None:
        """30 SSH connections whose session's opening fails in conch's own handling (its 'channel open failed' traceback names no connection: it passed the limiter): 20 tracebacks, 10 counted."""
        from twisted.conch.ssh.common import NS

        from serialgw.clients.ssh import Connection, GatewaySSHFactory
        from serialgw.clients.sshauth import KeyRing
        from tests.clients.test_ssh import Tcp, newKey

        log = Counting(self)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), Harness().gateway)
        for n in range(TIMES):
            transport = factory.buildProtocol(IPv4Address("TCP", f"198.51.100.{n}", 40000))
            transport.makeConnection(Tcp())
            conn = Connection()
            transport.setService(conn)
            self.patch(conn, "getChannel", broken)
            conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 1 << 20, 32768))
        log.check("channel open failed")

    def test_conchsLinesTogether(self) -> None:
        """conch's own warnings and errors (naming no connection) share one budget: 30 errors, 20 logged, 10 counted in one line."""
        from serialgw.clients.sshfaults import CONCH, conchLog

        log = Counting(self)
        for _ in range(TIMES):
            conchLog.error("Got remote error, code {code}", code=2)
        self.assertEqual(len([e for e in log.events.events if e.get("log_format", "").startswith("Got remote")]), 20)
        log.clock.advance(60)
        Logger(observer=peerLimiter).info("tick", peer="someone else")
        self.assertEqual(log.summaries(), [f"10 log messages about {CONCH} left out in the last minute (over 20 a minute)"])


class UnhandledDeferredTests(SynchronousTestCase):
    def test_unhandledErrorsLimited(self) -> None:
        """30 Deferreds whose error nothing handled, collected (Twisted's 'Unhandled error in Deferred': two lines each, naming nobody, past the limiter): under twistd one event each, 20 tracebacks, 10 counted."""
        from twisted.internet import defer

        log = Counting(self)
        self.patch(defer, "log", defer.log)  # (put back after the test)
        limitUnhandledDeferreds()
        for _ in range(TIMES):
            d = defer.fail(Bug("a bug of the gateway's"))
            del d
            gc.collect()
        said = log.failures("Unhandled error in Deferred")
        self.assertEqual([(e["peer"], formatEvent(e)) for e in said[:1]],
                         [(UNHANDLED, "Unhandled error in Deferred (whose doing is not known)")])
        log.check("Unhandled error in Deferred")
        # Its other lines pass as before.
        defer.logError(Failure(Bug("logged")))
        self.assertEqual(len(self.flushLoggedErrors(Bug)), 1)
