"""
The SSH face: public keys and the people they name, the host key, auth
decisions (conch's userauth driven with conch's FakeTransport), session
channel requests (conch's StubConnection), rights on lines, and output
bounds through the channel's window and the TCP buffer.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
from typing import Any, Optional

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import connection, keys, userauth
from twisted.conch.ssh.common import NS
from twisted.conch.ssh.transport import MSG_DISCONNECT, MSG_KEXINIT, MSG_SERVICE_REQUEST, SSHServerTransport
from twisted.conch.test.test_session import StubConnection
from twisted.conch.test.test_userauth import FakeTransport
from twisted.internet import defer, protocol, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from serialgw.app import tap
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.ssh import Connection, GatewaySSHFactory, Person, Realm, SSHGateway, makeFactory
from serialgw.clients.sshauth import KeyRing, Login, UserAuth
from serialgw.clients.sshhostkey import SSHError, loadHostKey
from serialgw.clients.sshsession import LIST_MOST, LIST_WINDOW, LIST_WORK, SSHClient
from serialgw.clients.transports import describeAddress
from serialgw.config.file import loadFile
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import Rights, SSHSpec, UserSpec
from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.config.sshkeys import fingerprint, printable, readPublicKeys, usersFromFile
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingClient, RecordingDevice
from tests.realio import (
    Accumulator,
    Processes,
    ProcessOutput,
    assertBreakThenKey,
    attachStrace,
    closeClients,
    connect,
    gatewayArgv,
    listenerPort,
    listeningPort,
    need,
    ptyLine,
    startedPty,
    startGateway,
    testLockDir,
    writeTemp,
)
from tests.shortpaths import shortTemp


def newKey() -> keys.Key:
    return keys.Key(ed25519.Ed25519PrivateKey.generate())


def publicLine(key: keys.Key, comment: str = "") -> str:
    return key.public().toString("openssh", comment=comment or None).decode()


class KeysTests(SynchronousTestCase):
    def test_readLines(self) -> None:
        """Key lines give blob, comment and OpenSSH's fingerprint; blank and # lines are skipped."""
        key = newKey()
        found = readPublicKeys(f"# ops\n\n{publicLine(key, 'ops1@laptop')}\n{publicLine(key)}\n", "keys")
        self.assertEqual([(k.blob, k.comment) for k in found], [(key.blob(), "ops1@laptop"), (key.blob(), "")])
        self.assertEqual(found[0].fingerprint,
                         "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("="))

    def test_lineSeparatorInAComment(self) -> None:
        """A key whose comment holds U+2028, U+0085 or a form feed (OpenSSH's lines end at newlines only) is one key line, read, not refused as a line 2 that is no key."""
        key = newKey()
        for odd in ("\u2028", "\x85", "\x0c", "\x1c"):
            found = readPublicKeys(f"{publicLine(key, f'ops1{odd}laptop')}\n# last\n", "keys")
            self.assertEqual([(k.blob, k.comment) for k in found], [(key.blob(), "ops1?laptop")])

    def test_optionsRefused(self) -> None:
        """An authorized_keys line with options is refused, naming the source and line: from= must not vanish."""
        line = 'from="10.0.0.0/8" ' + publicLine(newKey())
        e = self.assertRaises(ConfigError, readPublicKeys, "\n" + line, "ops.pub")
        self.assertTrue(str(e).startswith("ops.pub:2: expected a public key"), str(e))
        self.assertIn("options (from=, command=, ...) are not supported", str(e))
        self.assertIn(", not 'from=\"10.0.0.0/8'...;", str(e))

    def test_notAKeyQuotedShort(self) -> None:
        """A line that is no key (a keys path that leads to /etc/shadow) is quoted to 16 characters: the error cannot carry a password hash into the log."""
        shadow = "root:$6$saltsalt$" + "h" * 86 + ":19000:0:99999:7:::"
        e = self.assertRaises(ConfigError, readPublicKeys, shadow, "keys")
        self.assertIn(", not 'root:$6$saltsalt'...;", str(e))
        self.assertNotIn("h" * 4, str(e))

    def test_badKey(self) -> None:
        """A key whose base64 is broken, or whose type is not the line's, is an error naming the line."""
        self.assertEqual(str(self.assertRaises(ConfigError, readPublicKeys, "ssh-ed25519 AAAA!!", "f")),
                         "f:1: cannot read the ssh-ed25519 key")
        line = publicLine(newKey()).replace("ssh-ed25519", "ssh-rsa", 1)
        self.assertEqual(str(self.assertRaises(ConfigError, readPublicKeys, line, "f")),
                         "f:1: the key says ssh-ed25519, the line ssh-rsa")

    def test_usersFromFile(self) -> None:
        """Single-line mode: a key's comment names its person (its fingerprint without one); one person, many keys."""
        a, b, c = newKey(), newKey(), newKey()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f"{publicLine(a, 'ops1')}\n{publicLine(b, 'ops1')}\n{publicLine(c)}\n")
        users = usersFromFile(path)
        self.assertEqual([(u.name, len(u.keys)) for u in users], [("ops1", 2), (fingerprint(c), 1)])
        self.assertEqual(str(self.assertRaises(ConfigError, usersFromFile, "/nonexistent.pub")),
                         "cannot read keys file '/nonexistent.pub': No such file or directory")

    def test_starCommentRefused(self) -> None:
        """A key commented '*' is refused, naming the file's line: as the person's name it would put "*" (every user) in the line's write list."""
        star = newKey()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f"{publicLine(newKey(), 'ops1')}\n{publicLine(star, '*')}\n")
        self.assertEqual(str(self.assertRaises(ConfigError, usersFromFile, path)),
                         f"keys file {path!r}:2: key {fingerprint(star)} has the comment '*', which would "
                         "name every user (a read-only key could type): give it another comment")

    def test_commentsCutToOneNameRefused(self) -> None:
        """Single-line mode: two comments that differ only past the 64 printable characters a name keeps (or in characters shown as '?') are refused, naming both lines: they made one person of two silently."""
        a, b = newKey(), newKey()
        for first, second in (("ops" * 21 + "-laptop", "ops" * 21 + "-intern"), ("ops\u200b1", "ops?1")):
            path = self.mktemp()
            with open(path, "w") as f:
                f.write(f"{publicLine(a, first)}\n# x\n{publicLine(b, second)}\n{publicLine(a, first)}\n")
            self.assertEqual(str(self.assertRaises(ConfigError, usersFromFile, path)),
                             f"keys file {path!r}:3: the key's comment differs from line 1's, but names the same person "
                             f"{printable(first)!r} (a person is named by a comment's first 64 printable characters, "
                             "others shown as '?'): make them differ there, or the same")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f"{publicLine(a, 'ops1 laptop')}\n{publicLine(b, 'ops1 laptop')}\n")
        self.assertEqual([(u.name, len(u.keys)) for u in usersFromFile(path)], [("ops1 laptop", 2)])

    def test_bangCommentRefused(self) -> None:
        """A key commented '!NAME' is refused, naming the file's line (it named none): as a person's name in the line's list it would take NAME out of it (ops1's own key then let nobody in), and it logs nobody in."""
        bang = newKey()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f"{publicLine(newKey(), 'ops1')}\n{publicLine(bang, '!ops1')}\n")
        self.assertEqual(str(self.assertRaises(ConfigError, usersFromFile, path)),
                         f"keys file {path!r}:2: key {fingerprint(bang)} has the comment '!ops1', which would take "
                         "'ops1' out of the line's people: give it another comment")

    def test_notARegularFile(self) -> None:
        """A keys file that is a device or a FIFO is refused at once, never waited on (a reload would stop the reactor)."""
        fifo = self.mktemp()
        os.mkfifo(fifo)
        for path in ("/dev/null", fifo):
            self.assertEqual(str(self.assertRaises(ConfigError, usersFromFile, path)),
                             f"keys file {path!r} is not a regular file")

    def test_listener(self) -> None:
        """--ssh takes telnet's listener options before a +; a non-listening endpoint is refused."""
        spec = parseSSHListener("ro,banner,escape=^],outbuf=4096+tcp:2222:interface=127.0.0.1")
        self.assertEqual((spec.endpoint, spec.readOnly, spec.banner, spec.escape, spec.outbuf),
                         ("tcp:2222:interface=127.0.0.1", True, True, 0x1D, 4096))
        self.assertEqual(parseSSHListener("2222").endpoint, "tcp:2222")
        e = self.assertRaises(ConfigError, parseSSHListener, "bogus,x+tcp:2222")
        self.assertIn("'bogus,x+tcp:2222'", str(e))
        self.assertIn("SSH listener 'file:/tmp/x'", str(self.assertRaises(ConfigError, parseSSHListener, "file:/tmp/x")))

    def test_listenerIPv6Allow(self) -> None:
        """An allow= of IPv6 networks (colons before the +) is an option, not part of the endpoint; a unix path with a + stays the endpoint."""
        spec = parseSSHListener("allow=::1/128;fd00::/8,ro+tcp:2222:interface=127.0.0.1")
        self.assertEqual((spec.endpoint, spec.allow, spec.readOnly, spec.text),
                         ("tcp:2222:interface=127.0.0.1", ("::1/128", "fd00::/8"), True,
                          "allow=::1/128;fd00::/8,ro+tcp:2222:interface=127.0.0.1"))
        self.assertEqual(parseSSHListener("unix:/run/a+b").path, "/run/a+b")


class HostKeyTests(SynchronousTestCase):
    def test_madeOnceKeptAfter(self) -> None:
        """No file: an ed25519 key is made, mode 0600; the next start loads the same key."""
        path = self.mktemp()
        key, made = loadHostKey(path)
        self.assertEqual((key.sshType(), made, stat.S_IMODE(os.stat(path).st_mode)), (b"ssh-ed25519", True, 0o600))
        again, made = loadHostKey(path)
        self.assertEqual((again, made), (key, False))

    def test_madeByAnotherAtOnce(self) -> None:
        """Another process (serialgw@1-2 starting beside serialgw@0-2) makes the key while this one makes its own: this one takes the key on disk, no error, nothing left beside it."""
        from serialgw.clients import sshhostkey as ssh

        path = os.path.abspath(self.mktemp())
        other = keys.Key(ed25519.Ed25519PrivateKey.generate())
        raced: list[bool] = []

        class Racing(keys.Key):
            def __init__(self, keyObject: Any) -> None:
                super().__init__(keyObject)
                if not raced:
                    # The other process, between this one's look and its write.
                    raced.append(True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    os.write(fd, other.toString("openssh"))
                    os.close(fd)

        self.patch(ssh, "keys", type("Keys", (), {"Key": Racing}))
        key, made = loadHostKey(path)
        self.assertEqual((key, made, raced), (other, False, [True]))
        self.assertEqual(os.listdir(os.path.dirname(path)), [os.path.basename(path)])

    def test_othersMayRead(self) -> None:
        """A host key others may read is refused (as sshd does), with the fix in the message."""
        path = self.mktemp()
        loadHostKey(path)
        os.chmod(path, 0o644)
        self.assertEqual(str(self.assertRaises(SSHError, loadHostKey, path)),
                         f"SSH host key {path!r} may be read by others (mode 0644): chmod 600 it")

    def test_notARegularFile(self) -> None:
        """A FIFO where the host key should be is refused at once, not waited on."""
        path = self.mktemp()
        os.mkfifo(path, 0o600)
        self.assertEqual(str(self.assertRaises(SSHError, loadHostKey, path)),
                         f"SSH host key {path!r} is not a regular file")

    def test_symlinkRefused(self) -> None:
        """A host key path that is a symbolic link (to a good key, or dangling) is refused, said so (not 'Too many levels of symbolic links')."""
        key = self.mktemp()
        loadHostKey(key)
        for target in (key, self.mktemp()):
            link = self.mktemp()
            os.symlink(target, link)
            self.assertEqual(str(self.assertRaises(SSHError, loadHostKey, link)),
                             f"SSH host key {link!r} is a symbolic link (not followed)")

    def test_cannotWrite(self) -> None:
        """A host key that cannot be made: an error naming the path and why."""
        e = self.assertRaises(SSHError, loadHostKey, "/nonexistent/dir/key")
        self.assertEqual(str(e), "cannot write SSH host key '/nonexistent/dir/key': its directory '/nonexistent/dir' "
                                 "does not exist (make it, mode 700, or give the key another path: --ssh-host-key, "
                                 "host-key in [ssh])")
        directory = self.mktemp()
        os.mkdir(directory)
        os.chmod(directory, 0o500)
        if os.access(directory, os.W_OK):  # (root writes it all the same)
            return
        e = self.assertRaises(SSHError, loadHostKey, os.path.join(directory, "key"))
        self.assertEqual(str(e), f"cannot write SSH host key {os.path.join(directory, 'key')!r}: Permission denied")

    def test_defaultDirectoryMissing(self) -> None:
        """The README's SSH example leaves --ssh-host-key out: where /var/lib/serialgw is not there, the error says the directory is missing and what to do (not only 'No such file or directory')."""
        path = os.path.join(os.path.abspath(self.mktemp()), "ssh_host_ed25519_key")
        e = self.assertRaises(SSHError, loadHostKey, path)
        self.assertEqual(str(e), f"cannot write SSH host key {path!r}: its directory {os.path.dirname(path)!r} does "
                                 "not exist (make it, mode 700, or give the key another path: --ssh-host-key, host-key "
                                 "in [ssh])")
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_fingerprintLogged(self) -> None:
        """makeFactory logs the host key's path and fingerprint."""
        events = LogEvents(self)
        path = self.mktemp()
        spec = SSHSpec(parseSSHListener("tcp:0"), path, (UserSpec("ops1", (publicLine(newKey()),)),))
        factory = makeFactory(spec, dict, Clock())
        [event] = [e for e in events.at(LogLevel.info) if "host key" in e["log_format"]]
        self.assertEqual((event["path"], event["fingerprint"], event["made"]),
                         (path, fingerprint(factory.privateKeys[b"ssh-ed25519"]), ", made now"))


def startUserAuth(case: SynchronousTestCase, factory: GatewaySSHFactory,
                  clock: Clock) -> tuple[UserAuth, FakeTransport]:
    """Our userauth server started on conch's FakeTransport for FACTORY's portal, peer 192.0.2.7."""
    server = UserAuth()
    server.clock = clock
    transport = FakeTransport(factory.portal)
    # The services GatewaySSHFactory has (conch's fake one for each).
    transport.factory.getService = lambda transport, service: (  # type: ignore[method-assign]
        FakeTransport.Service if service in (b"ssh-connection", b"ssh-userauth") else None)
    transport.sessionID = b"session"
    transport.getPeer = lambda: IPv4Address("TCP", "192.0.2.7", 40000)  # type: ignore[method-assign]
    server.transport = transport
    server.serviceStarted()
    case.addCleanup(server.serviceStopped)
    return server, transport


def publickeyRequest(server: UserAuth, user: bytes, key: keys.Key, signed: bool) -> Any:
    """SERVER's answer to a publickey request for USER with KEY, signed over "session" or not."""
    blob = key.public().blob()
    head = NS(user) + NS(b"ssh-connection") + NS(b"publickey")
    if not signed:
        return server.ssh_USERAUTH_REQUEST(head + b"\x00" + NS(b"ssh-ed25519") + NS(blob))
    signedData = (NS(b"session") + bytes((userauth.MSG_USERAUTH_REQUEST,)) + head + b"\xff"
                  + NS(b"ssh-ed25519") + NS(blob))
    return server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(b"ssh-ed25519") + NS(blob)
                                       + NS(key.sign(signedData)))


