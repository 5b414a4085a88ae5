"""
SSH password logins: conch's own SSH client (SSHCommandClientEndpoint, in
this process, over TCP on 127.0.0.1 port 0) against the gateway's SSH
listener; the checks' bounds on a clock; a reload changing a password.
"""

from __future__ import annotations

import json
import os
from functools import partial
from typing import Any

from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.endpoints import AuthenticationFailed, SSHCommandClientEndpoint
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import userauth
from twisted.conch.ssh.common import NS
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients import sshpassword
from serialgw.clients.ssh import GatewaySSHFactory, SSHGateway
from serialgw.clients.sshauth import KeyRing, Login, UserAuth
from serialgw.clients.sshpassword import PasswordBook, PasswordChecks
from serialgw.config import passwords
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import Rights, SSHSpec, UserSpec
from serialgw.config.specs import SerialSettings
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_ssh import newKey, publicLine
from tests.fakes import LogEvents, RecordingDevice
from tests.realio import until

# Cheap hashes for the tests (ln=4: a hash of the same kind as a made one, checked in microseconds).
RIGHT = passwords.make(b"hunter2", ln=4)
OTHER = passwords.make(b"correct horse", ln=4)


class Output(protocol.Protocol):
    """What the session prints."""

    def connectionMade(self) -> None:
        self.data = b""
        self.closed: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any = None) -> None:
        self.closed.callback(None)


class NoQuestions:
    """conch's client UI: answers no to every question (the host key is in known_hosts already)."""

    def prompt(self, text: bytes) -> defer.Deferred[bool]:
        return defer.succeed(False)

    def warn(self, text: bytes) -> None:
        pass


class ConchClientTests(TestCase):
    """conch's SSHCommandClientEndpoint logs in with a password (or is refused) over loopback TCP."""

    timeout = 30

    async def setUp(self) -> None:  # type: ignore[override]
        self.events = LogEvents(self)
        self.device = RecordingDevice(SerialSettings(115200))
        self.line = Line("con1", self.device, clock=reactor)
        self.line.rights = Rights(write=("ops1",), read=("ops2",))
        self.ops2 = newKey()
        users = (UserSpec("ops1", password=RIGHT), UserSpec("ops2", (publicLine(self.ops2),)))
        gateway = SSHGateway(lambda: {"con1": self.line}, parseSSHListener("tcp:0"), reactor)
        hostKey = newKey()
        self.factory = GatewaySSHFactory(hostKey, KeyRing(users), gateway, users)
        self.port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(self.factory)
        self.addCleanup(self.port.stopListening)
        known = FilePath(os.path.abspath(self.mktemp()))
        self.knownHosts = KnownHostsFile(known)
        self.knownHosts.addHostKey(b"127.0.0.1", hostKey.public())
        # (The refusal's 1 s wait, conch's passwordDelay, is not what these tests are about.)
        self.patch(UserAuth, "passwordDelay", 0)

    def connect(self, user: bytes, password: bytes, command: bytes = b"con1") -> defer.Deferred[Any]:
        newConnection: Any = SSHCommandClientEndpoint.newConnection
        endpoint = newConnection(
            reactor, command, user, b"127.0.0.1", self.port.getHost().port, password=password,
            knownHosts=self.knownHosts, ui=NoQuestions())
        return endpoint.connect(protocol.Factory.forProtocol(Output))

    def refusals(self) -> list[tuple[str, str]]:
        return [(e["user"], e["reason"]) for e in self.events.at(LogLevel.warn) if "password login" in e["log_format"]]

    async def test_rightPasswordLogsIn(self) -> None:
        """ops1's password logs in (user name PERSON, the line by exec), as ops1, a writer: typed bytes reach the device."""
        session = await self.connect(b"ops1", b"hunter2")
        await until(self, lambda: self.line.clients, "the session attached")
        [client] = self.line.clients
        self.assertEqual((client.user, client.role), ("ops1", Role.WRITER))
        session.transport.write(b"ls\r")
        await until(self, lambda: self.device.events, "the typing reached the device")
        self.assertEqual(self.device.events, [("write", b"ls\r")])
        session.transport.loseConnection()
        await session.closed
        await until(self, lambda: not self.line.clients, "the session left")
        self.assertEqual(self.refusals(), [])
        self.assertNotIn("hunter2", repr(self.events.events))

    async def test_personPlusLine(self) -> None:
        """The user name ops1+con1 names the line too (an empty command: the user name's line)."""
        session = await self.connect(b"ops1+con1", b"hunter2", command=b"")
        await until(self, lambda: self.line.clients, "the session attached")
        self.assertEqual(self.line.clients[0].user, "ops1")
        session.transport.loseConnection()
        await session.closed
        await until(self, lambda: not self.line.clients, "the session left")

    async def cut(self) -> None:
        """conch's client gives its one password again after each refusal: cut after 11 failed logins, said once."""
        await until(self, lambda: [e for e in self.events.at(LogLevel.info) if "failed logins" in e["log_format"]],
                    "the cut logged")
        self.assertLessEqual(len(self.refusals()), 11)
        self.assertEqual(self.line.clients, [])

    async def test_wrongPasswordRefused(self) -> None:
        """A wrong password is refused: the client's login fails, the log names the user name and address, never the password."""
        with self.assertRaises(AuthenticationFailed):
            await self.connect(b"ops1", b"hunter3")
        await self.cut()
        event = [e for e in self.events.at(LogLevel.warn) if "password login" in e["log_format"]][0]
        self.assertEqual((event["user"], event["peer"], event["reason"]), ("ops1", "127.0.0.1", "wrong password"))
        self.assertTrue(event["address"].startswith("127.0.0.1:"), event["address"])
        self.assertNotIn("hunter3", repr(self.events.events))

    async def test_personWithoutPasswordRefused(self) -> None:
        """ops2 has a key, no password: a password (any) is refused, said so in the log, and nobody is on the line."""
        with self.assertRaises(AuthenticationFailed):
            await self.connect(b"ops2", b"hunter2")
        await self.cut()
        self.assertEqual(self.refusals()[0], ("ops2", "'ops2' has no password"))


