"""
A transport's producer is paused by what waits unsent in it, not by what a
partly done send already handed the kernel: Twisted's own check counts the
whole buffer of such a send (its C{offset} bytes sent included), so the
write after one paused the guard of a client with a small outbuf (and cut
it, under policy=disconnect) with a hundred bytes queued.
"""

from __future__ import annotations

import errno
import gc
import socket
import weakref
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.device import HIGH_WATER
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.remotelinks import RawLink
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.sockets import countQueuedOnly, queuedBytes
from tests.fakes import RecordingClient, RecordingDevice

CHUNK = 16384


class TakesAllBut:
    """A unix socket whose sends take all but C{left} bytes (the kernel's room ending just short of a chunk)."""

    def __init__(self, real: socket.socket, left: int) -> None:
        self.real, self.left = real, left

    def send(self, data: bytes) -> int:
        taken = max(0, len(data) - self.left)
        if not taken:
            raise BlockingIOError(errno.EAGAIN, "no room")
        return taken

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _Port:
    """What tcp.Server asks of the port that took the connection."""

    _realPortNumber = 4444
    _type = "TCP"
    _addressType = IPv4Address


def accepted(sock: Any, protocol: Any, peer: tuple[str, int] = ("127.0.0.1", 5000)) -> Any:
    """Twisted's own accepted TCP connection over C{sock} (a stand-in socket may be given), on a memory reactor."""
    return tcp.Server(sock, protocol, peer, _Port(), 1, MemoryReactorClock())  # type: ignore[arg-type]


class GuardCountsQueuedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.ours, self.peer = socket.socketpair()
        self.addCleanup(self.peer.close)
        self.addCleanup(self.ours.close)
        self.ours.setblocking(False)
        self.peer.setblocking(False)
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(SerialSettings(115200)), clock=self.clock)

    def connect(self, sock: Any, listener: str = "raw,outbuf=1024,policy=disconnect+4444") -> tuple[RawClient, Any]:
        client = RawClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.clock)
        transport = accepted(sock, client)
        client.makeConnection(transport)
        self.assertEqual(self.line.clients, [client])
        return client, transport

    def assertKept(self, client: RawClient, transport: Any, queued: int) -> None:
        assert client.guard is not None
        self.assertEqual((queuedBytes(transport), client.guard.full, transport.producerPaused,
                          getattr(transport, "_aborting", False), self.line.clients),
                         (queued, False, False, False, [client]))

    def test_writeAfterAPartialWriteNow(self) -> None:
        """outbuf=1024, policy=disconnect: 100 bytes of a 16 KiB chunk left, then 10 bytes: 110 queued, kept (it was cut: Twisted counted 16394); 915 more (1025 queued): cut."""
        client, transport = self.connect(TakesAllBut(self.ours, 100))
        self.line.deviceDataReceived(b"x" * CHUNK)
        self.assertKept(client, transport, 100)
        self.line.deviceDataReceived(b"y" * 10)
        self.assertKept(client, transport, 110)
        self.line.deviceDataReceived(b"z" * 915)
        assert client.guard is not None
        self.assertEqual((queuedBytes(transport), client.guard.full, transport._aborting), (1025, True, True))

    def test_writeAfterTwistedsOwnPartialSend(self) -> None:
        """The same after a partial send of Twisted's own doWrite, outbuf=20000: a 16 KiB chunk queued whole, sent but 100, then 3700 bytes: 3800 queued, kept (it was cut: Twisted counted 20084)."""
        sock = TakesAllBut(self.ours, CHUNK)
        client, transport = self.connect(sock, "raw,outbuf=20000,policy=disconnect+4444")
        self.line.deviceDataReceived(b"x" * CHUNK)
        self.assertKept(client, transport, CHUNK)
        sock.left = 100
        transport.doWrite()
        self.assertEqual((transport.offset, len(transport.dataBuffer)), (CHUNK - 100, CHUNK))
        self.line.deviceDataReceived(b"y" * 3700)
        self.assertKept(client, transport, 3800)

    def test_realSocketPair(self) -> None:
        """A real unix socket pair with small buffers, outbuf=16384: the kernel takes part of a 16 KiB chunk, 10 bytes follow: queued exactly the rest and 10, kept (Twisted counted 16394: cut); the peer reads every byte in order."""
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client, transport = self.connect(self.ours, "raw,outbuf=16384,policy=disconnect+4444")
        self.line.deviceDataReceived(b"x" * CHUNK)
        sent = transport.offset
        self.assertTrue(0 < sent < CHUNK - 10, sent)
        self.line.deviceDataReceived(b"y" * 10)
        self.assertKept(client, transport, CHUNK - sent + 10)
        got = b""
        for _ in range(10000):
            try:
                got += self.peer.recv(65536)
            except BlockingIOError:
                if not queuedBytes(transport):
                    break
                transport.doWrite()
        self.assertEqual(got, b"x" * CHUNK + b"y" * 10)
        self.assertKept(client, transport, 0)

    def test_noCycle(self) -> None:
        """The check holds its transport weakly: a transport let go is collected without the cyclic collector (a client's lingered until it ran)."""
        transport = tcp.Connection(self.ours, None, MemoryReactorClock())  # type: ignore[arg-type]
        countQueuedOnly(transport)
        gone = weakref.ref(transport)
        gc.disable()
        self.addCleanup(gc.enable)
        del transport
        self.assertIsNone(gone())


