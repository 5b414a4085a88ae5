"""
SSH user names: C{LINE} (a key's person logs in), C{PERSON+LINE} (a key of
that person's, or their password), bounded in length; conch's userauth
driven with conch's FakeTransport, and the real OpenSSH client against
C{twistd serialgw --ssh}.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.conch.ssh import keys, userauth
from twisted.conch.ssh.common import NS
from twisted.conch.test.test_userauth import FakeTransport
from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.ssh import GatewaySSHFactory, KeyRing, Login, SSHGateway, UserAuth
from serialgw.clients.sshauth import MOST_USER_NAME, splitUserName
from serialgw.clients.sshpassword import personAndLine
from serialgw.config import passwords
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.specs import UserSpec
from serialgw.config.sshkeys import fingerprint
from tests.clients.test_ssh import SSH_READY, Console, newKey, publicLine
from tests.fakes import LogEvents
from tests.realio import Accumulator, Processes, ProcessOutput, gatewayArgv, need

# (alice has a password: both are offered.)
FAILURE = (userauth.MSG_USERAUTH_FAILURE, NS(b"publickey,password") + b"\x00")


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


class KeyLoginTests(SynchronousTestCase):
    """A key logs in as C{LINE} (as before) or as C{PERSON+LINE} where the key is that person's."""

    def setUp(self) -> None:
        self.ops1, self.ops2 = newKey(), newKey()
        users = (UserSpec("ops1", (publicLine(self.ops1),)), UserSpec("ops2", (publicLine(self.ops2),)),
                 UserSpec("alice", password=passwords.make(b"hunter2", ln=4)))
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        self.factory = GatewaySSHFactory(newKey(), KeyRing(users), gateway, users)
        self.server = UserAuth()
        self.server.clock = self.clock = Clock()
        self.transport = FakeTransport(self.factory.portal)
        self.transport.factory.getService = lambda transport, service: (  # type: ignore[method-assign]
            FakeTransport.Service if service in (b"ssh-connection", b"ssh-userauth") else None)
        self.transport.sessionID = b"session"
        self.transport.getPeer = lambda: IPv4Address("TCP", "192.0.2.7", 40000)  # type: ignore[method-assign]
        self.server.transport = self.transport
        self.server.serviceStarted()
        self.addCleanup(self.server.serviceStopped)

    def request(self, user: bytes, key: keys.Key, signed: bool) -> Any:
        blob = key.public().blob()
        head = NS(user) + NS(b"ssh-connection") + NS(b"publickey")
        if not signed:
            return self.server.ssh_USERAUTH_REQUEST(head + b"\x00" + NS(b"ssh-ed25519") + NS(blob))
        signedData = (NS(b"session") + bytes((userauth.MSG_USERAUTH_REQUEST,)) + head + b"\xff"
                      + NS(b"ssh-ed25519") + NS(blob))
        return self.server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(b"ssh-ed25519") + NS(blob)
                                                + NS(key.sign(signedData)))

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
