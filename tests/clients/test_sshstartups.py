"""
The SSH listener's bounds on connections before login: new connections a
source may open (a key exchange each, ~2.6 ms of the reactor) and in all,
and the places of those logging in (the oldest cut to make room).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import sshlimits
from serialgw.clients.ssh import Connection, GatewaySSHFactory, SSHGateway
from serialgw.clients.sshauth import KeyRing
from serialgw.clients.sshtransport import ServerTransport
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.logflood import peerLimiter
from tests.clients.test_ssh import Tcp, newKey
from tests.fakes import LogEvents


def v4(host: str, port: int = 1) -> IPv4Address:
    return IPv4Address("TCP", host, port)


class StartupTests(SynchronousTestCase):
    def factory(self, listener: str = "tcp:0") -> GatewaySSHFactory:
        gateway = SSHGateway(dict, parseSSHListener(listener), Clock())
        return GatewaySSHFactory(newKey(), KeyRing(()), gateway)

    def connect(self, factory: GatewaySSHFactory, address: Any) -> Any:
        """A connection from C{address}, made (its protocol and its TCP transport), or what refused it."""
        protocol = factory.buildProtocol(address)
        if protocol is None:
            return None
        tcp = Tcp() if isinstance(protocol, ServerTransport) else StringTransport()
        tcp.peerAddr = address
        protocol.makeConnection(tcp)
        return protocol

    def churn(self, factory: GatewaySSHFactory, address: Any, count: int) -> list[Any]:
        """C{count} connections from C{address} one after the other, each gone before the next (a key exchange each)."""
        made = []
        for _ in range(count):
            protocol = self.connect(factory, address)
            made.append(protocol)
            if isinstance(protocol, ServerTransport):
                protocol.connectionLost(None)
        return made

    def test_newConnectionsPerSourceBounded(self) -> None:
        """One address opening connections one after the other (each a key exchange) gets SOURCE_BURST, then one each 1/SOURCE_RATE s; the others are told in one line and closed; another address is not held."""
        events = LogEvents(self)
        factory = self.factory()
        made = self.churn(factory, v4("192.0.2.66"), sshlimits.SOURCE_BURST + 5)
        self.assertEqual([isinstance(p, ServerTransport) for p in made],
                         [True] * sshlimits.SOURCE_BURST + [False] * 5)
        refused = made[-1]
        self.assertEqual(refused.transport.value(),
                         b"serialgw: too many new SSH connections from 192.0.2.66: try again in 1 s\r\n")
        self.assertTrue(refused.transport.disconnecting)
        self.assertIsInstance(self.connect(factory, v4("192.0.2.77")), ServerTransport)
        factory.clock.advance(1.0 / sshlimits.SOURCE_RATE)
        self.assertEqual([isinstance(p, ServerTransport) for p in self.churn(factory, v4("192.0.2.66"), 2)],
                         [True, False])
        warnings = events.at(LogLevel.warn)
        self.assertEqual({(e["peer"], e["log_format"]) for e in warnings},
                         {("192.0.2.66", "ssh: connection from {peer} refused: more new connections from there than "
                           "{burst} at once, then {rate} a second")})

    def test_newConnectionsPerSourceIPv6(self) -> None:
        """The addresses of one IPv6 /64 share one source's new connections; another /64 has its own."""
        factory = self.factory()
        made = [self.churn(factory, IPv6Address("TCP", f"2001:db8:0:1::{n:x}", 1), 1)[0]
                for n in range(1, sshlimits.SOURCE_BURST + 2)]
        self.assertEqual([isinstance(p, ServerTransport) for p in made], [True] * sshlimits.SOURCE_BURST + [False])
        self.assertIsInstance(self.churn(factory, IPv6Address("TCP", "2001:db8:0:2::1", 1), 1)[0], ServerTransport)

    def test_newConnectionsInAllBounded(self) -> None:
        """Many addresses opening connections get TOTAL_BURST in all, then TOTAL_RATE a second, whoever they are, said with the address, the log's per-peer burst a minute at most for the listener (the reactor's key exchanges are bounded); an address that logged in before still gets in."""
        events = LogEvents(self)
        factory = self.factory()
        friend = self.connect(factory, v4("198.51.100.1"))
        friend.setService(Connection())
        friend.connectionLost(None)
        made = [self.churn(factory, v4(f"10.0.{n // 250}.{n % 250 + 1}"), 1)[0]
                for n in range(sshlimits.TOTAL_BURST + 100)]
        self.assertEqual(sum(isinstance(p, ServerTransport) for p in made), sshlimits.TOTAL_BURST - 1)
        self.assertEqual(made[-1].transport.value(), b"serialgw: too many new SSH connections: try again in 1 s\r\n")
        self.assertIsInstance(self.connect(factory, v4("198.51.100.1")), ServerTransport)
        factory.clock.advance(1.0)
        made = [self.churn(factory, v4(f"10.1.{n // 250}.{n % 250 + 1}"), 1)[0] for n in range(100)]
        self.assertEqual(sum(isinstance(p, ServerTransport) for p in made), sshlimits.TOTAL_RATE)
        warnings = [e for e in events.at(LogLevel.warn) if "in all" in e["log_format"]]
        self.assertEqual((warnings[0]["address"], len(warnings)), ("10.0.0." + str(sshlimits.TOTAL_BURST), peerLimiter.burst))

    def test_inAllSharedFairly(self) -> None:
        """40 addresses each opening connections at their own bound's rate (one a second) leave a place in all for a newcomer, minute after minute: the last FAIR_RESERVE are for sources that took none lately (first come first served, 21 such addresses kept every newcomer out)."""
        factory = self.factory()
        attackers = [v4(f"10.9.0.{n}") for n in range(1, 41)]
        newcomers = iter(v4(f"198.51.100.{n}") for n in range(1, 200))
        let = []
        for second in range(180):
            factory.clock.advance(1.0)
            for address in attackers:
                self.churn(factory, address, 1)
            if second % 30 == 29:
                let.append(isinstance(self.churn(factory, next(newcomers), 1)[0], ServerTransport))
        self.assertEqual(let, [True] * 6)
        # They are held to about one each a FAIR_WINDOW, past the reserve: not starved either.
        self.assertGreater(len(factory.allConnections.takers), 30)

    def test_fairnessRemembersBounded(self) -> None:
        """The takers of the bound in all remembered for its fairness are those of the last FAIR_WINDOW s, however many addresses come (bounded by the bound itself)."""
        factory = self.factory()
        for n in range(5000):
            factory.clock.advance(0.01)
            self.churn(factory, IPv6Address("TCP", f"2001:db8:{n >> 16:x}:{n & 0xffff:x}::1", 1), 1)
        took = factory.allConnections.takers
        self.assertLessEqual(len(took), sshlimits.TOTAL_BURST + sshlimits.TOTAL_RATE * sshlimits.FAIR_WINDOW)
        self.assertLess(factory.clock.seconds() - min(took.values()), sshlimits.FAIR_WINDOW)

    def test_knownExemptionBounded(self) -> None:
        """An address a person logged in from is exempt from the bound in all for KNOWN_CREDIT new connections after each login from there, not for as long as it is remembered (anyone behind the same NAT or /64 had it)."""
        factory = self.factory()
        friend = self.connect(factory, v4("198.51.100.1"))
        friend.setService(Connection())
        friend.connectionLost(None)
        for n in range(sshlimits.TOTAL_BURST):
            self.churn(factory, v4(f"10.0.{n // 250}.{n % 250 + 1}"), 1)
        made = self.churn(factory, v4("198.51.100.1"), sshlimits.KNOWN_CREDIT + 1)
        self.assertEqual([isinstance(p, ServerTransport) for p in made], [True] * sshlimits.KNOWN_CREDIT + [False])
        # (It took one of the bound in all with its first connection: a place past the reserve, in 2.55 s.)
        self.assertEqual(made[-1].transport.value(), b"serialgw: too many new SSH connections: try again in 3 s\r\n")
        factory.loggedIn("198.51.100.1")
        self.assertIsInstance(self.connect(factory, v4("198.51.100.1")), ServerTransport)

    def test_sourcesRememberedBounded(self) -> None:
        """What is remembered of the sources' new connections is bounded (MAX_SOURCES), however many addresses come."""
        factory = self.factory()
        for n in range(sshlimits.MAX_SOURCES + 500):
            factory.clock.advance(1.0)
            self.churn(factory, IPv6Address("TCP", f"2001:db8:{n >> 16:x}:{n & 0xffff:x}::1", 1), 1)
        self.assertEqual(len(factory.newConnections.buckets), sshlimits.MAX_SOURCES)

    def test_fullCutsTheOldest(self) -> None:
        """With maxStartups connections logging in, a new one cuts the oldest of them, said (several hosts holding every place kept everyone out, renewed every loginGrace s)."""
        events = LogEvents(self)
        factory = self.factory()
        factory.maxStartups = 3
        held = [self.connect(factory, v4(f"192.0.2.{n}", 1000 + n)) for n in (1, 2, 3)]
        fresh = self.connect(factory, v4("192.0.2.9", 2000))
        self.assertIsInstance(fresh, ServerTransport)
        self.assertEqual([p.transport.aborted for p in held], [True, False, False])
        self.assertEqual((factory.startups.total, sorted(factory.startups.bySource)),
                         (3, ["192.0.2.2", "192.0.2.3", "192.0.2.9"]))
        held[0].connectionLost(None)
        self.assertEqual(factory.startups.total, 3)
        [warning] = events.at(LogLevel.warn)
        self.assertEqual((warning["oldest"], warning["address"], warning["count"]),
                         ("192.0.2.1:1001", "192.0.2.9", 3))