class RemoteLinkCountsQueuedTests(SynchronousTestCase):
    def test_writersNotPausedByWhatWasSent(self) -> None:
        """A raw remote console's link: 64 KiB typed (HIGH_WATER) queued whole, sent but 100 by Twisted's doWrite, then 10 typed: 110 queued, the writer not paused (it was: Twisted counted 65546); past HIGH_WATER queued, paused."""
        # (A TCP connection on 127.0.0.1: the link sets TCP_NODELAY.)
        listening = socket.socket()
        self.addCleanup(listening.close)
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        ours = socket.create_connection(listening.getsockname())
        self.addCleanup(ours.close)
        peer, _ = listening.accept()
        self.addCleanup(peer.close)
        ours.setblocking(False)
        device = RemoteDevice(DeviceSpec("tcp", host="127.0.0.1", port=1), Clock())
        line = Line("t", device, clock=Clock())
        device.sink = line
        writer = RecordingClient("writer:1")
        line.attach(writer)
        sock = TakesAllBut(ours, HIGH_WATER)
        link = RawLink(device)
        transport = accepted(sock, link)
        link.makeConnection(transport)
        line.clientData(writer, b"x" * HIGH_WATER)
        self.assertEqual((queuedBytes(transport), writer.paused), (HIGH_WATER, 0))
        sock.left = 100
        transport.doWrite()
        line.clientData(writer, b"y" * 10)
        self.assertEqual((queuedBytes(transport), writer.paused, line.writable), (110, 0, True))
        line.clientData(writer, b"z" * (HIGH_WATER - 109))
        self.assertEqual((queuedBytes(transport), writer.paused, line.writable), (HIGH_WATER + 1, 1, False))


class SSHCountsQueuedTests(SynchronousTestCase):
    def test_notFullByWhatWasSent(self) -> None:
        """An SSH connection's TCP: its bufferSize queued whole, sent but 100 by Twisted's doWrite, then 10 written: 110 queued, the connection not taken for full (it was: its client no longer read, its session's output held)."""
        from serialgw.clients.ssh import GatewaySSHFactory
        from serialgw.clients.sshauth import KeyRing
        from tests.clients.test_ssh import Harness, newKey

        ours, peer = socket.socketpair()
        self.addCleanup(peer.close)
        self.addCleanup(ours.close)
        ours.setblocking(False)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), Harness().gateway)
        ssh = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        sock = TakesAllBut(ours, 1 << 30)
        transport = accepted(sock, ssh, ("192.0.2.7", 1))
        ssh.makeConnection(transport)
        self.addCleanup(ssh.connectionLost, None)
        transport.write(b"x" * (transport.bufferSize - queuedBytes(transport)))
        self.assertEqual((queuedBytes(transport), ssh._full), (transport.bufferSize, False))
        sock.left = 100
        transport.doWrite()
        transport.write(b"y" * 10)
        self.assertEqual((queuedBytes(transport), ssh._full, transport.producerPaused), (110, False, False))
