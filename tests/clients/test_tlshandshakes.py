"""
The bounds on TLS handshakes under way, per listener and in the whole
gateway (L{serialgw.clients.handshakes}), and what the log says of a
handshake in each direction: StringTransports, a Clock, a throwaway CA.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import handshakes
from serialgw.clients.factory import LineFactory
from serialgw.clients.tls import HandshakeGate, RefusingTLSFactory, ServerContextFactory, clientOptions
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.certs import Authority
from tests.fakes import RecordingDevice


class Gateway:
    """C{count} TLS listeners (lines l0, l1, ...) sharing one table of the handshakes under way."""

    def __init__(self, test: SynchronousTestCase, count: int) -> None:
        ca = Authority(os.path.abspath(test.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.clock = Clock()
        self.table = handshakes.HandshakeTable()
        spec = parseListener(f"tls:0:cert={cert}:key={key}")
        assert spec.tls is not None
        self.spec = spec
        context = ServerContextFactory(spec.tls)
        self.listeners: list[LineFactory] = []
        self.factories: list[RefusingTLSFactory] = []
        for n in range(count):
            listener = LineFactory(Line(f"l{n}", RecordingDevice(), clock=self.clock), spec, clock=self.clock,
                                   inFlight=self.table)
            self.listeners.append(listener)
            self.factories.append(RefusingTLSFactory(context, False, listener, self.clock))
        test.addCleanup(self.clock.advance, 10)

    def connect(self, host: str, listener: int = 0) -> StringTransport:
        """A connection from C{host} to listener C{listener}: its transport, C{connected} False if refused at accept."""
        address = IPv4Address("TCP", host, 5000)
        transport = StringTransport(peerAddress=address)
        protocol = self.factories[listener].buildProtocol(address)
        if protocol is not None:
            protocol.makeConnection(transport)
        else:
            transport.connected = False
        return transport


class HandshakeBoundsTests(SynchronousTestCase):
    def test_manyAddressesCutTheirOwn(self) -> None:
        """A listener full of handshakes from a sender with many addresses (8 each, the bound from one): its next connections cut its own oldest, not a client's from another address (the oldest of all was cut: 8 addresses cut everyone else's, again and again)."""
        gateway = Gateway(self, 1)
        client = gateway.connect("198.51.100.1")
        attacker = [gateway.connect(f"192.0.2.{n % 40 + 1}") for n in range(400)]
        self.assertFalse(client.disconnecting)
        self.assertEqual(len(gateway.listeners[0].handshakes), 64)
        self.assertEqual(sum(not t.disconnecting and t.connected for t in attacker), 63)
        sources = [gate.source for gate in gateway.listeners[0].handshakes]
        self.assertLessEqual(max(sources.count(s) for s in sources), 8)

    def test_oneAddressBoundedOnAllListeners(self) -> None:
        """One address has at most 64 handshakes under way on all the gateway's listeners (8 on each of 20 was 160: 8 on each of 1000 TLS lines, 8000 descriptors): the rest are closed at accept, said with the address; another address still gets in."""
        gateway = Gateway(self, 20)
        with capturedLogs() as events:
            taken = [gateway.connect("192.0.2.7", n).connected for n in range(20) for _ in range(8)]
        self.assertEqual((taken.count(True), taken[64:].count(True)), (64, 0))
        self.assertEqual(len(gateway.table), 64)
        said = [formatEvent(e) for e in events]
        self.assertEqual(said[0], "l8: connection from 192.0.2.7:5000 refused: 64 TLS handshakes from there under way "
                                  "already on the gateway's listeners (at most 64 from one address)")
        self.assertEqual(len(said), 20)  # (one budget for the whole gateway)
        self.assertTrue(gateway.connect("192.0.2.8", 19).connected)

    def test_boundInAllCutsTheOldestOfTheMost(self) -> None:
        """Past the gateway's bound in all, a new connection is taken and the oldest handshake of the address with the most under way is cut, on whatever listener; said naming both addresses and the line."""
        gateway = Gateway(self, 3)
        gateway.table.maxInFlight = 6
        first = gateway.connect("198.51.100.1", 0)
        flood = [gateway.connect("192.0.2.1", n % 2 + 1) for n in range(4)]
        other = gateway.connect("198.51.100.2", 0)
        self.assertEqual(len(gateway.table), 6)
        with capturedLogs() as events:
            last = gateway.connect("192.0.2.9", 0)
        self.assertEqual([t.disconnecting for t in (first, *flood, other, last)],
                         [False, True, False, False, False, False, False])
        self.assertEqual([formatEvent(e) for e in events],
                         ["l0: TLS handshake from 192.0.2.1:5000 (line l1) cut: 6 under way on the gateway's listeners, "
                          "the oldest makes room for 192.0.2.9:5000"])
        self.assertEqual(len(gateway.table), 6)
        self.assertEqual(sorted(map(len, (f.handshakes for f in gateway.listeners))), [1, 2, 3])

    def test_gateForgetsAtEveryEnd(self) -> None:
        """A handshake leaves the gateway's table however it ends (timed out, failed, cut by a reload, lost): no source is kept without one."""
        gateway = Gateway(self, 2)
        for n in range(4):
            gateway.connect(f"192.0.2.{n}", n % 2)
        gateway.listeners[1].retire()
        self.assertEqual((len(gateway.table), sorted(gateway.table.bySource)), (2, ["192.0.2.0", "192.0.2.2"]))
        gateway.clock.advance(10)
        self.assertEqual((gateway.table.gates, gateway.table.bySource), ({}, {}))


