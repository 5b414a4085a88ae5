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
