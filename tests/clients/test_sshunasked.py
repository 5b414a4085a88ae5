"""
What a logged-in SSH client sends that the gateway never asked for, or cut
short where conch reads it unchecked: answers to a channel open (the
gateway opens none), requests without their want-reply byte.  Each ends
that connection with one log line; the session leaves its line.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.conch.ssh import connection, transport
from twisted.conch.ssh.common import NS, getNS
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.ssh import Connection, GatewaySSHFactory
from serialgw.clients.sshauth import KeyRing, Login
from serialgw.clients.sshsession import SSHClient
from serialgw.config.sshkeys import printable
from serialgw.logflood import OWN_ERRORS, PeerLimiter
from tests.clients.test_ssh import Harness, Tcp, newKey, sent
from tests.fakes import LogEvents


class UnaskedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.events = LogEvents(self)
        self.h = Harness()
        self.line = self.h.lines["con1"]
        factory = GatewaySSHFactory(newKey(), KeyRing(()), self.h.gateway)
        self.transport = factory.buildProtocol(IPv4Address("TCP", "192.0.2.7", 1))
        self.tcp = Tcp()
        self.transport.makeConnection(self.tcp)
        self.conn = Connection()
        self.transport.setService(self.conn)
        self.channel = SSHClient(self.h.gateway, Login("ro1", "con1"), remoteWindow=1 << 20, remoteMaxPacket=32768,
                                conn=self.conn)
        self.conn.getChannel = lambda *a: self.channel  # type: ignore[method-assign]
        self.conn.ssh_CHANNEL_OPEN(NS(b"session") + struct.pack(">3L", 6, 1 << 20, 32768))
        self.send(connection.MSG_CHANNEL_REQUEST, struct.pack(">L", self.channel.id) + NS(b"shell") + b"\x00")
        self.assertEqual(self.line.clients, [self.channel])

    def send(self, number: int, payload: bytes) -> None:
        self.transport.dispatchMessage(number, payload)

    def said(self) -> list[tuple[int, str]]:
        return [(e["log_level"], e["log_format"]) for e in self.events.events
                if e["log_level"] >= LogLevel.info and e.get("log_namespace", "").startswith("serialgw")
                and e["log_namespace"] != "serialgw.line.hub"]

    def lost(self) -> None:
        self.transport.connectionLost(Failure(ConnectionDone()))

    def assertCut(self, words: str) -> None:
        self.assertTrue(self.tcp.disconnecting)
        [(level, text)] = self.said()
        self.assertEqual(level, LogLevel.info)
        self.assertIn(words, text)
        self.assertEqual([e for e in self.events.events if e["log_level"] >= LogLevel.error], [])

    def test_openFailureForTheSessionCuts(self) -> None:
        """A client's channel open failure naming the session's channel disconnects it, logged; its session leaves the line when the connection goes (conch dropped the channel from its table: the connection's end raised KeyError in the reactor, a traceback, and the session stayed on its line for good, holding a place of max-clients and of its person's)."""
        self.send(connection.MSG_CHANNEL_OPEN_FAILURE,
                  struct.pack(">2L", self.channel.id, 2) + NS(b"\x1b[2Jno") + NS(b""))
        self.assertCut("an answer to a channel open the gateway never sent")
        self.lost()
        self.assertEqual((self.line.clients, self.h.gateway.sessionsOf("ro1")), ([], 0))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_openConfirmationCannotShrinkPackets(self) -> None:
        """A client's channel open confirmation naming the session's channel disconnects it, logged, its packet size as opened (conch took it: a maximum packet of 1 byte, refused at the open, a packet a byte of the line's output)."""
        self.send(connection.MSG_CHANNEL_OPEN_CONFIRMATION, struct.pack(">4L", self.channel.id, 6, 1 << 30, 1))
        self.assertEqual((self.channel.remoteMaxPacket, self.channel.remoteWindowLeft), (32768, 1 << 20))
        self.assertCut("an answer to a channel open the gateway never sent")
        self.lost()
        self.assertEqual(self.line.clients, [])

    def test_requestWithoutWantReply(self) -> None:
        """A channel or global request, or a debug message, cut before a byte conch reads is a malformed packet: one line naming the message and what is wrong, disconnected (conch's ord() of nothing raised TypeError, a traceback a connection outside the log's budget)."""
        for number, payload, name in (
                (connection.MSG_CHANNEL_REQUEST, struct.pack(">L", self.channel.id) + NS(b"break"),
                 "MSG_CHANNEL_REQUEST"),
                (connection.MSG_GLOBAL_REQUEST, NS(b"keepalive@openssh.com"), "MSG_GLOBAL_REQUEST"),
                (transport.MSG_DEBUG, b"", "MSG_DEBUG")):
            self.setUp()
            self.send(number, payload)
            self.assertCut("malformed packet")
            [event] = [e for e in self.events.events if "malformed" in e["log_format"]]
            self.assertEqual((event["address"], event["number"], event["name"], event["error"]),
                             ("192.0.2.7:40000", number, name, "cut short: a field missing at its end"))
            self.lost()
            self.assertEqual(self.line.clients, [])

    def test_ownErrorIsNotTheClients(self) -> None:
        """A TypeError of the gateway's own while handling a client's packet is said as the gateway's error, its traceback logged, naming the client and the message; that connection alone ends, the line's other clients go on (it was said as the client's malformed packet, at info, the traceback never seen)."""
        other, conn = self.h.channel("ops1")
        self.assertTrue(other.requestReceived(b"shell", b""))

        def broken(data: bytes) -> None:
            raise TypeError("a bug of the gateway's")

        self.channel.dataReceived = broken  # type: ignore[method-assign]
        self.send(connection.MSG_CHANNEL_DATA, struct.pack(">L", self.channel.id) + NS(b"typed"))
        self.assertTrue(self.tcp.disconnecting)
        [event] = [e for e in self.events.events if e["log_level"] >= LogLevel.error]
        self.assertEqual((event["log_level"], event["address"], event["number"], event["name"]),
                         (LogLevel.critical, "192.0.2.7:40000", connection.MSG_CHANNEL_DATA, "MSG_CHANNEL_DATA"))
        self.assertIn("the gateway's error, not the client's", event["log_format"])
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.assertEqual([e for e in self.said() if "malformed" in e[1]], [])
        self.lost()
        self.assertEqual(self.line.clients, [other])
        self.line.deviceDataReceived(b"still here")
        self.assertTrue(sent(conn, other).endswith(b"still here"))

    def test_ownErrorsBoundedTogether(self) -> None:
        """The gateway's own errors in SSH packet handling (critical) pass the log limiter in one budget for every client's (logflood.OWN_ERRORS): 20 a minute, the rest counted (the limiter passed critical events untouched: a bug any client could reach logged a traceback a connection, 25 connections from 25 addresses 25 tracebacks)."""
        events: list[dict[str, Any]] = []
        limiter = PeerLimiter(events.append, now=lambda: 1000.0)

        def broken(data: bytes) -> None:
            raise ValueError("a bug of the gateway's")

        for n in range(25):
            self.setUp()
            self.channel.dataReceived = broken  # type: ignore[method-assign]
            self.send(connection.MSG_CHANNEL_DATA, struct.pack(">L", self.channel.id) + NS(b"typed"))
            [event] = [e for e in self.events.events if e["log_level"] >= LogLevel.error]
            self.assertEqual(event["log_level"], LogLevel.critical)
            limiter(dict(event, peer=f"192.0.2.{n}"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 25)
        self.assertEqual([e["peer"] for e in events], [f"192.0.2.{n}" for n in range(20)])
        self.assertEqual(limiter.budgets[OWN_ERRORS].left, 5)

    def test_ownKeyValueIndexErrorsAreNotTheClients(self) -> None:
        """A KeyError, ValueError, IndexError or struct.error of the gateway's own while handling a client's packet, raised in our code or in conch's that ours called (a session's typing), is said as the gateway's error with its traceback, that connection alone ended (f53b53b saw TypeError only: these were said at info as the client's malformed packet, the traceback never seen)."""
        def conchOfOurs(data: bytes) -> None:
            getNS(b"\x00\x00")  # (conch's parsing, of bytes of ours)

        for error in (KeyError("a bug of the gateway's"), ValueError("a bug of the gateway's"),
                      IndexError("a bug of the gateway's"), None):
            self.setUp()

            def broken(data: bytes, error: Any = error) -> None:
                raise error

            self.channel.dataReceived = broken if error is not None else conchOfOurs  # type: ignore[method-assign]
            self.send(connection.MSG_CHANNEL_DATA, struct.pack(">L", self.channel.id) + NS(b"typed"))
            self.assertTrue(self.tcp.disconnecting)
            [event] = [e for e in self.events.events if e["log_level"] >= LogLevel.error]
            self.assertEqual((event["log_level"], event["number"], event["name"]),
                             (LogLevel.critical, connection.MSG_CHANNEL_DATA, "MSG_CHANNEL_DATA"))
            self.assertIn("the gateway's error, not the client's", event["log_format"])
            self.assertEqual(len(self.flushLoggedErrors(type(error) if error is not None else struct.error)), 1)
            self.assertEqual([e for e in self.said() if "malformed" in e[1]], [])
            self.lost()
            self.assertEqual(self.line.clients, [])

    def test_clientsBytesStayTheClients(self) -> None:
        """What conch raises reading a client's packet, through our handlers of its messages or not, is the client's malformed packet: one line at info naming the message and the error, no traceback."""
        for number, payload, name, error in (
                (connection.MSG_CHANNEL_DATA, struct.pack(">L", 99) + NS(b"typed"), "MSG_CHANNEL_DATA", "KeyError(99)"),
                (connection.MSG_CHANNEL_DATA, b"\x00\x00", "MSG_CHANNEL_DATA",
                 "error('unpack requires a buffer of 8 bytes')"),
                (connection.MSG_CHANNEL_EXTENDED_DATA, struct.pack(">L", self.channel.id), "MSG_CHANNEL_EXTENDED_DATA",
                 "error('unpack requires a buffer of 12 bytes')"),
                (connection.MSG_CHANNEL_WINDOW_ADJUST, struct.pack(">2L", 99, 5), "MSG_CHANNEL_WINDOW_ADJUST",
                 "KeyError(99)"),
                (connection.MSG_CHANNEL_CLOSE, b"", "MSG_CHANNEL_CLOSE", "error('unpack requires a buffer of 4 bytes')"),
        ):
            self.setUp()
            self.send(number, payload)
            self.assertCut("malformed packet")
            [event] = [e for e in self.events.events if "malformed" in e["log_format"]]
            self.assertEqual((event["number"], event["name"], event["error"]), (number, name, error))
            self.assertEqual(self.flushLoggedErrors(), [])
            self.lost()
            self.assertEqual(self.line.clients, [])

    def test_keyExchangeValueStaysTheClients(self) -> None:
        """A key exchange's public value that is none (cryptography raises ValueError on the client's bytes, called by conch) is the client's malformed packet, said at info, no traceback."""
        fresh = GatewaySSHFactory(newKey(), KeyRing(()), self.h.gateway).buildProtocol(IPv4Address("TCP", "192.0.2.8", 2))
        tcp = Tcp()
        fresh.makeConnection(tcp)
        for kexAlg, point in ((b"ecdh-sha2-nistp256", b"\x04" + b"\x01" * 64), (b"curve25519-sha256", b"\x01" * 5)):
            self.events.events.clear()
            fresh.kexAlg, fresh.keyAlg = kexAlg, b"ssh-ed25519"
            fresh.dispatchMessage(transport.MSG_KEXDH_INIT, NS(point))
            [event] = [e for e in self.events.events if "malformed" in e["log_format"]]
            self.assertEqual((event["log_level"], event["name"]), (LogLevel.info, "MSG_KEX_DH_GEX_REQUEST_OLD"))  # (30: conch names it so)
            self.assertIn("ValueError", event["error"])
            self.assertEqual([e for e in self.events.events if e["log_level"] >= LogLevel.error], [])
            tcp.disconnecting = False
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_ownErrorInARequestSaid(self) -> None:
        """A request whose handling raises an error of the gateway's is refused and said, its traceback logged (conch answered it with a refusal and nothing was said)."""
        def broken(client: Any, duration: Any = None) -> bool:
            raise TypeError("a bug of the gateway's")

        self.line.clientBreak = broken  # type: ignore[method-assign]
        self.send(connection.MSG_CHANNEL_REQUEST, struct.pack(">L", self.channel.id) + NS(b"break") + b"\x01"
                  + struct.pack(">L", 500))
        [event] = [e for e in self.events.events if e["log_level"] >= LogLevel.error]
        self.assertEqual((event["log_level"], event["request"]), (LogLevel.critical, "break"))
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
        self.assertFalse(self.tcp.disconnecting)
        self.assertEqual(self.line.clients, [self.channel])

    def test_nothingSentAfterTheCut(self) -> None:
        """After the cut nothing the client sends is looked at: its typing after it reaches no device, and nothing more is logged."""
        self.send(connection.MSG_CHANNEL_OPEN_FAILURE, struct.pack(">2L", self.channel.id, 2) + NS(b"") + NS(b""))
        self.send(connection.MSG_CHANNEL_DATA, struct.pack(">L", self.channel.id) + NS(b"more"))
        self.assertEqual(len(self.said()), 1)
        self.lost()
        self.assertEqual(self.device(), [])

    def device(self) -> list[Any]:
        return [event for event in self.h.devices["con1"].events if event[0] == "write"]


class _Counted(str):
    """A text that counts the characters looked at one by one."""

    looked = 0

    def __iter__(self) -> Any:
        for c in str.__iter__(self):
            _Counted.looked += 1
            yield c


class LongNamesTests(SynchronousTestCase):
    def test_printableLooksAtItsCutOnly(self) -> None:
        """printable() (every client-given name in the log) looks at the 64 characters it keeps, not the whole text: a 256 KiB global request name cost the gateway's thread 7 ms, and a person sending them at their 4 MiB a second 14% of a core (measured live; 1.7% now)."""
        _Counted.looked = 0
        text = _Counted("\x1b" + "A" * 262143)
        self.assertEqual(printable(text), "?" + "A" * 63 + "... (262144 characters)")
        self.assertLessEqual(_Counted.looked, 64)

    def test_longGlobalRequestLoggedCut(self) -> None:
        """A global request with a 256 KiB name is refused and logged with its first 64 characters, made printable, and its length (it was cut to 40 without a word)."""
        events = LogEvents(self)
        conn = Connection()
        conn.transport = type("T", (), {"transport": Tcp()})()  # type: ignore[assignment]
        self.assertEqual(conn.gotGlobalRequest(b"\xff\x1b" + b"x" * 262142, b""), 0)
        [said] = [e for e in events.events if e.get("log_namespace", "").startswith("serialgw.clients")]
        self.assertEqual(said["request"], "\\xff\\x1b" + "x" * 62 + "... (262144 bytes)")
