"""
What an SSH client's bytes may make the gateway do: no compression (a
zlib bomb), bytes before a session, a packet's length, a person's bytes a
second.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.conch.ssh.common import NS, getNS
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import sshlimits
from serialgw.clients.ssh import Connection, GatewaySSHFactory, SSHGateway
from serialgw.clients.sshauth import KeyRing
from serialgw.config.gatewaylisteners import parseSSHListener
from tests.clients.test_ssh import BufferedTcp, Tcp, newKey
from tests.fakes import LogEvents

VERSION = b"SSH-2.0-OpenSSH_9.2\r\n"


def packetHeader(length: int) -> bytes:
    """The first block of an unencrypted SSH packet of C{length} (its padding length, then an IGNORE)."""
    return struct.pack(">LB", length, 4) + bytes((2,)) + b"\0\0"


def ignore(size: int) -> bytes:
    """A whole unencrypted IGNORE packet of C{size} bytes on the wire."""
    return struct.pack(">LB", size - 4, 4) + bytes((2,)) + b"\0" * (size - 6)


class BytesTests(SynchronousTestCase):
    def transport(self, sessionOf: str = "", factory: Any = None) -> tuple[Any, Any]:
        if factory is None:
            factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(VERSION)
        if sessionOf:
            transport.setService(Connection())
            transport.sessionStarted(sessionOf)
        self.addCleanup(transport.connectionLost, None)
        return transport, tcp

    def test_noCompression(self) -> None:
        """The gateway offers no compression, "none" only, both ways (zlib, taken before login, let one connection's 600 KB inflate to 200 MB a message: seen 55 -> 479 MB of RSS and 1.6 s of CPU for three)."""
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        factory = GatewaySSHFactory(newKey(), KeyRing(()), gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        sent = tcp.value()
        packet = sent[sent.index(b"\r\n") + 2:]
        payload = packet[5:4 + struct.unpack(">L", packet[:4])[0] - packet[4]]
        self.assertEqual(payload[0], 20)
        rest = payload[17:]
        lists = []
        for _ in range(10):
            found, rest = getNS(rest)
            lists.append(found)
        self.assertEqual(lists[6:8], [b"none", b"none"])
        self.addCleanup(transport.connectionLost, None)

    def test_bytesBeforeSessionBounded(self) -> None:
        """Before its session a connection may send BYTES_BEFORE_SESSION bytes (a login with ten keys takes about 20 KB); past them it is cut, said once (a 1 MB packet, conch's own bound, 256 of them, cost a core)."""
        events = LogEvents(self)
        transport, tcp = self.transport()
        chunk = ignore(16384)
        for _ in range((sshlimits.BYTES_BEFORE_SESSION - len(VERSION)) // len(chunk)):
            transport.dataReceived(chunk)
        self.assertFalse(tcp.disconnecting)
        transport.dataReceived(chunk)
        self.assertTrue(tcp.disconnecting)
        self.assertEqual([e["log_format"] for e in events.at(LogLevel.info)],
                         ["ssh: {address} sent over {count} bytes before a session: disconnected"])

    def test_packetLengthBounded(self) -> None:
        """A packet longer than MAX_PACKET (OpenSSH's own bound) is refused as soon as its length is read, said (conch took packets of 1 MB, each held whole before it was looked at)."""
        events = LogEvents(self)
        transport, tcp = self.transport(sessionOf="ops1")
        transport.dataReceived(packetHeader(sshlimits.MAX_PACKET - 4))
        self.assertFalse(tcp.disconnecting)
        transport, tcp = self.transport(sessionOf="ops1")
        transport.dataReceived(packetHeader(sshlimits.MAX_PACKET + 4))
        self.assertTrue(tcp.disconnecting)
        self.assertEqual([(e["log_format"], e["length"]) for e in events.at(LogLevel.info)],
                         [("ssh: {address} sent a packet of {length} bytes (over {most}): disconnected",
                           sshlimits.MAX_PACKET + 4)])

    def test_bytesPerPersonBounded(self) -> None:
        """With its session started, a person's connections together may send BYTES_PER_SECOND bytes a second; past them the one that sends is not read for the rest of the second (messages of 1 MB, 2000 a second, were read as fast as they came)."""
        first, firstTcp = self.transport(sessionOf="ops1")
        second, secondTcp = self.transport(sessionOf="ops1", factory=first.factory)
        other, otherTcp = self.transport(sessionOf="ops2", factory=first.factory)
        chunk = ignore(65536)
        for n in range(sshlimits.BYTES_PER_SECOND // len(chunk)):
            (first if n % 2 else second).dataReceived(chunk)
        self.assertEqual((firstTcp.producerState, secondTcp.producerState), ("producing", "producing"))
        first.dataReceived(chunk)
        other.dataReceived(chunk)
        self.assertEqual((firstTcp.producerState, otherTcp.producerState), ("paused", "producing"))
        first.factory.clock.advance(1)
        self.assertEqual(firstTcp.producerState, "producing")

    def test_keyExchangeFailureSaid(self) -> None:
        """A client with nothing in common (here: zlib compression only) is disconnected with one log line naming it, its software and why (it was cut without a word in the log)."""
        from twisted.conch.ssh.common import NS

        events = LogEvents(self)
        transport, tcp = self.transport()
        lists = [b"curve25519-sha256", b"ssh-ed25519", b"aes128-ctr", b"aes128-ctr", b"hmac-sha2-256",
                 b"hmac-sha2-256", b"zlib", b"zlib", b"", b""]
        transport.dispatchMessage(20, b"\0" * 16 + b"".join(NS(n) for n in lists) + b"\0" + b"\0\0\0\0")
        self.assertTrue(tcp.disconnecting)
        [event] = events.at(LogLevel.info)
        self.assertEqual((event["address"], event["peer"], event["version"], event["why"]),
                         ("192.0.2.7:40000", "192.0.2.7", "SSH-2.0-OpenSSH_9.2", "couldn't match all kex parts"))


class ChannelRefusalLogTests(SynchronousTestCase):
    def test_channelRefusalsLimitedPerAddress(self) -> None:
        """Channels refused (port forwarding, a second session) over many connections from one address: at most the log's per-peer burst of lines for the address (the budget was a connection's: a person reconnecting had 20 more lines each time)."""
        from serialgw.logflood import peerLimiter

        events = LogEvents(self)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        for port in range(10):
            transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.55", 1000 + port))
            tcp = Tcp()
            tcp.peerAddr = IPv4Address("TCP", "192.0.2.55", 1000 + port)
            transport.makeConnection(tcp)
            conn = Connection()
            transport.setService(conn)
            for n in range(5):
                conn.ssh_CHANNEL_OPEN(NS(b"direct-tcpip") + struct.pack(">3L", n, 65536, 32768))
            transport.connectionLost(None)
        refused = [e for e in events.at(LogLevel.info) if "refused" in e["log_format"]]
        self.assertEqual(len(refused), peerLimiter.burst)
        self.assertEqual((refused[0]["address"], refused[0]["peer"]), ("192.0.2.55:1000", "192.0.2.55"))

    def test_globalRequestsRefusedSaid(self) -> None:
        """Global requests (OpenSSH -R: tcpip-forward) are refused with a line naming them and the address (they were refused without a word); OpenSSH's keepalives and no-more-sessions only at debug."""
        events = LogEvents(self)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.55", 1000))
        transport.makeConnection(Tcp())
        conn = Connection()
        transport.setService(conn)
        self.addCleanup(transport.connectionLost, None)
        self.assertEqual([conn.gotGlobalRequest(kind, NS(b"0.0.0.0") + b"\0\0\0\0")
                          for kind in (b"tcpip-forward", b"keepalive@openssh.com", b"no-more-sessions@openssh.com",
                                       b"x\x1b" * 100)], [0, 0, 0, 0])
        self.assertEqual([(e["log_level"], e["request"]) for e in events.events
                          if e.get("log_format", "").startswith("ssh: {address}: global request")],
                         [(LogLevel.info, "tcpip-forward"), (LogLevel.debug, "keepalive@openssh.com"),
                          (LogLevel.debug, "no-more-sessions@openssh.com"), (LogLevel.info, "x\\x1b" * 32 + "... (200 bytes)")])


class KeyExchangeHoldTests(SynchronousTestCase):
    def test_outputHeldByAKeyExchangeBounded(self) -> None:
        """A key exchange left unfinished holds back the session's output (conch queues it): past the connection's bound the session's output waits and its policy drops it, not queued without bound (seen: 850 MB grown from one read-only person's stalled rekey on a busy line); once done, output flows again."""
        from tests.clients.test_ssh import Harness

        h = Harness("outbuf=65536+tcp:0")
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        self.addCleanup(transport.connectionLost, None)
        # (Its first key exchange never finished: conch holds back every message of the session.)
        transport.dataReceived(VERSION)
        transport.setService(Connection())
        from serialgw.clients.sshauth import Login
        from serialgw.clients.sshsession import SSHClient

        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=0x7FFFFFFF, remoteMaxPacket=32768)
        conn = channel.conn = transport.service
        # Open as conch's ssh_CHANNEL_OPEN leaves it: channel 0, the client's 0.
        channel.id = 0  # type: ignore[assignment]
        conn.channels[0] = channel
        conn.localToRemoteChannel[0] = 0
        conn.channelsToRemoteChannel[channel] = 0
        channel.requestReceived(b"shell", b"")
        line = h.lines["con1"]
        for _ in range(256):
            line.deviceDataReceived(b"x" * 4096)
        held = sum(len(payload) for _, payload in transport._blockedByKeyExchange)
        assert channel.guard is not None
        self.assertTrue(channel.guard.full)
        self.assertLess(held, 65536 + 2 * 32768)
        # The key exchange done (as conch's NEWKEYS does): what it held goes out, and output flows again.
        transport.nextEncryptions = transport.currentEncryptions
        transport.outgoingCompressionType = transport.incomingCompressionType = b"none"
        transport._newKeys()
        self.assertFalse(channel.guard.full)
        self.assertGreater(len(tcp.value()), held)

    def test_answersHeldByAKeyExchangeBounded(self) -> None:
        """Requests answered while a key exchange is left unfinished: their answers are held (conch queues them), and past twice the bound and a packet the connection is cut, said (a stalled rekey and 2000 requests a second grew the gateway 270 KB a second)."""
        from serialgw.clients.sshauth import Login
        from serialgw.clients.sshsession import SSHClient
        from tests.clients.test_ssh import Harness

        events = LogEvents(self)
        h = Harness("outbuf=65536+tcp:0")
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        self.addCleanup(transport.connectionLost, None)
        transport.dataReceived(VERSION)
        transport.setService(Connection())
        conn = transport.service
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768)
        channel.id = 0  # type: ignore[assignment]
        conn.channels[0] = channel
        conn.localToRemoteChannel[0] = 0
        conn.channelsToRemoteChannel[channel] = 0
        channel.conn = conn
        channel.requestReceived(b"shell", b"")
        request = struct.pack(">L", 0) + NS(b"env") + b"\x01" + NS(b"A") + NS(b"B")
        sent = 0
        while not tcp.disconnecting and sent < 100000:
            conn.ssh_CHANNEL_REQUEST(request)
            sent += 1
        self.assertTrue(tcp.disconnecting)
        limit = 2 * 65536 + sshlimits.MAX_PACKET
        # (Each answer a CHANNEL_FAILURE: its payload the channel's number, 4 bytes.)
        self.assertEqual(sent, limit // (4 + sshlimits.HELD_MESSAGE_COST) + 1)
        self.assertEqual(transport._blockedByKeyExchange, [])
        [said] = [e for e in events.at(LogLevel.info) if "key exchange" in e["log_format"]]
        self.assertEqual(said["count"], limit)


class PersonKeyExchangeTests(SynchronousTestCase):
    def test_keyExchangesPerPersonBounded(self) -> None:
        """A person's connections with sessions may start PERSON_KEX_PER_MINUTE key exchanges in a minute together, not KEX_PER_MINUTE each: the one past it is cut, said; another person is not held (a person's 800 sessions could each rekey 10 times a minute)."""
        from twisted.conch.ssh.transport import MSG_KEXINIT

        events = LogEvents(self)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        made = []
        for port, person in [(n, "ops1") for n in range(1, 5)] + [(9, "ops2")]:
            transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", port))
            tcp = Tcp()
            transport.makeConnection(tcp)
            transport.setService(Connection())
            transport.sessionStarted(person)
            transport.ssh_KEXINIT = lambda packet: None
            self.addCleanup(transport.connectionLost, None)
            made.append((transport, tcp))
        for n in range(sshlimits.PERSON_KEX_PER_MINUTE):
            transport, tcp = made[n % 4]
            transport.dispatchMessage(MSG_KEXINIT, b"k")
            factory.clock.advance(1)
        self.assertEqual([tcp.disconnecting for _, tcp in made], [False] * 5)
        made[3][0].dispatchMessage(MSG_KEXINIT, b"k")
        for _ in range(5):
            made[4][0].dispatchMessage(MSG_KEXINIT, b"k")
        self.assertEqual([tcp.disconnecting for _, tcp in made], [False, False, False, True, False])
        [said] = [e for e in events.at(LogLevel.info) if "key exchange" in e["log_format"]]
        self.assertEqual((said["person"], said["n"]), ("ops1", sshlimits.PERSON_KEX_PER_MINUTE))