class OfferedTests(SynchronousTestCase):
    """password is offered only while somebody has one; publickey always; one check at a time a connection."""

    def server(self, users: tuple[UserSpec, ...]) -> tuple[Any, GatewaySSHFactory]:
        from twisted.conch.test.test_userauth import FakeTransport

        factory = GatewaySSHFactory(newKey(), KeyRing(users), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()), users)
        server: Any = UserAuth()
        server.clock = Clock()
        server.transport = FakeTransport(factory.portal)
        server.transport.factory.getService = lambda transport, service: (  # type: ignore[attr-defined]
            FakeTransport.Service if service in (b"ssh-connection", b"ssh-userauth") else None)
        server.transport.sessionID = b"session"
        server.transport.getPeer = lambda: IPv4Address("TCP", "192.0.2.7", 40000)  # type: ignore[method-assign]
        server.serviceStarted()
        return server, factory

    def offered(self, users: tuple[UserSpec, ...]) -> list[bytes]:
        server, _ = self.server(users)
        self.addCleanup(server.serviceStopped)
        server.ssh_USERAUTH_REQUEST(NS(b"ops1") + NS(b"ssh-connection") + NS(b"none"))
        [(kind, payload)] = server.transport.packets
        self.assertEqual(kind, userauth.MSG_USERAUTH_FAILURE)
        return payload[4:-1].split(b",")

    def test_offeredWhenSomebodyHasOne(self) -> None:
        """With a person's password: publickey, password and keyboard-interactive (a password prompt); with keys only: publickey alone (as before)."""
        self.assertEqual(self.offered((UserSpec("ops1", password=RIGHT),)),
                         [b"publickey", b"password", b"keyboard-interactive"])
        self.assertEqual(self.offered((UserSpec("ops1", (publicLine(newKey()),)),)), [b"publickey"])

    def test_oneCheckAtATimeAndNoneForAConnectionGone(self) -> None:
        """A second password sent while the first is checked is refused at once (conch checked each one sent); a right password whose connection went meanwhile logs nobody in."""
        users = (UserSpec("ops1", password=RIGHT),)
        server, factory = self.server(users)
        ran = Ran()
        factory.passwords.checks.run = ran
        request = NS(b"ops1+con1") + NS(b"ssh-connection") + NS(b"password") + b"\x00"
        events = LogEvents(self)
        server.ssh_USERAUTH_REQUEST(request + NS(b"hunter2"))
        server.ssh_USERAUTH_REQUEST(request + NS(b"hunter2"))
        self.assertEqual(len(ran.pending) + len(factory.passwords.checks.waiting), 1)
        server.clock.advance(server.passwordDelay)
        self.assertEqual(server.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey,password,keyboard-interactive")
                                                    + b"\x00")])
        self.assertEqual([e["reason"] for e in events.at(LogLevel.warn)],
                         ["a password of this connection is being checked already"])
        server.serviceStopped()
        ran.finish()
        server.clock.advance(server.passwordDelay)
        self.assertEqual([e["reason"] for e in events.at(LogLevel.warn)][1:],
                         ["the connection went while its password was checked"])
        self.assertEqual((factory.gateway.people, len(server.transport.packets)), (set(), 2))

    def test_waitingCheckOfAConnectionGoneNotRun(self) -> None:
        """A password waiting behind another connection's check, its connection gone meanwhile: never hashed, refused and logged as such."""
        users = (UserSpec("ops1", password=RIGHT),)
        server, factory = self.server(users)
        ran = Ran()
        factory.passwords.checks.run = ran
        factory.passwords.checks.check("198.51.100.1", passwords.parse(RIGHT), b"x")  # (another's, running)
        events = LogEvents(self)
        server.ssh_USERAUTH_REQUEST(NS(b"ops1+con1") + NS(b"ssh-connection") + NS(b"password") + b"\x00"
                                    + NS(b"hunter2"))
        self.assertEqual((len(ran.pending), len(factory.passwords.checks.waiting)), (1, 1))
        server.serviceStopped()
        ran.finish()
        self.assertEqual((ran.pending, factory.passwords.checks.waiting), ([], []))
        server.clock.advance(server.passwordDelay)
        self.assertEqual([e["reason"] for e in events.at(LogLevel.warn)],
                         ["the connection went while its password waited to be checked"])
        self.assertEqual(factory.gateway.people, set())


