"""
TLS listeners: refused connections closed at accept, before any TLS;
clients attached only after a verified handshake, within a handshake
timeout; roles from certificates in exclusive mode.  Real sockets on
127.0.0.1 with a throwaway CA, and a Clock for the timeout.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

import attrs
from twisted.internet import protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHostnameResolver, IReactorPluggableNameResolver
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from serialgw.app.service import GatewayService
from serialgw.clients.factory import LineFactory
from serialgw.clients.tls import HandshakeGate, RefusingTLSFactory, ServerContextFactory, clientOptions
from serialgw.config.listeners import parseListener
from serialgw.config.paths import absoluteListener
from serialgw.config.people import Rights
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.certs import Authority
from tests.fakes import RecordingDevice
from tests.realio import Clients, Collector, connect, listenerPort, ptyLine, startedPty, startGateway


class HandshakeTimeoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)
        self.spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}")
        assert self.spec.tls is not None
        self.lineFactory = LineFactory(self.line, self.spec, clock=self.clock)
        self.factory = RefusingTLSFactory(ServerContextFactory(self.spec.tls), False, self.lineFactory, self.clock)

    def connection(self) -> tuple[object, StringTransport]:
        tlsProtocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport()
        tlsProtocol.makeConnection(transport)
        return tlsProtocol, transport

    def test_silentConnectionIsNoClientAndTimesOut(self) -> None:
        """A connection that never sends a ClientHello is no client of the line and is aborted after 10 s."""
        tlsProtocol, transport = self.connection()
        self.assertIsInstance(tlsProtocol.wrappedProtocol, HandshakeGate)  # type: ignore[attr-defined]
        self.assertEqual((self.line.clients, len(self.lineFactory.handshakes)), ([], 1))
        self.clock.advance(9.999)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.001)
        self.assertTrue(transport.disconnecting)
        tlsProtocol.connectionLost(None)  # type: ignore[attr-defined]
        self.assertEqual((self.line.clients, self.lineFactory.handshakes), ([], set()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stalledHandshakesLimitedInTheLog(self) -> None:
        """100 connections that stall mid-handshake: each is aborted at its timeout, 20 log lines say so (the listener's budget), not 100."""
        self.lineFactory.maxHandshakes = self.lineFactory.maxHandshakesPerAddress = 100
        self.lineFactory.inFlight.maxPerAddress = 100  # type: ignore[union-attr]
        connections = [self.connection() for _ in range(100)]
        with capturedLogs() as events:
            self.clock.advance(10)
        self.assertEqual([transport.disconnecting for _, transport in connections], [True] * 100)
        said = [formatEvent(e) for e in events]
        self.assertEqual(said, ["t: TLS handshake from 192.168.1.1:54321 not done in 10.0 s: disconnected"] * 20)
        for tlsProtocol, _ in connections:
            tlsProtocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
        self.assertEqual((self.lineFactory.handshakes, self.clock.getDelayedCalls()), (set(), []))

    def test_refusedAfterHandshakeLimitedInTheLog(self) -> None:
        """30 TLS clients, each from a new port, refused after their handshake (the line full: a client reconnecting in a loop): 20 log lines say so (the listener's budget, as refusals at accept), not 30."""
        from tests.fakes import RecordingClient

        self.line.maxClients = 1
        held = RecordingClient("192.0.2.1:1")
        held.person = True
        self.line.attach(held)
        with capturedLogs() as events:
            for n in range(30):
                transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 40000 + n))
                self.assertFalse(self.lineFactory._admit(transport, RecordingClient()))
        said = [formatEvent(e) for e in events]
        self.assertEqual(said[:1], ["t: TLS client 192.0.2.9:40000 refused after its handshake: 1 client already (max-clients)"])
        self.assertEqual(len(said), 20)

    def test_refusedSubjectsLimitedInTheLog(self) -> None:
        """100 handshakes with a certificate of the CA whose CN is not in subjects=: each refused, 20 log lines say so, not 100."""
        from OpenSSL import crypto

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}:subjects=alice")
        assert spec.tls is not None
        factory = ServerContextFactory(spec.tls)
        with open(ca.issue("mallory")[0], "rb") as f:
            mallory = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
        with capturedLogs() as events:
            verdicts = {factory.verify(None, mallory, 0, 0, 1) for _ in range(100)}
        self.assertEqual(verdicts, {False})
        self.assertEqual([formatEvent(e) for e in events], ["TLS client certificate 'mallory' refused: not in ['alice']"] * 20)

    def test_placesPerPerson(self) -> None:
        """A certificate's CN may have PERSON_SESSIONS_PER_LINE sessions on a line, as an SSH person: one more is refused after its handshake, logged; another person still gets in (a read-only CN took every place and kept the writers out)."""
        from serialgw.clients import factory as factoryModule
        from serialgw.clients.session import PERSON_SESSIONS_PER_LINE
        from tests.fakes import RecordingClient

        self.line.rights = Rights(write=("alice",), read=("carol",))
        for n in range(PERSON_SESSIONS_PER_LINE):
            carol = RecordingClient(f"carol {n}", Role.READONLY)
            carol.person, carol.user = True, "carol"
            self.line.attach(carol)
        subject = ["carol"]
        self.patch(factoryModule, "peerSubject", lambda transport: subject[0])
        with capturedLogs() as events:
            self.assertFalse(self.lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertIn("TLS client 192.168.1.1:54321 (carol) refused: 8 sessions of carol there already",
                      [formatEvent(e).split(": ", 1)[1] for e in events])
        subject[0] = "alice"
        self.assertTrue(self.lineFactory._admit(StringTransport(), RecordingClient()))

    def test_placesOfCertificatesWithoutCN(self) -> None:
        """Certificates without a CN, on a line with read = ["*"], are one person for the limit: PERSON_SESSIONS_PER_LINE of them at most, one more refused, logged; a named person still gets in (they filled max-clients)."""
        from serialgw.clients import factory as factoryModule
        from serialgw.clients.session import PERSON_SESSIONS_PER_LINE
        from tests.fakes import RecordingClient

        self.line.rights = Rights(write=("alice",), read=("*",))
        for n in range(PERSON_SESSIONS_PER_LINE):
            nameless = RecordingClient(f"nameless {n}", Role.READONLY)
            nameless.person, nameless.user = True, ""
            self.line.attach(nameless)
        subject = [""]
        self.patch(factoryModule, "peerSubject", lambda transport: subject[0])
        with capturedLogs() as events:
            self.assertFalse(self.lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertIn("TLS client 192.168.1.1:54321 (no CN) refused: 8 sessions of certificates without a CN there "
                      "already", [formatEvent(e).split(": ", 1)[1] for e in events])
        subject[0] = "alice"
        self.assertTrue(self.lineFactory._admit(StringTransport(), RecordingClient()))

    def test_kickOldUserOnlyOnceAdmitted(self) -> None:
        """kick-old-user over TLS: a full line still takes the handshake; a certificate the line refuses costs nobody their place, one it admits takes the oldest one's."""
        from serialgw.clients import factory as factoryModule
        from tests.fakes import RecordingClient

        self.line.rights = Rights(write=("alice",))
        self.line.maxClients, self.line.kickOld = 1, True
        oldest = RecordingClient("192.0.2.1:1")
        oldest.person, oldest.user = True, "alice"
        self.line.attach(oldest)
        self.assertIsNotNone(self.lineFactory.buildProtocol(IPv4Address("TCP", "192.168.1.1", 54321)))
        subject = ["mallory"]
        self.patch(factoryModule, "peerSubject", lambda transport: subject[0])
        self.assertFalse(self.lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertEqual((self.line.clients, oldest.disconnected), ([oldest], 0))
        subject[0] = "alice"
        self.assertTrue(self.lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertEqual((self.line.clients, oldest.disconnected), ([], 1))
        self.assertEqual(oldest.notices, ["192.168.1.1:54321 took your place on t (max-clients 1, kick-old-user)"])

    def test_kickOldUserReadOnlyTakesNoWritersPlace(self) -> None:
        """kick-old-user over TLS: a certificate the line gives only read (read = [...]) takes no writer's place: refused after its handshake, logged, the writer kept."""
        from serialgw.clients import factory as factoryModule
        from tests.fakes import RecordingClient

        self.line.rights = Rights(write=("alice",), read=("bob",))
        self.line.maxClients, self.line.kickOld = 1, True
        oldest = RecordingClient("192.0.2.1:1")
        oldest.person, oldest.user = True, "alice"
        self.line.attach(oldest)
        self.patch(factoryModule, "peerSubject", lambda transport: "bob")
        with capturedLogs() as events:
            self.assertFalse(self.lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertEqual((self.line.clients, oldest.disconnected), ([oldest], 0))
        self.assertEqual([formatEvent(e) for e in events], [
            "t: TLS client 192.168.1.1:54321 refused after its handshake: 1 client already (max-clients; a read-only "
            "one takes only a read-only one's place)"])

    def test_kickOldUserReadOnlySubjectTakesNoWritersPlace(self) -> None:
        """kick-old-user over TLS: a certificate the listener makes read-only (readonly=) takes no writer's place either: refused after its handshake, the writer kept (its role is set only once it is admitted: it was taken for a writer, and disconnected the writer)."""
        from serialgw.clients import factory as factoryModule
        from tests.fakes import RecordingClient

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}:subjects=alice:readonly=carol")
        lineFactory = LineFactory(self.line, spec, clock=self.clock)
        self.line.maxClients, self.line.kickOld = 1, True
        oldest = RecordingClient("192.0.2.1:1")
        oldest.person, oldest.user = True, "alice"
        self.line.attach(oldest)
        self.patch(factoryModule, "peerSubject", lambda transport: "carol")
        with capturedLogs() as events:
            self.assertFalse(lineFactory._admit(StringTransport(), RecordingClient()))
        self.assertEqual((self.line.clients, oldest.disconnected, oldest.notices), ([oldest], 0, []))
        self.assertEqual([formatEvent(e) for e in events], [
            "t: TLS client 192.168.1.1:54321 refused after its handshake: 1 client already (max-clients; a read-only "
            "one takes only a read-only one's place)"])

    def test_handshakeTimeoutOption(self) -> None:
        """handshake=SECONDS sets the timeout; 0 means none; nonsense is refused naming it."""
        self.assertEqual(parseListener("tls:0:cert=c:key=k:handshake=2.5").tls.handshakeTimeout, 2.5)  # type: ignore[union-attr]
        self.assertEqual(parseListener("tls:0:cert=c:key=k").tls.handshakeTimeout, 10.0)  # type: ignore[union-attr]
        from serialgw.config.specs import ConfigError

        for bad in ("-1", "nan", "soon", "1e9"):
            error = self.assertRaises(ConfigError, parseListener, f"tls:0:cert=c:key=k:handshake={bad}")
            self.assertIn(f"handshake={bad!r}", str(error))

    def test_failedHandshakeSaid(self) -> None:
        """A connection that is not TLS fails its handshake: one line names its address and OpenSSL's reason; it never was a client."""
        tlsProtocol, transport = self.connection()
        with capturedLogs() as events:
            tlsProtocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")  # type: ignore[attr-defined]
            self.assertTrue(transport.disconnecting)
            tlsProtocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
        self.assertEqual([formatEvent(e) for e in events], ["t: TLS handshake from 192.168.1.1:54321 failed: http request"])
        self.assertEqual((self.line.clients, self.lineFactory.handshakes), ([], set()))

    def test_retiredListenerCutsItsHandshakes(self) -> None:
        """A listener a reload changed or closed (retired): its handshakes under way are cut at once, logged, and one done meanwhile is not admitted (it would join with the rights the listener gave before)."""
        tlsProtocol, transport = self.connection()
        with capturedLogs() as events:
            self.lineFactory.retire()
            self.assertFalse(self.lineFactory._admit(StringTransport()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.lineFactory.handshakes, set())
        self.assertEqual([formatEvent(e) for e in events],
                         [f"t: 1 TLS handshake(s) under way on {self.spec.text} cut: a reload changed or closed the "
                          "listener", "t: TLS client 192.168.1.1:54321 refused after its handshake: a reload changed or "
                          "closed the listener"])
        tlsProtocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
        self.assertEqual((self.line.clients, self.clock.getDelayedCalls()), ([], []))

    def connectionFrom(self, host: str) -> tuple[Any, StringTransport]:
        """A connection from C{host} (None: refused at accept) and its transport."""
        tlsProtocol = self.factory.buildProtocol(IPv4Address("TCP", host, 5000) if ":" not in host
                                                 else IPv6Address("TCP", host, 5000))
        transport = StringTransport()
        if tlsProtocol is not None:
            tlsProtocol.makeConnection(transport)
        return tlsProtocol, transport

    def test_handshakesFromOneAddressBounded(self) -> None:
        """One address (an IPv6 /64) has at most 8 handshakes under way: a 9th is refused at accept (no protocol built), another address is not (64 silent connections from one host kept every other client out)."""
        for _ in range(8):
            self.assertIsNotNone(self.connectionFrom("192.0.2.7")[0])
        self.assertIsNone(self.connectionFrom("192.0.2.7")[0])
        self.assertIsNone(self.connectionFrom("::ffff:192.0.2.7")[0])
        self.assertIsNotNone(self.connectionFrom("192.0.2.8")[0])
        for n in range(8):
            self.assertIsNotNone(self.connectionFrom(f"2001:db8::{n + 1}")[0])
        self.assertIsNone(self.connectionFrom("2001:db8::ffff:1")[0])
        self.assertIsNotNone(self.connectionFrom("2001:db8:0:1::1")[0])
        self.assertEqual(len(self.lineFactory.handshakes), 18)
        self.clock.advance(10)

    def test_oldestHandshakeMakesRoom(self) -> None:
        """Past maxHandshakes in all, a new connection is taken and the oldest handshake under way is cut (said, limited): connections from many addresses that never handshake delay a client, they no longer lock it out."""
        self.lineFactory.maxHandshakes = 3
        first, second, third = (self.connectionFrom(f"192.0.2.{n}") for n in (1, 2, 3))
        with capturedLogs() as events:
            fourth = self.connectionFrom("192.0.2.4")
        self.assertIsNotNone(fourth[0])
        self.assertEqual([t.disconnecting for _, t in (first, second, third, fourth)], [True, False, False, False])
        self.assertEqual(len(self.lineFactory.handshakes), 3)
        self.assertEqual([formatEvent(e) for e in events],
                         [f"t: TLS handshake from 192.0.2.1:5000 cut: 3 under way on {self.spec.text}, the oldest "
                          "makes room for 192.0.2.4:5000"])
        first[0].connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.lineFactory.handshakes), 3)
        self.clock.advance(10)


class KeyFileTests(SynchronousTestCase):
    def test_encryptedKeyRefusedWithoutPrompt(self) -> None:
        """A passphrase-protected key is refused, naming it, never asked for: OpenSSL's default asked on the gateway's terminal ('Enter PEM pass phrase:') and held the start, or a reload and with it every line, until someone typed."""
        from cryptography.hazmat.primitives import serialization

        from serialgw.clients.tlsfiles import TLSError, privateCertificate
        from serialgw.config.listenerspecs import TLSSpec

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway")
        with open(key, "rb") as f:
            plain = serialization.load_pem_private_key(f.read(), None)
        encrypted = key + ".enc"
        with open(encrypted, "wb") as f:
            f.write(plain.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.BestAvailableEncryption(b"secret")))
        with self.assertRaises(TLSError) as caught:
            privateCertificate(TLSSpec(cert=cert, key=encrypted))
        self.assertEqual(str(caught.exception), f"key {encrypted!r} is encrypted (a passphrase): the gateway cannot "
                                                "ask for one; give it the key unencrypted, readable by it only")
        self.assertIsNotNone(privateCertificate(TLSSpec(cert=cert, key=key)))

    def test_keyReadableByEveryoneWarned(self) -> None:
        """A TLS key file every user may read (mode 0644, as many tools write it) is a warning naming it and its mode (an SSH host key so is refused); one its group reads (0640, Debian's ssl-cert) is not."""
        from serialgw.clients.tlsfiles import privateCertificate
        from serialgw.config.listenerspecs import TLSSpec

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway")
        said = []
        for mode in (0o644, 0o640):
            os.chmod(key, mode)
            with capturedLogs() as events:
                privateCertificate(TLSSpec(cert=cert, key=key))
            said.append([formatEvent(e) for e in events])
        self.assertEqual(said, [[f"key {key!r} may be read by every user (mode 0644): chmod o-r it"], []])

    def test_wrongFilesNamed(self) -> None:
        """A key file that holds no key, a certificate file that holds no certificate, a key that is not the certificate's: each refused naming the file and what is wrong (it was OpenSSL's '[('DECODER routines', '', 'unsupported')]')."""
        from serialgw.clients.tlsfiles import TLSError, privateCertificate
        from serialgw.config.listenerspecs import TLSSpec

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway")
        _, other = ca.issue("other")
        for spec, said in ((TLSSpec(cert=cert, key=cert), f"key {cert!r} holds no PEM private key"),
                           (TLSSpec(cert=key, key=key), f"certificate {key!r} holds no PEM certificate"),
                           (TLSSpec(cert=cert, key=other), f"key {other!r} is not the key of certificate {cert!r}")):
            with self.assertRaises(TLSError) as caught:
                privateCertificate(spec)
            self.assertEqual(str(caught.exception), said)


class ValidityTests(SynchronousTestCase):
    def test_expiredOrNotYetValidSaid(self) -> None:
        """A listener's certificate (or a dial-out's) that has expired or is not valid yet is said at start, naming the file, its CN and the date (it started without a word, and every handshake failed); a valid one says nothing."""
        import datetime

        ca = Authority(os.path.abspath(self.mktemp()))
        issued = datetime.datetime.now(datetime.UTC)  # (the certificates' dates: from then on)
        expired, expiredKey = ca.issue("old", days=-3)
        future, futureKey = ca.issue("new", days=3)
        valid, validKey = ca.issue("gateway")
        with capturedLogs() as events:
            for cert, key in ((expired, expiredKey), (future, futureKey), (valid, validKey)):
                spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}").tls
                assert spec is not None
                ServerContextFactory(spec)
            expired2, expiredKey2 = ca.issue("old", days=-3)
            dialOut = parseListener(f"tls:console.example:4443:ca={ca.path}:cert={expired2}:key={expiredKey2}").tls
            assert dialOut is not None
            clientOptions(dialOut)
        done = datetime.datetime.now(datetime.UTC)
        said = [formatEvent(e) for e in events]
        self.assertEqual(len(said), 3)
        # Each date is its certificate's, made between issued and done: the minute it names lies
        # there, shifted by the certificate's days (not today's date read at the end: past
        # midnight it was the next day's).
        for text, head, days in ((said[0], f"certificate {expired!r} (CN 'old') expired on ", -2),
                                 (said[1], f"certificate {future!r} (CN 'new') is not valid before ", 2),
                                 (said[2], f"certificate {expired2!r} (CN 'old') expired on ", -2)):
            match = re.match(re.escape(head) + r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC: ", text)
            assert match is not None, text
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=datetime.UTC)
            earliest = (issued + datetime.timedelta(days=days)).replace(second=0, microsecond=0)
            self.assertTrue(earliest <= when <= done + datetime.timedelta(days=days), (earliest, when, done))
        self.assertTrue(said[0].endswith(" UTC: TLS peers will refuse it (certificate expired)"), said[0])

    def test_sharedFileSaidOnce(self) -> None:
        """A certificate or key file shared by a farm's listeners is warned about once, not once a listener (1000 lines: 1000 lines of log at every start and reload); rewritten, it is said again."""
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("old", days=-3)
        os.chmod(key, 0o644)
        spec = parseListener(f"tls:0:cert={cert}:key={key}").tls
        assert spec is not None
        with capturedLogs() as events:
            for _ in range(50):
                ServerContextFactory(spec)
        said = [formatEvent(e) for e in events]
        self.assertEqual([text.split(" ")[0] for text in said], ["key", "certificate"])
        os.utime(cert, ns=(1, 1))
        with capturedLogs() as events:
            ServerContextFactory(spec)
        self.assertEqual([formatEvent(e).split(" ")[0] for e in events], ["certificate"])

    def test_validityOfCryptographyBefore42(self) -> None:
        """A certificate from cryptography before 42 (Ubuntu 24.04 has 41), which has only the naive not_valid_before/after in UTC, gives its period as aware UTC times: every TLS listener failed to start there ('no attribute not_valid_after_utc')."""
        import datetime

        from serialgw.clients.tlsfiles import validity

        class Before42:
            not_valid_before = datetime.datetime(2026, 1, 2, 3, 4, 5)
            not_valid_after = datetime.datetime(2027, 1, 2, 3, 4, 5)

        utc = datetime.UTC
        self.assertEqual(validity(Before42()), (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc),
                                                datetime.datetime(2027, 1, 2, 3, 4, 5, tzinfo=utc)))

        class Since42(Before42):
            not_valid_before_utc = datetime.datetime(2025, 1, 1, tzinfo=utc)
            not_valid_after_utc = datetime.datetime(2028, 1, 1, tzinfo=utc)

        self.assertEqual(validity(Since42()), (datetime.datetime(2025, 1, 1, tzinfo=utc),
                                               datetime.datetime(2028, 1, 1, tzinfo=utc)))


class TLSListenerTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pty = startedPty(self)
        self.clients = Clients()
        self.ca = Authority(os.path.abspath(self.mktemp()))
        self.cert, self.key = self.ca.issue("gateway", dns="localhost")
        with open(self.ca.path, "rb") as f:
            self.trust = Certificate.loadPEM(f.read())

    async def tearDown(self) -> None:  # type: ignore[override]
        await self.clients.close()

    def gateway(self, options: str, tail: str = "", **config: Any) -> tuple[GatewayService, int]:
        """A gateway whose one listener is TLS with this test's certificates (C{options}+tls:...C{tail}); its port."""
        service = startGateway(self, ptyLine(self.pty, f"{options}+tls:0:interface=127.0.0.1:cert={self.cert}"
                                                       f":key={self.key}:ca={self.ca.path}{tail}", **config))
        return service, listenerPort(service)

    async def dial(self, number: int, cn: Optional[str]) -> Collector:
        mine = None
        if cn is not None:
            certPath, keyPath = self.ca.issue(cn)
            with open(certPath, "rb") as f1, open(keyPath, "rb") as f2:
                mine = PrivateCertificate.loadPEM(f1.read() + f2.read())
        options = optionsForClientTLS("localhost", trustRoot=self.trust, clientCertificate=mine)
        endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", number))
        client = await endpoint.connect(protocol.Factory.forProtocol(Collector))
        assert isinstance(client, Collector)
        self.clients.append(client)
        return client

    async def test_refusedAtAcceptBeforeTLS(self) -> None:
        """allow= and max-clients refuse at accept: the TLS client gets no byte back, the line no client, no traceback."""
        service, number = self.gateway("raw,allow=10.0.0.0/8")
        refused = await self.dial(number, "alice")
        await refused.closed
        self.assertEqual((refused.received.data, service.lines["t"].clients), (b"", []))
        await service.stopService()  # the device is the next gateway's (its lock)

        service2, number2 = self.gateway("raw", maxClients=1)
        first = await self.dial(number2, "alice")
        first.transport.write(b"one")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(3), b"one")
        second = await self.dial(number2, "bob")
        await second.closed
        self.assertEqual(second.received.data, b"")
        self.assertEqual([c.peer.endswith("(alice)") for c in service2.lines["t"].clients], [True])

    async def test_attachOnlyAfterHandshake(self) -> None:
        """Connections that never send a ClientHello take no place (max-clients=2) and no writer role (exclusive)."""
        service, number = self.gateway("raw", mode="exclusive", maxClients=2)
        silent = [await connect(number), await connect(number)]
        self.clients += silent
        alice = await self.dial(number, "alice")
        alice.transport.write(b"alice types")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(11), b"alice types")
        line = service.lines["t"]
        self.assertEqual([(c.peer.endswith("(alice)"), c.role) for c in line.clients], [(True, Role.WRITER)])
        self.assertEqual(len(service.ports[0][1].factory.wrappedFactory.handshakes), 2)
        self.assertEqual([s.received.data for s in silent], [b"", b""])

    async def test_reloadCutsHandshakesUnderWay(self) -> None:
        """A reload that makes a TLS listener read-only cuts the connections whose handshake is under way on it (they would have joined as writers after it); they connect again to the new one."""
        service, number = self.gateway("raw")
        silent = await connect(number)
        self.clients.append(silent)
        factory = service.ports[0][1].factory.wrappedFactory
        # Connected after it, alice typing shows the silent one was accepted.
        alice = await self.dial(number, "alice")
        alice.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        self.assertEqual(len(factory.handshakes), 1)
        config = service.configs[0]
        madeReadOnly = parseListener(config.listeners[0].text.replace("raw+", "raw,ro+"))
        await service.reload([attrs.evolve(config, listeners=(madeReadOnly,))])
        self.assertEqual(factory.handshakes, set())
        await silent.closed
        self.assertEqual([(c.peer.endswith("(alice)"), c.role) for c in service.lines["t"].clients],
                         [(True, Role.READONLY)])

    async def test_caAddedByReloadCutsClientsWithoutCertificate(self) -> None:
        """ca= added to a TLS listener by a reload: a client connected without a certificate (none was asked) is told, cut and types no more; as the listener now refuses it at the handshake."""
        listener = f"raw,notices+tls:0:interface=127.0.0.1:cert={self.cert}:key={self.key}"
        service = startGateway(self, ptyLine(self.pty, listener))
        anonymous = await self.dial(listenerPort(service), None)
        anonymous.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        config = service.configs[0]
        await service.reload([attrs.evolve(config, listeners=(parseListener(f"{listener}:ca={self.ca.path}"),))])
        await anonymous.closed
        self.assertIn(b"your connection shows no certificate from this listener's CA", anonymous.received.data)
        self.assertEqual(service.lines["t"].clients, [])
        self.assertEqual(self.pty.received.data, b"a")

    async def test_caFileRewrittenTakesEffectAtReload(self) -> None:
        """A CA file rewritten in place (a CA taken out of the bundle) takes effect at the next reload, though the listener's string is the same: a client whose certificate only that CA verified is told and cut, and a new one with such a certificate fails its handshake; one the CA left verifies stays."""
        other = Authority(os.path.join(self.ca.directory, "other"), "other CA")
        bundle = os.path.join(self.ca.directory, "bundle.pem")

        def write(*authorities: Authority) -> None:
            with open(bundle + ".new", "wb") as out:
                for authority in authorities:
                    with open(authority.path, "rb") as f:
                        out.write(f.read())
            os.rename(bundle + ".new", bundle)

        write(self.ca, other)
        listener = parseListener(f"raw,notices+tls:0:interface=127.0.0.1:cert={self.cert}:key={self.key}:ca={bundle}")
        service = startGateway(self, ptyLine(self.pty, absoluteListener(listener, "/")))
        alice = await self.dial(listenerPort(service), "alice")
        alice.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        write(other)
        config = service.configs[0]
        # As the file is read again at a reload (config.paths.absoluteListener stamps the TLS files).
        reread = absoluteListener(listener, "/")
        self.assertNotEqual(reread, config.listeners[0])
        await service.reload([attrs.evolve(config, listeners=(reread,))])
        await alice.closed
        self.assertIn(b"your connection shows no certificate from this listener's CA", alice.received.data)
        again = await self.dial(listenerPort(service), "alice2")
        await again.closed
        self.assertEqual((service.lines["t"].clients, self.pty.received.data), ([], b"a"))

    async def test_exclusiveWithReadOnlySubjects(self) -> None:
        """Exclusive mode with readonly=: one writer only; the read-only certificate reads; the second writer watches."""
        service, number = self.gateway("raw,banner,notices", ":subjects=alice;bob:readonly=carol", mode="exclusive")
        clients = []
        for cn in ("carol", "alice", "bob"):
            # One at a time: each is attached (its banner came) before the next connects.
            clients.append(await self.dial(number, cn))
            await clients[-1].received.contains(b"]\r\n")
        carol, alice, bob = clients
        self.assertEqual([c.received.data.split(b", you are ")[1].split(b";")[0] for c in clients],
                         [b"read-only", b"writer", b"watcher"])
        line = service.lines["t"]
        self.assertEqual([c.role for c in line.clients], [Role.READONLY, Role.WRITER, Role.WATCHER])
        for client, text in ((carol, b"carol"), (bob, b"bob"), (alice, b"alice")):
            client.transport.write(text)  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(5), b"alice")
        self.pty.write(b"!")
        await alice.received.contains(b"!")
        self.assertEqual(self.pty.received.data, b"alice")

    async def test_dialOutAttachesAfterHandshake(self) -> None:
        """A TLS dial-out verifies the server, carries the line both ways, and closes at stop (its guard does not hold TLS open)."""
        await self.dialOut()

    async def test_dialOutOnALineWithUsers(self) -> None:
        """On a line with write/read users, a TLS dial-out is not refused for its server's CN (no person), nor named a user."""
        await self.dialOut(rights=Rights(write=("alice",)))

    async def dialOut(self, **config: Any) -> None:
        from twisted.internet import defer
        from twisted.internet.endpoints import SSL4ServerEndpoint

        accepted: defer.Deferred[Collector] = defer.Deferred()

        class Far(Collector):
            def connectionMade(self) -> None:
                if not accepted.called:
                    accepted.callback(self)

        with open(self.cert, "rb") as f1, open(self.key, "rb") as f2:
            server = PrivateCertificate.loadPEM(f1.read() + f2.read()).options()
        port = await SSL4ServerEndpoint(reactor, 0, server, interface="127.0.0.1").listen(
            protocol.Factory.forProtocol(Far))
        self.addCleanup(port.stopListening)
        listener = parseListener(f"raw+tls:localhost:{port.getHost().port}:ca={self.ca.path}")
        service = startGateway(self, ptyLine(self.pty, listener, **config))
        far = await accepted
        far.transport.write(b"typed far away")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(14), b"typed far away")
        self.pty.write(b"console")
        self.assertEqual(await far.received.length(7), b"console")
        self.assertEqual([(c.peer.endswith("(gateway)"), c.user) for c in service.lines["t"].clients], [(True, None)])
        await service.stopService()
        await far.closed


