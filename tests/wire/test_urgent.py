"""
Telnet's Synch over real TCP (loopback, port 0): urgent data in the
stream, read where it is, both ways.
"""

from __future__ import annotations

import errno
import fcntl
import select
import socket
import struct
from contextlib import contextmanager
from typing import Any, Iterator

from twisted.internet import defer, reactor
from twisted.internet.protocol import ServerFactory
from twisted.trial.unittest import TestCase

from serialgw.wire.telnetcodes import DM, IAC, IP, SE
from tests.telnetpeer import TelnetRecorder, cmd


class Waiting(TelnetRecorder):
    """A recorder that fires C{made} once connected and C{got} once its data ends with C{until}."""

    until = b"after"
    synch = False

    def __init__(self) -> None:
        TelnetRecorder.__init__(self)
        # Bytes queued for the peer that each of our Synchs discarded.
        self.aborted: list[int] = []
        self.made: defer.Deferred[None] = defer.Deferred()
        self.got: defer.Deferred[None] = defer.Deferred()
        self.data = b""

    def connectionMade(self) -> None:
        if self.synch:
            self.sendSynch()
        self.made.callback(None)

    def outputAborted(self, discarded: int) -> None:
        self.aborted.append(discarded)

    def telnetDataReceived(self, data: bytes) -> None:
        TelnetRecorder.telnetDataReceived(self, data)
        self.data += data
        if self.data.endswith(self.until) and not self.got.called:
            self.got.callback(None)


class RealSynchTests(TestCase):
    timeout = 30

    def listen(self, synch: bool = False) -> tuple[list[Waiting], int]:
        made: list[Waiting] = []

        def build(addr: Any) -> Waiting:
            proto = Waiting()
            proto.synch = synch
            made.append(proto)
            return proto

        factory = ServerFactory()
        factory.buildProtocol = build  # type: ignore[method-assign]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        return made, port.getHost().port  # type: ignore[attr-defined]

    def connect(self, port: int) -> socket.socket:
        peer = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(peer.close)
        peer.settimeout(self.timeout)
        return peer

    async def test_synchSentBeforeTheAccept(self) -> None:
        """A Synch (IAC DM, the DM urgent) that is in the socket before the gateway accepts it (SO_OOBINLINE is set on the connection, after accept): the DM is read in its place, the data before it discarded, the IP before it kept, the data after it delivered."""
        made, port = self.listen()
        peer = self.connect(port)
        peer.sendall(b"typed ahead" + cmd(IAC, IP) + b"more" + cmd(IAC))
        peer.send(cmd(DM), socket.MSG_OOB)
        peer.sendall(b"after")
        while not made:
            await _turn()
        await made[0].got
        self.assertEqual(made[0].events, [("command", IP), ("synched", 15), ("command", DM), ("data", b"after")])

    async def test_ourSynchIsUrgent(self) -> None:
        """Our Synch (the answer to AO) leaves as IAC DM with the DM as TCP urgent data."""
        made, port = self.listen(synch=True)
        peer = self.connect(port)
        while not made:
            await _turn()
        await made[0].made
        # Read to the mark (the IAC), then the urgent byte out of band.
        # (Sent at once, in connectionMade: here before made fired.)
        self.assertEqual(peer.recv(10), cmd(IAC))
        # Not blocking: Python's timeout waits for the socket to be
        # readable, which a socket at the mark with only the urgent byte is not.
        peer.setblocking(False)
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))