class Ran:
    """A thread stand-in: each piece of work waits until the test finishes it."""

    def __init__(self) -> None:
        self.pending: list[tuple[Any, defer.Deferred[bool]]] = []

    def __call__(self, work: Any) -> defer.Deferred[bool]:
        d: defer.Deferred[bool] = defer.Deferred()
        self.pending.append((work, d))
        return d

    def finish(self) -> None:
        work, d = self.pending.pop(0)
        d.callback(work())


class ChecksTests(SynchronousTestCase):
    """The password checks' bounds: one at a time, WAITING waiting, a source's burst then its rate."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.ran = Ran()
        self.checks = PasswordChecks(self.clock, self.ran)
        self.right = passwords.parse(RIGHT)

    def test_oneAtATime(self) -> None:
        """Three checks from three sources: one runs, the others wait their turn; each answers its own."""
        results: list[tuple[int, Any]] = []
        for n, word in enumerate((b"hunter2", b"x", b"hunter2")):
            d: Any = self.checks.check(f"192.0.2.{n}", self.right, word)
            d.addBoth(lambda r, n=n: results.append((n, r)))
        self.assertEqual((len(self.ran.pending), len(self.checks.waiting)), (1, 2))
        for _ in range(3):
            self.ran.finish()
        self.assertEqual(results, [(0, True), (1, False), (2, True)])
        self.assertEqual((self.checks.running, self.ran.pending), (0, []))

    def test_waitingBounded(self) -> None:
        """Past WAITING checks waiting, the next is refused at once, not queued."""
        for n in range(sshpassword.WAITING + 1):
            self.checks.check(f"192.0.2.{n}", self.right, b"x")
        self.assertEqual(len(self.checks.waiting), sshpassword.WAITING)
        failures: list[Any] = []
        self.checks.check("198.51.100.1", self.right, b"x").addErrback(failures.append)
        self.assertEqual(failures[0].getErrorMessage(), f"{sshpassword.WAITING} password checks waiting already")
        self.assertEqual(len(self.checks.waiting), sshpassword.WAITING)

    def test_longPasswordRefusedUnhashed(self) -> None:
        """
        A password past MOST_PASSWORD bytes is refused at once, never
        hashed nor counted against its source (SHA-512-crypt's work grows
        with its square: a 30000-byte one over SSH made the gateway hold
        937 MB, seen live); one of MOST_PASSWORD bytes is checked.
        """
        failures: list[Any] = []
        most = passwords.MOST_PASSWORD
        self.checks.check("192.0.2.7", self.right, b"x" * (most + 1)).addErrback(failures.append)
        self.assertEqual([f.getErrorMessage() for f in failures], [f"a password of {most + 1} bytes: at most {most}"])
        self.assertEqual((self.ran.pending, self.checks.waiting), ([], []))
        self.checks.check("192.0.2.7", self.right, b"x" * most)
        self.assertEqual((len(self.ran.pending), failures[0].check(UnauthorizedLogin)), (1, UnauthorizedLogin))

    def test_sourceBurstThenRate(self) -> None:
        """One source: SOURCE_BURST checks at once, the next refused (not run), one more after 1 / SOURCE_RATE s."""
        failures: list[Any] = []
        for _ in range(sshpassword.SOURCE_BURST + 1):
            self.checks.check("192.0.2.7", self.right, b"x").addErrback(failures.append)
        self.assertEqual([f.check(UnauthorizedLogin) for f in failures], [UnauthorizedLogin])
        self.assertEqual(failures[0].getErrorMessage(), "more password checks from 192.0.2.7 than 10 at once, then 1 "
                                                        "every 2 s")
        self.assertEqual(len(self.ran.pending) + len(self.checks.waiting), sshpassword.SOURCE_BURST)
        self.checks.check("192.0.2.8", self.right, b"x")  # (another source is not held)
        self.clock.advance(1 / sshpassword.SOURCE_RATE)
        self.checks.check("192.0.2.7", self.right, b"x").addErrback(failures.append)
        self.assertEqual(len(failures), 1)
        self.assertEqual(len(self.ran.pending) + len(self.checks.waiting), sshpassword.SOURCE_BURST + 2)


class GoneTests(SynchronousTestCase):
    """A check waiting its turn whose connection went is not run: no hash work for a client that is not there."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.ran = Ran()
        self.checks = PasswordChecks(self.clock, self.ran)
        self.right = passwords.parse(RIGHT)

    def test_goneWhileWaitingNotRun(self) -> None:
        """Three checks: the second's connection goes while the first runs; its turn refuses it unrun (said why), the third runs."""
        results: list[tuple[int, Any]] = []
        here = [True, True, True]
        for n in range(3):
            d: Any = self.checks.check(f"192.0.2.{n}", self.right, b"hunter2", wanted=partial(here.__getitem__, n))
            d.addBoth(lambda r, n=n: results.append((n, r)))
        here[1] = False
        self.ran.finish()
        self.assertEqual(len(self.ran.pending), 1)
        self.ran.finish()
        self.assertEqual(sorted((n, r if isinstance(r, bool) else r.getErrorMessage()) for n, r in results),
                         [(0, True), (1, "the connection went while its password waited to be checked"), (2, True)])
        self.assertEqual((self.checks.running, self.checks.waiting, self.ran.pending), (0, [], []))

    def test_goneFreeTheirPlaces(self) -> None:
        """WAITING checks waiting whose connections all went: the next one is taken (those are refused unrun), not refused as over the bound."""
        here = [True]
        failures: list[Any] = []
        self.checks.check("198.51.100.1", self.right, b"x")  # (runs: the others wait)
        for n in range(sshpassword.WAITING):
            self.checks.check(f"192.0.2.{n}", self.right, b"x", wanted=lambda: here[0]).addErrback(failures.append)
        self.assertEqual(len(self.checks.waiting), sshpassword.WAITING)
        here[0] = False
        late: list[Any] = []
        self.checks.check("198.51.100.2", self.right, b"hunter2").addBoth(late.append)
        self.assertEqual((len(failures), len(self.checks.waiting)), (sshpassword.WAITING, 1))
        self.ran.finish()
        self.ran.finish()
        self.assertEqual((late, self.ran.pending), ([True], []))