class PersonRateTests(SynchronousTestCase):
    def test_messagesPerPersonNotPerConnection(self) -> None:
        """A person's connections together may send MESSAGES_PER_SECOND messages a second, not each of them: past it, the one that sends is not read for the rest of that second (one person's 16 sessions, 2000 messages a second each at ~30 us, took the whole reactor); another person is not held."""
        from tests.clients.test_ssh import BufferedTcp

        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        factory = GatewaySSHFactory(newKey(), KeyRing(()), gateway)
        made = []
        for port, person in ((1, "ops1"), (2, "ops1"), (3, "ops2")):
            transport = factory.buildProtocol(v4("192.0.2.7", port))
            tcp = BufferedTcp()
            transport.makeConnection(tcp)
            transport.setService(Connection())
            transport.sessionStarted(person)
            made.append((transport, tcp))
        (first, firstTcp), (second, secondTcp), (other, otherTcp) = made
        for _ in range(sshlimits.MESSAGES_PER_SECOND // 2):
            first.dispatchMessage(2, b"\0\0\0\0")
            second.dispatchMessage(2, b"\0\0\0\0")
        self.assertEqual((firstTcp.producerState, secondTcp.producerState), ("producing", "producing"))
        second.dispatchMessage(2, b"\0\0\0\0")
        self.assertEqual((firstTcp.producerState, secondTcp.producerState), ("producing", "paused"))
        for _ in range(sshlimits.MESSAGES_PER_SECOND):
            other.dispatchMessage(2, b"\0\0\0\0")
        self.assertEqual(otherTcp.producerState, "producing")
        factory.clock.advance(1)
        self.assertEqual(secondTcp.producerState, "producing")
        for transport, _ in made:
            transport.connectionLost(None)
        self.assertEqual(factory.clock.getDelayedCalls(), [])


class LoginRefundTests(SynchronousTestCase):
    def test_loggedInConnectionsNotCounted(self) -> None:
        """A source's connections that log in give their place in its bound back (a host checking 100 lines over SSH a minute was held to one a second after 20), up to PERSON_LOGINS at once then PERSON_LOGIN_RATE a second of each person's logins; past them they count again."""
        from serialgw.clients.sshauth import Login

        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        factory = GatewaySSHFactory(newKey(), KeyRing(()), gateway)
        test = StartupTests("test_newConnectionsPerSourceBounded")

        def login(person: str) -> Any:
            transport = test.connect(factory, v4("192.0.2.66"))
            if isinstance(transport, ServerTransport):
                transport.avatar = type("Avatar", (), {"login": Login(person, "l1")})()
                transport.logoutFunction = lambda: None
                transport.setService(Connection())
                transport.connectionLost(None)
            return transport

        made = [login("ops1") for _ in range(sshlimits.PERSON_LOGINS)]
        self.assertTrue(all(isinstance(t, ServerTransport) for t in made))
        made = [login("ops1") for _ in range(sshlimits.SOURCE_BURST + 1)]
        self.assertEqual([isinstance(t, ServerTransport) for t in made], [True] * sshlimits.SOURCE_BURST + [False])


class PersonLogBudgetTests(SynchronousTestCase):
    def test_slowedLinesOnePersonsBudget(self) -> None:
        """'sent more than 2000 messages in a second' counts against its person's log budget (20 lines a minute), not each connection's: 25 connections of one person over the bound log 20 lines, not 25 (each connection, its own port, had 20 of its own)."""
        from tests.clients.test_ssh import BufferedTcp

        events = LogEvents(self)
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        factory = GatewaySSHFactory(newKey(), KeyRing(()), gateway)
        made = []
        for port in range(1, 26):
            address = v4("192.0.2.7" if port <= 8 else f"192.0.2.{port}", port)
            transport = factory.buildProtocol(address)
            tcp = BufferedTcp()
            tcp.peerAddr = address
            transport.makeConnection(tcp)
            transport.setService(Connection())
            transport.sessionStarted("flooder-of-the-log-budget")
            made.append(transport)
        for _ in range(sshlimits.MESSAGES_PER_SECOND):
            made[0].dispatchMessage(2, b"\0\0\0\0")
        for transport in made:
            transport.dispatchMessage(2, b"\0\0\0\0")
        said = [e for e in events.at(LogLevel.info) if "in a second" in e["log_format"]]
        self.assertEqual((len(said), said[0]["address"], said[-1]["address"]),
                         (peerLimiter.burst, "192.0.2.7:1", "192.0.2.20:20"))
        for transport in made:
            transport.connectionLost(None)

    def test_sessionLinesOnePersonsBudget(self) -> None:
        """What a person's sessions say (a refused request) counts against that person's log budget too: 25 sessions (a client reconnecting in a loop), each asking for X11, log 20 lines a minute, not 25 (each session had 20 of its own)."""
        from tests.clients.test_ssh import Harness

        events = LogEvents(self)
        h = Harness()
        for _ in range(25):
            channel, _ = h.channel(user="reconnector-of-the-log-budget")
            channel.channelOpen(b"")
            self.assertFalse(channel.requestReceived(b"x11-req", b""))
        said = [e for e in events.at(LogLevel.info) if "refused" in e["log_format"]]
        self.assertEqual((len(said), said[0]["request"]), (peerLimiter.burst, "x11-req"))