@implementer(IHostnameResolver)
class LoopbackResolver:
    """Every name is 127.0.0.1, at once (HostnameEndpoint on a MemoryReactorClock, which has no thread pool)."""

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0, addressTypes: Any = None,
                        transportSemantics: str = "TCP") -> Any:
        receiver.resolutionBegan(None)
        receiver.addressResolved(IPv4Address("TCP", "127.0.0.1", portNumber))
        receiver.resolutionComplete()
        return None


class TLSDialOutBackoffTests(SynchronousTestCase):
    """A TLS dial-out's reconnection backoff on the injected clock."""

    def setUp(self) -> None:
        from twisted.application.internet import backoffPolicy
        from twisted.internet.testing import MemoryReactorClock
        from zope.interface import directlyProvides

        from tests.fakes import RecordingPort

        ca = Authority(os.path.abspath(self.mktemp()))
        self.clock = MemoryReactorClock()
        self.clock.nameResolver = LoopbackResolver()  # type: ignore[attr-defined]
        directlyProvides(self.clock, IReactorPluggableNameResolver)
        config = LineConfig("vm", DeviceSpec("tty", "/dev/fake"),
                            listeners=(parseListener(f"raw+tls:console.example:4443:ca={ca.path}"),))
        # The gateway's policy (0.5 s doubling to 30 s), without jitter.
        policy = backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0, jitter=lambda: 0)
        startGateway(self, config, reactor=self.clock, retryPolicy=policy,
                     openPort=lambda *args: RecordingPort(self.clock))

    def silentServer(self, handshakeFor: float = 0.0, upFor: float = 10.0) -> float:
        """
        The server takes the pending dial and never answers its ClientHello
        (C{handshakeFor}: it is done after that long and the link stays up
        C{upFor} s); the seconds until the next dial.
        """
        dials = len(self.clock.tcpClients)
        connection: Any = self.clock.tcpClients[-1][2].buildProtocol(None)
        transport = StringTransport()
        connection.makeConnection(transport)
        self.assertTrue(transport.value().startswith(b"\x16\x03"))  # (a ClientHello went)
        if handshakeFor:
            self.clock.advance(handshakeFor)
            # (ClientService's proxy of the gate.)
            connection._wrappedProtocol.wrappedProtocol.handshakeCompleted()
        self.clock.advance(upFor if handshakeFor else 10)  # handshake= (default 10 s): cut
        self.assertTrue(transport.disconnecting or handshakeFor)
        connection.connectionLost(Failure(ConnectionDone()))
        waited = 0.0
        while len(self.clock.tcpClients) == dials:
            self.clock.advance(0.5)
            waited += 0.5
        return waited

    def test_silentServerBacksOff(self) -> None:
        """A server that accepts and never handshakes (cut after handshake= s) is redialled 1, 2, 4, 8, 16, then 30 s after, as one that closes at once: no link came up (each cut connection had 'stayed up' 10 s, and the next dial came 1 s after it, for ever)."""
        self.assertEqual([self.silentServer() for _ in range(7)], [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0])

    def test_handshakeDoneStartsAgain(self) -> None:
        """A link whose handshake was done and that then stayed up 10 s starts the backoff again from 1 s; the time before its handshake does not count towards the 10 s."""
        self.assertEqual([self.silentServer() for _ in range(3)], [1.0, 2.0, 4.0])
        self.assertEqual(self.silentServer(handshakeFor=5, upFor=6), 8.0)
        self.assertEqual(self.silentServer(handshakeFor=5, upFor=10), 1.0)
        self.assertEqual(self.silentServer(), 2.0)


