"""
A TLS program client (no escape menu) not read while the device takes no
input, that hangs up: seen to go, as a raw TCP one is, though its TLS
close_notify (and anything it typed) waits unread in its socket.  A real
socketpair carries the TLS records (its hang-up and unread bytes are the
kernel's); the test reads the gateway's end when its transport reads, and
plays the client with Python's ssl over memory buffers: one thread.
"""

from __future__ import annotations

import fcntl
import os
import socket
import ssl
import struct
import termios
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.factory import LineFactory
from serialgw.clients.reading import HANGUP_CHECK_SECONDS, TLS_LOOK_MOST
from serialgw.clients.tls import RefusingTLSFactory, ServerContextFactory
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.certs import Authority
from tests.fakes import RecordingDevice, observeLog


class SocketTransport(StringTransport):
    """The gateway's end of a socketpair as a TCP transport: writes go to the socket, reads are the test's (L{pump})."""

    def __init__(self, sock: socket.socket) -> None:
        StringTransport.__init__(self, peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        self.sock = sock
        sock.setblocking(False)
        self.aborted = False

    def getHandle(self) -> socket.socket:
        return self.sock

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # (its peer gone: a transport says so by its connectionLost, never to the writer)

    def abortConnection(self) -> None:
        self.aborted = True
        StringTransport.abortConnection(self)


class TLSHangUpTests(SynchronousTestCase):
    """A raw TLS client on a line whose device takes no input (TLS 1.3: its close_notify looks like data)."""

    version = ssl.TLSVersion.TLSv1_3

    def setUp(self) -> None:
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.said: list[str] = []
        observeLog(self, lambda e: self.said.append(formatEvent(e)) if e.get("line") == "t" else None)
        spec = parseListener(f"raw+tls:0:cert={cert}:key={key}")
        assert spec.tls is not None
        factory = RefusingTLSFactory(ServerContextFactory(spec.tls), False, LineFactory(self.line, spec, clock=self.clock),
                                     self.clock)
        ours, self.peer = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(self.peer.close)
        self.peer.setblocking(False)
        self.transport = SocketTransport(ours)
        self.lost = False
        self.tls = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 40000))
        self.tls.makeConnection(self.transport)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = self.version
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = context.wrap_bio(self.incoming, self.outgoing)
        self.handshake()
        self.assertEqual(len(self.line.clients), 1)
        self.session: Any = self.line.clients[0]

    def pump(self) -> None:
        """Bytes move both ways until none moves: the gateway's end read only while its transport reads."""
        moved = True
        while moved:
            moved = False
            out = self.outgoing.read()
            if out:
                self.peer.sendall(out)
                moved = True
            while self.transport.producerState == "producing" and not self.transport.disconnecting:
                try:
                    data = self.transport.sock.recv(65536)
                except BlockingIOError:
                    break
                if not data:
                    self.transport.disconnecting = True  # (its end of file)
                    break
                self.tls.dataReceived(data)
                moved = True
            if self.transport.disconnecting and not self.lost:
                # Closed (its end of file; TLS closed it after a close_notify): the reactor says so.
                self.lost = True
                self.tls.connectionLost(Failure(ConnectionDone()))
            try:
                back = self.peer.recv(65536) if self.peer.fileno() >= 0 else b""  # (none once it hung up)
            except BlockingIOError:
                back = b""
            if back:
                self.incoming.write(back)
                moved = True

    def handshake(self) -> None:
        for _ in range(10):
            try:
                self.client.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.pump()
        self.pump()
        self.assertTrue(self.transport.sock.fileno() >= 0)

    def send(self, data: bytes) -> None:
        self.client.write(data)
        self.pump()

    def hangUp(self) -> None:
        """The client says close_notify (unanswered) and closes its socket."""
        try:
            self.client.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.pump()
        self.peer.close()

    def typed(self) -> bytes:
        return b"".join(data for kind, data in self.device.events if kind == "write")

    def test_hungUpWithOnlyItsCloseUnreadGoes(self) -> None:
        """A TLS client that hangs up with nothing typed goes within HANGUP_CHECK_SECONDS: its close_notify, unread in its socket, kept it attached for ever (FIONREAD > 0), its place in max-clients taken."""
        self.line.deviceWritable(False)
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertFalse(self.transport.aborted)
        self.hangUp()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertTrue(self.transport.aborted)
        self.assertIn(f"t: {self.session.peer} hung up while the device took no input (nothing it sent was left "
                      "unread): it goes now", self.said)
        self.assertEqual(self.line.refused, 0)

    def unread(self) -> int:
        """Bytes waiting unread in the gateway's end of the socket."""
        return struct.unpack("i", fcntl.ioctl(self.transport.sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]

    def test_hungUpWithTypingKeepsIt(self) -> None:
        """A TLS client that typed while the device took no input, then hung up, stays as a raw one does: its typing reaches the device once it takes input (it was dropped), then it goes; its place in max-clients is free meanwhile."""
        self.line.maxClients = 1
        self.line.deviceWritable(False)
        self.send(b"typed while paused")
        self.assertTrue(self.line.full())
        self.hangUp()
        self.clock.advance(HANGUP_CHECK_SECONDS * 3)
        self.assertFalse(self.transport.aborted)
        self.assertEqual((self.typed(), self.line.refused, len(self.line.clients)), (b"", 0, 1))
        self.assertIn(f"t: {self.session.peer} hung up while the device took no input: what it sent waits for the "
                      "device, then it goes (its place is free)", self.said)
        self.assertFalse(self.line.full())
        self.line.deviceWritable(True)
        self.pump()
        self.assertEqual((self.typed(), self.line.refused, len(self.line.clients)), (b"typed while paused", 0, 0))

    def test_uploadKeptWhole(self) -> None:
        """An upload (100 KiB) that hung up while the device took no input reaches it whole and in order; the look read at most TLS_LOOK_MOST of it on the reactor, the rest left in the socket until the client is read again."""
        upload = bytes(range(256)) * 400
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # (all of it waits in the socket: room made)
        self.line.deviceWritable(False)
        for at in range(0, len(upload), 16384):
            self.send(upload[at:at + 16384])
        self.hangUp()
        before = self.unread()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.assertFalse(self.transport.aborted)
        self.assertGreater(self.unread(), 0)
        self.assertLessEqual(before - self.unread(), TLS_LOOK_MOST)
        self.line.deviceWritable(True)
        self.pump()
        self.assertEqual(self.typed(), upload)
        self.assertEqual((self.line.refused, len(self.line.clients)), (0, 0))

    def test_keptTypingDroppedIfItGoesFirst(self) -> None:
        """A TLS client that hung up with its typing kept, disconnected before the device takes input: that typing is not sent, counted (refused) and logged."""
        self.line.deviceWritable(False)
        self.send(b"typed while paused")
        self.hangUp()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.session.disconnect("gone")
        self.assertEqual((self.typed(), self.line.refused), (b"", 18))
        self.assertIn(f"t: {self.session.peer} left with 18 byte(s) it typed while the device took no input: not sent",
                      self.said)

    def test_droppedPastTheBoundSaysItsTyping(self) -> None:
        """A TLS client whose typing waits, cut past the line's bound on such clients: the typing held for it is what is said and counted, once (it was said as 0 unread bytes, then again as it went)."""
        self.line.deviceWritable(False)
        self.send(b"typed while paused")
        self.hangUp()
        self.clock.advance(HANGUP_CHECK_SECONDS)
        self.session.dropLeftTyping("past the bound")
        self.pump()
        self.assertEqual((self.typed(), self.line.refused, self.transport.aborted), (b"", 18, True))
        self.assertEqual([line for line in self.said if "not sent" in line],
                         [f"t: {self.session.peer}'s 18 unread byte(s) not sent: past the bound"])

    def test_liveClientKeepsItsTyping(self) -> None:
        """A TLS client still there whose typing waits is left alone, checks after checks: its typing reaches the device once it takes input."""
        self.line.deviceWritable(False)
        self.send(b"waits for the device")
        self.clock.advance(HANGUP_CHECK_SECONDS * 3)
        self.assertFalse(self.transport.aborted)
        self.assertEqual(self.typed(), b"")
        self.line.deviceWritable(True)
        self.pump()
        self.assertEqual(self.typed(), b"waits for the device")
        self.assertEqual(self.line.refused, 0)


class TLS12HangUpTests(TLSHangUpTests):
    """The same over TLS 1.2 (its close_notify an alert record in the clear)."""

    version = ssl.TLSVersion.TLSv1_2
