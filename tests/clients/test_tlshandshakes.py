"""
The bounds on TLS handshakes under way, per listener and in the whole
gateway (L{serialgw.clients.handshakes}), and what the log says of a
handshake in each direction: StringTransports, a Clock, a throwaway CA.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients import handshakes
from serialgw.clients.factory import LineFactory
from serialgw.clients.tls import HandshakeGate, RefusingTLSFactory, ServerContextFactory, clientOptions
from serialgw.config.listeners import parseListener
from serialgw.line.hub import Line
from tests.certs import Authority
from tests.fakes import RecordingDevice


class Gateway:
    """C{count} TLS listeners (lines l0, l1, ...) sharing one table of the handshakes under way."""

    def __init__(self, test: SynchronousTestCase, count: int) -> None:
        ca = Authority(os.path.abspath(test.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.clock = Clock()
        self.table = handshakes.HandshakeTable()
        spec = parseListener(f"tls:0:cert={cert}:key={key}")
        assert spec.tls is not None
        self.spec = spec
        context = ServerContextFactory(spec.tls)
        self.listeners: list[LineFactory] = []
        self.factories: list[RefusingTLSFactory] = []
        for n in range(count):
            listener = LineFactory(Line(f"l{n}", RecordingDevice(), clock=self.clock), spec, clock=self.clock,
                                   inFlight=self.table)
            self.listeners.append(listener)
            self.factories.append(RefusingTLSFactory(context, False, listener, self.clock))
        test.addCleanup(self.clock.advance, 10)

    def connect(self, host: str, listener: int = 0) -> StringTransport:
        """A connection from C{host} to listener C{listener}: its transport, C{connected} False if refused at accept."""
        address = IPv4Address("TCP", host, 5000)
        transport = StringTransport(peerAddress=address)
        protocol = self.factories[listener].buildProtocol(address)
        if protocol is not None:
            protocol.makeConnection(transport)
        else:
            transport.connected = False
        return transport


class HandshakeBoundsTests(SynchronousTestCase):
    def test_manyAddressesCutTheirOwn(self) -> None:
        """A listener full of handshakes from a sender with many addresses (8 each, the bound from one): its next connections cut its own oldest, not a client's from another address (the oldest of all was cut: 8 addresses cut everyone else's, again and again)."""
        gateway = Gateway(self, 1)
        client = gateway.connect("198.51.100.1")
        attacker = [gateway.connect(f"192.0.2.{n % 40 + 1}") for n in range(400)]
        self.assertFalse(client.disconnecting)
        self.assertEqual(len(gateway.listeners[0].handshakes), 64)
        self.assertEqual(sum(not t.disconnecting and t.connected for t in attacker), 63)
        sources = [gate.source for gate in gateway.listeners[0].handshakes]
        self.assertLessEqual(max(sources.count(s) for s in sources), 8)

    def test_oneAddressBoundedOnAllListeners(self) -> None:
        """One address has at most 64 handshakes under way on all the gateway's listeners (8 on each of 20 was 160: 8 on each of 1000 TLS lines, 8000 descriptors): the rest are closed at accept, said with the address; another address still gets in."""
        gateway = Gateway(self, 20)
        with capturedLogs() as events:
            taken = [gateway.connect("192.0.2.7", n).connected for n in range(20) for _ in range(8)]
        self.assertEqual((taken.count(True), taken[64:].count(True)), (64, 0))
        self.assertEqual(len(gateway.table), 64)
        said = [formatEvent(e) for e in events]
        self.assertEqual(said[0], "l8: connection from 192.0.2.7:5000 refused: 64 TLS handshakes from there under way "
                                  "already on the gateway's listeners (at most 64 from one address)")
        self.assertEqual(len(said), 20)  # (one budget for the whole gateway)
        self.assertTrue(gateway.connect("192.0.2.8", 19).connected)

    def test_boundInAllCutsTheOldestOfTheMost(self) -> None:
        """Past the gateway's bound in all, a new connection is taken and the oldest handshake of the address with the most under way is cut, on whatever listener; said naming both addresses and the line."""
        gateway = Gateway(self, 3)
        gateway.table.maxInFlight = 6
        first = gateway.connect("198.51.100.1", 0)
        flood = [gateway.connect("192.0.2.1", n % 2 + 1) for n in range(4)]
        other = gateway.connect("198.51.100.2", 0)
        self.assertEqual(len(gateway.table), 6)
        with capturedLogs() as events:
            last = gateway.connect("192.0.2.9", 0)
        self.assertEqual([t.disconnecting for t in (first, *flood, other, last)],
                         [False, True, False, False, False, False, False])
        self.assertEqual([formatEvent(e) for e in events],
                         ["l0: TLS handshake from 192.0.2.1:5000 (line l1) cut: 6 under way on the gateway's listeners, "
                          "the oldest makes room for 192.0.2.9:5000"])
        self.assertEqual(len(gateway.table), 6)
        self.assertEqual(sorted(map(len, (f.handshakes for f in gateway.listeners))), [1, 2, 3])

    def test_gateForgetsAtEveryEnd(self) -> None:
        """A handshake leaves the gateway's table however it ends (timed out, failed, cut by a reload, lost): no source is kept without one."""
        gateway = Gateway(self, 2)
        for n in range(4):
            gateway.connect(f"192.0.2.{n}", n % 2)
        gateway.listeners[1].retire()
        self.assertEqual((len(gateway.table), sorted(gateway.table.bySource)), (2, ["192.0.2.0", "192.0.2.2"]))
        gateway.clock.advance(10)
        self.assertEqual((gateway.table.gates, gateway.table.bySource), ({}, {}))