class DirectionTests(SynchronousTestCase):
    """A dial-out's handshake is said to be with the server, not from it."""

    def setUp(self) -> None:
        ca = Authority(os.path.abspath(self.mktemp()))
        self.clock = Clock()
        spec = parseListener(f"raw+tls:console.example:4443:ca={ca.path}")
        assert spec.tls is not None
        self.table = handshakes.HandshakeTable()
        self.listener = LineFactory(Line("vm", RecordingDevice(), clock=self.clock), spec, clock=self.clock,
                                    inFlight=self.table)
        self.factory = RefusingTLSFactory(clientOptions(spec.tls), True, self.listener, self.clock)

    def dial(self) -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", "192.0.2.5", 4443)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        self.assertIsInstance(protocol.wrappedProtocol, HandshakeGate)
        return protocol, transport

    def test_dialOutTimeoutSaysWith(self) -> None:
        """A dial-out whose server never answers its ClientHello: 'TLS handshake with SERVER (dialled out) not done' (it said 'from', as if the server had connected)."""
        protocol, transport = self.dial()
        with capturedLogs() as events:
            self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([formatEvent(e) for e in events],
                         ["TLS handshake with 192.0.2.5:4443 (dialled out) not done in 10.0 s: disconnected"])
        protocol.connectionLost(Failure(ConnectionDone()))

    def test_dialOutFailureSaysWith(self) -> None:
        """A dial-out whose server answers with no TLS: 'TLS handshake with SERVER (dialled out) failed: REASON'."""
        protocol, transport = self.dial()
        with capturedLogs() as events:
            protocol.dataReceived(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\x00" * 64)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        said = [formatEvent(e) for e in events]
        self.assertEqual(len(said), 1)
        self.assertTrue(said[0].startswith("TLS handshake with 192.0.2.5:4443 (dialled out) failed: "), said)

    def test_dialOutsNotBounded(self) -> None:
        """Dial-outs are no listener's: 100 to one server's address (a console server's ports) are each dialled, none in the gateway's table."""
        for _ in range(100):
            self.assertFalse(self.dial()[1].disconnecting)
        self.assertEqual(len(self.table), 0)
        self.clock.advance(10)
