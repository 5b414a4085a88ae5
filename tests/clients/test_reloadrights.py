"""
Rights a reload takes away from the people already connected: a listener
made read-only (C{ro}), an C{allow=} narrowed (L{applyListenerRights}); and
a reload's role changes for connections never announced.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.lines import retuneLine
from serialgw.clients.factory import LineFactory, applyListenerRights
from serialgw.clients.raw import RawClient
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingClient, RecordingDevice
from tests.realio import Clients, connect, connectUnix, listenerPort, ptyLine, startedPty, startGateway
from tests.shortpaths import shortDirectory
from tests.telnetpeer import AGREE, WONT_COM_PORT

TELNET = "telnet,escape=^]+4444"
MADE_RO = "telnet,ro,escape=^]+4444"


class Harness:
    def __init__(self, mode: str = "shared") -> None:
        self.device = RecordingDevice(SerialSettings(115200))
        self.line = Line("rack4", self.device, clock=Clock())
        self.line.mode = mode

    def telnet(self, listener: str = TELNET, host: str = "192.0.2.9", port: int = 1,
               agree: bytes = AGREE + WONT_COM_PORT) -> tuple[TelnetClient, StringTransport]:
        spec = parseListener(listener)
        client = TelnetClient(self.line, Role.READONLY if spec.readOnly else Role.WRITER, listener=spec)
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        client.makeConnection(transport)
        if agree:
            client.dataReceived(agree)
        transport.clear()
        return client, transport


def text(transport: StringTransport) -> str:
    value = transport.value().decode("utf-8", "replace")
    transport.clear()
    return value


class ReadOnlyTests(SynchronousTestCase):
    def test_listenerMadeReadOnly(self) -> None:
        """A listener made ro: its connected writers are read-only at once (told, the others and the log too); typing and ^] t refused; another listener's client untouched."""
        events = LogEvents(self).events
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        raw = RawClient(h.line, listener=parseListener("raw+4445"))
        raw.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 3)))
        raw.dataReceived(b"id")
        text(aliceT), text(bobT)
        applyListenerRights(h.line, [parseListener(MADE_RO), parseListener("raw+4445")])
        self.assertEqual([c.role for c in (alice, bob, raw)], [Role.READONLY, Role.READONLY, Role.WRITER])
        why = "a reload made rack4's listener 'telnet,ro,escape=^]+4444' read-only"
        self.assertEqual(text(aliceT), f"\r\n[serialgw: you are read-only now: {why}]\r\n"
                                       f"\r\n[serialgw: 192.0.2.9:2 is read-only now: {why}]\r\n")
        self.assertEqual(text(bobT), f"\r\n[serialgw: 192.0.2.9:1 is read-only now: {why}]\r\n"
                                     f"\r\n[serialgw: you are read-only now: {why}]\r\n")
        self.assertEqual([e["text"] for e in events if "read-only now" in e.get("text", "")],
                         [f"192.0.2.9:1 is read-only now: {why}", f"192.0.2.9:2 is read-only now: {why}"])
        alice.dataReceived(b"reboot\r")
        bob.dataReceived(b"\x1dt\x1db")
        self.assertEqual(h.device.events, [("write", b"id")])
        self.assertEqual(text(bobT), "\r\n[serialgw: read-only: cannot take write]\r\n"
                                     "\r\n[serialgw: no break: read-only]\r\n")
        self.assertEqual(text(aliceT), "\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n")
        # The same reload again (or another one) changes nobody twice.
        applyListenerRights(h.line, [parseListener(MADE_RO), parseListener("raw+4445")])
        self.assertEqual((text(aliceT), text(bobT)), ("", ""))

    def test_rightsGivenPromoteNobody(self) -> None:
        """ro taken out of a listener (or allow= widened) promotes nobody already connected: read-only stays read-only; new connections write."""
        h = Harness()
        reader, readerT = h.telnet(MADE_RO, port=1)
        applyListenerRights(h.line, [parseListener(TELNET)])
        self.assertEqual((reader.role, text(readerT)), (Role.READONLY, ""))
        newcomer, _ = h.telnet(port=2)
        self.assertEqual(newcomer.role, Role.WRITER)

    def test_listenerRemovedClientsStay(self) -> None:
        """A listener removed by a reload leaves its clients as they are (they came through it: they stay, README)."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        applyListenerRights(h.line, [parseListener("raw,ro+4445")])
        self.assertEqual((alice.role, text(aliceT), aliceT.disconnecting), (Role.WRITER, "", False))

    def test_listenerRespelledIsInPlace(self) -> None:
        """A listener whose endpoint is written another way for the same place (tcp:4444 as tcp:port=4444, a unix socket with a mode) is changed in place: made ro, its writers are read-only (they wrote on, as if it were removed); another port, or plain made TLS, is another listener."""
        h = Harness()
        alice, _ = h.telnet("telnet+tcp:4444", port=1)
        bob, _ = h.telnet("telnet+unix:/run/x.sock", port=2)
        carol, _ = h.telnet("telnet+tcp:4446", port=3)
        applyListenerRights(h.line, [parseListener("telnet,ro+tcp:port=4444"),
                                     parseListener("telnet,ro+unix:address=/run/x.sock:mode=660"),
                                     parseListener("telnet,ro+tls:4446:cert=c:key=k"),
                                     parseListener("telnet,ro+tcp:4447")])
        self.assertEqual([c.role for c in (alice, bob, carol)], [Role.READONLY, Role.READONLY, Role.WRITER])

    def test_watcherMadeReadOnly(self) -> None:
        """Exclusive mode: a watcher of a listener made ro is read-only too (it could take write before)."""
        h = Harness("exclusive")
        h.telnet("raw+4445", port=1)
        bob, bobT = h.telnet(port=2)
        self.assertEqual(bob.role, Role.WATCHER)
        applyListenerRights(h.line, [parseListener(MADE_RO), parseListener("raw+4445")])
        self.assertEqual(bob.role, Role.READONLY)
        bob.dataReceived(b"\x1dt")
        self.assertTrue(text(bobT).endswith("\r\n[serialgw: read-only: cannot take write]\r\n"))


    def test_pausedWriterMadeReadOnlyIsRead(self) -> None:
        """A writer whose device is behind (mid-paste) and made read-only by a reload: the rest of its paste is refused and said, its escape menu answers; the device gets none of it (a person's escape menu is read on while the device is behind: tests.clients.test_behind)."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        alice.dataReceived(b"paste")
        h.line.deviceWritable(False)
        self.assertEqual(aliceT.producerState, "producing")
        applyListenerRights(h.line, [parseListener(MADE_RO)])
        self.assertEqual(aliceT.producerState, "producing")
        text(aliceT)
        alice.dataReceived(b" the rest\x1dw")
        self.assertEqual(text(aliceT), "\r\n[serialgw: read-only: what you type is not sent to rack4]\r\n"
                                       "\r\n[serialgw: rack4: 192.0.2.9:1 (read-only)]\r\n")
        h.line.deviceWritable(True)
        h.line.deviceWritable(False)
        self.assertEqual((aliceT.producerState, h.device.events), ("producing", [("write", b"paste")]))


    def test_madeExclusiveAndReadOnlyAtOnce(self) -> None:
        """One reload makes the line exclusive and the first writer's listener ro: the writer of the listener left as it was keeps write (the rights are taken first), rather than the line left with nobody writing."""
        h = Harness()
        first, firstT = h.telnet(MADE_RO.replace(",ro", ""), port=1)
        second, secondT = h.telnet("raw+4445", port=2)
        old = LineConfig("rack4", DeviceSpec("tty", "/dev/ttyS0"),
                         listeners=(parseListener(TELNET), parseListener("raw+4445")))
        new = LineConfig("rack4", DeviceSpec("tty", "/dev/ttyS0"), mode="exclusive",
                         listeners=(parseListener(MADE_RO), parseListener("raw+4445")))
        text(firstT)
        retuneLine(h.line, old, new)
        self.assertEqual((first.role, second.role, h.line.writer), (Role.READONLY, Role.WRITER, second))
        self.assertNotIn("only watches", text(firstT))
        second.dataReceived(b"y")
        self.assertEqual(h.device.events, [("write", b"y")])


    def test_personTakenOutLogged(self) -> None:
        """A reload that leaves a person in neither write nor read: told, disconnected, and the log says who and why (it said only 'detached')."""
        events = LogEvents(self).events
        h = Harness()
        alice = RecordingClient("alice (192.0.2.9:1)")
        alice.person, alice.user = True, "alice"
        h.line.attach(alice)
        h.line.applyRights(Rights(write=("bob",)))
        self.assertEqual((alice.notices, alice.disconnected), (["alice may no longer use rack4"], 1))
        self.assertIn("rack4: alice (192.0.2.9:1) disconnected: a reload left alice in neither rack4's write nor its "
                      "read list", [formatEvent(e) for e in events])


    def test_healthCheckMadeReadOnlyLeavesWriteToTheHeir(self) -> None:
        """Exclusive: a connection not announced yet (a health check) that holds write and is made read-only by a reload hands write to the person who came meanwhile, as its leaving would (a raw client has no ^] t: it watched on with nobody writing)."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        person = RawClient(h.line, listener=parseListener("raw+4446"))
        person.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 2)))
        self.assertEqual((check.role, person.role), (Role.WRITER, Role.WATCHER))
        applyListenerRights(h.line, [parseListener("telnet,ro+4444"), parseListener("raw+4446")])
        self.assertEqual((check.role, person.role), (Role.READONLY, Role.WRITER))
        check.connectionLost()
        person.dataReceived(b"ls")
        self.assertEqual(h.device.events, [("write", b"ls")])


class AllowTests(SynchronousTestCase):
    def test_allowNarrowed(self) -> None:
        """allow= narrowed by a reload: a client whose address it no longer admits is told, logged and disconnected (off the line at once); one it admits stays a writer."""
        events = LogEvents(self).events
        h = Harness()
        inside, insideT = h.telnet(host="10.1.2.3", port=1)
        outside, outsideT = h.telnet(host="192.0.2.9", port=2)
        text(insideT)
        applyListenerRights(h.line, [parseListener("telnet,allow=10.0.0.0/8,escape=^]+4444")])
        self.assertEqual(text(outsideT), "\r\n[serialgw: your address is no longer allowed on rack4 (a reload "
                                         "changed 'telnet,allow=10.0.0.0/8,escape=^]+4444'): disconnected]\r\n")
        self.assertTrue(outsideT.disconnecting)
        self.assertEqual((h.line.clients, inside.role), ([inside], Role.WRITER))
        self.assertEqual(text(insideT), "\r\n[serialgw: 192.0.2.9:2 detached]\r\n")
        said = [e for e in events if "reason" in e and "listener" in e]
        self.assertEqual([(e["line"], e["peer"], e["reason"], e["listener"]) for e in said],
                         [("rack4", "192.0.2.9:2", "not in 10.0.0.0/8", "telnet,allow=10.0.0.0/8,escape=^]+4444")])
        outside.dataReceived(b"reboot\r")
        self.assertEqual(h.device.events, [])

    def test_allowNarrowedAndReadOnly(self) -> None:
        """Both at once: the address left out is disconnected, the one admitted is read-only."""
        h = Harness()
        inside, _ = h.telnet(host="10.1.2.3", port=1)
        outside, outsideT = h.telnet(host="192.0.2.9", port=2)
        applyListenerRights(h.line, [parseListener("telnet,ro,allow=10.0.0.0/8+4444")])
        self.assertEqual((inside.role, outsideT.disconnecting, h.line.clients), (Role.READONLY, True, [inside]))

    def test_unixPeerNotAdmittedByAllow(self) -> None:
        """A unix peer (no address) is not in any allow= list: refused at accept, cut at a reload (the parser refuses allow= on a unix socket; a systemd: socket passed as another family than its domain says still gets none in)."""
        h = Harness()
        spec = attrs.evolve(parseListener("raw+systemd:domain=INET:index=0"), allow=("127.0.0.1",))
        factory = LineFactory(h.line, spec)
        self.assertIsNone(factory.buildProtocol(UNIXAddress(None)))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)))
        client = RawClient(h.line, listener=parseListener("raw+systemd:domain=INET:index=0"))
        transport = StringTransport(peerAddress=UNIXAddress(None))
        client.makeConnection(transport)
        applyListenerRights(h.line, [spec])
        self.assertEqual((transport.disconnecting, h.line.clients), (True, []))


class _Subject:
    def __init__(self, name: str) -> None:
        self.commonName = name


class _Certificate:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_subject(self) -> _Subject:
        return _Subject(self.name)


class CertifiedTransport(StringTransport):
    """A connection whose TLS peer showed a certificate with this CN (what peerSubject reads)."""

    def __init__(self, name: str, port: int) -> None:
        StringTransport.__init__(self, peerAddress=IPv4Address("TCP", "192.0.2.9", port))
        self.name = name

    def getPeerCertificate(self) -> _Certificate:
        return _Certificate(self.name)


TLS = "tls:4443:cert=gw.pem:key=gw.key:ca=ca.pem:subjects=alice;bob;carol"


class CertificateTests(SynchronousTestCase):
    def certified(self, h: Harness, name: str, port: int) -> tuple[TelnetClient, StringTransport]:
        spec = parseListener(TLS)
        client = TelnetClient(h.line, Role.WRITER, listener=spec)
        transport = CertifiedTransport(name, port)
        client.makeConnection(transport)
        client.dataReceived(AGREE + WONT_COM_PORT)
        transport.clear()
        return client, transport

    def test_subjectsNarrowedAndMadeReadOnly(self) -> None:
        """A TLS listener's subjects= narrowed by a reload: a certificate left out is told and disconnected; one moved to readonly= is read-only; one still in subjects= writes."""
        h = Harness()
        alice, aliceT = self.certified(h, "alice", 1)
        bob, bobT = self.certified(h, "bob", 2)
        carol, carolT = self.certified(h, "carol", 3)
        text(aliceT), text(bobT)
        new = "tls:4443:cert=gw.pem:key=gw.key:ca=ca.pem:subjects=alice:readonly=bob"
        applyListenerRights(h.line, [parseListener(new)])
        self.assertEqual([c.role for c in (alice, bob)], [Role.WRITER, Role.READONLY])
        why = f"a reload made rack4's listener {new!r} read-only for the certificate 'bob'"
        self.assertEqual(text(aliceT), f"\r\n[serialgw: 192.0.2.9:2 (bob) is read-only now: {why}]\r\n"
                                       "\r\n[serialgw: 192.0.2.9:3 (carol) detached]\r\n")
        self.assertEqual(text(carolT), f"\r\n[serialgw: 192.0.2.9:2 (bob) is read-only now: {why}]\r\n"
                                       f"\r\n[serialgw: your certificate ('carol') is no longer admitted on rack4 "
                                       f"(a reload changed {new!r}): disconnected]\r\n")
        self.assertTrue(carolT.disconnecting)
        self.assertEqual(text(bobT), f"\r\n[serialgw: you are read-only now: {why}]\r\n"
                                     "\r\n[serialgw: 192.0.2.9:3 (carol) detached]\r\n")
        self.assertEqual(h.line.clients, [alice, bob])


    def test_certificateWithoutCNAfterNewRights(self) -> None:
        """A verified certificate without a CN (let in by "*", or by a line with no write/read) is held to a reload's new write / read like a named one: read-only when only "*" reads, disconnected when "*" is gone (it wrote on)."""
        ca = "tls:4443:cert=gw.pem:key=gw.key:ca=ca.pem"
        h = Harness()
        nameless = TelnetClient(h.line, Role.WRITER, listener=parseListener(ca))
        transport = CertifiedTransport("", 1)
        nameless.makeConnection(transport)
        nameless.dataReceived(AGREE + WONT_COM_PORT)
        text(transport)
        h.line.applyRights(Rights(write=("alice",), read=("*",)))
        self.assertEqual(nameless.role, Role.READONLY)
        self.assertIn("you are read-only now: a reload left a certificate without a CN only in rack4's read list",
                      text(transport))
        h.line.applyRights(Rights(write=("alice",)))
        self.assertEqual((text(transport), transport.disconnecting, h.line.clients),
                         ("\r\n[serialgw: a certificate without a CN may no longer use rack4]\r\n", True, []))
        nameless.dataReceived(b"reboot\r")
        self.assertEqual(h.device.events, [])


class NamedPeerTests(SynchronousTestCase):
    def test_certificateNameWithControlsShownPrintable(self) -> None:
        """A certificate's CN is shown to the others (attached, w) and logged with its control characters as '?': a CN with CR LF ESC wrote a fake notice and cleared their screens; the rights still see it whole."""
        h = Harness()
        bob, bobT = h.telnet(port=1)
        text(bobT)
        evil = "eve\r\n[serialgw: root attached]\x1b[2J"
        client = TelnetClient(h.line, Role.WRITER, listener=parseListener(TLS.replace("subjects=", "subjects=x;")))
        transport = CertifiedTransport(evil, 2)
        client.makeConnection(transport)
        client.dataReceived(AGREE + WONT_COM_PORT)
        shown = text(bobT)
        self.assertNotIn("\x1b", shown)
        self.assertIn("192.0.2.9:2 (eve??[serialgw: root attached]?[2J) attached as writer", shown)
        self.assertEqual(client.user, evil)
        h.line.applyRights(Rights(write=("alice",), read=(evil,)))
        said = text(bobT)
        self.assertIn("a reload left eve??[serialgw: root attached]?[2J only in rack4's read list", said, said)


class X509Transport(StringTransport):
    """A TLS connection whose peer showed this certificate (an OpenSSL X509), no chain."""

    def __init__(self, certificate: Any, port: int) -> None:
        StringTransport.__init__(self, peerAddress=IPv4Address("TCP", "192.0.2.9", port))
        self.certificate = certificate

    def getPeerCertificate(self) -> Any:
        return self.certificate


class CertificateAuthorityTests(SynchronousTestCase):
    def test_caChangedByReload(self) -> None:
        """ca= changed by a reload: a client whose certificate the new CA file does not verify is told and cut; one it verifies (a bundle with both CAs) stays, as at the handshake."""
        from OpenSSL import crypto

        from tests.certs import Authority

        base = self.mktemp()
        first, second = Authority(base + "/1", "first CA"), Authority(base + "/2", "second CA")
        both = base + "/both.pem"
        with open(both, "wb") as out:
            for path in (first.path, second.path):
                with open(path, "rb") as f:
                    out.write(f.read())
        h = Harness()
        clients = []
        for port, authority in ((1, first), (2, first)):
            with open(authority.issue(f"user{port}")[0], "rb") as f:
                certificate = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
            client = TelnetClient(h.line, Role.WRITER, listener=parseListener(f"tls:4443:cert=c:key=k:ca={first.path}"))
            transport = X509Transport(certificate, port)
            client.makeConnection(transport)
            client.dataReceived(AGREE + WONT_COM_PORT)
            clients.append((client, transport))
        # A bundle that still holds the first CA: both stay.
        applyListenerRights(h.line, [parseListener(f"tls:4443:cert=c:key=k:ca={both}")])
        self.assertEqual([t.disconnecting for _, t in clients], [False, False])
        # Only the second CA: both are cut, told why.
        new = f"tls:4443:cert=c:key=k:ca={second.path}"
        applyListenerRights(h.line, [parseListener(new)])
        self.assertEqual(([t.disconnecting for _, t in clients], h.line.clients), ([True, True], []))
        self.assertIn(f"[serialgw: your connection shows no certificate from this listener's CA on rack4 (a reload "
                      f"changed {new!r}): disconnected]", text(clients[0][1]))
        clients[0][0].dataReceived(b"reboot\r")
        self.assertEqual(h.device.events, [])


    def test_caFileReadOnceForAFarm(self) -> None:
        """A reload giving many lines one new CA file reads it once, not once a line (a 220 KB bundle took 24 ms to read: 32 lines a turn held the reactor 0.8 s); rewritten since, it is read again."""
        from OpenSSL import crypto

        from serialgw.clients import factory
        from serialgw.config.paths import stampTLS
        from tests.certs import Authority

        authority = Authority(self.mktemp(), "farm CA")
        with open(authority.issue("user")[0], "rb") as f:
            certificate = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
        reads = []

        def verifier(path: str) -> Any:
            reads.append(path)
            return lambda transport: True

        self.patch(factory, "caVerifier", verifier)
        self.addCleanup(factory._verifiers.clear)

        def stamped(text: str) -> Any:
            spec = parseListener(text)
            assert spec.tls is not None
            return attrs.evolve(spec, tls=attrs.evolve(spec.tls, stamp=stampTLS(spec.tls)))

        def reloadFarm() -> None:
            for h in farm:
                applyListenerRights(h.line, [stamped(f"tls:4443:cert=c:key=k:ca={authority.path}")])

        farm = [Harness() for _ in range(3)]
        sessions = [TelnetClient(h.line, Role.WRITER, listener=parseListener("tls:4443:cert=c:key=k")) for h in farm]
        for session in sessions:
            session.makeConnection(X509Transport(certificate, 1))
        reloadFarm()
        self.assertEqual(reads, [authority.path])
        with open(authority.path, "ab") as bundle:
            bundle.write(b"\n")
        for session in sessions:  # (connected again through the listener as it was)
            session.listener = parseListener("tls:4443:cert=c:key=k")
        reloadFarm()
        self.assertEqual(reads, [authority.path] * 2)


class RestoreTests(SynchronousTestCase):
    def test_controllerMadeReadOnlyBesideAnotherKeepsSettings(self) -> None:
        """An RFC 2217 client made read-only while another that can change the port stays: the settings they set stay (nothing restored, nothing logged) until the last one is made read-only too."""
        events = LogEvents(self).events
        device = RecordingDevice(SerialSettings(115200))
        line = Line("rack4", device, clock=Clock())
        first, second = RecordingClient("192.0.2.9:1"), RecordingClient("192.0.2.9:2")
        for client in (first, second):
            client.person = True
            line.attach(client)
            line.addController(client)
        self.assertEqual(line.clientSettings(first, SerialSettings(9600)).baudrate, 9600)
        line.makeReadOnly(first, "a reload made it so")
        self.assertEqual((first.role, second.role, device.settings.baudrate), (Role.READONLY, Role.WRITER, 9600))
        self.assertEqual([e for e in events if "restored" in e.get("log_format", "")], [])
        line.makeReadOnly(second, "a reload made it so")
        self.assertEqual(device.settings.baudrate, 115200)

    def test_lastControllerMadeReadOnlyRestores(self) -> None:
        """The last RFC 2217 client that could change the port made read-only: the configured settings come back, as when it leaves (read-only, it would never restore them)."""
        events = LogEvents(self).events
        device = RecordingDevice(SerialSettings(115200))
        line = Line("rack4", device, clock=Clock())
        client = RecordingClient("192.0.2.9:1")
        client.person = True
        line.attach(client)
        line.addController(client)
        self.assertEqual(line.clientSettings(client, SerialSettings(9600)).baudrate, 9600)
        line.makeReadOnly(client, "a reload made it so")
        self.assertEqual((client.role, device.settings.baudrate), (Role.READONLY, 115200))
        # The log says why they came back: the client is there, read-only (not gone).
        self.assertEqual([formatEvent(e) for e in events if "restored" in e.get("log_format", "")],
                         ["rack4: the last RFC 2217 client that could change the port is read-only now;"
                          " settings restored to 115200,8N1"])
        self.assertEqual(client.notices, ["you are read-only now: a reload made it so"])
        self.assertEqual(line.clientSettings(client, SerialSettings(9600)).baudrate, 115200)


class UnannouncedTests(SynchronousTestCase):
    def test_madeExclusiveUnannouncedNotAnnounced(self) -> None:
        """A reload to exclusive mode: a connection never announced (said nothing yet) watches without the others being told; announced later, as a watcher."""
        events = LogEvents(self).events
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        quiet, quietT = h.telnet("telnet+4444", port=2, agree=b"")
        text(aliceT)
        h.line.setMode("exclusive")
        self.assertEqual((alice.role, quiet.role), (Role.WRITER, Role.WATCHER))
        self.assertEqual((text(aliceT), quietT.value()), ("", b""))
        said = [e for e in events if e.get("change") is not None]
        self.assertEqual([(e["peer"], e["change"], e["role"]) for e in said],
                         [("192.0.2.9:2", "now only watches", "watcher")])
        quiet.dataReceived(b"x")
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 attached as watcher]\r\n")
        h.line.setMode("shared")
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:2 writes (shared)]\r\n")

    def test_madeSharedUnannouncedNotAnnounced(self) -> None:
        """Back to shared: a watcher never announced writes, the others not told of it."""
        h = Harness("exclusive")
        alice, aliceT = h.telnet(port=1)
        quiet, _ = h.telnet("telnet+4444", port=2, agree=b"")
        text(aliceT)
        h.line.setMode("shared")
        self.assertEqual((quiet.role, text(aliceT)), (Role.WRITER, ""))

    def test_readOnlyUnannouncedToldOnly(self) -> None:
        """A connection never announced made read-only by a reload: told itself, the others not."""
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        quiet, quietT = h.telnet(port=2, agree=b"")
        text(aliceT)
        applyListenerRights(h.line, [parseListener(MADE_RO)])
        self.assertEqual(quiet.role, Role.READONLY)
        self.assertNotIn("192.0.2.9:2", text(aliceT))
        self.assertIn("you are read-only now", text(quietT))


class MovedListenerTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pty = startedPty(self)
        self.clients = Clients()

    async def tearDown(self) -> None:  # type: ignore[override]
        await self.clients.close()

    async def test_movedListenerKeepsItsClientsNewOneHasItsRights(self) -> None:
        """A reload that moves a listener (another endpoint: a new listener, the old one removed): the old port takes no one more, its client stays as it was (a writer; README: clients of a removed listener stay), the new one's ro holds for those who come through it."""
        directory = shortDirectory(self, "serialgw-")  # (a unix socket path is short)
        path = os.path.join(directory, "moved.sock")
        service = startGateway(self, ptyLine(self.pty, "raw+tcp:0:interface=127.0.0.1"))
        old = listenerPort(service)
        stays = await self.clients.connect(old)
        stays.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        moved = parseListener(f"raw,ro+unix:{path}")
        result = await service.reload([attrs.evolve(service.configs[0], listeners=(moved,))])
        self.assertEqual(result, {"added": [], "changed": ["t"], "removed": []})
        with self.assertRaises(ConnectionRefusedError):
            await connect(old)
        reader = await connectUnix(path)
        self.clients.append(reader)
        line = service.lines["t"]
        self.pty.write(b"x")
        await reader.received.length(1)
        await stays.received.length(1)
        self.assertEqual([c.role for c in line.clients], [Role.WRITER, Role.READONLY])
        stays.transport.write(b"b")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(2), b"ab")
