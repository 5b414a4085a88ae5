"""
SSH user names: C{LINE} (a key's person logs in), C{PERSON+LINE} (a key of
that person's, or their password), bounded in length; conch's userauth
driven with conch's FakeTransport, and the real OpenSSH client against
C{twistd serialgw --ssh}.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from twisted.conch.ssh import keys, userauth
from twisted.conch.ssh.common import NS
from twisted.conch.ssh.transport import DISCONNECT_PROTOCOL_ERROR
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.ssh import GatewaySSHFactory, SSHGateway
from serialgw.clients.sshauth import MOST_USER_NAME, KeyRing, Login, splitUserName
from serialgw.clients.sshpassword import personAndLine
from serialgw.config import passwords
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import Rights, UserSpec
from serialgw.config.specs import SerialSettings
from serialgw.config.sshkeys import fingerprint
from serialgw.line.hub import Line
from tests.clients.test_ssh import SSH_READY, Console, newKey, publickeyRequest, publicLine, startUserAuth
from tests.fakes import LogEvents, RecordingDevice
from tests.realio import Accumulator, Processes, ProcessOutput, gatewayArgv, need, until

# (alice has a password: both are offered.)
FAILURE = (userauth.MSG_USERAUTH_FAILURE, NS(b"publickey,password,keyboard-interactive") + b"\x00")


class UserNameTests(SynchronousTestCase):
    """How an SSH user name is read: the last '+' splits, a name too long is refused."""

    def test_split(self) -> None:
        """LINE alone has no person; PERSON+LINE both; a person named by a key comment may hold '+' (the last one splits)."""
        self.assertEqual([splitUserName(n) for n in (b"con1", b"ops1+con1", b"ops1+", b"+con1", b"a+b+con1")],
                         [(None, "con1"), ("ops1", "con1"), ("ops1", ""), ("", "con1"), ("a+b", "con1")])
        # A password login's PERSON alone is the person.
        self.assertEqual([personAndLine(n) for n in (b"ops1", b"ops1+con1")], [("ops1", ""), ("ops1", "con1")])

    def test_tooLong(self) -> None:
        """A user name past MOST_USER_NAME bytes is refused saying its length; one of MOST_USER_NAME is read."""
        self.assertEqual(splitUserName(b"p+" + b"c" * (MOST_USER_NAME - 2)), ("p", "c" * (MOST_USER_NAME - 2)))
        from twisted.cred.error import UnauthorizedLogin

        with self.assertRaises(UnauthorizedLogin) as caught:
            splitUserName(b"c" * (MOST_USER_NAME + 1))
        self.assertEqual(str(caught.exception), f"a user name of {MOST_USER_NAME + 1} bytes: at most {MOST_USER_NAME}")


class Harness(SynchronousTestCase):
    """conch's userauth server, ours, on conch's FakeTransport: ops1 and ops2 have keys, alice a password."""

    def setUp(self) -> None:
        self.ops1, self.ops2 = newKey(), newKey()
        users = (UserSpec("ops1", (publicLine(self.ops1),)), UserSpec("ops2", (publicLine(self.ops2),)),
                 UserSpec("alice", password=passwords.make(b"hunter2", ln=4)))
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        self.factory = GatewaySSHFactory(newKey(), KeyRing(users), gateway, users)
        self.clock = Clock()
        self.server, self.transport = startUserAuth(self, self.factory, self.clock)

    def request(self, user: bytes, key: keys.Key, signed: bool) -> Any:
        return publickeyRequest(self.server, user, key, signed)


class KeyLoginTests(Harness):
    """A key logs in as C{LINE} (as before) or as C{PERSON+LINE} where the key is that person's."""

    def test_personPlusLine(self) -> None:
        """ops1+con1 with ops1's key: asked, PK_OK; signed, logged in as ops1 on con1 (the line was 'ops1+con1', no line)."""
        self.request(b"ops1+con1", self.ops1, signed=False)
        self.request(b"ops1+con1", self.ops1, signed=True)
        self.assertEqual([t for t, _ in self.transport.packets],
                         [userauth.MSG_USERAUTH_PK_OK, userauth.MSG_USERAUTH_SUCCESS])
        self.assertEqual(self.transport.avatar.login, Login("ops1", "con1", self.ops1.public().blob()))  # type: ignore[attr-defined]

    def test_lineAloneStill(self) -> None:
        """The user name con1 alone: the key's person, on con1 (as before)."""
        self.request(b"con1", self.ops2, signed=True)
        self.assertEqual(self.transport.avatar.login, Login("ops2", "con1", self.ops2.public().blob()))  # type: ignore[attr-defined]

    def test_anotherPersonsKeyRefused(self) -> None:
        """ops1+con1 with ops2's key (or alice's name, who has none): refused, asked or signed, logged with the key, the reason and the user name."""
        events = LogEvents(self)
        self.request(b"ops1+con1", self.ops2, signed=False)
        self.request(b"ops1+con1", self.ops2, signed=True)
        self.request(b"alice+con1", self.ops2, signed=True)
        self.assertEqual(self.transport.packets, [FAILURE] * 3)
        self.assertEqual([(e["fingerprint"], e["reason"], e["user"]) for e in events.at(LogLevel.warn)],
                         [(fingerprint(self.ops2), "not a key of 'ops1'", "ops1+con1")] * 2
                         + [(fingerprint(self.ops2), "not a key of 'alice'", "alice+con1")])
        self.assertFalse(hasattr(self.transport, "avatar"))

    def test_longUserNameRefused(self) -> None:
        """A user name past MOST_USER_NAME bytes is refused, with a key or a password, its length said; nothing is checked."""
        events = LogEvents(self)
        verified: list[keys.Key] = []

        def verify(key: keys.Key, signature: bytes, data: bytes) -> bool:
            verified.append(key)
            return True

        self.patch(keys.Key, "verify", verify)
        name = b"ops1+" + b"c" * MOST_USER_NAME
        self.request(name, self.ops1, signed=True)
        self.server.ssh_USERAUTH_REQUEST(NS(name) + NS(b"ssh-connection") + NS(b"password") + b"\x00" + NS(b"hunter2"))
        self.clock.advance(self.server.passwordDelay)
        self.assertEqual([t for t, _ in self.transport.packets], [userauth.MSG_USERAUTH_FAILURE] * 2)
        self.assertEqual(verified, [])
        said = f"a user name of {len(name)} bytes: at most {MOST_USER_NAME}"
        self.assertEqual([e["reason"] for e in events.at(LogLevel.warn)], [said, said])


