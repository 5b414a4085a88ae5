"""
A session told to go (a reload removing its line, escape d, idle) while
its output guard is full: it takes what waits for it, then its connection
closes at once; and at the gateway's stop, every session still connected
takes its last output before the reactor ends (at most LAST_OUTPUT_WAIT s).
Over Twisted's own write buffering (FileDescriptor), whose doWrite decides
between resuming a paused producer and closing.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import abstract
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lastoutput import LAST_OUTPUT_WAIT
from serialgw.app.service import GatewayService
from serialgw.clients.raw import RawClient
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingPort

CHUNK = bytes(range(256)) * 16


class SlowPeer(abstract.FileDescriptor):
    """Twisted's write buffering over a socket whose peer reads when told (L{read}); what it read in C{received}."""

    def __init__(self) -> None:
        abstract.FileDescriptor.__init__(self, MemoryReactor())
        self.connected = 1
        self.protocol: Any = None
        self.room = 0
        self.received = bytearray()
        self.lost = False

    def writeSomeData(self, data: bytes) -> int:
        taken = min(self.room, len(data))
        self.room -= taken
        self.received += data[:taken]
        return taken

    def read(self, count: int) -> None:
        """The peer reads C{count} bytes: the reactor's turns of doWrite while it is watched for writing."""
        self.room += count
        while not self.lost and self in self.reactor.getWriters() and self.room:
            if self.doWrite() is not None:
                self.lose()

    def lose(self) -> None:
        """The connection is gone: as the reactor tells the transport, then the protocol."""
        self.lost = True
        abstract.FileDescriptor.connectionLost(self, Failure(ConnectionDone()))
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def abortConnection(self) -> None:
        self.lose()

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 40000)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 4445)


class GatewayCase(SynchronousTestCase):
    """A started gateway of one line t on a recording port; raw clients over L{SlowPeer}."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.port = RecordingPort(self.clock)
        self.log = LogEvents(self)
        config = LineConfig("t", DeviceSpec("tty", "/dev/fake"))
        self.service = GatewayService([config], reactor=self.clock, openPort=lambda *a: self.port)
        self.service.startService()
        self.line = self.service.lines["t"]

    def connect(self, listener: str) -> tuple[RawClient, SlowPeer]:
        client = RawClient(self.line, Role.WRITER, listener=parseListener(listener), clock=self.clock)
        peer = SlowPeer()
        peer.protocol = client
        client.makeConnection(peer)
        return client, peer

    def flood(self, client: RawClient, chunks: int = 8) -> bytes:
        """Device output past the client's bound: its guard is full."""
        for _ in range(chunks):
            self.line.deviceDataReceived(CHUNK)
        assert client.guard is not None
        self.assertTrue(client.guard.full)
        return CHUNK * chunks

    def cuts(self) -> list[Any]:
        return [e for e in self.log.events if "did not take its last output" in (e.get("log_format") or "")]


class DisconnectWhileFullTests(GatewayCase):
    def test_blockClientTakesItAllThenGoes(self) -> None:
        """A policy=block client full when a reload removes its line: it reads all that waits, and its connection closes then, not cut CLOSE_GRACE s later."""
        client, peer = self.connect("raw,policy=block,outbuf=4096+4445")
        sent = self.flood(client)
        client.disconnect("this line was removed from the configuration")
        peer.read(len(sent))
        self.assertEqual(bytes(peer.received), sent)
        self.assertTrue(peer.lost)
        self.assertTrue(client.sessionEnded)
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.cuts(), [])

    def test_dropClientTakesWhatWasHeld(self) -> None:
        """A policy=drop client full when told to go: what its guard held (the newest outbuf bytes) follows what its transport held, then it closes."""
        client, peer = self.connect("raw,outbuf=4096+4445")
        self.flood(client)
        inTransport = bytes(peer.dataBuffer) + b"".join(peer._tempDataBuffer)
        client.disconnect("idle")
        peer.read(1 << 20)
        self.assertEqual(bytes(peer.received), inTransport + CHUNK[-4096:])
        self.assertTrue(peer.lost)
        self.assertEqual(self.cuts(), [])