class AbortOutputTests(TestCase):
    """
    Our Synch behind output the client has not taken (a flood to a client
    that reads slowly): the output queued in the gateway is discarded
    (RFC 854's AO: the output not shown yet is cleared) and the DM is still
    urgent (RFC 1123 3.2.4: the Synch flushes the client's output stream),
    sent when the kernel has room for it; what is written after it follows.
    """

    timeout = 30

    async def flooded(self) -> tuple[Waiting, socket.socket, int]:
        """A codec whose peer reads nothing, small buffers both ways, 200 KB written: most of it queued in the gateway."""
        made, port = RealSynchTests.listen(self)  # type: ignore[arg-type]
        peer = socket.socket()
        self.addCleanup(peer.close)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(("127.0.0.1", port))
        peer.setblocking(False)
        while not made:
            await _turn()
        proto = made[0]
        proto.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # type: ignore[union-attr]
        proto.writeData(b"x" * 200_000)
        transport: Any = proto.transport
        queued = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        self.assertGreater(queued, 100_000)
        return proto, peer, queued

    async def toTheMark(self, peer: socket.socket) -> bytes:
        """What the peer reads before the urgent mark (the reactor turning meanwhile)."""
        got = b""
        idle = 0
        while not struct.unpack("i", fcntl.ioctl(peer.fileno(), SIOCATMARK, struct.pack("i", 0)))[0]:
            try:
                chunk = peer.recv(65536)
            except BlockingIOError:
                # (No mark coming: the DM went in the stream, or not at all.)
                idle += 1
                self.assertLess(idle, 20000, f"no urgent mark after {len(got)} bytes, ending {got[-8:]!r}")
                await _turn()
                continue
            idle = 0
            self.assertTrue(chunk, "the connection closed before the mark")
            got += chunk
        return got

    async def test_abortDiscardsQueuedOutputSynchUrgent(self) -> None:
        """AO behind 200 KB the client has not taken: what waits in the gateway is dropped, and the DM arrives as TCP urgent data after what the kernel held (a NUL and a stray IAC SE first, so that a telnet sequence cut by the drop ends), then later output in order."""
        proto, peer, queued = await self.flooded()
        proto.sendSynch()
        transport: Any = proto.transport
        self.assertEqual(len(transport.dataBuffer) - transport.offset + transport._tempDataLen, 0)
        proto.writeData(b"after")
        before = await self.toTheMark(peer)
        self.assertEqual(before, b"x" * (200_000 - queued) + cmd(0, IAC, SE, IAC))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))
        after = b""
        while after != b"after":
            try:
                after += peer.recv(65536)
            except BlockingIOError:
                await _turn()
        self.assertEqual(proto.aborted, [queued])

    async def test_synchWaitsForRoomInTheKernel(self) -> None:
        """The kernel's buffer full as well (the peer reads nothing): the Synch waits in the gateway, alone, and goes urgent once the peer has read enough for it; output written meanwhile follows it."""
        proto, peer, queued = await self.flooded()
        sock = proto.transport.getHandle()  # type: ignore[union-attr]
        stuffed = fillKernel(sock, b"y")
        with noRoom(proto.transport):
            proto.sendSynch()
            proto.writeData(b"after")
        transport: Any = proto.transport
        self.assertEqual(transport._tempDataLen, len(cmd(0, IAC, SE, IAC, DM)) + len(b"after"))
        before = await self.toTheMark(peer)
        self.assertEqual(before, b"x" * (200_000 - queued) + b"y" * stuffed + cmd(0, IAC, SE, IAC))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))
        after = b""
        while after != b"after":
            try:
                after += peer.recv(65536)
            except BlockingIOError:
                await _turn()
        self.assertEqual(proto.aborted, [queued])
        self.assertNotIn("writeSomeData", vars(transport))

    async def test_secondAbortWhileTheFirstWaits(self) -> None:
        """A second AO while the first Synch waits for room: the waiting one is dropped with the rest, one Synch goes, its DM the one urgent byte."""
        proto, peer, queued = await self.flooded()
        sock = proto.transport.getHandle()  # type: ignore[union-attr]
        stuffed = fillKernel(sock, b"y")
        with noRoom(proto.transport):
            proto.sendSynch()
            proto.writeData(b"between")
            proto.sendSynch()
            proto.writeData(b"after")
        self.assertEqual(proto.aborted, [queued, len(cmd(0, IAC, SE, IAC, DM) + b"between")])
        before = await self.toTheMark(peer)
        self.assertEqual(before, b"x" * (200_000 - queued) + b"y" * stuffed + cmd(0, IAC, SE, IAC))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))
        after = b""
        while after != b"after":
            try:
                after += peer.recv(65536)
            except BlockingIOError:
                await _turn()

    async def test_secondAbortSentAtOnceLeavesNoMarkBehind(self) -> None:
        """The first Synch waits; the peer then reads all, and a second AO's Synch goes at once: the waiting one is given up whole, and output queued later carries no urgent mark (one DM, one mark)."""
        proto, peer, queued = await self.flooded()
        sock = proto.transport.getHandle()  # type: ignore[union-attr]
        fillKernel(sock, b"y")
        with noRoom(proto.transport):
            proto.sendSynch()
        # The peer takes everything the kernel had, the reactor not turning (the first Synch still waits).
        got = drainKernel(peer, sock)
        self.assertNotIn(cmd(IAC, SE), got)
        proto.sendSynch()
        transport: Any = proto.transport
        self.assertEqual(transport._tempDataLen, 0)
        fillKernel(sock, b"z")
        with noRoom(proto.transport):
            proto.writeData(b"after")
        self.assertEqual(transport._tempDataLen, len(b"after"))
        self.assertEqual(await self.toTheMark(peer), cmd(0, IAC, SE, IAC))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))
        rest = b""
        turns = 0
        # (Its last byte taken out of the stream as a second urgent byte, it would never end with it.)
        while not rest.endswith(b"after") and turns < 1000:
            try:
                rest += peer.recv(65536)
            except BlockingIOError:
                turns += b"afte" in rest
                await _turn()
        self.assertEqual(rest.strip(b"z"), b"after")
        with self.assertRaises(OSError):
            peer.recv(1, socket.MSG_OOB)

    async def test_kernelFullNothingQueued(self) -> None:
        """Nothing waiting in the gateway but the kernel full: nothing dropped, and IAC DM waits there alone and goes urgent once there is room (it went in the stream, a NOP)."""
        made, port = RealSynchTests.listen(self)  # type: ignore[arg-type]
        peer = socket.socket()
        self.addCleanup(peer.close)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(("127.0.0.1", port))
        peer.setblocking(False)
        while not made:
            await _turn()
        proto = made[0]
        sock = proto.transport.getHandle()  # type: ignore[union-attr]
        stuffed = fillKernel(sock, b"y")
        with noRoom(proto.transport):
            proto.sendSynch()
        transport: Any = proto.transport
        self.assertEqual((transport._tempDataLen, proto.aborted), (2, []))
        self.assertEqual(await self.toTheMark(peer), b"y" * stuffed + cmd(IAC))
        self.assertEqual(peer.recv(1, socket.MSG_OOB), cmd(DM))