class AuthTests(SynchronousTestCase):
    """conch's userauth server, our checker: publickey only, known keys only."""

    def setUp(self) -> None:
        self.ops1 = newKey()
        self.stranger = newKey()
        users = (UserSpec("ops1", (publicLine(self.ops1),)),)
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        self.factory = GatewaySSHFactory(newKey(), KeyRing(users), gateway)
        self.server, self.transport = startUserAuth(self, self.factory, Clock())

    def request(self, user: bytes, key: keys.Key, signed: bool) -> Any:
        return publickeyRequest(self.server, user, key, signed)

    def test_onlyPublickeyOffered(self) -> None:
        """Asked with "none", the server offers publickey and nothing else (no password, no keyboard-interactive)."""
        self.server.ssh_USERAUTH_REQUEST(NS(b"con1") + NS(b"ssh-connection") + NS(b"none"))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")])
        self.transport.packets = []
        self.server.ssh_USERAUTH_REQUEST(NS(b"con1") + NS(b"ssh-connection") + NS(b"password") + b"\x00" + NS(b"secret"))
        self.server.ssh_USERAUTH_REQUEST(NS(b"con1") + NS(b"ssh-connection") + NS(b"keyboard-interactive") + NS(b"") + NS(b""))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")] * 2)

    def test_passwordGuessesLogged(self) -> None:
        """A password or keyboard-interactive login (never offered: a scanner's guess) is refused and logged with the method, the address and the user name, as an unknown key is (they were not logged at all: 11 guesses a connection, then cut, unseen); "none" (every client's first ask) is not."""
        events = LogEvents(self)
        head = NS(b"root\x1b") + NS(b"ssh-connection")
        self.server.ssh_USERAUTH_REQUEST(head + NS(b"none"))
        self.server.ssh_USERAUTH_REQUEST(head + NS(b"password") + b"\x00" + NS(b"hunter2"))
        self.server.ssh_USERAUTH_REQUEST(head + NS(b"keyboard-interactive") + NS(b"") + NS(b""))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")] * 3)
        self.assertEqual([(e["method"], e["address"], e["peer"], e["user"]) for e in events.at(LogLevel.warn)],
                         [("password", "192.0.2.7:40000", "192.0.2.7", "root?"),
                          ("keyboard-interactive", "192.0.2.7:40000", "192.0.2.7", "root?")])
        self.assertNotIn("hunter2", repr(events.events))

    def test_tooManyFailedLoginsLogged(self) -> None:
        """The connection cut after attemptsBeforeDisconnect failed logins (passwords, unknown keys) is logged once, with the address and the count (it was cut without a word)."""
        events = LogEvents(self)
        disconnects: list[tuple[int, bytes]] = []
        self.transport.sendDisconnect = lambda reason, desc: disconnects.append((reason, desc))  # type: ignore[attr-defined,method-assign]
        head = NS(b"root") + NS(b"ssh-connection")
        for n in range(self.server.attemptsBeforeDisconnect + 1):
            self.server.ssh_USERAUTH_REQUEST(head + NS(b"password") + b"\x00" + NS(b"guess%d" % n))
        self.assertEqual(disconnects, [(userauth.transport.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"too many bad auths")])
        [cut] = [e for e in events.at(LogLevel.info) if "failed logins" in e["log_format"]]
        self.assertEqual((cut["address"], cut["peer"], cut["count"]), ("192.0.2.7:40000", "192.0.2.7",
                                                                      self.server.attemptsBeforeDisconnect + 1))

    def test_knownKeyAsked(self) -> None:
        """A known key offered without a signature gets PK_OK (go on, sign)."""
        self.request(b"con1", self.ops1, signed=False)
        self.assertEqual([t for t, _ in self.transport.packets], [userauth.MSG_USERAUTH_PK_OK])

    def test_knownKeySigned(self) -> None:
        """A known key with a good signature logs in as its person, with the line named by the user name."""
        self.request(b"con1", self.ops1, signed=True)
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_SUCCESS, b"")])
        self.assertEqual(self.transport.avatar.login, Login("ops1", "con1", self.ops1.public().blob()))  # type: ignore[attr-defined]

    def test_unknownKeyRefusedAndLogged(self) -> None:
        """An unknown key is refused (asked or signed) and logged with its fingerprint and the address."""
        events = LogEvents(self)
        self.request(b"con1", self.stranger, signed=False)
        self.request(b"con1", self.stranger, signed=True)
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")] * 2)
        warnings = events.at(LogLevel.warn)
        self.assertEqual([(e["fingerprint"], e["address"], e["reason"], e["user"]) for e in warnings],
                         [(fingerprint(self.stranger), "192.0.2.7:40000", "not an authorized key", "con1")] * 2)

    def test_refusedUserNameCut(self) -> None:
        """A refused key's user name is logged cut to 64 printable characters, its length said (a 1 MiB name made a 1 MiB log line; then it was cut without a word)."""
        events = LogEvents(self)
        self.request(b"\x1b[2J\n\x00" + b"A" * 200000, self.stranger, signed=False)
        [event] = events.at(LogLevel.warn)
        self.assertEqual(event["user"], "?[2J??" + "A" * 58 + "... (200006 bytes)")
        # A name of 64 characters (in 256 bytes of UTF-8) is whole; one more is cut.
        for name, said in (("\u00e9" * 64, "\u00e9" * 64), ("\u00e9" * 65, "\u00e9" * 64 + "... (130 bytes)")):
            events.events.clear()
            self.request(name.encode(), self.stranger, signed=False)
            self.assertEqual([e["user"] for e in events.at(LogLevel.warn)], [said])

    def test_unreadableKeyRefused(self) -> None:
        """A request cut short, or a 100 kB algorithm name with no key, is refused with one short line: no traceback, no conch error."""
        events = LogEvents(self)
        head = NS(b"con1") + NS(b"ssh-connection") + NS(b"publickey")
        self.server.ssh_USERAUTH_REQUEST(head + b"\x01")
        self.server.ssh_USERAUTH_REQUEST(head + b"\x00" + NS(b"A" * 100000) + NS(b"junk"))
        self.server.ssh_USERAUTH_REQUEST(head + b"\x01" + NS(b"ssh-ed25519") + NS(self.ops1.public().blob()))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")] * 3)
        self.assertEqual([(e["fingerprint"], e["reason"]) for e in events.at(LogLevel.warn)],
                         [("(unreadable key)", "unreadable key or request")] * 3)
        self.assertEqual(events.at(LogLevel.error), [])

    def test_certificateRefusedSaid(self) -> None:
        """An OpenSSH certificate (OpenSSH offers one before its key; one with 256 principals is 29 KB) is refused saying so, not as an unreadable key; the key itself then logs in."""
        events = LogEvents(self)
        head = NS(b"con1") + NS(b"ssh-connection") + NS(b"publickey")
        self.server.ssh_USERAUTH_REQUEST(head + b"\x00" + NS(b"ssh-ed25519-cert-v01@openssh.com")
                                         + NS(NS(b"ssh-ed25519-cert-v01@openssh.com") + b"\0" * 29000))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, NS(b"publickey") + b"\x00")])
        self.assertEqual([(e["fingerprint"], e["reason"]) for e in events.at(LogLevel.warn)],
                         [("(an OpenSSH certificate, ssh-ed25519-cert-v01@openssh.com)",
                           "certificates are not taken: the key itself is")])
        self.transport.packets = []
        self.request(b"con1", self.ops1, signed=False)
        self.assertEqual([t for t, _ in self.transport.packets], [userauth.MSG_USERAUTH_PK_OK])

    def test_refusalsCannotFloodTheLog(self) -> None:
        """Unknown keys from one address: at most the log's per-peer burst of lines a minute (logflood), the rest counted."""
        from serialgw.logflood import peerLimiter

        events = LogEvents(self)
        self.transport.getPeer = lambda: IPv4Address("TCP", "192.0.2.99", 1)  # type: ignore[method-assign]
        for _ in range(peerLimiter.burst + 30):
            self.request(b"con1", self.stranger, signed=False)
        # (The refusals, and the cut after too many of them on this one connection.)
        self.assertEqual(len(events.at(LogLevel.warn) + events.at(LogLevel.info)), peerLimiter.burst)

    def test_refusalsLimitedPerAddressNotConnection(self) -> None:
        """Unknown keys from one address over many connections (each from its own port): at most the log's per-peer burst of lines for the address (the budget was a connection's: a scanner reconnecting had 20 lines each time)."""
        from serialgw.logflood import peerLimiter

        events = LogEvents(self)
        for port in range(peerLimiter.burst + 30):
            self.transport.getPeer = lambda port=port: IPv4Address("TCP", "192.0.2.98", 1000 + port)  # type: ignore[method-assign,misc]
            self.request(b"con1", self.stranger, signed=False)
        warnings = events.at(LogLevel.warn)
        self.assertEqual(len(warnings + events.at(LogLevel.info)), peerLimiter.burst)
        self.assertEqual((warnings[0]["address"], warnings[0]["peer"]), ("192.0.2.98:1000", "192.0.2.98"))

    def test_badSignature(self) -> None:
        """A known key with another key's signature is refused, and the connection with it, logged: a client signs with its own key, and each verification of a person's 16384-bit RSA key (public: anyone may have it) cost the gateway's thread 6.4 ms, up to 11 times a connection before conch cut it (70 ms: at the 20 new connections a second all addresses together may open, with no key of their own, more than the whole thread, estimated)."""
        events = LogEvents(self)
        disconnects: list[tuple[int, bytes]] = []
        self.transport.sendDisconnect = lambda reason, desc: disconnects.append((reason, desc))  # type: ignore[attr-defined,method-assign]
        verified = []
        real = keys.Key.verify

        def verify(key: keys.Key, signature: bytes, data: bytes) -> bool:
            verified.append(key)
            return bool(real(key, signature, data))

        self.patch(keys.Key, "verify", verify)
        blob = self.ops1.public().blob()
        head = NS(b"con1") + NS(b"ssh-connection") + NS(b"publickey")
        self.server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(b"ssh-ed25519") + NS(blob)
                                         + NS(self.stranger.sign(b"whatever")))
        self.assertEqual((self.transport.packets, disconnects, len(verified)),
                         ([], [(userauth.transport.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"bad signature")], 1))
        [said] = events.at(LogLevel.warn)
        self.assertEqual((said["fingerprint"], said["reason"]),
                         (fingerprint(self.ops1), "bad signature; disconnected: a client signs with its own key"))

    def test_sha1RsaSignatureRefused(self) -> None:
        """An RSA key logs in with rsa-sha2-256/512 signatures, not SHA-1 ssh-rsa (as OpenSSH), nor with a signature of another algorithm than the request names."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = keys.Key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        self.factory.setUsers((UserSpec("ops1", (publicLine(self.ops1),)), UserSpec("rsa1", (publicLine(key),))))
        blob = key.public().blob()
        head = NS(b"con1") + NS(b"ssh-connection") + NS(b"publickey")
        for asked, made in ((b"ssh-rsa", b"ssh-rsa"), (b"rsa-sha2-512", b"ssh-rsa"), (b"rsa-sha2-256", b"rsa-sha2-512"),
                            (b"rsa-sha2-256", b"rsa-sha2-256")):
            signed = NS(b"session") + bytes((userauth.MSG_USERAUTH_REQUEST,)) + head + b"\xff" + NS(asked) + NS(blob)
            self.server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(asked) + NS(blob)
                                             + NS(key.sign(signed, signatureType=made)))
        self.assertEqual([t for t, _ in self.transport.packets], [userauth.MSG_USERAUTH_FAILURE] * 3
                         + [userauth.MSG_USERAUTH_SUCCESS])

    def test_onlyTheConnectionServiceAfterLogin(self) -> None:
        """A login asking for another service than ssh-connection (ssh-userauth: log in again and again, each person kept for ever) disconnects; nobody is logged in."""
        blob = self.ops1.public().blob()
        head = NS(b"con1") + NS(b"ssh-userauth") + NS(b"publickey")
        signed = NS(b"session") + bytes((userauth.MSG_USERAUTH_REQUEST,)) + head + b"\xff" + NS(b"ssh-ed25519") + NS(blob)
        self.server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(b"ssh-ed25519") + NS(blob) + NS(self.ops1.sign(signed)))
        self.assertEqual([t for t, _ in self.transport.packets], [MSG_DISCONNECT])
        self.assertEqual(self.factory.gateway.people, set())

    def test_reloadedUsers(self) -> None:
        """setUsers (a reload): a removed key no longer logs in, an added one does."""
        self.factory.setUsers((UserSpec("ops2", (publicLine(self.stranger),)),))
        self.request(b"con1", self.ops1, signed=True)
        self.request(b"con1", self.stranger, signed=True)
        self.assertEqual([t for t, _ in self.transport.packets],
                         [userauth.MSG_USERAUTH_FAILURE, userauth.MSG_USERAUTH_SUCCESS])
        self.assertEqual(self.transport.avatar.login, Login("ops2", "con1", self.stranger.public().blob()))  # type: ignore[attr-defined]


class Tcp(StringTransport):
    """The TCP connection under the SSH transport."""

    bufferSize = 65536

    def __init__(self) -> None:
        StringTransport.__init__(self, peerAddress=IPv4Address("TCP", "192.0.2.7", 40000))
        self.aborted = False

    def abortConnection(self) -> None:
        self.aborted = True


class BufferedTcp(Tcp):
    """
    A TCP connection that pauses its streaming producer past bufferSize
    unsent, as Twisted's does, until drained: again at every write while
    full, as Twisted's C{_maybePauseProducer} does (22.10 and today's).
    """

    bufferSize = 2048
    full = False

    def write(self, data: bytes) -> None:
        Tcp.write(self, data)
        if self.producer is not None and len(self.value()) > self.bufferSize:
            self.full = True
            self.producer.pauseProducing()

    def drain(self) -> None:
        self.clear()
        if self.producer is not None and self.full:
            self.full = False
            self.producer.resumeProducing()


class SSHTransportStub:
    def __init__(self) -> None:
        self.transport = Tcp()

    def heldForChannel(self, channel: Any) -> int:
        """No key exchange under way: nothing held back."""
        return 0


class Harness:
    def __init__(self, listener: str = "tcp:0") -> None:
        self.clock = Clock()
        self.lines: dict[str, Line] = {}
        self.devices: dict[str, RecordingDevice] = {}
        self.gateway = SSHGateway(lambda: self.lines, parseSSHListener(listener), self.clock)
        self.addLine("con1")

    def addLine(self, name: str, rights: Rights = Rights()) -> Line:
        device = self.devices[name] = RecordingDevice(SerialSettings(115200))
        line = self.lines[name] = Line(name, device, clock=self.clock)
        line.rights = rights
        return line

    def channel(self, user: str = "ops1", lineName: str = "con1", window: int = 1 << 20) -> tuple[SSHClient, Any]:
        channel = SSHClient(self.gateway, Login(user, lineName), remoteWindow=window, remoteMaxPacket=32768)
        conn = StubConnection(SSHTransportStub())
        channel.conn = conn
        return channel, conn


def sent(conn: Any, channel: SSHClient) -> bytes:
    return b"".join(conn.data.get(channel, []))


class SessionTests(SynchronousTestCase):
    def test_shellAttachesAsWriter(self) -> None:
        """pty-req then shell: the user name's line, as writer; typed bytes reach the device, output the channel."""
        h = Harness()
        channel, conn = h.channel()
        self.assertTrue(channel.requestReceived(b"pty-req", NS(b"xterm") + struct.pack(">4L", 80, 24, 0, 0) + NS(b"")))
        self.assertTrue(channel.requestReceived(b"shell", b""))
        line = h.lines["con1"]
        self.assertEqual((line.clients, channel.role, channel.peer), ([channel], Role.WRITER, "ops1 (192.0.2.7:40000)"))
        channel.dataReceived(b"ls\r")
        self.assertEqual(h.devices["con1"].events, [("write", b"ls\r")])
        line.deviceDataReceived(b"output\r\n")
        self.assertEqual(sent(conn, channel), b"output\r\n")

    def test_statusNamesThePerson(self) -> None:
        """The status page lists an SSH session with its person: user, peer, protocol ssh, role."""
        from serialgw.app.status import lineStatus

        h = Harness()
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        verifyObject(IClient, channel)
        [entry] = lineStatus(h.lines["con1"])["clients"]
        self.assertEqual((entry["user"], entry["peer"], entry["protocol"], entry["role"]),
                         ("ops1", "ops1 (192.0.2.7:40000)", "ssh", "writer"))

    def test_personNamedEverywhere(self) -> None:
        """The banner, escape w, and the console log's events (attach, BREAK) name the person and the address."""
        h = Harness("banner,escape=^]+tcp:0")
        line = h.lines["con1"]
        events: list[str] = []

        class Log:
            peer = "console log"

            def event(self, text: str) -> None:
                events.append(text)

        line.logs.append(Log())  # type: ignore[arg-type]
        first, _ = h.channel()
        first.requestReceived(b"shell", b"")
        second, conn = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        self.assertIn(b"con1: 115200,8N1, you are writer; also here: ops1 (192.0.2.7:40000) (writer)",
                      sent(conn, second))
        second.dataReceived(b"\x1dw")
        self.assertIn(b"[serialgw: con1: ops1 (192.0.2.7:40000) (writer), ops2 (192.0.2.7:40000) (writer)]",
                      sent(conn, second))
        second.requestReceived(b"break", b"\x00\x00\x03\xe8")
        self.assertEqual(events, ["ops1 (192.0.2.7:40000) attached as writer", "ops2 (192.0.2.7:40000) attached as writer",
                                  "BREAK from ops2 (192.0.2.7:40000)"])

    def test_break(self) -> None:
        """RFC 4335 break (OpenSSH ~B): a serial break through the line, the asked length ignored; the next key after it."""
        h = Harness()
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        self.assertTrue(channel.requestReceived(b"break", struct.pack(">L", 1000)))
        channel.dataReceived(b"h")
        self.assertEqual(h.devices["con1"].events, [("break", None), ("write", b"h")])
        # One under way: refused (False answers want-reply with failure).
        self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 1000)))

    def test_breakBeforeShell(self) -> None:
        """A break before the session is attached does nothing and fails."""
        h = Harness()
        channel, conn = h.channel()
        self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 1000)))
        self.assertEqual(h.devices["con1"].events, [])

    def test_refusedRequests(self) -> None:
        """env, X11, agent forwarding, subsystems (sftp), signals: refused; each logged."""
        h = Harness()
        events = LogEvents(self)
        channel, conn = h.channel()
        for request, data in [(b"env", NS(b"LANG") + NS(b"C")), (b"x11-req", b"\x00" + NS(b"MIT") + NS(b"00") + b"\0\0\0\0"),
                              (b"auth-agent-req@openssh.com", b""), (b"subsystem", NS(b"sftp")),
                              (b"signal", NS(b"INT")), (b"\xff\xfe", b"")]:
            self.assertFalse(channel.requestReceived(request, data), request)
        self.assertEqual([e["request"] for e in events.at(LogLevel.info)],
                         ["x11-req", "auth-agent-req@openssh.com", "subsystem", "signal", "\\xff\\xfe"])
        # Readable: what was sent (U+FFFD said nothing of it).
        self.assertEqual(formatEvent(events.at(LogLevel.info)[-1]), "ssh: ?: '\\xff\\xfe' refused")
        self.assertEqual([e["request"] for e in events.at(LogLevel.debug) if "request" in e], ["env"])
        self.assertEqual(h.lines["con1"].clients, [])

    def test_execNamesTheLine(self) -> None:
        """exec with a line name attaches to that line; only one attach a session."""
        h = Harness()
        h.addLine("con2")
        channel, conn = h.channel(lineName="whatever")
        self.assertTrue(channel.requestReceived(b"exec", NS(b"con2")))
        self.assertEqual(h.lines["con2"].clients, [channel])
        self.assertFalse(channel.requestReceived(b"shell", b""))
        self.assertFalse(channel.requestReceived(b"exec", NS(b"con1")))
        self.assertEqual(h.lines["con1"].clients, [])

    def test_notALineListsLines(self) -> None:
        """A user name that is not a line the key may use: the lines it may use, one a line, and exit status 1."""
        h = Harness()
        h.addLine("con2", Rights(write=("ops2",)))
        h.addLine("con3", Rights(read=("*",)))
        channel, conn = h.channel(lineName="con2")
        channel.requestReceived(b"pty-req", NS(b"xterm") + struct.pack(">4L", 80, 24, 0, 0) + NS(b""))
        self.assertTrue(channel.requestReceived(b"shell", b""))
        # After the shell request's answer; asked again meanwhile: refused, no second message.
        self.assertEqual(conn.requests.get(channel), None)
        self.assertFalse(channel.requestReceived(b"exec", NS(b"con1")))
        h.clock.advance(0)
        self.assertEqual(conn.extData[channel], [(1, b"serialgw: 'con2' is not a line you may use; your lines:\r\ncon1\r\ncon3\r\n")])
        self.assertEqual(conn.requests[channel], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertTrue(conn.closes[channel])
        self.assertEqual(h.lines["con2"].clients, [])

    def test_noLinesSaidSo(self) -> None:
        """A person who may use no line is told so (it said 'your lines:' and nothing after); one who may use many sees LIST_MOST bytes of names and how many more (it was sent every name, 130 KB for 1000 lines)."""
        h = Harness()
        channel, conn = h.channel(user="ops9", lineName="con1")
        h.lines["con1"].applyRights(Rights(write=("ops1",)))
        self.assertTrue(channel.requestReceived(b"shell", b""))
        h.clock.advance(0)
        self.assertEqual(conn.extData[channel], [(1, b"serialgw: 'con1' is not a line you may use; you may use none\n")])
        for n in range(1000):
            h.addLine(f"rack{n:03}-" + "x" * 120, Rights(read=("*",)))
        channel, conn = h.channel(user="ops9", lineName="con1")
        self.assertTrue(channel.requestReceived(b"shell", b""))
        h.clock.advance(0)
        [(_, said)] = conn.extData[channel]
        head, *names, more, end = said.split(b"\n")
        shown = LIST_MOST // 129  # (128 bytes a name, and its newline)
        self.assertEqual((head, len(names), names[0], names[-1], more, end),
                         (b"serialgw: 'con1' is not a line you may use; your lines:", shown, b"rack000-" + b"x" * 120,
                          f"rack{shown - 1:03}-".encode() + b"x" * 120, f"and {1000 - shown} more".encode(), b""))

    def test_listsOfRefusalsBounded(self) -> None:
        """A person refused sessions in a loop has their lines listed for at most LIST_WORK lines looked at a LIST_WINDOW (then told, not listed, each logged within their budget): with 10000 lines a list cost 11 ms, each new connection; another person's lists are their own."""
        h = Harness()
        for n in range(999):
            h.addLine(f"rack{n:03}", Rights(read=("*",)))
        events = LogEvents(self)

        def refused(user: str) -> bytes:
            channel, conn = h.channel(user=user, lineName="nowhere")
            self.assertTrue(channel.requestReceived(b"shell", b""))
            h.clock.advance(0)
            [(_, said)] = conn.extData[channel]
            return said

        said = [refused("ops9") for _ in range(25)]
        listed = [s for s in said if b"your lines:" in s]
        self.assertEqual(len(listed), LIST_WORK // len(h.lines))
        self.assertEqual(said[len(listed):], [b"serialgw: 'nowhere' is not a line you may use; not listed: you asked for "
                                              b"lists too often (at most 20000 lines looked at in 10 s); ask again in a "
                                              b"few seconds\n"] * (25 - len(listed)))
        # Logged within their budget (20 lines a minute: the refusals themselves took it).
        self.assertEqual(len(events.at(LogLevel.info)), 20)
        # Another person is listed meanwhile; ops9 again once the window is over.
        self.assertIn(b"your lines:", refused("ops8"))
        h.clock.advance(LIST_WINDOW)
        self.assertIn(b"your lines:", refused("ops9"))

    def test_rightsReloaded(self) -> None:
        """New rights on a running line: a writer left only in read becomes read-only, one in neither list is disconnected."""
        h = Harness()
        line = h.lines["con1"]
        sessions = {}
        for user in ("ops1", "ops2", "ops3"):
            sessions[user] = h.channel(user=user)
            sessions[user][0].requestReceived(b"shell", b"")
        line.applyRights(Rights(write=("ops1",), read=("ops2",)))
        # ops3 is off the line at once (no more output while its channel closes).
        self.assertEqual([(c.user, c.role) for c in line.clients],
                         [("ops1", Role.WRITER), ("ops2", Role.READONLY)])
        ops3, conn3 = sessions["ops3"]
        self.assertIn(b"[serialgw: ops3 may no longer use con1]", sent(conn3, ops3))
        # Ended by the gateway: exit status 1, why on standard error (test_sshends).
        self.assertEqual(conn3.requests[ops3], [(b"exit-status", struct.pack(">L", 1), False)])
        ops2, conn2 = sessions["ops2"]
        ops2.dataReceived(b"x")
        self.assertEqual(h.devices["con1"].events, [])

    def test_removedKeyEndsSessions(self) -> None:
        """A reload that takes a person's key (or the person) away ends their session with a notice, or their connection; others stay."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        people = {name: newKey() for name in ("ops1", "ops2", "ops3")}
        sessions = {}
        realm = factory.portal.realm
        assert isinstance(realm, Realm)
        for name, key in people.items():
            _, person, logout = realm.requestAvatar(Login(name, "con1", key.public().blob()), None, IConchUser)
            assert isinstance(person, Person)
            person.conn = StubConnection(SSHTransportStub())
            if name != "ops3":
                channel = person._session(1 << 20, 32768, b"", person)
                channel.conn = person.conn
                channel.requestReceived(b"shell", b"")
            sessions[name] = (person, logout)
        factory.setUsers((UserSpec("ops2", (publicLine(people["ops2"]),)),))
        ops1, ops2, ops3 = (sessions[name][0] for name in ("ops1", "ops2", "ops3"))
        assert ops1.session is not None
        self.assertIn(b"[serialgw: ops1: your key was removed]", sent(ops1.conn, ops1.session))
        self.assertEqual(ops1.conn.requests[ops1.session], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertNotIn(ops2.session, ops2.conn.requests)
        self.assertEqual((ops2.conn.transport.transport.disconnecting, ops3.conn.transport.transport.disconnecting),
                         (False, True))
        for _, logout in sessions.values():
            logout()
        self.assertEqual(h.gateway.people, set())

    def test_removedKeyLeavesTheLineAtOnce(self) -> None:
        """A person whose key a reload took away is off the line at once, though their client never answers the channel's close: no typing, no break, no output; cut after CLOSE_GRACE s."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        realm = factory.portal.realm
        assert isinstance(realm, Realm)
        _, person, _ = realm.requestAvatar(Login("ops1", "con1", newKey().public().blob()), None, IConchUser)
        assert isinstance(person, Person)
        stub = SSHTransportStub()
        person.conn = conn = StubConnection(stub)
        channel = person._session(1 << 20, 32768, b"", person)
        channel.conn = conn
        channel.requestReceived(b"shell", b"")
        factory.setUsers(())
        line = h.lines["con1"]
        self.assertEqual(line.clients, [])
        # The client goes on as if it had not heard (no CHANNEL_CLOSE back).
        channel.dataReceived(b"rm -rf /\r")
        self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 0)))
        line.deviceDataReceived(b"secret")
        self.assertEqual((h.devices["con1"].events, sent(conn, channel)),
                         ([], b"\r\n[serialgw: ops1: your key was removed]\r\n"))
        self.assertFalse(stub.transport.aborted)
        h.clock.advance(CLOSE_GRACE)
        self.assertTrue(stub.transport.aborted)

    def test_disconnectedSessionSendsNoBreak(self) -> None:
        """A session told to go (rights taken by a reload, idle, escape d) has its break requests refused while its channel closes."""
        h = Harness()
        channel, conn = h.channel(user="ops3")
        channel.requestReceived(b"shell", b"")
        h.lines["con1"].applyRights(Rights(write=("ops1",)))
        self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 0)))
        self.assertEqual(h.devices["con1"].events, [])

    def test_readOnlyKey(self) -> None:
        """A watcher (read = [...]) sees output; its bytes and breaks never reach the device; it cannot take write."""
        h = Harness()
        line = h.addLine("con2", Rights(write=("ops1",), read=("watcher1",)))
        channel, conn = h.channel(user="watcher1", lineName="con2")
        channel.requestReceived(b"shell", b"")
        self.assertEqual(channel.role, Role.READONLY)
        channel.dataReceived(b"rm -rf /\r")
        self.assertFalse(channel.requestReceived(b"break", struct.pack(">L", 0)))
        self.assertFalse(line.takeWrite(channel))
        line.deviceDataReceived(b"seen")
        self.assertEqual((h.devices["con2"].events, sent(conn, channel)),
                         ([], b"\r\n[serialgw: read-only: what you type is not sent to con2]\r\n"
                              b"\r\n[serialgw: no break: read-only]\r\nseen"))

    def test_roListener(self) -> None:
        """An ro SSH listener makes every session read-only, writers' keys included."""
        h = Harness("ro+tcp:0")
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        self.assertEqual(channel.role, Role.READONLY)

    def test_exclusiveAndNotices(self) -> None:
        """Exclusive mode: a second writer's key watches; notices name the person; t takes write."""
        h = Harness("escape=^]+tcp:0")
        h.lines["con1"].mode = "exclusive"
        first, firstConn = h.channel()
        first.requestReceived(b"shell", b"")
        second, secondConn = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        self.assertEqual((first.role, second.role), (Role.WRITER, Role.WATCHER))
        self.assertEqual(sent(firstConn, first), b"\r\n[serialgw: ops2 (192.0.2.7:40000) attached as watcher]\r\n")
        second.dataReceived(b"\x1dt")
        self.assertEqual((first.role, second.role), (Role.WATCHER, Role.WRITER))
        self.assertIn(b"[serialgw: ops2 (192.0.2.7:40000) took write]", sent(firstConn, first))

    def test_maxClients(self) -> None:
        """max-clients counts SSH sessions; one too many is told so and exits 1 ('1 client' at max-clients 1: it said '1 clients')."""
        h = Harness()
        h.lines["con1"].maxClients = 1
        first, _ = h.channel()
        first.requestReceived(b"shell", b"")
        second, conn = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(conn.extData[second], [(1, b"serialgw: con1 is full (1 client)\n")])
        self.assertEqual(conn.requests[second], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertEqual(h.lines["con1"].clients, [first])

    def test_kickOldUser(self) -> None:
        """kick-old-user: a second session takes the first one's place; the first is told why on its standard error and exits 1."""
        h = Harness()
        h.lines["con1"].maxClients = 1
        h.lines["con1"].kickOld = True
        first, firstConn = h.channel()
        first.requestReceived(b"shell", b"")
        second, _ = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(h.lines["con1"].clients, [second])
        self.assertIn((1, b"serialgw: ops2 (192.0.2.7:40000) took your place on con1 (max-clients 1, kick-old-user)\n"),
                      firstConn.extData[first])
        self.assertEqual(firstConn.requests[first][-1], (b"exit-status", struct.pack(">L", 1), False))

    def test_kickOldUserReadOnlyTakesNoWritersPlace(self) -> None:
        """kick-old-user: a read-only person's session (read = [...]) takes no writer's place: refused as on a full line and exits 1, the writer kept; it takes a read-only one's."""
        h = Harness()
        line = h.lines["con1"]
        line.maxClients, line.kickOld, line.rights = 1, True, Rights(write=("ops1",), read=("ops2", "ops3"))
        first, firstConn = h.channel()
        first.requestReceived(b"shell", b"")
        second, conn = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(line.clients, [first])
        self.assertEqual(conn.extData[second], [(1, b"serialgw: con1 is full (1 client)\n")])
        self.assertEqual(conn.requests[second], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertNotIn(first, firstConn.extData)
        first.closed()
        second, _ = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        third, _ = h.channel(user="ops3")
        third.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(line.clients, [third])

    def test_eofAndClose(self) -> None:
        """EOF from the client (ssh -n) leaves the session on its line, its output going on (shared mode: its role kept, unsaid); once closed, the client is detached and TCP closed."""
        h = Harness()
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        channel.eofReceived()
        h.lines["con1"].deviceDataReceived(b"still here")
        self.assertEqual((sent(conn, channel), conn.requests.get(channel), conn.closes.get(channel), channel.role),
                         (b"still here", None, None, Role.WRITER))
        channel.closeReceived()
        self.assertTrue(conn.closes[channel])
        channel.closed()
        self.assertEqual(h.lines["con1"].clients, [])
        self.assertTrue(conn.transport.transport.disconnecting)

    def test_endOfInputOnlyWatches(self) -> None:
        """
        Exclusive mode: the writer's input ends (ssh -T gw < file): what it
        sent reached the device, and it only watches from now on,
        announced, its output going on; a person coming after it writes.
        Before, it held the line's write for good, typing nothing.
        """
        h = Harness("escape=^]+tcp:0")
        line = h.lines["con1"]
        line.mode = "exclusive"
        first, conn = h.channel()
        first.requestReceived(b"shell", b"")
        first.dataReceived(b"reboot\r")
        first.eofReceived()
        self.assertEqual((h.devices["con1"].events, first.role), ([("write", b"reboot\r")], Role.WATCHER))
        self.assertIn(b"[serialgw: ops1 (192.0.2.7:40000) now only watches]", sent(conn, first))
        second, _ = h.channel(user="ops2")
        second.requestReceived(b"shell", b"")
        line.deviceDataReceived(b"login:")
        self.assertEqual((second.role, sent(conn, first).endswith(b"login:")), (Role.WRITER, True))

    def test_endOfInputWhileWatchingIsNotHandedWrite(self) -> None:
        """
        Exclusive mode: a session watching when its input ends (a quiet
        connection, a health check, held the write) is passed over when
        that one goes: it will type nothing, so the write is not handed to
        it for good, as one who chose to watch is passed over.
        """
        h = Harness("escape=^]+tcp:0")
        line = h.lines["con1"]
        line.mode = "exclusive"
        check = RecordingClient("192.0.2.9:1")
        check.person = True  # type: ignore[attr-defined]
        line.attach(check, quiet=True)
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        channel.eofReceived()
        line.detach(check)
        self.assertEqual(channel.role, Role.WATCHER)

    def test_endOfInputAfterItsTypingWent(self) -> None:
        """
        Exclusive mode: the writer's input ends while what it typed waits
        (the device takes none): it stays the writer until that typing has
        gone to the device, then only watches; nothing it sent is lost.
        """
        h = Harness("escape=^]+tcp:0")
        line = h.lines["con1"]
        line.mode = "exclusive"
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        line.deviceWritable(False)
        channel.dataReceived(b"abc")
        channel.eofReceived()
        self.assertEqual((h.devices["con1"].events, channel.role, channel.typedWaiting), ([], Role.WRITER, 3))
        line.deviceWritable(True)
        self.assertEqual((h.devices["con1"].events, channel.role), ([("write", b"abc")], Role.WATCHER))

    def test_escapeDisconnect(self) -> None:
        """The escape menu's d ends the session with exit status 0."""
        h = Harness("escape=^]+tcp:0")
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        channel.dataReceived(b"\x1dd")
        self.assertEqual(conn.requests[channel], [(b"exit-status", struct.pack(">L", 0), False)])

    def test_windowIsBackPressure(self) -> None:
        """Output past the peer's window waits; further output is held (drop policy) and sent when the window opens."""
        h = Harness("outbuf=1024+tcp:0")
        channel, conn = h.channel(window=10)
        channel.requestReceived(b"shell", b"")
        line = h.lines["con1"]
        line.deviceDataReceived(b"0123456789ABCDEF")
        self.assertEqual((sent(conn, channel), channel.buf), (b"0123456789", b"ABCDEF"))
        self.assertTrue(channel.guard is not None and channel.guard.full)
        line.deviceDataReceived(b"held")
        self.assertEqual(channel.buf, b"ABCDEF")
        channel.addWindowBytes(100)
        self.assertEqual(sent(conn, channel), b"0123456789ABCDEFheld")
        assert channel.guard is not None
        self.assertFalse(channel.guard.full)

    def test_stuckClientStillCloses(self) -> None:
        """A client whose window is used up: its close, or the session's end, closes the channel at once (nothing waits for it)."""
        for how in ("client closes", "session ends"):
            h = Harness("escape=^]+tcp:0")
            channel, conn = h.channel(window=4)
            channel.requestReceived(b"shell", b"")
            h.lines["con1"].deviceDataReceived(b"more than four")
            self.assertEqual(channel.buf, b" than four")
            if how == "client closes":
                channel.closeReceived()
            else:
                # As an idle timeout or a line removed from the configuration does.
                channel.transport.loseConnection()
            self.assertEqual((channel.buf, conn.closes.get(channel)), (b"", True), how)

    def test_deviceNoticesThroughTheGuard(self) -> None:
        """Device down/up notices to a client that does not read wait with its held output, bounded by outbuf, not in the channel."""
        from twisted.python.failure import Failure

        h = Harness("outbuf=1024+tcp:0")
        channel, conn = h.channel(window=4)
        channel.requestReceived(b"shell", b"")
        line = h.lines["con1"]
        line.deviceDataReceived(b"12345")
        for _ in range(100):
            line.deviceLost(Failure(OSError("gone")))
            line.deviceUp()
        self.assertEqual(channel.buf, b"5")
        channel.addWindowBytes(1 << 20)
        data = sent(conn, channel)
        self.assertTrue(data.startswith(b"12345"), data[:20])
        self.assertLess(len(data), 5 + 1024 + 4096)
        self.assertTrue(data.endswith(b"\r\n[serialgw: con1 is back]\r\n"), data[-60:])

    def test_tcpBufferIsBackPressure(self) -> None:
        """The TCP connection's buffer bound is the listener's outbuf; past it, the disconnect policy cuts the connection."""
        h = Harness("policy=disconnect,outbuf=2048+tcp:0")
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        tcp = conn.transport.transport
        self.assertEqual((tcp.bufferSize, tcp.producer), (2048, channel.transport.flow))
        tcp.producer.pauseProducing()
        self.assertTrue(tcp.aborted)

    def test_blockPolicyPausesDevice(self) -> None:
        """policy=block: a full window stops the device being read until the window opens."""
        h = Harness("policy=block+tcp:0")
        channel, conn = h.channel(window=4)
        channel.requestReceived(b"shell", b"")
        h.lines["con1"].deviceDataReceived(b"12345")
        channel.addWindowBytes(10)
        self.assertEqual(h.devices["con1"].events, [("pause", None), ("resume", None)])

    def test_inputPause(self) -> None:
        """A device that cannot take more stops taking the client's input, but its TCP connection is still read (window adjusts)."""
        h = Harness()
        channel, conn = h.channel()
        channel.requestReceived(b"shell", b"")
        tcp = conn.transport.transport
        h.lines["con1"].deviceWritable(False)
        self.assertEqual((channel.readingPaused, tcp.producerState), (True, "producing"))
        h.lines["con1"].deviceWritable(True)
        self.assertEqual((channel.readingPaused, tcp.producerState), (False, "producing"))

    def test_fullOutputReadOnAnswered(self) -> None:
        """A client past its output bound (window used up) is read on: its typing reaches the device at once, ^] w is answered (out of its answer budget) once the window opens, ahead of the output held."""
        h = Harness("escape=^]+tcp:0")
        channel, conn = h.channel(window=4)
        channel.requestReceived(b"shell", b"")
        h.lines["con1"].deviceDataReceived(b"12345")
        h.lines["con1"].deviceDataReceived(b"678")
        self.assertFalse(channel.readingPaused)
        channel.dataReceived(b"ls\x1dw")
        self.assertEqual(h.devices["con1"].events, [("write", b"ls")])
        channel.addWindowBytes(1000)
        self.assertFalse(channel.readingPaused)
        self.assertEqual(sent(conn, channel)[-56:], b"\r\n[serialgw: con1: ops1 (192.0.2.7:40000) (writer)]\r\n678")


class ConnectionTests(SynchronousTestCase):
    def test_malformedOpen(self) -> None:
        """A channel open cut short closes that connection (no traceback), whatever it names."""
        conn = Connection()
        closed: list[bool] = []

        class Transport:
            transport = Tcp()

            def sendPacket(self, kind: int, payload: bytes) -> None:
                raise AssertionError("nothing is sent")

            def loseConnection(self) -> None:
                closed.append(True)

        conn.transport = Transport()  # type: ignore[assignment]
        conn.serviceStarted()
        conn.ssh_CHANNEL_OPEN(NS(b"session") + b"\x00\x01")
        conn.ssh_CHANNEL_OPEN(b"\x00\x00\x01")
        self.assertEqual(closed, [True, True])

    def test_noWindowWhilePaused(self) -> None:
        """While a session takes no input, its window is not opened again: the client may send at most the window's rest."""
        conn = Connection()
        packets: list[tuple[int, bytes]] = []

        class Transport:
            transport = Tcp()

            def sendPacket(self, kind: int, payload: bytes) -> None:
                packets.append((kind, payload))

        conn.transport = Transport()  # type: ignore[assignment]
        conn.serviceStarted()
        h = Harness()
        channel = h.channel()[0]
        channel.conn = conn
        conn.getChannel = lambda *a: channel  # type: ignore[method-assign]
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, 32768))
        channel.requestReceived(b"shell", b"")
        channel.pauseReading()
        size = channel.localWindowSize
        for _ in range(3):
            conn.ssh_CHANNEL_DATA(struct.pack(">L", channel.id) + NS(b"x" * (size // 4)))
        self.assertEqual([k for k, _ in packets], [connection.MSG_CHANNEL_OPEN_CONFIRMATION])
        self.assertEqual(channel.localWindowLeft, size - 3 * (size // 4))
        channel.resumeReading()
        self.assertEqual(packets[-1], (connection.MSG_CHANNEL_WINDOW_ADJUST, struct.pack(">2L", 6, 3 * (size // 4))))
        self.assertEqual(channel.localWindowLeft, size)

    def test_pastTheWindowDisconnects(self) -> None:
        """Data past the window (or the packet size) disconnects with one line; what follows is not looked at (conch logged an error a packet)."""
        events = LogEvents(self)
        factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        conn = Connection()
        transport.setService(conn)
        channel = Harness().channel()[0]
        conn.getChannel = lambda *a: channel  # type: ignore[method-assign]
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, 32768))
        transport.dispatchMessage(connection.MSG_CHANNEL_DATA, struct.pack(">L", channel.id) + NS(b"x" * 100))
        for _ in range(50):
            transport.dispatchMessage(connection.MSG_CHANNEL_DATA,
                                      struct.pack(">L", channel.id) + NS(b"x" * (channel.localMaxPacket + 1)))
            transport.dispatchMessage(connection.MSG_CHANNEL_DATA, struct.pack(">L", 99) + NS(b"y"))
        self.assertTrue(tcp.disconnecting)
        self.assertEqual([(e["log_level"], e["log_format"]) for e in events.events
                          if e["log_level"] >= LogLevel.info and e.get("log_namespace", "").startswith("serialgw")],
                         [(LogLevel.info, "ssh: {address}: {size} bytes past the channel's window: disconnected")])
        self.assertEqual(channel.localWindowLeft, channel.localWindowSize - 100)
        transport.connectionLost(None)

    def test_oneSessionOnly(self) -> None:
        """One session channel a connection; port forwarding channels refused; neither logs a traceback."""
        conn = Connection()
        sent: list[tuple[int, bytes]] = []

        class Transport:
            transport = Tcp()
            avatar: object  # set below, after serviceStarted (which would use it)

            def sendPacket(self, kind: int, payload: bytes) -> None:
                sent.append((kind, payload))

        transport = Transport()
        conn.transport = transport  # type: ignore[assignment]
        conn.serviceStarted()
        h = Harness()
        transport.avatar = type("A", (), {})()
        opened: list[Any] = []

        def getChannel(*a: Any) -> SSHClient:
            opened.append(a)
            return h.channel()[0]

        conn.getChannel = getChannel  # type: ignore[method-assign]
        conn.ssh_CHANNEL_OPEN(NS(b"direct-tcpip") + struct.pack(">3L", 5, 65536, 32768) + NS(b"127.0.0.1") + b"\0\0\0\x16")
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, 32768))
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 7, 65536, 32768))
        self.assertEqual([kind for kind, _ in sent], [connection.MSG_CHANNEL_OPEN_FAILURE,
                                                       connection.MSG_CHANNEL_OPEN_CONFIRMATION,
                                                       connection.MSG_CHANNEL_OPEN_FAILURE])
        self.assertEqual(sent[0][1], struct.pack(">2L", 5, connection.OPEN_ADMINISTRATIVELY_PROHIBITED)
                         + NS(b"only sessions") + NS(b""))
        self.assertEqual(sent[2][1][:8], struct.pack(">2L", 7, connection.OPEN_ADMINISTRATIVELY_PROHIBITED))
        self.assertEqual(len(opened), 1)
        self.assertEqual(self.flushLoggedErrors(), [])


    def test_tinyMaximumPacketRefused(self) -> None:
        """A session whose client takes packets of less than MIN_MAX_PACKET bytes is refused (at 1 byte a packet, a read-only person's session cost the reactor 14 us a byte of the line's output: a busy line took the whole core)."""
        from serialgw.clients.ssh import MIN_MAX_PACKET

        conn = Connection()
        sent: list[tuple[int, bytes]] = []

        class Transport:
            transport = Tcp()

            def sendPacket(self, kind: int, payload: bytes) -> None:
                sent.append((kind, payload))

        conn.transport = Transport()  # type: ignore[assignment]
        opened: list[Any] = []

        def getChannel(*a: Any) -> SSHClient:
            opened.append(a)
            return Harness().channel()[0]

        conn.getChannel = getChannel  # type: ignore[method-assign]
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 5, 65536, 1))
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, MIN_MAX_PACKET - 1))
        self.assertEqual(sent, [(connection.MSG_CHANNEL_OPEN_FAILURE, struct.pack(">2L", number, connection.OPEN_ADMINISTRATIVELY_PROHIBITED)
                                 + NS(f"maximum packet under {MIN_MAX_PACKET} bytes".encode()) + NS(b"")) for number in (5, 6)])
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 7, 65536, MIN_MAX_PACKET))
        self.assertEqual((len(opened), sent[-1][0]), (1, connection.MSG_CHANNEL_OPEN_CONFIRMATION))