class StopTakesLastOutputTests(GatewayCase):
    def test_stopWaitsForTheLastOutput(self) -> None:
        """At the stop a policy=block client that is behind gets all the output the gateway read before its connection closes; the stop waits for that."""
        client, peer = self.connect("raw,policy=block,outbuf=4096+4445")
        sent = self.flood(client)
        stopped = self.service.stopService()
        self.assertNoResult(stopped)
        self.assertEqual(bytes(peer.received), b"")
        self.assertEqual(client.endedBecause, "the gateway is stopping")
        peer.read(len(sent) // 2)
        self.assertNoResult(stopped)
        peer.read(len(sent))
        self.assertEqual(bytes(peer.received), sent)
        self.assertTrue(peer.lost)
        self.successResultOf(stopped)
        self.assertEqual(self.cuts(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopCutsOneThatNeverReads(self) -> None:
        """A client that never reads is cut LAST_OUTPUT_WAIT s into the stop, logged with what it did not take; the stop goes on."""
        client, peer = self.connect("raw,policy=block,outbuf=4096+4445")
        sent = self.flood(client)
        stopped = self.service.stopService()
        self.clock.advance(LAST_OUTPUT_WAIT - 0.1)
        self.assertNoResult(stopped)
        self.clock.advance(0.1)
        self.successResultOf(stopped)
        self.assertTrue(peer.lost)
        # Nothing its guard held (let go into its connection at the stop); all it was sent its connection had not written.
        self.assertEqual([(e["peer"], e["count"], e["buffered"]) for e in self.cuts()],
                         [("127.0.0.1:40000", 0, len(sent))])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopHurriedCutsAtOnce(self) -> None:
        """SIGTERM again during the stop: a client still taking its last output is cut at once."""
        client, peer = self.connect("raw,policy=block,outbuf=4096+4445")
        self.flood(client)
        stopped = self.service.stopService()
        self.service.hurry("SIGTERM")
        self.successResultOf(stopped)
        self.assertTrue(peer.lost)
        self.assertEqual([e["why"] for e in self.cuts()], ["SIGTERM"])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SSHStopFigureTests(SynchronousTestCase):
    def test_sshCutCountsChannelAndConnection(self) -> None:
        """An SSH session cut at the stop is logged with what its channel held past the client's window (dropped at its end) and what its TCP connection's buffer held, counted once for two sessions of one connection; it said 0."""
        from twisted.conch.test.test_session import StubConnection

        from serialgw.app.lastoutput import LastOutput
        from tests.clients.test_ssh import Harness, SSHTransportStub

        log = LogEvents(self)
        h = Harness("outbuf=65536+tcp:0")
        peer = SharedPeer()
        peer.protocol = StubProtocol()
        stub = SSHTransportStub()
        stub.transport = peer  # type: ignore[assignment]
        conn = StubConnection(stub)
        line = h.lines["con1"]
        channels = []
        for window in (1000, 1 << 20):
            channel, _ = h.channel(window=window)
            channel.conn = conn
            self.assertTrue(channel.requestReceived(b"shell", b""))
            channels.append(channel)
        # (The first was told the second came: within its window.)
        told = len(b"".join(conn.data[channels[0]]))
        line.deviceDataReceived(b"o" * 5000)
        peer.write(b"p" * 3000)  # SSH packets the client has not read
        stopped = LastOutput(h.clock, channels).close()
        self.assertNoResult(stopped)
        h.clock.advance(LAST_OUTPUT_WAIT)
        self.successResultOf(stopped)
        stderr = len(b"serialgw: the gateway is stopping\n")
        cut = [(e["peer"], e["count"], e["buffered"]) for e in log.events
               if "did not take its last output" in (e.get("log_format") or "")]
        # The first: what was past its window and its reason, dropped at its end, and the connection's 3000;
        # the second read all: nothing of its own, the connection's already counted.
        self.assertEqual(cut, [("ops1 (127.0.0.1:40000)", told + 5000 - 1000 + stderr, 3000),
                               ("ops1 (127.0.0.1:40000)", 0, 0)])


    def test_sshCutCountsWhatAKeyExchangeHolds(self) -> None:
        """An SSH session whose client began a key exchange and never finished it, cut at the stop: the figure counts what conch holds back for it (the messages' payloads: its output, then its end), beside its guard's and the TCP buffer's; it left them out (eb744e8's figure, mend27)."""
        from twisted.internet.address import IPv4Address

        from serialgw.app.lastoutput import LastOutput
        from serialgw.clients.ssh import Connection, GatewaySSHFactory
        from serialgw.clients.sshauth import KeyRing, Login
        from serialgw.clients.sshsession import SSHClient
        from serialgw.wire.sockets import queuedBytes
        from tests.clients.test_ssh import Harness, Tcp, newKey
        from tests.clients.test_sshbytes import VERSION

        log = LogEvents(self)
        h = Harness("outbuf=65536+tcp:0")
        transport = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway).buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        self.addCleanup(transport.connectionLost, None)
        transport.dataReceived(VERSION)  # (its key exchange never finished: conch holds back every session message)
        transport.setService(Connection())
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=0x7FFFFFFF, remoteMaxPacket=32768)
        conn = channel.conn = transport.service
        channel.id = 0  # type: ignore[assignment]
        conn.channels[0] = channel
        conn.localToRemoteChannel[0] = 0
        conn.channelsToRemoteChannel[channel] = 0
        channel.requestReceived(b"shell", b"")
        for _ in range(64):
            h.lines["con1"].deviceDataReceived(b"x" * 4096)
        stopped = LastOutput(h.clock, [channel]).close()
        # The data of the session's messages conch holds (its output, then its end's standard error).
        held = [(kind, payload) for kind, payload in transport._blockedByKeyExchange if kind in (94, 95)]
        data = sum(len(payload) - (8 if kind == 94 else 12) for kind, payload in held)
        self.assertEqual((transport.heldForChannel(channel), transport.heldForChannel(object()), data > 65536), (data, 0, True))
        assert channel.guard is not None
        own = channel.guard.heldBytes + len(channel.buf) + sum(len(d) for _, d in channel.extBuf) + channel.droppedAtEnd
        h.clock.advance(LAST_OUTPUT_WAIT)
        self.successResultOf(stopped)
        cut = [(e["count"], e["buffered"]) for e in log.events if "did not take its last output" in (e.get("log_format") or "")]
        self.assertEqual(cut, [(own + data, queuedBytes(tcp))])


class SharedPeer(SlowPeer):
    """The TCP connection of an SSH connection: the SSH transport is its one producer (not the sessions' guards)."""

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass


class StubProtocol:
    def connectionLost(self, reason: Any) -> None:
        pass
