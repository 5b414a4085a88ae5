"""
Hostile SSH login requests (ssh-userauth's USERAUTH_REQUEST, read by
L{UserAuth} before conch): strings cut short or whose length runs past the
packet, unknown methods, a client that asks again and again; each said
naming what was wrong, the connection's attempts bounded, never an
exception out of the handler.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.conch.ssh import userauth
from twisted.conch.ssh.common import NS
from twisted.conch.ssh.transport import DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, DISCONNECT_PROTOCOL_ERROR
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import sshauth
from serialgw.clients.ssh import GatewaySSHFactory, SSHGateway
from serialgw.clients.sshauth import KeyRing
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import UserSpec
from tests.clients.test_ssh import newKey, publickeyRequest, publicLine, startUserAuth
from tests.clients.test_sshpassword import RIGHT, Ran
from tests.fakes import LogEvents

HEAD = NS(b"ops1+con1") + NS(b"ssh-connection")
OFFERED = NS(b"publickey,password,keyboard-interactive") + b"\x00"


def big(length: int) -> bytes:
    """A string's length field saying LENGTH bytes."""
    return struct.pack(">L", length)


class LoginRequestTests(SynchronousTestCase):
    """USERAUTH_REQUEST as a hostile client sends it, against a gateway with a key person and a password person."""

    def setUp(self) -> None:
        self.key = newKey()
        users = (UserSpec("ops1", (publicLine(self.key),), password=RIGHT),)
        gateway = SSHGateway(dict, parseSSHListener("tcp:0"), Clock())
        self.factory = GatewaySSHFactory(newKey(), KeyRing(users), gateway, users)
        self.ran = Ran()
        self.factory.passwords.checks.run = self.ran
        self.clock = Clock()
        self.server, self.transport = startUserAuth(self, self.factory, self.clock)
        self.disconnects: list[tuple[int, bytes]] = []
        self.transport.sendDisconnect = lambda reason, desc: self.disconnects.append((reason, desc))  # type: ignore[method-assign]
        self.events = LogEvents(self)

    def send(self, packet: bytes) -> Any:
        """The request handled as the transport hands it (nothing may be raised out of it)."""
        return self.server.ssh_USERAUTH_REQUEST(packet)

    def test_headerCutShortNamed(self) -> None:
        """
        A request whose user, service or method name is cut short, or says
        more bytes than the packet holds, disconnects with one line naming
        the field and the lengths (it raised struct.error out of the handler:
        'malformed packet (... error('unpack requires a buffer of 4 bytes'))';
        a method name saying 2**31 bytes with 4 following was read as 'none').
        """
        cases = [
            (b"", "cut short before its user name"),
            (b"\x00\x00", "cut short before its user name"),
            (big(0xFFFFFFFF) + b"abc", "its user name says 4294967295 bytes, 3 follow"),
            (NS(b"u") + big(0xFFFFFFF0) + b"ssh-connection", "its service name says 4294967280 bytes, 14 follow"),
            (NS(b"u") + NS(b"ssh-connection"), "cut short before its method name"),
            (NS(b"u") + NS(b"ssh-connection") + big(1 << 31) + b"none", "its method name says 2147483648 bytes, 4 follow"),
        ]
        for packet, why in cases:
            self.events.events.clear()
            self.disconnects.clear()
            self.assertIsNone(self.send(packet))
            self.assertEqual(self.disconnects, [(DISCONNECT_PROTOCOL_ERROR, b"malformed login request")])
            [said] = [e for e in self.events.at(LogLevel.info) if "malformed login request" in e["log_format"]]
            self.assertEqual((said["error"], said["address"], said["peer"]), (why, "192.0.2.7:40000", "192.0.2.7"))
        self.assertEqual((self.transport.packets, self.ran.pending), ([], []))

    def test_passwordCutShortNotChecked(self) -> None:
        """A password that says more bytes than follow is refused, logged naming the lengths, never checked (its first bytes were taken for the password and hashed)."""
        for rest, why in ((b"", "cut short before its change flag"),
                          (b"\x00", "cut short before its password"),
                          (b"\x00" + big(1 << 30) + b"hunter2", "its password says 1073741824 bytes, 7 follow")):
            self.send(HEAD + NS(b"password") + rest)
            self.clock.advance(self.server.passwordDelay)
            self.assertEqual(self.transport.packets[-1], (userauth.MSG_USERAUTH_FAILURE, OFFERED))
            self.assertEqual(self.events.at(LogLevel.warn)[-1]["reason"], f"unreadable password request: {why}")
        self.assertEqual((self.ran.pending, self.factory.passwords.checks.waiting, self.server.loginAttempts),
                         ([], [], 3))
        self.assertNotIn("hunter2", repr(self.events.events))

    def test_keyboardInteractiveCutShortRefused(self) -> None:
        """keyboard-interactive without its language and submethods strings is refused, said, no prompt sent; with them, the prompt."""
        self.send(HEAD + NS(b"keyboard-interactive") + NS(b""))
        self.send(HEAD + NS(b"keyboard-interactive") + NS(b"") + big(9) + b"x")
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, OFFERED)] * 2)
        self.assertEqual([e["reason"] for e in self.events.at(LogLevel.warn)],
                         ["unreadable keyboard-interactive request: cut short before its submethods",
                          "unreadable keyboard-interactive request: its submethods says 9 bytes, 1 follow"])
        self.send(HEAD + NS(b"keyboard-interactive") + NS(b"") + NS(b""))
        self.assertEqual(self.transport.packets[-1][0], sshauth.MSG_USERAUTH_INFO_REQUEST)

    def test_unknownMethodsCounted(self) -> None:
        """Methods never offered (hostbased, a name of bytes that are not ASCII, 100 kB of one) are refused, logged readably (each byte that is not printable ASCII as \\xNN: it was U+FFFD, what was sent unknown; 64 bytes and the length), and counted: cut after attemptsBeforeDisconnect."""
        for method in (b"hostbased", b"\xff\xfe", b"A" * 100000):
            self.send(HEAD + NS(method))
        self.assertEqual(self.transport.packets, [(userauth.MSG_USERAUTH_FAILURE, OFFERED)] * 3)
        self.assertEqual([e["method"] for e in self.events.at(LogLevel.warn)],
                         ["hostbased", "\\xff\\xfe", "A" * 64 + "... (100000 bytes)"])
        self.assertIn("ssh: \\xff\\xfe login from", formatEvent(self.events.at(LogLevel.warn)[1]))
        for _ in range(self.server.attemptsBeforeDisconnect - 2):  # (the 11th failed)
            self.send(HEAD + NS(b"hostbased"))
        self.assertEqual(self.disconnects, [(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"too many bad auths")])

    def test_askingAgainAndAgainBounded(self) -> None:
        """
        Requests conch never counts as failed logins ("none", a known key
        asked without a signature, a keyboard-interactive prompt dropped
        by the next request) are MOST_LOGIN_REQUESTS a connection; the next
        disconnects, logged with the count (they went on until the
        connection's 256 messages).
        """
        kinds = [HEAD + NS(b"none"), HEAD + NS(b"keyboard-interactive") + NS(b"") + NS(b"")]
        for n in range(sshauth.MOST_LOGIN_REQUESTS):
            if n % 3 == 2:
                publickeyRequest(self.server, b"ops1+con1", self.key, signed=False)
            else:
                self.send(kinds[n % 3])
        self.assertEqual((self.disconnects, self.server.loginAttempts), ([], 0))
        answered = len(self.transport.packets)
        self.assertIsNone(self.send(HEAD + NS(b"none")))
        self.assertEqual((self.disconnects, len(self.transport.packets)),
                         ([(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"too many login requests")], answered))
        [said] = [e for e in self.events.at(LogLevel.info) if "login requests" in e["log_format"]]
        self.assertEqual((said["count"], said["address"]), (sshauth.MOST_LOGIN_REQUESTS + 1, "192.0.2.7:40000"))
        self.assertIsNone(self.server.asking)

    def test_aPersonStillLogsIn(self) -> None:
        """After a few of each kind (what OpenSSH sends: none, keys asked, a prompt), the person's signed key logs in."""
        self.send(HEAD + NS(b"none"))
        self.send(HEAD + NS(b"keyboard-interactive") + NS(b"") + NS(b""))
        publickeyRequest(self.server, b"ops1+con1", self.key, signed=False)
        publickeyRequest(self.server, b"ops1+con1", self.key, signed=True)
        self.assertEqual(self.transport.packets[-1], (userauth.MSG_USERAUTH_SUCCESS, b""))