class DirectionTests(SynchronousTestCase):
    """A dial-out's handshake is said to be with the server, not from it."""

    def setUp(self) -> None:
        ca = Authority(os.path.abspath(self.mktemp()))
        self.clock = Clock()
        spec = parseListener(f"raw+tls:console.example:4443:ca={ca.path}")
        assert spec.tls is not None
        self.table = handshakes.HandshakeTable()
        self.listener = LineFactory(Line("vm", RecordingDevice(), clock=self.clock), spec, clock=self.clock,
                                    inFlight=self.table)
        self.factory = RefusingTLSFactory(clientOptions(spec.tls), True, self.listener, self.clock)

    def dial(self) -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", "192.0.2.5", 4443)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        self.assertIsInstance(protocol.wrappedProtocol, HandshakeGate)
        return protocol, transport

    def test_dialOutTimeoutSaysWith(self) -> None:
        """A dial-out whose server never answers its ClientHello: 'LINE: TLS handshake with SERVER (dialled out) not done' (it said 'from', as if the server had connected)."""
        protocol, transport = self.dial()
        with capturedLogs() as events:
            self.clock.advance(10)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([formatEvent(e) for e in events],
                         ["vm: TLS handshake with 192.0.2.5:4443 (dialled out) not done in 10.0 s: disconnected"])
        protocol.connectionLost(Failure(ConnectionDone()))

    def test_dialOutFailureSaysWith(self) -> None:
        """A dial-out whose server answers with no TLS: 'TLS handshake with SERVER (dialled out) failed: REASON'."""
        protocol, transport = self.dial()
        with capturedLogs() as events:
            protocol.dataReceived(b"SSH-2.0-OpenSSH_9.6\r\n" + b"\x00" * 64)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        said = [formatEvent(e) for e in events]
        self.assertEqual(len(said), 1)
        self.assertTrue(said[0].startswith("vm: TLS handshake with 192.0.2.5:4443 (dialled out) failed: "), said)

    def test_dialOutsNotBounded(self) -> None:
        """Dial-outs are no listener's: 100 to one server's address (a console server's ports) are each dialled, none in the gateway's table."""
        for _ in range(100):
            self.assertFalse(self.dial()[1].disconnecting)
        self.assertEqual(len(self.table), 0)
        self.clock.advance(10)


def lines(events: Sequence[dict[str, Any]]) -> list[str]:
    """What the TLS module said."""
    return [formatEvent(e) for e in events if e.get("log_namespace") == "serialgw.clients.tls"]


