"""
Tests for the accepts a turn of serialgw's reactor (serialgw.app.reactor):
a burst of connections to one listener is taken ACCEPTS_PER_TURN a turn.
Real listening sockets on loopback; the reactor is a MemoryReactor, each
doRead is one turn.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.boundedports import (
    ACCEPTS_PER_TURN,
    DATAGRAMS_PER_TURN,
    BoundedTCPPort,
    BoundedUDPPort,
    BoundedUNIXPort,
)
from serialgw.app.reactor import GatewayReactor
from tests.reactors import ownReactor


class Counting(Factory):
    """A listener's factory that keeps the protocols it built (one a connection accepted)."""

    protocol = Protocol

    def __init__(self) -> None:
        self.built: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        built = Factory.buildProtocol(self, addr)
        self.built.append(built)
        return built


class AcceptTests(SynchronousTestCase):
    def burst(self, port: object, connect: object, count: int = 20) -> list[int]:
        """C{count} connections waiting; connections accepted after each turn."""
        factory: Counting = port.factory  # type: ignore[attr-defined]
        clients = []
        for _ in range(count):
            client = socket.socket(*connect[0])  # type: ignore[index]
            client.connect(connect[1])  # type: ignore[index]
            self.addCleanup(client.close)
            clients.append(client)
        seen = []
        while len(factory.built) < count:
            port.doRead()  # type: ignore[attr-defined]
            seen.append(len(factory.built))
        for built in factory.built:
            built.transport.socket.close()  # type: ignore[union-attr]
        return seen

    def test_tcp(self) -> None:
        """20 connections waiting on a TCP listener: 8, 16, 20 accepted in three turns (Twisted takes up to 100 in one)."""
        port = BoundedTCPPort(0, Counting(), 50, "127.0.0.1", MemoryReactor())
        port.startListening()
        self.addCleanup(port.socket.close)
        address = ((socket.AF_INET, socket.SOCK_STREAM), ("127.0.0.1", port.getHost().port))
        self.assertEqual(self.burst(port, address), [8, 16, 20])
        self.assertEqual(ACCEPTS_PER_TURN, 8)

    def test_unix(self) -> None:
        """The same on a unix socket listener."""
        path = self.mktemp()
        port = BoundedUNIXPort(path, Counting(), 50, 0o600, MemoryReactor())
        port.startListening()
        self.addCleanup(port.socket.close)
        self.assertEqual(self.burst(port, ((socket.AF_UNIX, socket.SOCK_STREAM), path)), [8, 16, 20])

    def test_reactorListens(self) -> None:
        """The gateway's reactor makes its TCP and unix listeners so."""
        reactor = ownReactor(self, GatewayReactor())
        tcp = reactor.listenTCP(0, Counting(), interface="127.0.0.1")
        self.addCleanup(tcp.socket.close)
        unix = reactor.listenUNIX(self.mktemp(), Counting())
        self.addCleanup(unix.socket.close)
        self.assertEqual((type(tcp), type(unix)), (BoundedTCPPort, BoundedUNIXPort))

    def test_reactorAdopts(self) -> None:
        """A socket passed in (a systemd: listener, adoptStreamPort) is taken 8 a turn too, TCP and unix."""
        reactor = ownReactor(self, GatewayReactor())
        inet = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(inet.close)
        inet.bind(("127.0.0.1", 0))
        inet.listen(50)
        inet.setblocking(False)
        tcp = reactor.adoptStreamPort(inet.fileno(), socket.AF_INET, Counting())
        self.addCleanup(tcp.socket.close)
        path = self.mktemp()
        local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(local.close)
        local.bind(path)
        local.listen(50)
        local.setblocking(False)
        unix = reactor.adoptStreamPort(local.fileno(), socket.AF_UNIX, Counting())
        self.addCleanup(unix.socket.close)
        self.assertEqual((type(tcp), type(unix)), (BoundedTCPPort, BoundedUNIXPort))
        address = ((socket.AF_INET, socket.SOCK_STREAM), inet.getsockname())
        self.assertEqual(self.burst(tcp, address), [8, 16, 20])
        self.assertEqual(self.burst(unix, ((socket.AF_UNIX, socket.SOCK_STREAM), path)), [8, 16, 20])


class CountingDatagrams(DatagramProtocol):
    """Keeps the datagrams it got."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.dropped: list[int] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.got.append(datagram)

    def kernelDropped(self, total: int) -> None:
        self.dropped.append(total)


class DatagramTests(SynchronousTestCase):
    def flood(self, port: Any, datagrams: list[bytes]) -> list[int]:
        """C{datagrams} waiting on a UDP port; those handled after each turn."""
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        for datagram in datagrams:
            sender.sendto(datagram, ("127.0.0.1", port.getHost().port))
        seen: list[int] = []
        while not seen or seen[-1] < len(datagrams):
            port.doRead()
            seen.append(len(port.protocol.got))
        self.assertEqual(port.protocol.got, datagrams)
        return seen

    def test_udpDatagramsATurn(self) -> None:
        """200 empty datagrams waiting on a netconsole's port: 64 handled a turn (Twisted's port counts bytes, up to 256 KiB a turn: empty datagrams without end, a flood of them held every line up to 0.9 s)."""
        reactor = ownReactor(self, GatewayReactor())
        port = reactor.listenUDP(0, CountingDatagrams(), interface="127.0.0.1", maxPacketSize=65535)
        self.addCleanup(port.socket.close)
        self.assertEqual(type(port), BoundedUDPPort)
        self.assertEqual(self.flood(port, [b""] * 200), [64, 128, 192, 200])
        self.assertEqual(DATAGRAMS_PER_TURN, 64)

    def test_kernelDropsCounted(self) -> None:
        """Datagrams the kernel dropped on a full port (the device behind, a flood) are counted: the kernel's count (SO_RXQ_OVFL) reaches the protocol with the next datagram read (they were dropped unseen)."""
        reactor = ownReactor(self, GatewayReactor())
        protocol = CountingDatagrams()
        port = reactor.listenUDP(0, protocol, interface="127.0.0.1", maxPacketSize=65535)
        self.addCleanup(port.socket.close)
        port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        for _ in range(100):
            sender.sendto(b"x" * 1000, ("127.0.0.1", port.getHost().port))
        port.doRead()
        queued = len(protocol.got)
        self.assertEqual(protocol.dropped, [])
        sender.sendto(b"y", ("127.0.0.1", port.getHost().port))
        port.doRead()
        self.assertEqual((protocol.got[-1], protocol.dropped), (b"y", [100 - queued]))
