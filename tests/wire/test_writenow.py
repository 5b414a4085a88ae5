"""
Tests for serialgw.wire.sockets.writeNow over a real socket pair: what a
send leaves waits in the transport, in order, without a copy.
"""

from __future__ import annotations

import socket

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from serialgw.wire.sockets import queuedBytes, writeNow

CHUNK = bytes(range(256)) * 1024


@implementer(IPushProducer)
class Producer:
    paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


class WriteNowRestTests(SynchronousTestCase):
    def setUp(self) -> None:
        ours, self.peer = socket.socketpair()
        self.addCleanup(self.peer.close)
        self.addCleanup(ours.close)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ours.setblocking(False)
        self.peer.setblocking(False)
        self.reactor = MemoryReactor()
        self.transport = tcp.Connection(ours, Protocol(), self.reactor)
        self.transport.connected = True

    def received(self) -> bytes:
        """What the peer reads, the transport writing what it holds as the socket takes it (its doWrite, as the reactor calls it)."""
        got = b""
        for _ in range(100000):
            try:
                got += self.peer.recv(65536)
            except BlockingIOError:
                if not queuedBytes(self.transport):
                    return got
                self.transport.doWrite()
        self.fail("the transport never emptied")

    def test_restIsTheChunkItself(self) -> None:
        """The rest of a chunk the socket took part of waits in the transport as that chunk at an offset (no copy), written when the socket is writable, and reaches the peer in order, exactly."""
        writeNow(self.transport, CHUNK)
        sent = self.transport.offset
        self.assertTrue(0 < sent < len(CHUNK))
        self.assertIs(self.transport.dataBuffer, CHUNK)
        self.assertEqual(self.transport._tempDataBuffer, [])
        self.assertEqual(queuedBytes(self.transport), len(CHUNK) - sent)
        self.assertIn(self.transport, self.reactor.getWriters())
        writeNow(self.transport, b"after")
        self.assertEqual(self.received(), CHUNK + b"after")

    def test_restPastTheBoundPausesTheProducer(self) -> None:
        """A rest past the transport's bufferSize pauses its streaming producer at once, as a write of it did."""
        producer = Producer()
        self.transport.bufferSize = 8192
        self.transport.registerProducer(producer, True)
        writeNow(self.transport, CHUNK)
        self.assertTrue(producer.paused)

    def test_nothingTakenWaitsAsItIs(self) -> None:
        """A chunk the full socket takes none of waits in the transport as it is, and reaches the peer after what the socket held, exactly."""
        held = b""
        while True:
            try:
                held += CHUNK[:self.transport.socket.send(CHUNK)]
            except BlockingIOError:
                break
        writeNow(self.transport, CHUNK)
        self.assertIs(self.transport._tempDataBuffer[0], CHUNK)
        self.assertEqual(self.received(), held + CHUNK)

    def test_behindARestAsItIs(self) -> None:
        """A chunk written while a rest waits goes behind it as it is."""
        writeNow(self.transport, CHUNK)
        second = b"y" * 1000
        writeNow(self.transport, second)
        self.assertIs(self.transport._tempDataBuffer[-1], second)
        self.assertEqual(self.received(), CHUNK + second)


class TakesAllBut:
    """A socket whose sends take all but C{left} bytes (the kernel's room ending just short of a chunk)."""

    def __init__(self, real: socket.socket, left: int) -> None:
        self.real, self.left = real, left

    def send(self, data: bytes) -> int:
        return max(0, len(data) - self.left)

    def fileno(self) -> int:
        return self.real.fileno()

    def setblocking(self, flag: bool) -> None:
        self.real.setblocking(flag)


class WriteNowBoundTests(SynchronousTestCase):
    def setUp(self) -> None:
        ours, peer = socket.socketpair()
        self.addCleanup(peer.close)
        self.addCleanup(ours.close)
        # (A stand-in for the socket: how much a send takes is the test's.)
        self.transport = tcp.Connection(TakesAllBut(ours, 100), Protocol(), MemoryReactor())  # type: ignore[arg-type]
        self.transport.connected = True
        self.producer = Producer()
        self.transport.bufferSize = 1024
        self.transport.registerProducer(self.producer, True)

    def test_restUnderTheBoundDoesNotPause(self) -> None:
        """A rest under the bound does not pause the producer though the chunk it is the rest of was over it: what the socket took is not queued (a policy=disconnect client with outbuf=1024 was cut with 100 bytes of a 16 KiB chunk queued)."""
        writeNow(self.transport, b"x" * 16384)
        self.assertEqual(queuedBytes(self.transport), 100)
        self.assertFalse(self.producer.paused)

    def test_restOverTheBoundPauses(self) -> None:
        """A rest over the bound pauses the producer at once."""
        self.transport.socket.left = 1025  # type: ignore[attr-defined]
        writeNow(self.transport, b"x" * 16384)
        self.assertEqual(queuedBytes(self.transport), 1025)
        self.assertTrue(self.producer.paused)