SIOCATMARK = 0x8905
# What a TCP socket holds not yet acknowledged by its peer (Linux).
SIOCOUTQ = 0x5411
# The most waits for the peer's acknowledgements (each at most WAIT_ACK ms) before a test gives up.
WAITS = 200
WAIT_ACK = 100


def _ioctl(sock: socket.socket, request: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, struct.pack("i", 0)))[0])


def fillKernel(sock: socket.socket, byte: bytes) -> int:
    """Send C{byte}s on C{sock} until the kernel takes no more (its peer reads nothing); how many it took."""
    stuffed = 0
    while True:
        try:
            stuffed += sock.send(byte * 1024)
        except BlockingIOError:
            return stuffed


class _NoRoom:
    """A connection's socket whose sends find no room (see L{noRoom}); the rest is the socket's."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real

    def send(self, data: bytes, flags: int = 0) -> int:
        raise BlockingIOError(errno.EAGAIN, "no room (the test's)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextmanager
def noRoom(transport: Any) -> Iterator[None]:
    """
    Within it, the gateway's sends on C{transport} find no room, as a
    kernel its test filled (L{fillKernel}) is meant to be.  The kernel's
    own fullness ends by itself, without the peer reading: its
    acknowledgement, delayed ~40 ms, freed room a send refused was
    waiting for, and a peer's receive queue compacted opens its window
    again (TCP_NODELAY's small segments); a test held from the CPU that
    long between its fill and its Synch (a loaded machine) saw the Synch
    meant to wait go at once (seen: a 0.25 s pause there failed four of
    these tests, and once under load the first Synch already sent).
    After it the real socket again: the kernel gives room when it has
    it, as the peer reads.
    """
    real = transport.socket
    transport.socket = _NoRoom(real)
    try:
        yield
    finally:
        transport.socket = real


def drainKernel(peer: socket.socket, sock: socket.socket) -> bytes:
    """
    All the kernel holds from C{sock} for C{peer}, read without the
    reactor turning: until a read finds nothing once C{sock} had nothing
    left unacknowledged (what the peer's reads let it send may still be
    on its way: a read finding nothing is not the end).
    """
    look = select.poll()
    look.register(peer.fileno(), select.POLLIN)
    got = b""
    waits = 0
    while waits < WAITS:
        empty = _ioctl(sock, SIOCOUTQ) == 0
        try:
            got += peer.recv(65536)
            continue
        except BlockingIOError:
            if empty:
                return got
        waits += 1
        look.poll(WAIT_ACK)
    raise AssertionError(f"the kernel still held {_ioctl(sock, SIOCOUTQ)} bytes for the peer")


def _turn() -> defer.Deferred[None]:
    """One turn of the reactor."""
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(0, d.callback, None)  # type: ignore[attr-defined]
    return d