class DecoyTests(SynchronousTestCase):
    """A name with no password is checked against a person's costs, so the time taken does not say who has one."""

    def test_nameWithoutPasswordCostsAsAPerson(self) -> None:
        """
        A book of a SHA-512-crypt person (rounds=1000) and an scrypt one
        (ln=4): each name with no password (unknown, or a key's person) is
        checked against a hash of one of those two costs, the same for the
        same name, both costs picked; a decoy lets no password in, its
        person's right one included.  (Before: every such name against
        scrypt ln=15, 0.2 to 0.5 s, where a SHA-512-crypt person's wrong
        password was refused after 10 ms: seen live, 'bob+a' refused
        sooner than 'nobody+a' each time.)
        """
        sha = passwords.sha512CryptText(b"hunter3", "saltsalt", 1000)
        users = (UserSpec("bob", password=sha), UserSpec("ops1", password=RIGHT),
                 UserSpec("dave", (publicLine(newKey()),)))
        book = PasswordBook(users)
        checked: list[passwords.PasswordHash] = []

        class Checks:
            def check(self, source: str, hashed: passwords.PasswordHash, password: bytes,
                      wanted: Any = None) -> defer.Deferred[bool]:
                checked.append(hashed)
                return defer.succeed(hashed.verify(password))

        checker = sshpassword.PasswordChecker(book, Checks())  # type: ignore[arg-type]
        names = ["dave"] + [f"nobody{n}" for n in range(40)]
        for name in names + names:
            for word in (b"hunter2", b"hunter3"):
                refused = self.failureResultOf(checker.requestAvatarId(
                    sshpassword.PasswordTry(f"{name}+con1".encode(), word, "192.0.2.7", lambda: True)))
                self.assertEqual(refused.value.args[0], "no person named" if not name else f"{name!r} has no password")
        costs = [hashed.describe() for hashed in checked]
        self.assertEqual(set(costs), {"sha512-crypt rounds=1000", "scrypt ln=4,r=8,p=1"})
        self.assertEqual(costs[:len(costs) // 2], costs[len(costs) // 2:])
        self.assertEqual({len(hashed.salt) for hashed in checked if hashed.kind == "sha512-crypt"}, {8})
        self.assertEqual(PasswordBook((UserSpec("bob", password=sha),)).decoyFor("x").describe(),
                         "sha512-crypt rounds=1000")
        self.assertIs(PasswordBook().decoyFor("x"), sshpassword.NOBODY)


class ReloadTests(SynchronousTestCase):
    """A reload that changes or removes the password a person logged in with disconnects them; one left alone stays."""

    def test_changedPasswordDisconnects(self) -> None:
        users = (UserSpec("ops1", password=RIGHT), UserSpec("ops3", password=OTHER))
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        factory = GatewaySSHFactory(newKey(), KeyRing(users), gateway, users)
        revoked: list[str] = []
        realm: Any = factory.portal.realm
        for name, hashed in (("ops1", RIGHT), ("ops3", OTHER)):
            person: Any
            _, person, _ = realm.requestAvatar(Login(name, "con1", password=hashed), None, IConchUser)
            person.revoke = lambda name=name: revoked.append(name)
        factory.setUsers((UserSpec("ops1", password=OTHER), UserSpec("ops3", password=OTHER)))
        self.assertEqual(revoked, ["ops1"])
        factory.setUsers((UserSpec("ops3"),))
        self.assertEqual(sorted(revoked), ["ops1", "ops1", "ops3"])
        self.assertIsNone(factory.passwords.book.of("ops3"))
        self.assertEqual(PasswordBook(users).of("ops1"), passwords.parse(RIGHT))


class StatusTests(SynchronousTestCase):
    def test_pageNamesThoseWithAPassword(self) -> None:
        """The status page's "ssh" part: how many people, who has a password (names only, no hash); no SSH listener, no part; the page is json.dumps(indent=2) of the whole, in parts or not."""
        from twisted.web.test.requesthelper import DummyRequest

        from serialgw.app.slices import jsonParts
        from serialgw.app.status import StatusResource, lineStatus
        from tests.fakes import Lines

        service = Lines(Line("a", RecordingDevice(), clock=Clock()))
        page = json.loads(StatusResource(service).render_GET(DummyRequest([b""])))
        self.assertNotIn("ssh", page)
        service.ssh = SSHSpec(parseSSHListener("tcp:0"), users=(
            UserSpec("ops2", (publicLine(newKey()),)), UserSpec("ops1", password=RIGHT), UserSpec("bob", password=OTHER)))
        body = StatusResource(service).render_GET(DummyRequest([b""]))
        page = json.loads(body)
        self.assertEqual(page["ssh"], {"people": 3, "with_password": ["bob", "ops1"]})
        self.assertNotIn(RIGHT.split("$")[-1].encode(), body)
        for count in (0, 1, 40):
            lines = [Line(f"l{n}", RecordingDevice(), clock=Clock()) for n in range(count)]
            after = {"ssh": {"people": 1, "with_password": ["ops1"]}}
            whole = json.dumps({"serialgw": "v", "lines": [lineStatus(line) for line in lines], **after}, indent=2)
            self.assertEqual(b"".join(jsonParts("v", lines, lineStatus, after)), whole.encode() + b"\n")
