"""
A line's own listeners bind its by-name clients: a connection is given a
line only where one of the line's listeners would admit it (allow=,
interface=, a unix socket, ca= and subjects=), and read-only where each
of those is ro (or readonly= for its certificate).
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import byname
from serialgw.clients.byname import ByNameFactory
from serialgw.clients.bynameown import throughOwn
from serialgw.clients.bynameprompt import ANSWER_TIME, PROMPT
from serialgw.clients.factory import applyListenerRights
from serialgw.clients.handshakes import HandshakeTable
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingDevice

OUTSIDE = IPv4Address("TCP", "192.0.2.7", 40000)
INSIDE = IPv4Address("TCP", "10.9.3.4", 40000)
# The address a connection came in on: the host's public one, or its loopback.
PUBLIC = IPv4Address("TCP", "198.51.100.1", 7100)
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 7100)


def specs(*texts: str) -> tuple[ListenerSpec, ...]:
    return tuple(parseListener(text) for text in texts)


class OwnListenersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.lines = {name: Line(name, RecordingDevice(), clock=self.clock)
                      for name in ("open", "ro", "inside", "mixed", "local", "sock", "logged", "bare")}
        self.own: dict[str, tuple[ListenerSpec, ...]] = {
            "open": specs("telnet+tcp:4001"),
            # (examples/farm.toml's rack 4: read by the management network, written from the host only.)
            "ro": specs("telnet,ro+tcp:4002"),
            "inside": specs("raw,allow=10.9.0.0/16+tcp:4003"),
            "mixed": specs("telnet,ro+tcp:4004", "raw,allow=10.9.0.0/16+tcp:4005"),
            "local": specs("telnet+tcp:4006:interface=127.0.0.1", "telnet,ro,allow=10.9.0.0/16+tcp:4106"),
            "sock": specs("raw+unix:/run/serialgw/sock.sock"),
            # (Listeners taking no connections bind nobody: a file, a dial-out.)
            "logged": specs("file:/var/log/x.out", "raw+tcp:127.0.0.1:5000"),
            "bare": (),
        }

    def tearDown(self) -> None:
        for line in self.lines.values():
            for client in list(line.clients):
                client.connectionLost(Failure(Exception("end")))  # type: ignore[attr-defined]
        self.clock.advance(ANSWER_TIME)
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def connect(self, peer: Any = OUTSIDE, host: Any = PUBLIC, text: str = "raw+tcp:7100") -> tuple[Any, StringTransport]:
        factory = ByNameFactory(parseListener(text), ("*",), lambda: self.lines, self.clock,
                                listeners=lambda: self.own)
        prompt = factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer, hostAddress=host)
        prompt.makeConnection(transport)
        transport.clear()
        return prompt, transport

    def writes(self, name: str) -> list[bytes]:
        return [data for kind, data in self.lines[name].device.events if kind == "write"]  # type: ignore[attr-defined]

    def test_listedOnlyWhereAdmitted(self) -> None:
        """From outside 10.9/16, on the host's public address: the lines whose listeners admit it, and only those, are listed."""
        prompt, transport = self.connect()
        prompt.dataReceived(b"?\r\n")
        self.assertEqual(transport.value(), b"bare logged mixed open ro\r\n" + PROMPT)
        prompt, transport = self.connect(INSIDE, LOOPBACK)
        prompt.dataReceived(b"?\r\n")
        self.assertEqual(transport.value(), b"bare inside local logged mixed open ro\r\n" + PROMPT)

    def test_roListenersMakeItReadOnly(self) -> None:
        """A line whose listeners are all ro is read-only to its by-name clients: their typing does not reach it."""
        prompt, _ = self.connect()
        prompt.dataReceived(b"ro\r\nreboot\r")
        client = self.lines["ro"].clients[0]
        self.assertIs(client.role, Role.READONLY)
        self.assertEqual(self.writes("ro"), [])

    def test_allowNotAdmittedIsNotThere(self) -> None:
        """A line whose listeners allow= another network is answered as one not there (as a line outside lines); from inside it, writable."""
        prompt, transport = self.connect()
        prompt.dataReceived(b"inside\r\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'inside' here]\r\n" + PROMPT)
        self.assertEqual(self.lines["inside"].clients, [])
        prompt, _ = self.connect(INSIDE)
        prompt.dataReceived(b"inside\r\nAT\r")
        self.assertIs(self.lines["inside"].clients[0].role, Role.WRITER)
        self.assertEqual(self.writes("inside"), [b"AT\r"])

    def test_mixedTakesTheBestAdmitting(self) -> None:
        """An ro listener open to all and a writer's allow=: read-only from outside, a writer from inside."""
        prompt, _ = self.connect()
        prompt.dataReceived(b"mixed\r\nx")
        prompt2, _ = self.connect(INSIDE)
        prompt2.dataReceived(b"mixed\r\ny")
        self.assertEqual([c.role for c in self.lines["mixed"].clients], [Role.READONLY, Role.WRITER])
        self.assertEqual(self.writes("mixed"), [b"y"])

    def test_interfaceIsWhereItCameIn(self) -> None:
        """A writer's listener on interface=127.0.0.1 admits a by-name connection that came in on 127.0.0.1 only; not at all from outside 10.9/16 elsewhere."""
        prompt, transport = self.connect(INSIDE, PUBLIC)
        prompt.dataReceived(b"local\r\n")
        prompt2, _ = self.connect(IPv4Address("TCP", "127.0.0.1", 40001), LOOPBACK)
        prompt2.dataReceived(b"local\r\n")
        self.assertEqual([c.role for c in self.lines["local"].clients], [Role.READONLY, Role.WRITER])
        prompt3, transport3 = self.connect(OUTSIDE, PUBLIC)
        prompt3.dataReceived(b"local\r\n")
        self.assertEqual(transport3.value(), b"[serialgw: no console 'local' here]\r\n" + PROMPT)

    def test_interfaceLocalhostIsLoopback(self) -> None:
        """A writer's listener on interface=localhost (any case: bound as 127.0.0.1) admits a by-name connection that came in on 127.0.0.1; it was given to none."""
        self.own["local"] = specs("telnet+tcp:4006:interface=localhost", "telnet+tcp:4106:interface=LOCALHOST")
        prompt, transport = self.connect(IPv4Address("TCP", "127.0.0.1", 40001), LOOPBACK)
        prompt.dataReceived(b"local\r\n")
        self.assertEqual([c.role for c in self.lines["local"].clients], [Role.WRITER])
        prompt2, transport2 = self.connect(OUTSIDE, PUBLIC)
        prompt2.dataReceived(b"local\r\n")
        self.assertEqual(transport2.value(), b"[serialgw: no console 'local' here]\r\n" + PROMPT)

    def test_localhostAndEveryAddressAsWritten(self) -> None:
        """
        A listener's interface=localhost (any case) is 127.0.0.1, over tcp6
        too (Twisted binds a name over IPv4: read as ::1, a tcp6 one admitted
        connections on ::1, where it does not listen, and none on 127.0.0.1,
        where it does); one written '::0' is every address, as '::' is
        (compared as text, it matched none).
        """
        def bound(text: str, host: Any, peer: Any = OUTSIDE) -> Any:
            transport = StringTransport(peerAddress=peer, hostAddress=host)
            return throughOwn(specs(text), transport, None, None)

        loopback6 = IPv6Address("TCP", "::1", 7100)
        for text, admitted in (("telnet+tcp:4006:interface=localhost", (False, None, None)),
                               ("telnet+tcp:4006:interface=LocalHost", (False, None, None)),
                               ("telnet+tcp6:4006:interface=localhost", (False, None, None))):
            self.assertEqual((bound(text, LOOPBACK), bound(text, loopback6), bound(text, PUBLIC)), admitted, text)
        for text in ("raw+tcp6:4001:interface=\\:\\:0", "raw+tcp:4001:interface=0.0.0.0", "raw+tcp6:4001"):
            self.assertEqual(bound(text, PUBLIC), False, text)

    def test_everyIPv4AddressIsNoIPv6One(self) -> None:
        """
        A listener on every IPv4 address (a bare port, tcp: or tls: on
        0.0.0.0) takes no IPv6 connection: a by-name connection on ::1 or a
        public IPv6 address is not given its line (it was: read as every
        address, live [::]:7532 listed J4, raw+tcp:7622:interface=0.0.0.0, to
        ::1); an IPv4 one (an IPv4-mapped one too) is, and tcp6 on :: takes both.
        """
        def bound(text: str, host: Any) -> Any:
            peer = IPv6Address("TCP", "2001:db8::7", 40000) if isinstance(host, IPv6Address) else OUTSIDE
            return throughOwn(specs(text), StringTransport(peerAddress=peer, hostAddress=host), None, None)

        six, mapped = IPv6Address("TCP", "2001:db8::1", 7100), IPv6Address("TCP", "::ffff:198.51.100.1", 7100)
        loopback6 = IPv6Address("TCP", "::1", 7100)
        for text in ("raw+4006", "raw+tcp:4006:interface=0.0.0.0", "tls:4006:cert=/x/gw.pem:key=/x/gw.key"):
            ca = "" if text.startswith("tls") else None
            self.assertEqual([throughOwn(specs(text), StringTransport(peerAddress=OUTSIDE, hostAddress=h), ca, None)
                              for h in (PUBLIC, mapped, six, loopback6)], [False, False, None, None], text)
        self.assertEqual([bound("raw+tcp6:4006", h) for h in (PUBLIC, six, loopback6)], [False, False, False])

    def test_unixSocketOnlyOverOne(self) -> None:
        """A line reached only over a unix socket is not given over TCP; a by-name connection over a unix socket is given it."""
        prompt, transport = self.connect(OUTSIDE, LOOPBACK)
        prompt.dataReceived(b"sock\r\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'sock' here]\r\n" + PROMPT)
        here = UNIXAddress(None)
        prompt, _ = self.connect(here, UNIXAddress(b"/run/serialgw/byname.sock"), "raw+unix:/run/serialgw/byname.sock")
        prompt.dataReceived(b"sock\r\n")
        self.assertIs(self.lines["sock"].clients[0].role, Role.WRITER)

    def test_offeredOnlyWhereSomeConnectionIsAdmitted(self) -> None:
        """The status page's by-name listing (offers): a line none of whose listeners could admit any connection of this by-name listener (a unix-only line over TCP, an interface= elsewhere, TLS over raw) is not listed; it was listed for every line in lines."""
        def offers(text: str) -> list[str]:
            factory = ByNameFactory(parseListener(text), ("*",), lambda: self.lines, self.clock,
                                    listeners=lambda: self.own)
            return sorted(name for name, line in self.lines.items() if factory.offers(line))

        self.own["tlsonly"] = specs("tls:4009:cert=/x/gw.pem:key=/x/gw.key")
        self.lines["tlsonly"] = Line("tlsonly", RecordingDevice(), clock=self.clock)
        self.assertEqual(offers("raw+tcp:7100"), ["bare", "inside", "local", "logged", "mixed", "open", "ro"])
        # (On 10.1.1.1 only: local's writer listener is on 127.0.0.1, its ro one allow=10.9.0.0/16 anywhere.)
        self.assertEqual(offers("raw+tcp:7100:interface=10.1.1.1"),
                         ["bare", "inside", "local", "logged", "mixed", "open", "ro"])
        self.own["local"] = specs("telnet+tcp:4006:interface=127.0.0.1")
        self.assertEqual(offers("raw+tcp:7100:interface=10.1.1.1"), ["bare", "inside", "logged", "mixed", "open", "ro"])
        self.assertIn("local", offers("raw+tcp:7100:interface=localhost"))
        # Over a unix socket: no address, so no allow= nor interface= admits it.
        self.assertEqual(offers("raw+unix:/run/serialgw/byname.sock"), ["bare", "logged", "mixed", "open", "ro", "sock"])
        # On IPv6 addresses only: no line whose listeners take IPv4 alone (all but bare and logged); on :: both.
        self.assertEqual(offers("raw+tcp6:7100:interface=\\:\\:1"), ["bare", "logged"])
        self.assertEqual(offers("raw+tcp6:7100"), ["bare", "inside", "local", "logged", "mixed", "open", "ro"])

    def test_noListenerTakingConnections(self) -> None:
        """A line with no listener taking connections (none, a file, a dial-out) has the by-name listener's options alone, as before."""
        for name in ("bare", "logged"):
            prompt, _ = self.connect()
            prompt.dataReceived(name.encode() + b"\r\nz")
            self.assertIs(self.lines[name].clients[0].role, Role.WRITER)
            self.assertEqual(self.writes(name), [b"z"])

    def test_byNameRoStaysRo(self) -> None:
        """The by-name listener's own ro still makes a line read-only that its listeners let write."""
        prompt, _ = self.connect(text="raw,ro+tcp:7100")
        prompt.dataReceived(b"open\r\nx")
        self.assertIs(self.lines["open"].clients[0].role, Role.READONLY)
        self.assertEqual(self.writes("open"), [])

    def test_reloadedListenersApplyToTheNext(self) -> None:
        """The line's listeners as they are when the name is given: a reload making them ro makes the next by-name client read-only."""
        self.own["open"] = specs("telnet,ro+tcp:4001")
        prompt, _ = self.connect()
        prompt.dataReceived(b"open\r\n")
        self.assertIs(self.lines["open"].clients[0].role, Role.READONLY)


    def test_reloadNarrowingReachesThoseOn(self) -> None:
        """A reload making a line's listeners ro makes its by-name writers read-only; one allow= no longer admits is disconnected (logged); widened, nobody is promoted."""
        events = LogEvents(self)
        prompt, transport = self.connect()
        prompt.dataReceived(b"open\r\n")
        prompt2, transport2 = self.connect(INSIDE)
        prompt2.dataReceived(b"open\r\n")
        line = self.lines["open"]
        first: Any = line.clients[0]
        second: Any = line.clients[1]
        old = self.own["open"]
        applyListenerRights(line, specs("telnet,ro+tcp:4001"), old)
        self.assertEqual([c.role for c in line.clients], [Role.READONLY, Role.READONLY])
        applyListenerRights(line, specs("telnet,ro,allow=10.9.0.0/16+tcp:4001"), specs("telnet,ro+tcp:4001"))
        self.assertTrue(first.leaving)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(second.leaving)
        said = [formatEvent(e) for e in events.at(LogLevel.info) if "open:" in formatEvent(e)]
        self.assertIn("open: 192.0.2.7:40000 (by-name) disconnected: no listener of the line admits it, changed by a "
                      "reload", said)
        applyListenerRights(line, old, specs("telnet,ro,allow=10.9.0.0/16+tcp:4001"))
        self.assertIs(second.role, Role.READONLY)
        self.assertFalse(transport2.disconnecting)