class PlacesOnAllLinesTests(SynchronousTestCase):
    def test_certificateSessionsOnAllLines(self) -> None:
        """A CN may have PERSON_SESSIONS (32, [tls] sessions-per-person by default) TLS sessions on all the gateway's lines together (8 a line alone let a CN with read = ["*"] on 1000 lines hold 8000): one more, on a line where it has none, is refused after its handshake, logged; once one leaves, it gets in."""
        from serialgw.clients import factory as factoryModule
        from serialgw.clients.handshakes import HandshakeTable
        from serialgw.config.people import PERSON_SESSIONS
        from tests.fakes import RecordingClient

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}")
        table = HandshakeTable()
        lines = [Line(f"l{n}", RecordingDevice(), clock=Clock()) for n in range(5)]
        factories = [LineFactory(line, spec, clock=Clock(), inFlight=table) for line in lines]
        for line in lines:
            line.rights = Rights(write=("alice",), read=("*",))
        self.patch(factoryModule, "peerSubject", lambda transport: "carol")
        carols = []
        for n in range(PERSON_SESSIONS):
            client = RecordingClient(f"carol {n}", Role.READONLY)
            client.person, client.user, client.line = True, "carol", lines[n // 8]  # type: ignore[attr-defined]
            self.assertTrue(factories[n // 8]._admit(StringTransport(), client))
            lines[n // 8].attach(client)
            carols.append(client)
        with capturedLogs() as events:
            self.assertFalse(factories[4]._admit(StringTransport(), RecordingClient()))
        self.assertIn("l4: TLS client 192.168.1.1:54321 (carol) refused: 32 sessions of carol on all lines already "
                      "(at most 32 a person: [tls] sessions-per-person)", [formatEvent(e) for e in events])
        lines[0].detach(carols[0])
        self.assertTrue(factories[4]._admit(StringTransport(), RecordingClient()))