class OpenSSHKeyLoginTests(TestCase):
    """Debian's OpenSSH client with a key logs in as PERSON+LINE to `twistd serialgw --ssh` (and as LINE)."""

    timeout = 60

    async def setUp(self) -> None:  # type: ignore[override]
        self.ssh = need("ssh")
        keygen = need("ssh-keygen")
        self.processes = Processes()
        self.consoles: list[Console] = []
        # (Run last: the gateway stopped first.)
        self.addCleanup(lambda: [c.transport.loseConnection() for c in self.consoles])  # type: ignore[union-attr]
        self.addCleanup(lambda: defer.ensureDeferred(self.processes.stop()))
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)
        for name in ("ops1", "ops2"):
            proc = self.processes.spawn([keygen, "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", self.path(name)])
            self.assertEqual(await proc.ended, 0, proc.output.data)
        with open(self.path("people.pub"), "w") as out:
            for name in ("ops1", "ops2"):
                with open(self.path(f"{name}.pub")) as f:
                    out.write(f.read())
        self.received = Accumulator("console")

        def console() -> Console:
            self.consoles.append(Console(self.received))
            return self.consoles[-1]

        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            protocol.Factory.forProtocol(console))  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        self.gw = self.processes.spawn(gatewayArgv(
            "--device", f"telnet:127.0.0.1:{port.getHost().port}", "--name", "con1",
            "--ssh", "tcp:0:interface=127.0.0.1", "--ssh-host-key", self.path("host_key"),
            "--authorized-keys", self.path("people.pub"), "--port", "tcp:0:interface=127.0.0.1"))
        data = await self.gw.output.when(lambda d: SSH_READY.search(d) is not None and b": connected" in d)
        match = SSH_READY.search(data)
        assert match is not None
        self.port = int(match.group(1))

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def client(self, key: str, user: str) -> ProcessOutput:
        return self.processes.spawn([self.ssh, "-tt", "-F", "/dev/null", "-i", self.path(key), "-p", str(self.port),
                                     "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                     "-o", f"UserKnownHostsFile=\"{self.path('known_hosts')}\"",
                                     "-o", "StrictHostKeyChecking=no", f"{user}@127.0.0.1"], usePTY=True)

    async def test_personPlusLine(self) -> None:
        """ssh -i ops1 ops1+con1@gw logs in as ops1 and types; ops2's key as ops1+con1 is refused (exit 255), logged."""
        ssh = self.client("ops1", "ops1+con1")
        await self.gw.output.contains(b"con1: ops1 (127.0.0.1:")
        ssh.write(b"typed")
        await self.received.contains(b"typed")
        ssh.write(b"\r~.")
        self.assertEqual(await ssh.ended, 255)
        other = self.client("ops2", "ops1+con1")
        self.assertEqual(await other.ended, 255)
        self.assertIn(b"Permission denied (publickey)", other.output.data)
        await self.gw.output.contains(b"refused (not a key of 'ops1'); user name 'ops1+con1'")
        self.assertNotIn(b"con1: ops2 (", self.gw.output.data)
        plain = self.client("ops2", "con1")
        await self.gw.output.contains(b"con1: ops2 (127.0.0.1:")
        plain.write(b"\r~.")
        self.assertEqual(await plain.ended, 255)
        self.assertNotIn(b"Traceback", self.gw.output.data)


