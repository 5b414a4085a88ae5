"""
The escape menu's K WHO: a line's admin people (its admin list)
disconnect another person by name, or whoever comes from an address;
nobody else may; the argument is bounded and cancelled as R N's is.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escape import HELP, NAME_LIMIT
from serialgw.clients.telnet import TelnetClient
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.config.specs import ConfigError
from serialgw.devices.device import SerialDevice
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_sessions import Harness, text
from tests.fakes import LogEvents, RecordingPort
from tests.realio import writeTemp
from tests.telnetpeer import AGREE, WONT_COM_PORT


class KickTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = LogEvents(self)
        self.h = Harness()
        self.h.line.rights = Rights(admin=("ops1",))
        self.admin, self.adminT = self.person("ops1", 1)

    def person(self, user: str | None, port: int, host: str = "192.0.2.9") -> tuple[TelnetClient, StringTransport]:
        """A telnet session with the escape menu from HOST:PORT, the person C{user} (None: no person)."""
        client = TelnetClient(self.h.line, Role.WRITER, listener=parseListener("telnet,escape=^]+4444"))
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        client.makeConnection(transport)
        client.dataReceived(AGREE + WONT_COM_PORT)
        client.user = user
        return client, transport

    def test_byName(self) -> None:
        """K bob Enter disconnects both of bob's sessions, each told who and why; carol stays; the admin is told whom; the log says it."""
        bob1, bob1T = self.person("bob", 2)
        bob2, bob2T = self.person("bob", 3)
        carol, carolT = self.person("carol", 4)
        for t in (bob1T, bob2T, carolT, self.adminT):
            t.clear()
        self.admin.dataReceived(b"\x1dKbob\r\n")
        self.assertEqual(text(bob1T), "\r\n[serialgw: 192.0.2.9:1 disconnected you from rack4 (admin)]\r\n")
        self.assertTrue(bob1T.disconnecting and bob2T.disconnecting)
        self.assertFalse(carolT.disconnecting or self.adminT.disconnecting)
        self.assertEqual(self.h.line.clients, [self.admin, carol])
        self.assertIn("[serialgw: disconnected from rack4: 192.0.2.9:2, 192.0.2.9:3]", text(self.adminT))
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "(admin)" in e["log_format"]]
        self.assertEqual(said, ["rack4: 192.0.2.9:2 disconnected by 192.0.2.9:1 (admin)",
                                "rack4: 192.0.2.9:3 disconnected by 192.0.2.9:1 (admin)"])
        self.assertEqual(self.h.device.events, [])

    def test_byAddress(self) -> None:
        """K HOST:PORT disconnects that connection; K HOST every other one from there, the admin's own kept."""
        one, oneT = self.person(None, 2, "198.51.100.5")
        two, twoT = self.person(None, 3, "198.51.100.5")
        here, hereT = self.person(None, 4)
        self.admin.dataReceived(b"\x1dK198.51.100.5:2\r")
        self.assertEqual((oneT.disconnecting, twoT.disconnecting), (True, False))
        self.admin.dataReceived(b"\x1dK192.0.2.9\r")
        self.assertEqual((hereT.disconnecting, self.adminT.disconnecting), (True, False))
        self.admin.dataReceived(b"\x1dK198.51.100.5\r")
        self.assertTrue(twoT.disconnecting)
        self.assertEqual(self.h.line.clients, [self.admin])

    def test_notAnAdmin(self) -> None:
        """A person not in admin, and a client that is no person (user None), are refused; the keys after K are typing, as after any refused command."""
        for user, port in (("bob", 2), (None, 3)):
            client, transport = self.person(user, port)
            transport.clear()
            client.dataReceived(b"\x1dKops1\r")
            self.assertEqual(text(transport), "\r\n[serialgw: K disconnects others from rack4: only its admin people "
                                              "may (the line's admin list)]\r\n")
        self.assertFalse(self.adminT.disconnecting)
        self.assertEqual(self.h.device.events, [("write", b"ops1\r"), ("write", b"ops1\r")])

    def test_nobodySuch(self) -> None:
        """A name on nobody else (the admin's own among them) disconnects nobody, said; an empty answer too."""
        self.adminT.clear()
        self.admin.dataReceived(b"\x1dKops1\r")
        self.assertIn("nobody disconnected: no one else on rack4 is 'ops1' (w shows who is on)", text(self.adminT))
        self.admin.dataReceived(b"\x1dK\r")
        self.assertIn("nobody disconnected: no name or address given", text(self.adminT))
        self.assertEqual(self.h.line.clients, [self.admin])

    def test_argumentBounded(self) -> None:
        """A key that is no name's (a control key, ESC) cancels, the rest of the read not sent; past NAME_LIMIT keys cancels too."""
        bob, bobT = self.person("bob", 2)
        self.adminT.clear()
        self.admin.dataReceived(b"\x1dKbo\x01b\rls\r")
        self.assertIn("disconnect cancelled: ^A is not part of a name or an address; the 5 byte(s) after it were not "
                      "sent to rack4", text(self.adminT))
        self.admin.dataReceived(b"\x1dK" + b"b" * NAME_LIMIT + b"x\r")
        for _ in range(NAME_LIMIT // 32 + 2):
            # (KEYS_PER_TURN keys of commands a turn of the reactor: the rest waits for the next.)
            self.h.line.clock.advance(0)
        self.assertIn(f"disconnect cancelled: more than {NAME_LIMIT} characters", text(self.adminT))
        self.admin.dataReceived(b"\x1dKb\x7f\x7fbob\r")
        self.assertTrue(bobT.disconnecting)
        self.assertEqual(self.h.device.events, [])

    def test_certificateNamesWithSpaceOrAt(self) -> None:
        """TLS people whose CN holds a space, an @ or UTF-8 (John Smith, bob@corp.example, José) are named as written, or in double quotes (taken as is between them): each disconnected, the other kept (only [A-Za-z0-9._-:[]] could be typed: a space or @ cancelled)."""
        john, johnT = self.person("John Smith", 2)
        bob, bobT = self.person("bob@corp.example", 3)
        jose, joseT = self.person("José", 4)
        other, otherT = self.person("John", 5)
        self.admin.dataReceived(b"\x1dKJohn Smith\r")
        self.assertEqual((johnT.disconnecting, otherT.disconnecting), (True, False))
        self.admin.dataReceived(b'\x1dK"bob@corp.example"\r')
        self.assertTrue(bobT.disconnecting)
        self.admin.dataReceived("\x1dK José \r".encode())
        self.assertTrue(joseT.disconnecting)
        self.adminT.clear()
        self.admin.dataReceived(b'\x1dK" John"\r')
        self.assertIn("nobody disconnected: no one else on rack4 is ' John' (w shows who is on)", text(self.adminT))
        self.assertEqual(self.h.line.clients, [self.admin, other])
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "(admin)" in e["log_format"]]
        self.assertEqual(len(said), 3)

    def tildeAdminAndBob(self) -> tuple[TelnetClient, StringTransport, StringTransport]:
        """ops1 on a telnet listener whose escape key is ~ (its output cleared), and a person named 'bob~x'."""
        admin = TelnetClient(self.h.line, Role.WRITER, listener=parseListener("telnet,escape=~+4444"))
        adminT = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 9))
        admin.makeConnection(adminT)
        admin.dataReceived(AGREE + WONT_COM_PORT)
        admin.user = "ops1"
        _, bobT = self.person("bob~x", 2)
        adminT.clear()
        return admin, adminT, bobT

    def test_printableEscapeKeyCancels(self) -> None:
        """With a printable escape key (escape=~) that key still cancels K's argument, though a name's keys are printable: checked first."""
        admin, adminT, bobT = self.tildeAdminAndBob()
        admin.dataReceived(b"~Kbob~x\r")
        self.assertIn("disconnect cancelled; the 2 byte(s) after it were not sent to rack4", text(adminT))
        self.assertFalse(bobT.disconnecting)

    def test_escapeKeyInAQuotedName(self) -> None:
        """Within double quotes the escape key is a key of the name (escape=~, K "bob~x"): that person disconnected; after the closing quote, or unquoted, it cancels as before; Esc cancels within them (the escape key always cancelled: such a name could not be typed, only its address)."""
        admin, adminT, bobT = self.tildeAdminAndBob()
        admin.dataReceived(b'~K"bob~x\x1b"\r')
        self.assertIn("disconnect cancelled; the 2 byte(s) after it were not sent to rack4", text(adminT))
        admin.dataReceived(b'~K"bob"~x\r')
        self.assertIn("disconnect cancelled; the 2 byte(s) after it were not sent to rack4", text(adminT))
        self.assertFalse(bobT.disconnecting)
        adminT.clear()
        admin.dataReceived(b'~K"bob~x"\r')
        self.assertIn("disconnected from rack4: 192.0.2.9:2", text(adminT))
        self.assertTrue(bobT.disconnecting)

    def test_typingWaitingDroppedSaysTheAdmin(self) -> None:
        """What the person disconnected typed that still waits for the device is not written, and they and the log are told why: the admin (it said 'a reload took your write right away')."""
        reactor = MemoryReactorClock()
        port = RecordingPort(reactor, accept=0)
        device = SerialDevice(port, reactor)
        self.h.line = Line("rack5", device, clock=reactor)
        device.sink = self.h.line
        self.h.line.rights = Rights(admin=("ops1",))
        admin, _ = self.person("ops1", 1)
        bob, bobT = self.person("bob", 2)
        bob.dataReceived(b"typed by bob")
        bobT.clear()
        admin.dataReceived(b"\x1dKbob\r")
        self.assertEqual(text(bobT), "\r\n[serialgw: 12 byte(s) you typed were not sent: 192.0.2.9:1 disconnected you "
                                     "(admin)]\r\n\r\n[serialgw: 192.0.2.9:1 disconnected you from rack5 (admin)]\r\n")
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "not yet written" in e["log_format"]]
        self.assertEqual(said, ["rack5: 192.0.2.9:2: 12 byte(s) it typed, not yet written to the device, dropped: "
                                "192.0.2.9:1 disconnected it (admin)"])
        port.accept = None
        device.doWrite()
        self.assertEqual(port.written(), b"")

    def test_adminTakenAwayMeanwhile(self) -> None:
        """A reload that takes the admin's right away while the name is typed: nobody is disconnected, said."""
        bob, bobT = self.person("bob", 2)
        self.admin.dataReceived(b"\x1dKbo")
        self.h.line.applyRights(Rights())
        self.adminT.clear()
        self.admin.dataReceived(b"b\r")
        self.assertEqual(text(self.adminT), "\r\n[serialgw: nobody disconnected: you are no longer an admin of rack4]\r\n")
        self.assertFalse(bobT.disconnecting)

    def test_everyPersonStar(self) -> None:
        """admin = ["*", "!bob"]: every person but bob."""
        self.h.line.rights = Rights(admin=("*", "!bob"))
        bob, bobT = self.person("bob", 2)
        carol, _ = self.person("carol", 3)
        bob.dataReceived(b"\x1dKcarol\r")
        self.assertIn(carol, self.h.line.clients)
        carol.dataReceived(b"\x1dKbob\r")
        self.assertTrue(bobT.disconnecting)
        self.assertIs(carol.role, Role.WRITER)

    def test_dialOutNotDisconnected(self) -> None:
        """
        A dial-out (a listener tcp:HOST:PORT, the gateway's own connection) is
        not disconnected by K: it was, dialled again 1.6 s later, and told
        the far end it was put off; K HOST meant for a person there cut it
        too.  The person from that address goes; named alone, the admin is
        told why it stays.
        """
        dialOut, dialOutT = self.person(None, 4000, "198.51.100.5")
        dialOut.dialled = True
        person, personT = self.person(None, 2, "198.51.100.5")
        dialOutT.clear()
        self.admin.dataReceived(b"\x1dK198.51.100.5\r")
        self.assertEqual((personT.disconnecting, dialOutT.disconnecting), (True, False))
        self.assertIn("[serialgw: disconnected from rack4: 198.51.100.5:2]", text(self.adminT))
        self.adminT.clear()
        dialOutT.clear()
        self.admin.dataReceived(b"\x1dK198.51.100.5:4000\r")
        self.assertFalse(dialOutT.disconnecting)
        self.assertEqual(text(dialOutT), "")
        self.assertEqual(text(self.adminT).split("\r\n")[-2], (
            "[serialgw: nobody disconnected: 198.51.100.5:4000 is rack4's dial-out (the gateway's own connection, "
            "dialled again when it goes: a reload removing its listener ends it)]"))
        self.assertEqual(self.h.line.clients, [self.admin, dialOut])

    def test_helpSaysIt(self) -> None:
        """The help names K."""
        self.assertIn("admins: K WHO<Enter> disconnect a person or an address", HELP)