class OwnTLSTests(SynchronousTestCase):
    """A line's own TLS listener with ca= admits only certificates the same CA file verified (and subjects=)."""

    def setUp(self) -> None:
        from tests.certs import Authority

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        other = Authority(os.path.abspath(self.mktemp()))
        self.byName = f"tls:7100:cert={cert}:key={key}:ca={ca.path}"
        self.otherCA = f"tls:7100:cert={cert}:key={key}:ca={other.path}"
        self.own = specs(f"tls:4001:cert={cert}:key={key}:ca={ca.path}:subjects=alice:readonly=carol")
        self.plainTLS = f"tls:7100:cert={cert}:key={key}"
        self.encrypted = specs(f"tls:4002:cert={cert}:key={key}")
        self.clock = Clock()
        self.line = Line("tls", RecordingDevice(), clock=self.clock)
        self.subject = "alice"
        from serialgw.clients import factory as factoryModule
        from serialgw.clients import session as sessionModule

        for module in (byname, factoryModule, sessionModule):
            self.patch(module, "peerSubject", lambda transport: self.subject)

    def connect(self, spec: str) -> tuple[Any, StringTransport]:
        factory = ByNameFactory(parseListener(spec), ("*",), lambda: {"tls": self.line}, self.clock, HandshakeTable(),
                                listeners=lambda: {"tls": self.own})
        gate = factory.buildProtocol(OUTSIDE)
        transport = StringTransport(peerAddress=OUTSIDE)
        gate.makeConnection(transport)
        gate.handshakeCompleted()
        transport.clear()
        self.addCleanup(gate.connectionLost, Failure(Exception("gone")))
        return gate, transport

    def test_subjectsAndReadonly(self) -> None:
        """alice (in subjects=) writes, carol (readonly=) reads, bob is not there; another CA, or plain telnet, is not given it."""
        gate, _ = self.connect(self.byName)
        gate.dataReceived(b"tls\n")
        self.subject = "carol"
        gate2, _ = self.connect(self.byName)
        gate2.dataReceived(b"tls\n")
        self.assertEqual([c.role for c in self.line.clients], [Role.WRITER, Role.READONLY])
        self.subject = "bob"
        gate3, transport3 = self.connect(self.byName)
        gate3.dataReceived(b"tls\n")
        self.assertEqual(transport3.value(), b"[serialgw: no console 'tls' here]\r\n" + PROMPT)
        self.subject = "alice"
        gate4, transport4 = self.connect(self.otherCA)
        gate4.dataReceived(b"tls\n")
        self.assertEqual(transport4.value(), b"[serialgw: no console 'tls' here]\r\n" + PROMPT)
        self.assertEqual(throughOwn(self.own, StringTransport(peerAddress=OUTSIDE), "", None), None)
        self.assertEqual(len(self.line.clients), 2)

    def test_tlsOnlyNotInClear(self) -> None:
        """A line whose only listener is TLS without ca= is given over by-name TLS (any), not to a raw or telnet client: what is typed there stays encrypted."""
        self.own = self.encrypted
        gate, _ = self.connect(self.plainTLS)
        gate.dataReceived(b"tls\nx")
        self.assertIs(self.line.clients[0].role, Role.WRITER)
        self.assertEqual([d for kind, d in self.line.device.events if kind == "write"], [b"x"])  # type: ignore[attr-defined]
        factory = ByNameFactory(parseListener("telnet+tcp:7100"), ("*",), lambda: {"tls": self.line}, self.clock,
                                listeners=lambda: {"tls": self.own})
        prompt = factory.buildProtocol(OUTSIDE)
        transport = StringTransport(peerAddress=OUTSIDE)
        prompt.makeConnection(transport)
        transport.clear()
        prompt.dataReceived(b"tls\r\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'tls' here]\r\n" + PROMPT)
        prompt.connectionLost(Failure(Exception("gone")))
        self.assertEqual(throughOwn(self.own, transport, None, None), None)
        self.assertEqual(throughOwn(self.own, transport, "", None), False)