class PeerTests(SynchronousTestCase):
    """Real TLS (OpenSSL on both ends, over iosim): what the log says of a peer that fails."""

    def setUp(self) -> None:
        self.ca = Authority(os.path.abspath(self.mktemp()))
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)

    def pump(self, server: Any, client: Any) -> Any:
        from twisted.test.iosim import FakeTransport, connect

        serverTransport = FakeTransport(server, True, IPv4Address("TCP", "127.0.0.1", 4443),
                                        IPv4Address("TCP", "192.0.2.5", 5000))
        clientTransport = FakeTransport(client, False, IPv4Address("TCP", "192.0.2.5", 5000),
                                        IPv4Address("TCP", "127.0.0.1", 4443))
        return connect(server, serverTransport, client, clientTransport)

    def listener(self, options: str = "") -> tuple[LineFactory, Any]:
        """A TLS listener of line t (the gateway's certificate for localhost), and its protocol for a connection."""
        cert, key = self.ca.issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={self.ca.path}{options}")
        assert spec.tls is not None
        factory = LineFactory(self.line, spec, clock=self.clock)
        tls = RefusingTLSFactory(ServerContextFactory(spec.tls), False, factory, self.clock)
        return factory, tls.buildProtocol(IPv4Address("TCP", "192.0.2.5", 5000))

    def client(self, cn: str, days: float = 0, ca: Any = None) -> Any:
        """A TLS client showing a certificate of CN C{cn} (from C{ca}, by default the listener's), verifying localhost."""
        from twisted.internet.protocol import Factory, Protocol
        from twisted.internet.ssl import PrivateCertificate, optionsForClientTLS
        from twisted.protocols.tls import TLSMemoryBIOFactory

        cert, key = (ca or self.ca).issue(cn, days=days)
        with open(cert, "rb") as c, open(key, "rb") as k:
            mine = PrivateCertificate.loadPEM(c.read() + k.read())
        with open(self.ca.path, "rb") as f:
            from twisted.internet.ssl import Certificate

            trust = Certificate.loadPEM(f.read())
        options = optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=mine)
        return TLSMemoryBIOFactory(options, True, Factory.forProtocol(Protocol)).buildProtocol(None)

    def server(self, cert: str, key: str) -> Any:
        from twisted.internet.protocol import Factory, Protocol
        from twisted.protocols.tls import TLSMemoryBIOFactory

        spec = parseListener(f"tls:0:cert={cert}:key={key}")
        assert spec.tls is not None
        return TLSMemoryBIOFactory(ServerContextFactory(spec.tls), False,
                                   Factory.forProtocol(Protocol)).buildProtocol(None)

    def dialOut(self) -> Any:
        spec = parseListener(f"raw+tls:console.example:4443:ca={self.ca.path}")
        assert spec.tls is not None
        factory = LineFactory(self.line, spec, clock=self.clock)
        return RefusingTLSFactory(clientOptions(spec.tls), True, factory, self.clock).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 4443))

    def test_dialOutToAServerOfAnotherNameSaid(self) -> None:
        """A dial-out whose server shows a certificate of the CA for another name: never attached, and the log says why, naming the line, the server and the name (it said nothing: only 'connection closed; retry'; under Twisted 22.10 the gate took the handshake as done before the name was failed, and the failure went unsaid)."""
        cert, key = self.ca.issue("other", dns="other.example")
        server = self.server(cert, key)
        with capturedLogs() as events:
            self.pump(server, self.dialOut()).flush()
        self.assertEqual(self.line.clients, [])
        self.assertNotIn("attached", " ".join(formatEvent(e) for e in events))  # (not even for a moment)
        said = lines(events)
        self.assertEqual(len(said), 1, said)
        self.assertTrue(said[0].startswith("t: TLS handshake with 127.0.0.1:4443 (dialled out) failed: the server's "
                                           "certificate is not for console.example ("), said)

    def test_dialOutToAnExpiredServerSaid(self) -> None:
        """A dial-out whose server's certificate has expired: 'certificate verify failed (certificate has expired)', not only the first half."""
        cert, key = self.ca.issue("console", dns="console.example", days=-3)
        server = self.server(cert, key)
        with capturedLogs() as events:
            self.pump(server, self.dialOut()).flush()
        self.assertEqual(lines(events), ["t: TLS handshake with 127.0.0.1:4443 (dialled out) failed: certificate "
                                         "verify failed (certificate has expired)"])

    def test_clientCertificateFailuresSaid(self) -> None:
        """A client certificate that has expired, or is from another CA: the log says which, naming the line and the address."""
        stranger = Authority(os.path.abspath(self.mktemp()), "another CA")
        said = []
        for client in (self.client("alice", days=-3), self.client("alice", ca=stranger)):
            factory, server = self.listener()
            with capturedLogs() as events:
                self.pump(server, client).flush()
            said += lines(events)
        self.assertEqual(said, ["t: TLS handshake from 192.0.2.5:5000 failed: certificate verify failed "
                                "(certificate has expired)",
                                "t: TLS handshake from 192.0.2.5:5000 failed: certificate verify failed "
                                "(unable to get local issuer certificate)"])
        self.assertEqual(self.line.clients, [])

    def test_refusedSubjectSaysWhereFrom(self) -> None:
        """A certificate whose CN is not in subjects=: the refusal names the line and the address, and a long CN is cut (it was written whole: a 5000-character log line), a missing one said as such."""
        said = []
        for cn in ("a" * 300, ""):
            factory, server = self.listener(":subjects=alice")
            cert, key = self.longCN(cn) if cn else self.ca.issue("nobody", withCN=False)
            with capturedLogs() as events:
                self.pump(server, self.clientFrom(cert, key)).flush()
            said += lines(events)
        self.assertEqual(said, [
            f"t: TLS client certificate {'a' * 64!r}... (300 characters) from 192.0.2.5:5000 refused: not in ['alice']",
            "t: TLS handshake from 192.0.2.5:5000 failed: certificate verify failed (its CN is not in subjects= or "
            "readonly=)",
            "t: TLS client certificate (no CN) from 192.0.2.5:5000 refused: not in ['alice']",
            "t: TLS handshake from 192.0.2.5:5000 failed: certificate verify failed (its CN is not in subjects= or "
            "readonly=)"])

    def longCN(self, cn: str) -> tuple[str, str]:
        """A certificate of the CA with a CN past X.509's 64 characters (as a careless or hostile CA makes)."""
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn, _validate=False)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(self.ca.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                .sign(self.ca.key, hashes.SHA256()))
        base = os.path.join(self.ca.directory, "long")
        with open(base + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(base + ".key", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return base + ".pem", base + ".key"

    def clientFrom(self, cert: str, key: str) -> Any:
        """A TLS client showing the certificate in C{cert}, verifying localhost."""
        from twisted.internet.protocol import Factory, Protocol
        from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
        from twisted.protocols.tls import TLSMemoryBIOFactory

        with open(cert, "rb") as c, open(key, "rb") as k:
            mine = PrivateCertificate.loadPEM(c.read() + k.read())
        with open(self.ca.path, "rb") as f:
            trust = Certificate.loadPEM(f.read())
        options = optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=mine)
        return TLSMemoryBIOFactory(options, True, Factory.forProtocol(Protocol)).buildProtocol(None)

    def test_brokenRecordAfterAdmittedSaid(self) -> None:
        """An admitted client whose connection then sends a record that does not decrypt is cut, and the log says why, naming the line and the address (it said only 'detached')."""
        factory, server = self.listener()
        client = self.client("alice")
        pump = self.pump(server, client)
        pump.flush()
        self.assertEqual(len(self.line.clients), 1)
        with capturedLogs() as events:
            server.dataReceived(b"\x17\x03\x03\x00\x40" + b"\xaa" * 64)
            pump.flush()
        self.assertEqual(self.line.clients, [])
        said = lines(events)
        self.assertEqual(len(said), 1, said)
        self.assertTrue(said[0].startswith("t: TLS connection from 192.0.2.5:5000 broken: "), said)


class KeyFileTests(SynchronousTestCase):
    def test_swappedCertAndKeyNamed(self) -> None:
        """cert= and key= swapped: the error says what each file holds instead of only 'holds no PEM certificate'."""
        from serialgw.clients.tlsfiles import TLSError

        cert, key = Authority(os.path.abspath(self.mktemp())).issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={key}:key={cert}")
        assert spec.tls is not None
        error = self.assertRaises(TLSError, ServerContextFactory, spec.tls)
        self.assertEqual(str(error), f"certificate {key!r} holds no PEM certificate but a private key, and key "
                                     f"{cert!r} a certificate: are cert= and key= swapped?")

    def test_renegotiationRefusedByOption(self) -> None:
        """A listener's context refuses renegotiation itself (OP_NO_RENEGOTIATION): OpenSSL 3 refuses a client's by default, an OpenSSL 1.1 that cryptography was built on let each client make the gateway sign again and again."""
        from OpenSSL import SSL

        cert, key = Authority(os.path.abspath(self.mktemp())).issue("gateway", dns="localhost")
        spec = parseListener(f"tls:0:cert={cert}:key={key}")
        assert spec.tls is not None
        context = ServerContextFactory(spec.tls).getContext()
        self.assertTrue(context.set_options(0) & SSL.OP_NO_RENEGOTIATION)


class ReloadTests(TestCase):
    timeout = 30

    async def test_unreadableFilesRefuseTheReload(self) -> None:
        """A certificate and key rewritten the wrong way round (a botched renewal), then a reload: the reload is refused, naming the files, and the listener stays as it was, handshaking with its old certificate (the old one was closed and the new one failed: the line ran without its TLS listener until the files were mended and reloaded again)."""
        import shutil

        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
        from twisted.internet.protocol import Factory
        from twisted.internet.ssl import Certificate, optionsForClientTLS

        from serialgw.config.paths import absoluteListener
        from tests.realio import Collector, listenerPort, ptyLine, startedPty, startGateway

        pty = startedPty(self)
        ca = Authority(os.path.abspath(self.mktemp()))
        issued, issuedKey = ca.issue("gateway", dns="localhost")
        cert, key = os.path.join(ca.directory, "gw.pem"), os.path.join(ca.directory, "gw.key")
        shutil.copy(issued, cert)
        shutil.copy(issuedKey, key)
        listener = parseListener(f"raw+tls:0:interface=127.0.0.1:cert={cert}:key={key}")
        service = startGateway(self, ptyLine(pty, absoluteListener(listener, "/")))
        port = listenerPort(service)
        shutil.copy(issuedKey, cert)
        shutil.copy(issued, key)
        config = service.configs[0]
        reread = absoluteListener(listener, "/")
        self.assertNotEqual(reread, config.listeners[0])
        with capturedLogs() as events:
            result = await service.reload([attrs.evolve(config, listeners=(reread,))])
        self.assertEqual(list(result), ["refused"])
        self.assertIn(f"certificate {cert!r} holds no PEM certificate but a private key", result["refused"][0])
        self.assertIn("reload refused, the running configuration stays", " ".join(map(formatEvent, events)))
        self.assertEqual(listenerPort(service), port)
        with open(ca.path, "rb") as f:
            trust = Certificate.loadPEM(f.read())
        endpoint = wrapClientTLS(optionsForClientTLS("localhost", trustRoot=trust),
                                 TCP4ClientEndpoint(reactor, "127.0.0.1", port))
        client = await endpoint.connect(Factory.forProtocol(Collector))
        assert isinstance(client, Collector)
        client.transport.write(b"still")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(5), b"still")
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.closed


class CAFileTests(SynchronousTestCase):
    def test_caFileWithoutCertificatesNamed(self) -> None:
        """A CA file that holds no certificate (empty, not PEM, a key) is refused in the words used for cert= (it was cryptography's 'Unable to load PEM file. See https://... MalformedFraming'), the key said as such."""
        from serialgw.clients.tlsfiles import TLSError

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        said = []
        for name, content in (("empty.pem", b""), ("junk.pem", b"hello\n"), ("key.pem", open(key, "rb").read())):
            path = os.path.join(ca.directory, name)
            with open(path, "wb") as f:
                f.write(content)
            for text in (f"tls:0:cert={cert}:key={key}:ca={path}", f"raw+tls:localhost:4443:ca={path}"):
                spec = parseListener(text)
                assert spec.tls is not None
                make = clientOptions if spec.tls.hostname else ServerContextFactory
                said.append(str(self.assertRaises(TLSError, make, spec.tls)).replace(ca.directory + "/", ""))
        self.assertEqual(said, ["CA file 'empty.pem' holds no PEM certificate"] * 2
                         + ["CA file 'junk.pem' holds no PEM certificate"] * 2
                         + ["CA file 'key.pem' holds no PEM certificate but a private key"] * 2)