def infoResponse(*answers: bytes) -> bytes:
    """RFC 4256's SSH_MSG_USERAUTH_INFO_RESPONSE payload: the count, then each answer."""
    return struct.pack(">L", len(answers)) + b"".join(NS(a) for a in answers)


class KeyboardInteractiveTests(Harness):
    """keyboard-interactive (RFC 4256): one prompt, "Password: ", whose answer is checked as a password."""

    def setUp(self) -> None:
        Harness.setUp(self)
        # The check in this thread (the reactor's thread pool is not what these tests are about).
        self.factory.passwords.checks.run = lambda work: defer.succeed(work())

    def ask(self, user: bytes = b"alice+con1") -> Any:
        return self.server.ssh_USERAUTH_REQUEST(NS(user) + NS(b"ssh-connection") + NS(b"keyboard-interactive")
                                                + NS(b"") + NS(b""))

    def test_promptThenRightPassword(self) -> None:
        """Asked, the server sends one prompt (no name, no instruction, not echoed); the right answer logs alice in on con1, as her password does."""
        self.ask()
        self.assertEqual(self.transport.packets, [(60, NS(b"") + NS(b"") + NS(b"") + b"\x00\x00\x00\x01"
                                                   + NS(b"Password: ") + b"\x00")])
        self.transport.packets = []
        self.server.ssh_USERAUTH_INFO_RESPONSE(infoResponse(b"hunter2"))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_SUCCESS, b"")])
        hashed = self.factory.passwords.book.hashes["alice"].text
        self.assertEqual(self.transport.avatar.login, Login("alice", "con1", password=hashed))  # type: ignore[attr-defined]

    def test_wrongPasswordRefused(self) -> None:
        """A wrong answer is refused after conch's delay, counted as a failed login, logged as a password login (keyboard-interactive) without the password."""
        events = LogEvents(self)
        self.ask()
        self.server.ssh_USERAUTH_INFO_RESPONSE(infoResponse(b"hunter3"))
        self.assertEqual([t for t, _ in self.transport.packets], [60])
        self.clock.advance(self.server.passwordDelay)
        self.assertEqual(self.transport.packets[1:], [FAILURE])
        self.assertEqual(self.server.loginAttempts, 1)
        [event] = events.at(LogLevel.warn)
        self.assertEqual((event["log_format"].split(" as ")[0], event["user"], event["reason"]),
                         ("ssh: password login (keyboard-interactive)", "alice+con1", "wrong password"))
        self.assertNotIn("hunter3", repr(events.events))

    def test_otherAnswersRefused(self) -> None:
        """No answer, two, or answers cut short: refused (counted, nothing hashed), saying so."""
        events = LogEvents(self)
        hashed: list[Any] = []

        def run(work: Any) -> defer.Deferred[bool]:
            hashed.append(work)
            return defer.succeed(False)

        self.patch(self.factory.passwords.checks, "run", run)
        for answers in (infoResponse(), infoResponse(b"hunter2", b"hunter2"), b"\x00\x00\x00\x01\x00\x00\x00\x09hunt",
                        b"\x00\x00", infoResponse(b"hunter2") + b"x"):
            self.ask()
            self.server.ssh_USERAUTH_INFO_RESPONSE(answers)
        self.assertEqual(hashed, [])
        self.assertEqual([p for p in self.transport.packets if p[0] != 60], [FAILURE] * 5)
        self.assertEqual([e["reason"] for e in events.at(LogLevel.warn)],
                         ["0 answers to 1 prompt", "2 answers to 1 prompt", "unreadable answers", "unreadable answers",
                          "unreadable answers"])
        self.assertEqual(self.server.loginAttempts, 5)

    def test_unaskedAnswersDisconnect(self) -> None:
        """Answers with no prompt asked (or a second time) disconnect, logged: nothing is checked."""
        events = LogEvents(self)
        disconnects: list[tuple[int, bytes]] = []
        self.transport.sendDisconnect = lambda reason, desc: disconnects.append((reason, desc))  # type: ignore[attr-defined,method-assign]
        self.server.ssh_USERAUTH_INFO_RESPONSE(infoResponse(b"hunter2"))
        self.assertEqual(disconnects, [(DISCONNECT_PROTOCOL_ERROR, b"keyboard-interactive answers unasked")])
        self.assertEqual([e["address"] for e in events.at(LogLevel.info)], ["192.0.2.7:40000"])
        self.assertFalse(hasattr(self.transport, "avatar"))

    def test_newRequestDropsThePrompt(self) -> None:
        """A new login request while a prompt waits drops it (nothing sent for it, not counted); answers after that are unasked."""
        self.ask()
        self.request(b"ops1+con1", self.ops1, signed=False)
        self.assertEqual([t for t, _ in self.transport.packets], [60, userauth.MSG_USERAUTH_PK_OK])
        self.assertEqual(self.server.loginAttempts, 0)
        disconnects: list[tuple[int, bytes]] = []
        self.transport.sendDisconnect = lambda reason, desc: disconnects.append((reason, desc))  # type: ignore[attr-defined,method-assign]
        self.server.ssh_USERAUTH_INFO_RESPONSE(infoResponse(b"hunter2"))
        self.assertEqual(len(disconnects), 1)
        self.assertFalse(hasattr(self.transport, "avatar"))

    def test_notOfferedWithoutPasswords(self) -> None:
        """With nobody's password, keyboard-interactive is refused as before (not offered): no prompt."""
        self.factory.setUsers((UserSpec("ops1", (publicLine(self.ops1),)),))
        self.server.serviceStopped()
        self.server.stopped = False
        self.server.serviceStarted()
        self.ask()
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")])