class AdminKeyTests(SynchronousTestCase):
    LINE = '[users.ops1]\nkeys = []\n[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'

    def test_read(self) -> None:
        """admin = [...] in a line's table or [defaults]; left out: nobody."""
        (line,) = loadConfig(writeTemp(self, self.LINE + 'admin = ["ops1"]\n'))
        self.assertEqual(line.rights, Rights(admin=("ops1",)))
        self.assertTrue(line.rights.isAdmin("ops1"))
        self.assertFalse(line.rights.isAdmin(None))
        (line,) = loadConfig(writeTemp(self, '[defaults]\nadmin = "*"\n' + self.LINE))
        self.assertEqual(line.rights.admin, ("*",))
        (line,) = loadConfig(writeTemp(self, self.LINE))
        self.assertEqual((line.rights.admin, line.rights.isAdmin("ops1")), (None, False))

    def test_refused(self) -> None:
        """An unknown user, a list of '!' names alone, a value that is no list of names: refused naming the file's line."""
        for value, said in (('["bob"]', "FILE:6: [lines.web1] admin: unknown user 'bob' (declared: ops1; add a "
                                        "[users.NAME] table)"),
                            ('["!ops1"]', "FILE:6: [lines.web1] admin: '!ops1' and no name, nor '*': a name with '!' "
                                          "takes a user out of the others; admin = ['*', '!ops1'] is everyone but them"),
                            ("3", "FILE:6: [lines.web1] admin: expected user names (a list; \"*\": every user), not 3")):
            path = writeTemp(self, self.LINE + f"admin = {value}\n")
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE"), said)