class FactoryTests(SynchronousTestCase):
    def factory(self, listener: str = "tcp:0") -> GatewaySSHFactory:
        gateway = SSHGateway(dict, parseSSHListener(listener), Clock())
        return GatewaySSHFactory(newKey(), KeyRing(()), gateway)

    def test_allow(self) -> None:
        """allow= on the SSH listener refuses other addresses before any SSH is spoken."""
        factory = self.factory("allow=10.0.0.0/8+tcp:0")
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1)))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 1)))

    def test_noGroupExchange(self) -> None:
        """With no moduli file, the key exchanges offered are conch's less exactly the two RFC 4419 group exchanges."""
        offered = self.factory().buildProtocol(IPv4Address("TCP", "192.0.2.7", 1)).supportedKeyExchanges
        self.assertEqual([k for k in SSHServerTransport.supportedKeyExchanges if k not in offered],
                         [b"diffie-hellman-group-exchange-sha256", b"diffie-hellman-group-exchange-sha1"])
        self.assertIn(b"curve25519-sha256", offered)

    def test_loginGraceAndStartups(self) -> None:
        """Connections logging in are bounded (maxStartups: past it the oldest is cut, test_sshstartups) and each has loginGrace seconds, key exchange included."""
        factory = self.factory()
        factory.maxStartups = 2
        transports = []
        for port in (1, 2):
            transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", port))
            tcp = Tcp()
            transport.makeConnection(tcp)
            transports.append((transport, tcp))
        factory.clock.advance(factory.loginGrace)
        self.assertEqual([tcp.aborted for _, tcp in transports], [True, True])
        for transport, _ in transports:
            transport.connectionLost(None)
        self.assertEqual(factory.startups.total, 0)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 4)))

    def test_packetsCannotFloodTheLog(self) -> None:
        """Before logging in: unknown messages (100 kB each) and "unimplemented" replies log nothing; a packet cut short disconnects with one line."""
        events = LogEvents(self)
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        service = UserAuth()
        service.clock = factory.clock
        transport.setService(service)
        for seqnum in range(50):
            transport.dispatchMessage(99, b"\x00" * 100000)
            transport.dispatchMessage(3, struct.pack(">L", seqnum))
        self.assertEqual([e for e in events.events if e["log_level"] >= LogLevel.info
                          and e.get("log_namespace", "").startswith("serialgw")], [])
        self.assertFalse(tcp.disconnecting)
        transport.dispatchMessage(userauth.MSG_USERAUTH_REQUEST, b"\x00\x00")
        self.assertTrue(tcp.disconnecting)
        [event] = events.at(LogLevel.info)
        # (A login request is read by UserAuth, which says what was cut short.)
        self.assertEqual((event["address"], event["error"]), (describeAddress(tcp.getPeer()),
                                                              "cut short before its user name"))
        self.assertEqual(self.flushLoggedErrors(), [])
        transport.connectionLost(None)

    def test_refusalsLoggedPerAddress(self) -> None:
        """Connections refused (too many logging in, not allowed) from one address: at most the log's per-peer burst of lines."""
        from serialgw.logflood import peerLimiter

        events = LogEvents(self)
        factory = self.factory("allow=10.0.0.0/8+tcp:0")
        factory.maxStartups = 0
        for port in range(1, 101):
            self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "198.51.100.9", port)))
            self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "10.9.9.9", port)))
        self.assertEqual(sorted({e["peer"] for e in events.at(LogLevel.warn)}), ["10.9.9.9", "198.51.100.9"])
        self.assertEqual(len(events.at(LogLevel.warn)), 2 * peerLimiter.burst)

    def test_startupsPerSource(self) -> None:
        """One address may hold maxStartupsPerSource of the places for connections logging in, not all: others still get in."""
        factory = self.factory()
        factory.maxStartups, factory.maxStartupsPerSource = 4, 2
        mine = [factory.buildProtocol(IPv4Address("TCP", "192.0.2.66", port)) for port in (1, 2)]
        for transport in mine:
            transport.makeConnection(Tcp())
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.66", 3)))
        other = factory.buildProtocol(IPv4Address("TCP", "192.0.2.77", 1))
        self.assertIsNotNone(other)
        other.makeConnection(Tcp())
        mine[0].connectionLost(None)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "192.0.2.66", 4)))
        self.assertEqual((factory.startups.total, factory.startups.bySource), (3, {"192.0.2.66": 2, "192.0.2.77": 1}))
        mine[1].setService(Connection())
        for transport in (mine[1], other):
            transport.connectionLost(None)
        self.assertEqual(factory.startups.bySource, {"192.0.2.66": 1})

    def test_startupsPerSourceIPv6(self) -> None:
        """An IPv6 host has a whole /64: its addresses are one source for the places of those logging in (each address one more source let one host take them all); another /64 is another source."""
        factory = self.factory()
        factory.maxStartups, factory.maxStartupsPerSource = 4, 2
        for host in ("2001:db8:0:1::a", "2001:db8:0:1::b"):
            factory.buildProtocol(IPv6Address("TCP", host, 1)).makeConnection(Tcp())
        self.assertIsNone(factory.buildProtocol(IPv6Address("TCP", "2001:db8:0:1::c", 1)))
        self.assertIsNotNone(factory.buildProtocol(IPv6Address("TCP", "2001:db8:0:2::a", 1)))
        self.assertEqual(factory.startups.bySource, {"2001:db8:0:1::/64": 2, "2001:db8:0:2::/64": 1})

    def test_loggedInWithoutSession(self) -> None:
        """Logged in, the connection still counts among the startups (a person with a key opened any number of connections) until it starts a session, which it must within loginGrace too, or it is cut."""
        factory = self.factory()
        factory.maxStartupsPerSource = 1
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        factory.clock.advance(factory.loginGrace - 1)
        transport.setService(Connection())
        self.assertEqual((factory.startups.total, factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 2))), (1, None))
        factory.clock.advance(factory.loginGrace - 1)
        self.assertFalse(tcp.aborted)
        factory.clock.advance(1)
        self.assertTrue(tcp.aborted)
        transport.connectionLost(None)
        self.assertEqual((factory.startups.total, factory.clock.getDelayedCalls()), (0, []))

    def test_sessionStopsTheClock(self) -> None:
        """A session asking for its line ends the wait: no timer is left."""
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        transport.makeConnection(Tcp())
        transport.setService(Connection())
        channel = SSHClient(factory.gateway, Login("ops1", "nosuch"), remoteWindow=1 << 20, remoteMaxPacket=32768)
        channel.conn = transport.service
        channel.requestReceived(b"shell", b"")
        self.assertEqual([c.func.__name__ for c in factory.clock.getDelayedCalls()], ["_refuse"])
        self.assertEqual((factory.startups.total, factory.startups.bySource), (0, {}))

    def test_closedSessionCut(self) -> None:
        """Once its session channel has closed, a connection whose client does not read its last output is cut after CLOSE_GRACE s (each such one held a descriptor for ever)."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        transport.setService(Connection())
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768)
        channel.conn = transport.service
        channel.requestReceived(b"shell", b"")
        channel.closed()
        self.assertEqual((h.lines["con1"].clients, tcp.disconnecting, tcp.aborted), ([], True, False))
        h.clock.advance(CLOSE_GRACE)
        self.assertTrue(tcp.aborted)
        transport.connectionLost(None)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_refusedSessionCut(self) -> None:
        """A session refused (not a line the person may use, or the line full) whose client never answers the channel's close: the connection is cut after CLOSE_GRACE s, not kept for ever."""
        h = Harness()
        h.lines["con1"].maxClients = 1
        h.lines["con1"].attach(h.channel()[0])
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        for name in ("nosuch", "con1"):
            transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
            tcp = Tcp()
            transport.makeConnection(tcp)
            conn = Connection()
            transport.setService(conn)
            channel = SSHClient(h.gateway, Login("ops1", name), remoteWindow=1 << 20, remoteMaxPacket=32768, conn=conn)
            conn.getChannel = lambda *a, channel=channel: channel  # type: ignore[method-assign,misc]
            conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, 32768))
            channel.requestReceived(b"shell", b"")
            h.clock.advance(0)
            self.assertTrue(channel.closing, name)
            h.clock.advance(CLOSE_GRACE - 1)
            self.assertFalse(tcp.aborted, name)
            h.clock.advance(1)
            self.assertTrue(tcp.aborted, name)
            transport.connectionLost(None)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_oneServiceRequest(self) -> None:
        """The client asks for a service once (ssh-userauth); another request (ssh-userauth again after logging in: a second login, the first person never logged out) disconnects, the service stays."""
        factory = self.factory()
        server = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        server.makeConnection(tcp)
        server.dispatchMessage(MSG_SERVICE_REQUEST, NS(b"ssh-userauth"))
        self.assertIsInstance(server.service, UserAuth)
        conn = Connection()
        server.setService(conn)
        self.assertFalse(tcp.disconnecting)
        server.dispatchMessage(MSG_SERVICE_REQUEST, NS(b"ssh-userauth"))
        self.assertEqual((server.service, tcp.disconnecting), (conn, True))
        server.connectionLost(None)

    def test_lostWithSessionLeavesNoTimer(self) -> None:
        """A connection lost with its session open (the client's disconnect): the session ends and no cut is left pending (it fired 10 s later, logging a cut of a connection long gone)."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        transport.makeConnection(Tcp())
        conn = Connection()
        transport.setService(conn)
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768, conn=conn)
        conn.getChannel = lambda *a: channel  # type: ignore[method-assign]
        conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 65536, 32768))
        channel.requestReceived(b"shell", b"")
        transport.connectionLost(None)
        self.assertEqual((h.lines["con1"].clients, h.clock.getDelayedCalls()), ([], []))

    def unknownMessages(self, count: int) -> bytes:
        """C{count} packets of message 99 (nobody's), unencrypted as before a key exchange: conch answers each."""
        return (struct.pack(">LB", 12, 10) + b"\x63" + b"\0" * 10) * count

    def test_unreadAnswersStopTheReading(self) -> None:
        """A client that sends what conch answers (unknown messages, before logging in) and never reads: past bufferSize unsent it is read on until what it was sent since spends the answer budget (at most the bound, here 2048: 100 bytes and the message's a message), then no longer read, until it reads."""
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-attack\r\n")
        transport.dataReceived(self.unknownMessages(50))
        self.assertEqual((tcp.full, tcp.producerState), (False, "producing"))
        transport.dataReceived(self.unknownMessages(50))
        self.assertEqual((tcp.full, tcp.producerState), (True, "producing"))
        full = len(tcp.value())
        answered = 0
        while tcp.producerState == "producing":
            transport.dataReceived(self.unknownMessages(1))
            answered += 1
            self.assertLess(answered, 1000)
        # (Those of the read that passed the bound count too.)
        self.assertLessEqual(answered, -(-2048 // (4 + 100)))
        self.assertLessEqual(len(tcp.value()), full + 2048)
        transport.dataReceived(self.unknownMessages(1))
        tcp.drain()
        self.assertEqual(tcp.producerState, "producing")
        transport.connectionLost(None)

    def test_oneReadPastTheBudgetWaits(self) -> None:
        """The packets of one read that come after the answer budget is spent are not handled (conch handled them all: one 64 KiB read of small requests, thousands of answers past the bound) until the client has taken its output; then they are, in order, within the budget again, and every one is in the end."""
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-attack\r\n")
        tcp.write(b"x" * (tcp.bufferSize + 1))
        before, full = transport._messages, len(tcp.value())
        transport.dataReceived(self.unknownMessages(250))
        # 104 bytes an answer counted (100 and its 4): the 20th spends 2048.
        self.assertEqual((transport._messages - before, tcp.producerState), (20, "paused"))
        self.assertEqual(len(tcp.value()) - full, 20 * 16)  # MSG_UNIMPLEMENTED, in a packet of 16 bytes, one an answer
        handled = [20]
        while tcp.producerState == "paused":
            tcp.drain()
            handled.append(transport._messages - before)
            self.assertLess(len(handled), 50)
        self.assertEqual(handled[-1], 250)
        # Each drain handled more, none past the bound and the budget again.
        self.assertEqual(sorted(handled), handled)
        self.assertLessEqual(max(handled[i + 1] - handled[i] for i in range(len(handled) - 1)), 2048 // 16 + 21)
        transport.connectionLost(None)

    def test_outputSpendsNoAnswerBudget(self) -> None:
        """The session's output conch sends while the TCP buffer is full (CHANNEL_DATA, as a slow reader's window adjusts let it go; the flow bounds it) is not an answer: it spends no answer budget and the client is read on (a live ssh client's ^C behind a flood waited for ever); answers still spend it."""
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-reader\r\n")
        transport._keyExchangeState = transport._KEY_EXCHANGE_NONE  # (as once its key exchange is done)
        tcp.write(b"x" * (tcp.bufferSize + 1))
        self.assertEqual((tcp.full, tcp.producerState), (True, "producing"))
        for kind in (connection.MSG_CHANNEL_DATA, connection.MSG_CHANNEL_EXTENDED_DATA) * 8:
            transport.sendPacket(kind, b"\0\0\0\0" + NS(b"y" * 4096))
        self.assertEqual(tcp.producerState, "producing")
        transport.sendPacket(connection.MSG_CHANNEL_SUCCESS, b"\0" * 2048)
        self.assertEqual(tcp.producerState, "paused")
        transport.connectionLost(None)

    def test_messagesBeforeSessionBounded(self) -> None:
        """Before its session starts a connection may send MESSAGES_BEFORE_SESSION messages, then it is cut with one line (a client that read the answers kept the reactor busy, 20 us a message, 250000 in 5 s, with no key and no key exchange)."""
        from serialgw.clients.sshlimits import MESSAGES_BEFORE_SESSION

        events = LogEvents(self)
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-attack\r\n")
        transport.dataReceived(self.unknownMessages(MESSAGES_BEFORE_SESSION))
        self.assertFalse(tcp.disconnecting)
        tcp.clear()
        transport.dataReceived(self.unknownMessages(1000))
        self.assertTrue(tcp.disconnecting)
        # The disconnect, and no answer to what came after.
        self.assertEqual(tcp.value()[5:6], bytes((MSG_DISCONNECT,)))
        self.assertEqual([e["log_format"] for e in events.at(LogLevel.info)],
                         ["ssh: {address} sent {count} messages before a session: disconnected"])
        transport.connectionLost(None)

    def test_messageRateAfterSession(self) -> None:
        """With its session started, a client that sends more than MESSAGES_PER_SECOND messages in a second is not read for the rest of that second (ignored messages, 20 us each to conch, kept the reactor busy); a drained TCP buffer does not read it early."""
        from serialgw.clients.sshlimits import MESSAGES_PER_SECOND

        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.setService(Connection())
        transport.sessionStarted()
        factory.clock.advance(0.5)
        for _ in range(MESSAGES_PER_SECOND):
            transport.dispatchMessage(2, NS(b""))
        self.assertEqual(tcp.producerState, "producing")
        transport.dispatchMessage(2, NS(b""))
        self.assertEqual(tcp.producerState, "paused")
        transport.resumeProducing()
        self.assertEqual(tcp.producerState, "paused")
        factory.clock.advance(1)
        self.assertEqual(tcp.producerState, "producing")
        for _ in range(MESSAGES_PER_SECOND):
            transport.dispatchMessage(2, NS(b""))
        self.assertEqual(tcp.producerState, "producing")
        transport.connectionLost(None)
        self.assertEqual(factory.clock.getDelayedCalls(), [])

    def test_keyExchangesAfterSessionBounded(self) -> None:
        """With its session started, a client may start KEX_PER_MINUTE key exchanges in a minute (the first counted: started here); the next one cuts it with one line, unanswered (one client rekeying without pause cost 790 Diffie-Hellmans and signatures a second); older than a minute they no longer count."""
        from serialgw.clients.sshlimits import KEX_PER_MINUTE

        events = LogEvents(self)
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        transport.setService(Connection())
        transport.sessionStarted()
        started: list[bytes] = []
        transport.ssh_KEXINIT = started.append
        for _ in range(KEX_PER_MINUTE):
            transport.dispatchMessage(MSG_KEXINIT, b"k")
            factory.clock.advance(1)
        self.assertEqual((len(started), tcp.disconnecting), (KEX_PER_MINUTE, False))
        factory.clock.advance(60)
        for _ in range(KEX_PER_MINUTE):
            transport.dispatchMessage(MSG_KEXINIT, b"k")
        self.assertEqual((len(started), tcp.disconnecting), (2 * KEX_PER_MINUTE, False))
        tcp.clear()
        transport.dispatchMessage(MSG_KEXINIT, b"k")
        self.assertEqual((len(started), tcp.disconnecting), (2 * KEX_PER_MINUTE, True))
        self.assertEqual(tcp.value()[5:6], bytes((MSG_DISCONNECT,)))
        self.assertEqual([e["log_format"] for e in events.at(LogLevel.info)],
                         ["ssh: {address} started over {n} key exchanges a minute: cut"])
        transport.connectionLost(None)

    def test_keyExchangesBeforeLoginBounded(self) -> None:
        """Before logging in too, the first included, a client may start KEX_PER_MINUTE key exchanges in a minute; the next one cuts it, unanswered (one with no key rekeyed 85 times a connection, within its 256 messages)."""
        from serialgw.clients.sshlimits import KEX_PER_MINUTE

        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        started: list[bytes] = []
        transport.ssh_KEXINIT = started.append
        for _ in range(KEX_PER_MINUTE):
            transport.dispatchMessage(MSG_KEXINIT, b"k")
        self.assertEqual((len(started), tcp.disconnecting), (KEX_PER_MINUTE, False))
        tcp.clear()
        transport.dispatchMessage(MSG_KEXINIT, b"k")
        self.assertEqual((len(started), tcp.disconnecting), (KEX_PER_MINUTE, True))
        self.assertEqual(tcp.value()[5:6], bytes((MSG_DISCONNECT,)))
        transport.connectionLost(None)

    def test_closingWhileFullCloses(self) -> None:
        """Closed while its client does not read, the connection is not read again once drained: it lets Twisted close it (a paused producer held the close back)."""
        factory = self.factory()
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-attack\r\n")
        transport.dataReceived(self.unknownMessages(300))
        transport.sendDisconnect(2, b"bye")
        tcp.drain()
        self.assertEqual((tcp.disconnecting, tcp.producer, tcp.producerState), (True, None, "paused"))
        transport.connectionLost(None)

    def test_fullConnectionPausesTheSession(self) -> None:
        """The session's output waits while the TCP buffer is full, whether it filled before the session started or after."""
        h = Harness("outbuf=4096+tcp:0")
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.dataReceived(b"SSH-2.0-attack\r\n")
        transport.dataReceived(self.unknownMessages(100))
        transport.setService(Connection())
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768)
        channel.conn = transport.service
        channel.requestReceived(b"shell", b"")
        assert channel.guard is not None
        self.assertTrue(channel.guard.full)
        tcp.drain()
        self.assertFalse(channel.guard.full)
        transport.pauseProducing()
        self.assertTrue(channel.guard.full)
        transport.connectionLost(None)

    def test_fullConnectionReadOn(self) -> None:
        """Its TCP buffer past the bound (a person reading a flood slowly), the connection is still read: the session's ^C reaches the device at once, its output waits."""
        h = Harness("escape=^],outbuf=4096+tcp:0")
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = BufferedTcp()
        transport.makeConnection(tcp)
        transport.setService(Connection())
        channel = SSHClient(h.gateway, Login("ops1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768)
        channel.conn = transport.service
        channel.requestReceived(b"shell", b"")
        transport.pauseProducing()
        assert channel.guard is not None
        self.assertEqual((channel.guard.full, tcp.producerState), (True, "producing"))
        channel.dataReceived(b"\x03")
        self.assertEqual(h.devices["con1"].events, [("write", b"\x03")])
        self.assertEqual((channel.readingPaused, tcp.producerState), (False, "producing"))
        transport.connectionLost(None)

    def test_revokedWithoutSessionCut(self) -> None:
        """A person whose key a reload takes away before any session: the connection is closed, and cut after CLOSE_GRACE s if the client does not read."""
        h = Harness()
        factory = GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)
        transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        tcp = Tcp()
        transport.makeConnection(tcp)
        realm = factory.portal.realm
        assert isinstance(realm, Realm)
        _, person, logout = realm.requestAvatar(Login("ops1", "con1", newKey().public().blob()), None, IConchUser)
        assert isinstance(person, Person)
        transport.avatar, transport.logoutFunction = person, logout
        transport.setService(Connection())
        factory.setUsers(())
        self.assertEqual((tcp.disconnecting, tcp.aborted), (True, False))
        h.clock.advance(CLOSE_GRACE)
        self.assertTrue(tcp.aborted)
        transport.connectionLost(None)
        self.assertEqual((h.clock.getDelayedCalls(), h.gateway.people), ([], set()))


class RightsTests(SynchronousTestCase):
    def test_rights(self) -> None:
        """Neither list: every user writes; write beats read; "*" is every user; others may not use the line."""
        self.assertEqual(Rights().of("anyone"), "write")
        rights = Rights(write=("ops1",), read=("*",))
        self.assertEqual([rights.of(u) for u in ("ops1", "ops2")], ["write", "read"])
        rights = Rights(read=("watcher1",))
        self.assertEqual([rights.of(u) for u in ("watcher1", "ops1")], ["read", None])
        self.assertEqual(Rights(write=("*",), read=("x",)).of("x"), "write")


class FileTests(SynchronousTestCase):
    """[ssh], [users.NAME] and per-line write / read in the configuration file."""

    def write(self, text: str) -> str:
        return writeTemp(self, text)

    def test_farm(self) -> None:
        """Users with inline keys and a keys file; lines with write/read lists; the [ssh] listener and host key."""
        a, b = newKey(), newKey()
        # (Absolute: a relative keys-file is the configuration file's directory's.)
        keysFile = os.path.abspath(self.write(publicLine(b, "laptop") + "\n"))
        path = self.write(
            '[ssh]\nlisten = "banner+tcp:2222:interface=127.0.0.1"\nhost-key = "/tmp/hk"\n\n'
            f'[users.ops1]\nkeys = ["{publicLine(a)}"]\nkeys-file = "{keysFile}"\n\n'
            '[users.tlsonly]\n\n'
            '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nwrite = ["ops1"]\nread = "*"\n\n'
            '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n'
        )
        loaded = loadFile(path)
        self.assertEqual([line.rights for line in loaded.lines], [Rights(("ops1",), ("*",)), Rights()])
        assert loaded.ssh is not None
        self.assertEqual((loaded.ssh.listener.endpoint, loaded.ssh.listener.banner, loaded.ssh.hostKey),
                         ("tcp:2222:interface=127.0.0.1", True, "/tmp/hk"))
        self.assertEqual([(u.name, len(u.keys)) for u in loaded.ssh.users], [("ops1", 2), ("tlsonly", 0)])
        self.assertEqual(KeyRing(loaded.ssh.users).people, {a.blob(): "ops1", b.blob(): "ops1"})

    def test_manyUsersReadOnce(self) -> None:
        """A valid file's [users.NAME] tables are not each looked for in its text: TOML parses the file once (200 users and 1000 lines took 22 s)."""
        import tomllib

        text = '[ssh]\nlisten = "tcp:2222:interface=127.0.0.1"\nhost-key = "/tmp/hk"\n'
        text += "".join(f'[lines.l{i}]\ndevice = "/dev/ttyS{i}"\nlisten = "{4001 + i}"\nwrite = ["u{i}"]\n'
                       for i in range(20))
        text += "".join(f'[users.u{i}]\nkeys = ["{publicLine(newKey())}"]\n' for i in range(20))
        path = self.write(text)
        parses = []
        parse = tomllib.loads

        def counted(*args: Any, **kwargs: Any) -> Any:
            parses.append(args)
            return parse(*args, **kwargs)

        self.patch(tomllib, "loads", counted)
        ssh = loadFile(path).ssh
        assert ssh is not None
        self.assertEqual((len(ssh.users), len(parses)), (20, 1))

    def test_errors(self) -> None:
        """Each mistake names the file, its line and the key."""
        key = publicLine(newKey())
        line = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
        cases = [
            (line + 'write = ["opps1"]\n[users.ops1]\n',
             ":4: [lines.a] write: unknown user 'opps1' (declared: ops1; add a [users.NAME] table)"),
            (line + "read = [1]\n", ':4: [lines.a] read: expected user names (a list; "*": every user), not [1]'),
            (line + '[ssh]\nlisten = "tcp:2222"\n', ":4: [ssh]: nobody could log in"),
            (line + f'[ssh]\nport = 22\n[users.x]\nkeys = "{key}"\n', ":5: unknown key 'port' in [ssh] (known: host-key, listen, sessions-per-person)"),
            (line + '[users.x]\nkeys = ["ssh-ed25519 AAAA!"]\n', ":5: [users.x] keys: key:1: cannot read the ssh-ed25519 key"),
            (line + f'[users.x]\nkeys = "{key}"\n[users.y]\nkeys = "{key}"\n', ":6: key SHA256:"),
            (line + f'[users."a b"]\nkeys = "{key}"\n', ":4: user name 'a b': letters, digits"),
            (line + f'[ssh]\nlisten = "file:/x"\n[users.x]\nkeys = "{key}"\n',
             ":5: [ssh] listen: SSH listener 'file:/x': expected a server endpoint"),
            (line + f'[ssh]\nlisten = "tcp:2222"\nhost-key = "/etc/hk\\u0000"\n[users.x]\nkeys = "{key}"\n',
             ":6: [ssh] host-key: host-key '/etc/hk\\x00': a file name cannot hold a NUL byte"),
            (line + '[users.x]\nkeys-file = "/etc/k\\u0000"\n',
             ":5: [users.x] keys-file: keys-file '/etc/k\\x00': a file name cannot hold a NUL byte"),
        ]
        for text, message in cases:
            path = self.write(text)
            error = str(self.assertRaises(ConfigError, loadFile, path))
            self.assertTrue(error.startswith(path + message), (error, message))


class OptionsTests(SynchronousTestCase):
    """--ssh, --ssh-host-key, --authorized-keys, --readonly-keys."""

    def parse(self, *args: str) -> tap.Options:
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(list(args))
        return options

    def test_singleLine(self) -> None:
        """Writers' and watchers' keys named by their comments become the line's write and read lists."""
        writers, readers = self.mktemp(), self.mktemp()
        with open(writers, "w") as f:
            f.write(publicLine(newKey(), "ops1") + "\n")
        with open(readers, "w") as f:
            f.write(publicLine(newKey(), "watcher1") + "\n")
        options = self.parse("--name", "con1", "--ssh", "tcp:2222:interface=127.0.0.1", "--ssh-host-key", "/tmp/hk",
                             "--authorized-keys", writers, "--readonly-keys", readers)
        spec = options["sshSpec"]
        self.assertEqual((spec.listener.endpoint, spec.hostKey, [u.name for u in spec.users]),
                         ("tcp:2222:interface=127.0.0.1", "/tmp/hk", ["ops1", "watcher1"]))
        self.assertEqual(options["line"].rights, Rights(write=("ops1",), read=("watcher1",)))
        self.assertIsNone(self.parse()["sshSpec"])
        self.assertEqual(self.parse()["line"].rights, Rights())

    def test_check(self) -> None:
        """--check: the SSH listener's port clashes like any other; a host key others may read is an error, one that cannot be made a warning."""
        import io

        keys = self.mktemp()
        with open(keys, "w") as f:
            f.write(publicLine(newKey(), "ops1") + "\n")
        hostKey = shortTemp(self)  # (a relative one is shown made absolute)
        loadHostKey(hostKey)
        os.chmod(hostKey, 0o640)
        options = self.parse("--check", "--port", "tcp:2222:interface=127.0.0.1", "--ssh", "tcp:2222",
                             "--ssh-host-key", hostKey, "--authorized-keys", keys)
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(options.report(out, err), 2)
        errors = [line for line in err.getvalue().splitlines() if line.startswith("serialgw: error: ")]
        self.assertEqual(errors[:2], [
            "serialgw: error: the SSH listener: listener 'tcp:2222' takes TCP port 2222, as line 'serialgw0', "
            "listener 'tcp:2222:interface=127.0.0.1' already does",
            f"serialgw: error: the SSH host key {hostKey!r} may be read by others (mode 0640): chmod 600 it",
        ])
        link = shortTemp(self)
        os.symlink(hostKey, link)
        os.chmod(hostKey, 0o600)
        options = self.parse("--check", "--ssh", "tcp:2222", "--ssh-host-key", link, "--authorized-keys", keys)
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(options.report(out, err), 2)
        self.assertIn(f"serialgw: error: the SSH host key {link!r} is a symlink (not followed there)",
                      err.getvalue().splitlines())
        options = self.parse("--check", "--ssh", "tcp:2222", "--ssh-host-key", "/nonexistent/key", "--authorized-keys", keys)
        out, err = io.StringIO(), io.StringIO()
        self.assertEqual(options.report(out, err), 0)
        # (The line's default telnet listener lets anyone on this machine type past the keys: warned too.)
        self.assertEqual(err.getvalue(), "serialgw: warning: line 'serialgw0': listener 'tcp:4444:interface=127.0.0.1' "
                                         "knows no person: whoever connects there types, whatever the line's write / "
                                         "read say (they name the people of SSH keys and TLS client certificates); "
                                         "give it ro, or TLS with ca=\n"
                                         "serialgw: warning: the SSH host key '/nonexistent/key' does not exist "
                                         "and cannot be made in '/nonexistent' (now)\n")

    def test_checkReadsTheHostKey(self) -> None:
        """--check reads the host key as the start does: an empty file or a public key there is an error (exit 2), not OK; nothing is made."""
        import io

        keys = self.mktemp()
        with open(keys, "w") as f:
            f.write(publicLine(newKey(), "ops1") + "\n")
        for content, why in ((b"", "cannot read SSH host key {path!r}: it is empty"),
                             (publicLine(newKey()).encode(), "SSH host key {path!r} is not a private key")):
            hostKey = os.path.abspath(self.mktemp())
            with open(os.open(hostKey, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(content)
            options = self.parse("--check", "--ssh", "tcp:2222", "--ssh-host-key", hostKey, "--authorized-keys", keys)
            out, err = io.StringIO(), io.StringIO()
            self.assertEqual(options.report(out, err), 2)
            self.assertIn("serialgw: error: " + why.format(path=hostKey), err.getvalue().splitlines())
            with open(hostKey, "rb") as f:
                self.assertEqual(f.read(), content)

    def test_errors(self) -> None:
        """Keys without --ssh, --ssh without keys (passwords pointed to --config), --ssh with --config, one name or one key in both files, an empty host key path: clear errors."""
        same, other = self.mktemp(), self.mktemp()
        key = newKey()
        with open(same, "w") as f:
            f.write(publicLine(key, "ops1") + "\n")
        with open(other, "w") as f:
            f.write(publicLine(key, "watcher1") + "\n")
        cases = [
            (("--authorized-keys", same), "--authorized-keys needs --ssh (an SSH listener)"),
            (("--ssh", "tcp:2222"), "--ssh needs --authorized-keys or --readonly-keys: who may log in (passwords are "
             "a --config file's: [users.NAME] password)"),
            (("--config", same, "--ssh", "tcp:2222"),
             "--config and --ssh do not go together: use [ssh] and [users.NAME] in the file"),
            (("--ssh", "tcp:2222", "--authorized-keys", same, "--readonly-keys", same),
             f"'ops1' names keys in --authorized-keys {same!r} and in --readonly-keys {same!r}: "
             "give the keys distinct comments"),
            (("--ssh", "tcp:2222:bogus=1", "--authorized-keys", same),
             "--ssh: cannot read listener 'tcp:2222:bogus=1' as a Twisted endpoint string: "
             "_parseTCP() got an unexpected keyword argument 'bogus'"),
            (("--ssh", "tcp:2222", "--authorized-keys", same, "--readonly-keys", other),
             f"a key of 'watcher1' is in --authorized-keys {same!r} and in --readonly-keys {other!r}: "
             "put it in one of them"),
            # An empty path (a shell variable left unset) is no path, as host-key = "" is not in a file.
            (("--ssh", "tcp:2222", "--authorized-keys", same, "--ssh-host-key", ""),
             "--ssh-host-key is empty: expected a path (leave it out for /var/lib/serialgw/ssh_host_ed25519_key)"),
        ]
        for args, message in cases:
            error = str(self.assertRaises(UsageError, self.parse, *args))
            self.assertTrue(error.startswith(message), (error, message))


class Console(protocol.Protocol):
    """A console elsewhere (the gateway's telnet: device) that records what it gets, IAC BRK included."""

    def __init__(self, received: Accumulator) -> None:
        self.received = received

    def dataReceived(self, data: bytes) -> None:
        self.received.add(data)


class OpenSSHTests(TestCase):
    """
    Debian's OpenSSH client (ssh -tt through a pty) against `twistd -n
    serialgw --ssh ...`, whose device is a recording console reached over
    telnet (a break arrives there as IAC BRK, in order with the data).
    """

    timeout = 60
    keys: Optional[str] = None

    async def setUp(self) -> None:  # type: ignore[override]
        self.ssh = need("ssh")
        keygen = need("ssh-keygen")
        self.processes = Processes()
        if OpenSSHTests.keys is None or not os.path.isdir(OpenSSHTests.keys):
            # Made once for the class (an RSA key takes seconds on a busy machine);
            # again in a later pass of trial --until-failure (each pass removes _trial_temp).
            keys = os.path.abspath(self.mktemp())
            os.mkdir(keys)
            for name, comment, kind in (("writer", "ops1", "ed25519"), ("reader", "watcher1", "ed25519"),
                                        ("stranger", "nobody", "ed25519"), ("rsa", "rsa1", "rsa"),
                                        ("ecdsa", "ec1", "ecdsa")):
                proc = self.processes.spawn([keygen, "-q", "-t", kind, "-N", "", "-C", comment, "-f", os.path.join(keys, name)])
                self.assertEqual(await proc.ended, 0, proc.output.data)
            with open(os.path.join(keys, "reader.pub"), "a") as out:
                for name in ("rsa", "ecdsa"):
                    with open(os.path.join(keys, f"{name}.pub")) as f:
                        out.write(f.read())
            OpenSSHTests.keys = keys
        self.dir = os.path.abspath(self.mktemp())
        shutil.copytree(OpenSSHTests.keys, self.dir)
        self.received = Accumulator("console")
        self.consoles: list[Console] = []
        self.gateways: list[ProcessOutput] = []

        def console() -> Console:
            self.consoles.append(Console(self.received))
            return self.consoles[-1]

        self.consolePort = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            protocol.Factory.forProtocol(console))  # type: ignore[arg-type]
        self.addCleanup(self.consolePort.stopListening)

    async def tearDown(self) -> None:  # type: ignore[override]
        await self.processes.stop()
        for console in self.consoles:
            console.transport.loseConnection()  # type: ignore[union-attr]
        for gw in self.gateways:
            self.assertNotIn(b"Traceback", gw.output.data)
            self.assertNotIn(b"Unhandled", gw.output.data)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    async def gateway(self, listener: str = "tcp:0:interface=127.0.0.1", *extra: str) -> tuple[ProcessOutput, int]:
        proc = self.processes.spawn(gatewayArgv(
            "--device", f"telnet:127.0.0.1:{self.consolePort.getHost().port}", "--name", "con1",
            "--ssh", listener, "--ssh-host-key", self.path("host_key"),
            "--authorized-keys", self.path("writer.pub"), "--readonly-keys", self.path("reader.pub"),
            # Never the default port 4444: other tests and gateways may hold it.
            *(extra or ("--port", "tcp:0:interface=127.0.0.1"))))
        self.gateways.append(proc)
        data = await proc.output.when(lambda d: SSH_READY.search(d) is not None and b": connected" in d)
        match = SSH_READY.search(data)
        assert match is not None
        return proc, int(match.group(1))

    def client(self, port: int, key: str, user: str = "con1", *options: str) -> ProcessOutput:
        return self.processes.spawn([self.ssh, "-tt", "-F", "/dev/null", "-i", self.path(key), "-p", str(port),
                                     "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                     "-o", f"UserKnownHostsFile=\"{self.path('known_hosts')}\"",
                                     "-o", "StrictHostKeyChecking=accept-new", *options, f"{user}@127.0.0.1"], usePTY=True)

    async def test_writerTypesAndBreaks(self) -> None:
        """A writer's keys reach the device; output reaches the screen; ~B is a break, before the next key."""
        gw, port = await self.gateway()
        ssh = self.client(port, "writer")
        await gw.output.contains(b"con1: ops1 (127.0.0.1:")
        ssh.write(b"x")
        await self.received.contains(b"x")
        self.consoles[0].transport.write(b"console says hi\r\n")  # type: ignore[union-attr]
        await ssh.output.contains(b"console says hi\r\n")
        # ~ is ssh's escape after a newline; Enter first (the console gets CR NUL: telnet's NVT).
        ssh.write(b"\r")
        await self.received.contains(b"x\r\x00")
        ssh.write(b"~B")
        ssh.write(b"h")
        data = await self.received.contains(b"h")
        self.assertTrue(data.endswith(b"x\r\x00\xff\xf3h"), data)
        await gw.output.contains(b"con1: BREAK from ops1 (127.0.0.1:")
        ssh.write(b"\r~.")
        self.assertEqual(await ssh.ended, 255)  # ~. is ssh's own "disconnect"

    async def test_readerOnlyWatches(self) -> None:
        """A read-only key sees output; its bytes and its ~B never reach the device."""
        gw, port = await self.gateway()
        writer = self.client(port, "writer")
        await gw.output.contains(b"ops1 (127.0.0.1:")
        reader = self.client(port, "reader")
        await gw.output.contains(b"watcher1 (127.0.0.1:")
        self.assertIn(b"attached as read-only", gw.output.data)
        reader.write(b"rm -rf /\r~B")
        await gw.output.contains(b"break from watcher1 (127.0.0.1:")
        writer.write(b"sync")
        self.consoles[0].transport.write(b"both see this")  # type: ignore[union-attr]
        await reader.output.contains(b"both see this")
        await writer.output.contains(b"both see this")
        data = await self.received.contains(b"sync")
        self.assertNotIn(b"rm", data)
        self.assertNotIn(b"\xff\xf3", data)

    async def test_refused(self) -> None:
        """An unknown key and password authentication are refused (exit 255); the key's fingerprint and address are logged."""
        gw, port = await self.gateway()
        stranger = self.client(port, "stranger")
        self.assertEqual(await stranger.ended, 255)
        self.assertIn(b"Permission denied (publickey)", stranger.output.data)
        with open(self.path("stranger.pub")) as f:
            key = keys.Key.fromString(f.read())
        await gw.output.contains(f"ssh: key {fingerprint(key)} from 127.0.0.1:".encode())
        password = self.client(port, "writer", "con1", "-o", "PreferredAuthentications=password,keyboard-interactive")
        self.assertEqual(await password.ended, 255)
        self.assertIn(b"Permission denied (publickey)", password.output.data)

    async def test_notALine(self) -> None:
        """A user name (or exec's line) that is not a line: the lines this key may use, exit status 1; exec LINE watches."""
        gw, port = await self.gateway()
        ssh = self.client(port, "reader", "nosuch")
        self.assertEqual(await ssh.ended, 1)
        self.assertIn(b"serialgw: 'nosuch' is not a line you may use; your lines:\r\ncon1\r\n", ssh.output.data)
        # exec names the line (no pty: plain newlines); ssh -n's end of input leaves it watching.
        execd = self.processes.spawn([self.ssh, "-T", "-n", "-F", "/dev/null", "-i", self.path("reader"), "-p", str(port),
                                      "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                      "-o", f"UserKnownHostsFile=\"{self.path('known_hosts')}\"", "someone@127.0.0.1", "nosuch"])
        self.assertEqual(await execd.ended, 1)
        self.assertIn(b"serialgw: 'nosuch' is not a line you may use; your lines:\ncon1\n", execd.output.data)
        watcher = self.processes.spawn([self.ssh, "-T", "-n", "-F", "/dev/null", "-i", self.path("reader"), "-p", str(port),
                                        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                                        "-o", f"UserKnownHostsFile=\"{self.path('known_hosts')}\"", "someone@127.0.0.1", "con1"])
        await gw.output.contains(b"con1: watcher1 (127.0.0.1:")
        self.consoles[0].transport.write(b"after the end of input")  # type: ignore[union-attr]
        await watcher.output.contains(b"after the end of input")

    async def test_keyTypes(self) -> None:
        """RSA (rsa-sha2-*, offered because server-sig-algs names it) and ECDSA keys log in as their people."""
        gw, port = await self.gateway()
        for key, person in (("rsa", b"rsa1"), ("ecdsa", b"ec1")):
            ssh = self.client(port, key)
            await gw.output.contains(b"con1: " + person + b" (127.0.0.1:")
            ssh.write(b"\r~.")
            await ssh.ended

    async def test_farmReloadsUsers(self) -> None:
        """--config with [ssh] and [users.NAME]: a user's key logs in; after SIGHUP with another key, the old one is refused and the new one is that user."""
        config = self.path("farm.toml")
        table = ('[ssh]\nlisten = "tcp:0:interface=127.0.0.1"\nhost-key = "{hostKey}"\n\n'
                 '[users.ops1]\nkeys-file = "{keys}"\n\n'
                 '[lines.con1]\ndevice = "telnet:127.0.0.1:{console}"\nlisten = "tcp:0:interface=127.0.0.1"\n'
                 'write = ["ops1"]\n')

        def write(keys: str) -> None:
            with open(config, "w") as f:
                f.write(table.format(hostKey=self.path("host_key"), keys=self.path(keys),
                                     console=self.consolePort.getHost().port))

        write("writer.pub")
        gw = self.processes.spawn(gatewayArgv("--config", config))
        self.gateways.append(gw)
        data = await gw.output.when(lambda d: SSH_READY.search(d) is not None and b": connected" in d)
        port = int(SSH_READY.search(data).group(1))  # type: ignore[union-attr]
        first = self.client(port, "writer")
        await gw.output.contains(b"con1: ops1 (127.0.0.1:")
        first.write(b"\r~.")
        await first.ended
        write("rsa.pub")
        gw.transport.signalProcess("HUP")  # type: ignore[union-attr]
        await gw.output.contains(b"reload: 1 SSH user(s)")
        old = self.client(port, "writer")
        self.assertEqual(await old.ended, 255)
        self.assertIn(b"Permission denied (publickey)", old.output.data)
        new = self.client(port, "rsa")
        await gw.output.when(lambda d: d.count(b"con1: ops1 (127.0.0.1:") >= 3)  # attached, detached, attached
        new.write(b"\r~.")
        await new.ended

    async def test_hostKeyKept(self) -> None:
        """The host key is made once (mode 0600, fingerprint logged); after a restart StrictHostKeyChecking=yes still logs in."""
        gw, port = await self.gateway()
        first = self.client(port, "writer")
        await gw.output.contains(b"ops1 (127.0.0.1:")
        first.write(b"\r~.")
        await first.ended
        self.assertEqual(stat.S_IMODE(os.stat(self.path("host_key")).st_mode), 0o600)
        self.assertIn(b", made now", gw.output.data)
        await gw.stop()
        gw, port = await self.gateway()
        self.assertNotIn(b", made now", gw.output.data)
        again = self.client(port, "writer", "con1", "-o", "StrictHostKeyChecking=yes")
        await gw.output.contains(b"ops1 (127.0.0.1:")
        again.write(b"\r~.")
        self.assertEqual(await again.ended, 255)
        self.assertNotIn(b"Host key verification failed", again.output.data)


    async def test_stoppedClientBounded(self) -> None:
        """An ssh client that stops reading (SIGSTOP) loses the oldest output past outbuf; a raw client gets every byte; after SIGCONT the person is told how much."""
        import signal

        # The raw client reads every byte: its bound (the kernel's too) holds the whole flood.
        gw, port = await self.gateway("outbuf=65536+tcp:0:interface=127.0.0.1",
                                      "--port", "raw,outbuf=16777216+tcp:0:interface=127.0.0.1")
        rawPort = await listeningPort(gw, "raw")
        raw = await connect(rawPort)
        ssh = self.client(port, "writer")
        await gw.output.contains(b"con1: ops1 (127.0.0.1:")
        os.kill(ssh.transport.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            flood = b"0123456789abcdef" * (4 * 1024 * 1024 // 16) + b"END-OF-FLOOD"
            self.consoles[0].transport.write(flood)  # type: ignore[union-attr]
            self.assertEqual(len(await raw.received.length(len(flood))), len(flood))
            await gw.output.contains(b"cannot keep up: its output is dropped until it does")
        finally:
            os.kill(ssh.transport.pid, signal.SIGCONT)  # type: ignore[union-attr]
        # The newest bytes come last, after the notices of what was dropped.
        data = await ssh.output.contains(b"END-OF-FLOOD")
        dropped = sum(int(n) for n in re.findall(rb"\[serialgw: (\d+) bytes dropped: this session fell behind\]", data))
        self.assertGreater(dropped, 1024 * 1024)
        self.assertLess(dropped, len(flood))
        await closeClients(raw)


    async def test_stoppedClientKernelQueueBounded(self) -> None:
        """An ssh client that stops reading: the kernel keeps at most about outbuf unsent for it (TCP_NOTSENT_LOWAT on the connection under the channel), not the channel's 2 MiB window."""
        import signal

        # The raw client reads every byte: its bound (the kernel's too) holds the whole flood.
        gw, port = await self.gateway("outbuf=65536+tcp:0:interface=127.0.0.1",
                                      "--port", "raw,outbuf=16777216+tcp:0:interface=127.0.0.1")
        raw = await connect(await listeningPort(gw, "raw"))
        ssh = self.client(port, "writer")
        await gw.output.contains(b"con1: ops1 (127.0.0.1:")
        os.kill(ssh.transport.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            flood = b"0123456789abcdef" * (4 * 1024 * 1024 // 16)
            self.consoles[0].transport.write(flood)  # type: ignore[union-attr]
            self.assertEqual(len(await raw.received.length(len(flood))), len(flood))
            await gw.output.contains(b"cannot keep up: its output is dropped until it does")
            # The gateway's end of the SSH connection: bytes in its send queue.
            queued = [int(fields[4].split(":")[0], 16) for fields in map(str.split, open("/proc/net/tcp").readlines()[1:])
                      if int(fields[1].split(":")[1], 16) == port and fields[3] == "01"]
        finally:
            os.kill(ssh.transport.pid, signal.SIGCONT)  # type: ignore[union-attr]
        # outbuf unsent, one more segment the kernel fills past it, what is in flight: not the 2 MiB window.
        self.assertEqual(len(queued), 1)
        self.assertLess(queued[0], 4 * 65536)
        await closeClients(raw)


class BeforeLoginTests(TestCase):
    """A real TCP connection to the SSH listener, in this process, before any login."""

    async def test_kernelQueueBounded(self) -> None:
        """Before a session, the kernel keeps at most the connection's bufferSize unsent for the client (TCP_NOTSENT_LOWAT), not the autotuned 4 MiB (2.5 MB measured for a client that never read)."""
        import socket

        from serialgw.clients.guard import TCP_NOTSENT_LOWAT

        factory = GatewaySSHFactory(newKey(), KeyRing(()), SSHGateway(dict, parseSSHListener("tcp:0"), Clock()))
        built: list[Any] = []
        build = factory.buildProtocol

        def buildProtocol(addr: Any) -> Any:
            built.append(build(addr))
            return built[-1]

        factory.buildProtocol = buildProtocol  # type: ignore[method-assign]
        port: Any = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
        self.addCleanup(port.stopListening)
        client = await connect(port.getHost().port)
        await client.received.contains(b"SSH-2.0-")
        [transport] = built
        self.assertEqual(transport.transport.getHandle().getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT),
                         transport.transport.bufferSize)
        await closeClients(client)


class BreakOnTtyTests(TestCase):
    """OpenSSH's ~B on a tty device: the same non-blocking break as telnet's IAC BRK, seen with strace."""

    timeout = 60

    async def test_tiocsbrkThenNextKey(self) -> None:
        """ssh -tt, ~B then h: TIOCSBRK then TIOCCBRK on the device, 250 ms apart, then the write of h."""
        ssh, keygen = need("ssh"), need("ssh-keygen")
        pty = startedPty(self)
        processes = Processes()
        start = processes.spawn
        # A Deferred: Twisted 22.10's trial never ran a coroutine given to addCleanup (the ssh client was
        # left running: "Reactor was unclean: PTYProcess" two runs in five under -j2).
        self.addCleanup(lambda: defer.ensureDeferred(processes.stop()))
        keys = os.path.abspath(self.mktemp())
        os.mkdir(keys)
        made = start([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ops1", "-f", os.path.join(keys, "ops1")])
        self.assertEqual(await made.ended, 0)
        gw = start(gatewayArgv("--device", pty.slaveName, "--name", "con1", "--port", "tcp:0:interface=127.0.0.1",
                               "--ssh", "tcp:0:interface=127.0.0.1", "--ssh-host-key", os.path.join(keys, "host_key"),
                               "--authorized-keys", os.path.join(keys, "ops1.pub")))
        data = await gw.output.when(lambda d: SSH_READY.search(d) is not None)
        port = int(SSH_READY.search(data).group(1))  # type: ignore[union-attr]
        trace, tracer, deviceFd = await attachStrace(self, gw, pty.slaveName, start)
        client = start([ssh, "-tt", "-F", "/dev/null", "-i", os.path.join(keys, "ops1"), "-p", str(port),
                        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", f"UserKnownHostsFile=\"{os.path.join(keys, 'known_hosts')}\"", "con1@127.0.0.1"], usePTY=True)
        await gw.output.contains(b"con1: ops1 (127.0.0.1:")
        client.write(b"x\r")
        await pty.received.contains(b"x\r")
        client.write(b"~B")
        client.write(b"h")
        self.assertEqual(await pty.received.length(3), b"x\rh")
        await gw.stop()
        await tracer.ended
        assertBreakThenKey(self, trace, deviceFd)


SSH_READY = re.compile(rb"ssh listener ready on 127\.0\.0\.1:(\d+)")


class TLSUserTests(TestCase):
    """The line's write / read apply to TLS client certificates: the CN is the user name."""

    timeout = 30

    async def test_certificateNamesTheUser(self) -> None:
        """write=alice, read=carol: alice types, carol only watches, mallory and a certificate without a CN (both good) are refused."""
        from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
        from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS

        from serialgw.config.listeners import parseListener
        from tests.certs import Authority
        from tests.realio import Collector, closeClients, startedPty, until

        pty = startedPty(self)
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        listener = parseListener(f"raw+tls:0:interface=127.0.0.1:cert={cert}:key={key}:ca={ca.path}")
        service = startGateway(self, ptyLine(pty, listener, rights=Rights(write=("alice",), read=("carol",))))
        port = listenerPort(service)
        with open(ca.path, "rb") as f:
            trust = Certificate.loadPEM(f.read())

        async def dial(cn: str, withCN: bool = True) -> Collector:
            certPath, keyPath = ca.issue(cn, withCN=withCN)
            with open(certPath, "rb") as f1, open(keyPath, "rb") as f2:
                mine = PrivateCertificate.loadPEM(f1.read() + f2.read())
            options = optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=mine)
            endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port))
            client = await endpoint.connect(protocol.Factory.forProtocol(Collector))
            assert isinstance(client, Collector)
            return client

        mallory = await dial("mallory")
        await mallory.closed
        nobody = await dial("alice", withCN=False)
        nobody.transport.write(b"nobody")  # type: ignore[union-attr]
        await nobody.closed
        carol = await dial("carol")
        carol.transport.write(b"carol")  # type: ignore[union-attr]
        alice = await dial("alice")
        alice.transport.write(b"alice")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(5), b"alice")
        # Carol is attached once her handshake is done, which alice's typing
        # may overtake (her 0 bytes of the '!' seen once in a loaded suite).
        await until(self, lambda: len(service.lines["t"].clients) == 2, "carol and alice attached")
        pty.write(b"!")
        await carol.received.contains(b"!")
        await alice.received.contains(b"!")
        line = service.lines["t"]
        self.assertEqual(sorted((c.peer.split(" ")[-1], c.role) for c in line.clients),
                         [("(alice)", Role.WRITER), ("(carol)", Role.READONLY)])
        self.assertEqual((mallory.received.data, nobody.received.data, pty.received.data), (b"", b"", b"alice"))
        await closeClients(carol, alice)


class ServiceTests(TestCase):
    """The SSH listener in the gateway service: opened with the lines, its users replaced on reload."""

    def test_listenAndReloadUsers(self) -> None:
        """The host key is made at start, the line gets its rights; reloadUsers swaps the keys and warns of what needs a restart."""
        import attrs

        from tests.realio import startedPty

        pty = startedPty(self)
        hostKey = self.mktemp()
        a, b = newKey(), newKey()
        spec = SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), hostKey, (UserSpec("ops1", (publicLine(a),)),))
        service = startGateway(self, ptyLine(pty, rights=Rights(write=("ops1",))), ssh=spec)
        self.assertEqual((service.lines["t"].rights, os.path.exists(hostKey)), (Rights(write=("ops1",)), True))
        ring = lambda: service.sshFactory.checker.ring.people  # noqa: E731
        self.assertEqual(ring(), {a.blob(): "ops1"})
        events = LogEvents(self)
        service.reloadUsers(attrs.evolve(spec, users=(UserSpec("ops2", (publicLine(b),)),)))
        self.assertEqual(ring(), {b.blob(): "ops2"})
        service.reloadUsers(attrs.evolve(spec, listener=parseSSHListener("ro+tcp:2222"), users=()))
        self.assertEqual(ring(), {})
        # The endpoint waits for a restart; the options apply now.
        running = service.sshFactory.gateway.spec
        assert service.ssh is not None
        self.assertEqual((running.endpoint, running.readOnly, service.ssh.listener), ("tcp:0:interface=127.0.0.1", True, running))
        service.reloadUsers(attrs.evolve(spec, listener=parseSSHListener("ro+tcp:2222"), hostKey="other"))
        self.assertEqual([e["log_format"] for e in events.at(LogLevel.warn)],
                         ["reload: [ssh] listen's endpoint changed: restart the gateway to listen there (its options "
                          "apply now)", "reload: [ssh] host-key changed: restart the gateway to apply it",
                          "reload: [ssh] listen's endpoint changed: restart the gateway to listen there (its options "
                          "apply now)"])

    def test_reloadWithoutSSH(self) -> None:
        """A reload whose file has no [ssh] left: nobody may log in over SSH from then on (the keys went with it); the listener itself waits for a restart."""
        import attrs

        from tests.realio import startedPty

        pty = startedPty(self)
        a = newKey()
        spec = SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), self.mktemp(), (UserSpec("ops1", (publicLine(a),)),))
        service = startGateway(self, ptyLine(pty), ssh=spec)
        events = LogEvents(self)
        service.reloadUsers(None)
        self.assertEqual(service.sshFactory.checker.ring.people, {})
        self.assertEqual(service.ssh, attrs.evolve(spec, users=()))
        self.assertEqual([e["log_format"] for e in events.at(LogLevel.warn)],
                         ["reload: [ssh] removed: nobody may log in over SSH from now on; restart the gateway to close "
                          "its listener"])

    async def test_reloadRightsKeepsTheLine(self) -> None:
        """A reload that changes only write/read keeps the line (device, sessions) and applies the new rights to it."""
        from tests.realio import startedPty

        pty = startedPty(self)
        config = ptyLine(pty, rights=Rights(write=("ops1",)))
        service = startGateway(self, config)
        line = service.lines["t"]
        import attrs

        changes = await service.reload([attrs.evolve(config, rights=Rights(read=("ops1",)))])
        self.assertIs(service.lines["t"], line)
        self.assertEqual((line.rights, changes["changed"]), (Rights(read=("ops1",)), ["t"]))

    def test_hostKeyCannotBeMade(self) -> None:
        """A host key that cannot be made stops the start with the path and the reason, and nothing stays open."""
        from serialgw.app.binding import StartupError
        from serialgw.app.service import GatewayService
        from serialgw.config.specs import DeviceSpec, LineConfig
        from tests.realio import startedPty

        pty = startedPty(self)
        spec = SSHSpec(parseSSHListener("tcp:0:interface=127.0.0.1"), "/nonexistent/key", ())
        service = GatewayService([LineConfig("t", DeviceSpec("tty", pty.slaveName), lockDir=testLockDir())], ssh=spec)
        e = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(str(e), "cannot write SSH host key '/nonexistent/key': its directory '/nonexistent' does not "
                                 "exist (make it, mode 700, or give the key another path: --ssh-host-key, host-key in "
                                 "[ssh])")
        self.assertEqual((service.lines, service.ports), ({}, []))