class OpenSSHKeyboardInteractiveTests(TestCase):
    """Debian's OpenSSH client, keyboard-interactive only, its password from SSH_ASKPASS, against the SSH listener on 127.0.0.1 port 0."""

    timeout = 60

    async def test_passwordByPrompt(self) -> None:
        """ssh -o PreferredAuthentications=keyboard-interactive alice+con1@gw: asked 'Password: ', alice's password logs her in; her typing reaches the device."""
        ssh = need("ssh")
        processes = Processes()
        self.addCleanup(lambda: defer.ensureDeferred(processes.stop()))
        folder = os.path.abspath(self.mktemp())
        os.mkdir(folder)
        askpass = os.path.join(folder, "askpass")
        with open(askpass, "w") as f:
            f.write(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{folder}/asked'\necho hunter2\n")
        os.chmod(askpass, 0o700)
        device = RecordingDevice(SerialSettings(115200))
        line = Line("con1", device, clock=reactor)
        line.rights = Rights(write=("alice",))
        users = (UserSpec("alice", password=passwords.make(b"hunter2", ln=4)),)
        factory = GatewaySSHFactory(newKey(), KeyRing(users), SSHGateway(lambda: {"con1": line},
                                                                         parseSSHListener("tcp:0"), reactor), users)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        env = dict(os.environ, SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force", DISPLAY="none")
        client = processes.spawn([
            ssh, "-T", "-F", "/dev/null", "-p", str(port.getHost().port), "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", "-o", "StrictHostKeyChecking=no",
            "-o", f"UserKnownHostsFile=\"{folder}/known_hosts\"", "alice+con1@127.0.0.1"], env=env)
        await until(self, lambda: line.clients, "alice attached")
        self.assertEqual(line.clients[0].user, "alice")
        client.write(b"typed")
        await until(self, lambda: device.events, "the typing reached the device")
        self.assertEqual(device.events, [("write", b"typed")])
        with open(os.path.join(folder, "asked")) as f:
            self.assertEqual(f.read(), "(alice+con1@127.0.0.1) Password: \n")  # (OpenSSH says where to)
