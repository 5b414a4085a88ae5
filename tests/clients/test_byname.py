"""
One port for many consoles ([by-name]): the prompt, its bounds, what it
shows to whom, and the client of the chosen line it becomes.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients import byname, bynameprompt
from serialgw.clients.byname import ByNameFactory
from serialgw.clients.bynameprompt import ANSWER_TIME, LIST_MOST, NAME_MOST, PROMPT, NamePrompt
from serialgw.clients.handshakes import HandshakeTable
from serialgw.clients.raw import RawClient
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.telnet import TelnetClient
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import LogEvents, RecordingDevice

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


class Transport(StringTransport):
    """A StringTransport that says when it was aborted."""

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        self.loseConnection()


class ByNameTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.log = LogEvents(self)
        self.lines: dict[str, Line] = {}
        for name in ("web1", "db2", "secret"):
            self.lines[name] = Line(name, RecordingDevice(), clock=self.clock)
        self.lines["secret"].rights = Rights(write=("alice",))

    def tearDown(self) -> None:
        for line in self.lines.values():
            for client in list(line.clients):
                client.connectionLost(Failure(Exception("end")))  # type: ignore[attr-defined]
        # (Those still at the prompt: told they were too slow, then cut.)
        self.clock.advance(ANSWER_TIME)
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def factory(self, text: str = "raw+tcp:0", patterns: tuple[str, ...] = ("*",), **kw: Any) -> ByNameFactory:
        self.made = ByNameFactory(parseListener(text), patterns, lambda: self.lines, self.clock, **kw)
        return self.made

    def connect(self, factory: ByNameFactory, peer: Any = PEER) -> tuple[Any, Transport]:
        prompt = factory.buildProtocol(peer)
        assert prompt is not None
        transport = Transport(peerAddress=peer)
        prompt.makeConnection(transport)
        return prompt, transport

    def writes(self, name: str) -> list[bytes]:
        return [data for kind, data in self.lines[name].device.events if kind == "write"]  # type: ignore[attr-defined]

    def test_namedLineJoined(self) -> None:
        """A raw client is prompted, names a line, and is that line's client: its typing after Enter reaches the device, the device's output reaches it."""
        prompt, transport = self.connect(self.factory())
        self.assertEqual(transport.value(), PROMPT)
        self.assertEqual(PROMPT, b"console (? lists them): ")
        prompt.dataReceived(b"web1\r\nAT\r")
        line = self.lines["web1"]
        self.assertEqual([type(c) for c in line.clients], [RawClient])
        self.assertIs(prompt.inner, line.clients[0])
        self.assertEqual(self.writes("web1"), [b"AT\r"])
        transport.clear()
        line.deviceDataReceived(b"OK\r\n")
        self.assertEqual(transport.value(), b"OK\r\n")
        prompt.dataReceived(b"ATZ\r")
        self.assertEqual(self.writes("web1"), [b"AT\r", b"ATZ\r"])
        self.assertEqual(self.made.pending.total, 0)
        prompt.connectionLost(Failure(Exception("bye")))
        self.assertEqual(line.clients, [])

    def test_enterSplitAcrossReads(self) -> None:
        """A CR that ends one read and the LF (or telnet's NUL) that begins the next are one Enter: the LF is not typed to the line."""
        prompt, _ = self.connect(self.factory())
        prompt.dataReceived(b"web1\r")
        prompt.dataReceived(b"\nx")
        self.assertEqual(self.writes("web1"), [b"x"])

    def test_telnetClientOfTheLine(self) -> None:
        """On a telnet listener the chosen line's client is a telnet one, negotiating once chosen; the listener's ro makes it read-only."""
        prompt, transport = self.connect(self.factory("telnet,ro+tcp:0"))
        self.assertEqual(transport.value(), PROMPT)
        prompt.dataReceived(b"db2\r\x00")
        client = self.lines["db2"].clients[0]
        self.assertIsInstance(client, TelnetClient)
        self.assertIs(client.role, Role.READONLY)
        self.assertTrue(transport.value().startswith(PROMPT + b"\xff"))

    def test_telnetNegotiationRefusedAtThePrompt(self) -> None:
        """A telnet client's requests at the prompt are refused (WONT, DONT), its subnegotiations and commands skipped: only its typing is the name."""
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"\xff\xfd\x01w\xff\xfb\x1fe\xff\xfa\x1f\x00\x50\xff\xff\x00\x18\xff\xf0b\xff\xf1")
        self.assertEqual(transport.value(), b"\xff\xfc\x01\xff\xfe\x1f")
        prompt.dataReceived(b"1\r\n")
        self.assertEqual(len(self.lines["web1"].clients), 1)

    def test_negotiationFloodAnsweredOnce(self) -> None:
        """A peer repeating DO ECHO (and WONT, DONT) and never reading is refused once an option: the answers are bounded; WONT and DONT are not answered."""
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"\xff\xfd\x01\xff\xfc\x03\xff\xfe\x05" * 100000)
        self.assertEqual(transport.value(), b"\xff\xfc\x01")
        self.assertFalse(transport.disconnecting)

    def test_interruptProcessLeaves(self) -> None:
        """IAC IP (telnet's ^C: what a telnet client sends for it with localchars, or 'send ip') at the prompt leaves, as ^C does, what follows not read (it was skipped, the prompt kept); on a raw listener the two bytes are typed, no command."""
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"we\xff\xf4b1\r\n")
        self.assertEqual(transport.value(), b"\r\n[serialgw: bye: disconnected]\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.lines["web1"].clients, [])
        prompt.connectionLost(Failure(Exception("gone")))
        raw, rawT = self.connect(self.factory("raw+tcp:0"))
        rawT.clear()
        raw.dataReceived(b"web1\xff\xf4\n")
        self.assertEqual(rawT.value(), b"[serialgw: no console 'web1\\xff\\xf4' here]\r\n" + PROMPT)
        self.assertFalse(rawT.disconnecting)

    def test_endOfFileAndAbortLeave(self) -> None:
        """IAC EOF and IAC ABORT (RFC 1184: telnet's 'send eof', 'send abort'; ^D, ^\\) at the prompt leave as IAC IP does, what follows not read (both were skipped, the prompt kept); IAC SUSP is skipped."""
        for command in (b"\xec", b"\xee"):
            prompt, transport = self.connect(self.factory("telnet+tcp:0"))
            transport.clear()
            prompt.dataReceived(b"we\xff" + command + b"b1\r\n")
            self.assertEqual(transport.value(), b"\r\n[serialgw: bye: disconnected]\r\n", command)
            self.assertTrue(transport.disconnecting)
            self.assertEqual(self.lines["web1"].clients, [])
            prompt.connectionLost(Failure(Exception("gone")))
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"we\xff\xedb1\r\n")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.lines["web1"].clients), 1)

    def test_doubledIACIsNoName(self) -> None:
        """IAC IAC at the prompt is a byte 255 typed: no line's name holds it, and it is said as a name not found, escaped."""
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"web\xff\xff1\r\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'web\\xff1' here]\r\n" + PROMPT)
        self.assertEqual(self.lines["web1"].clients, [])

    def test_doubledIACFloodBounded(self) -> None:
        """A flood of IAC IAC (each a byte typed) closes the connection past NAME_MOST bytes, as any long name: nothing grows without bound."""
        prompt, transport = self.connect(self.factory("telnet+tcp:0"))
        transport.clear()
        prompt.dataReceived(b"\xff\xff" * 100000)
        self.assertEqual(transport.value(), b"\r\n[serialgw: a console's name is at most 128 characters: disconnected]\r\n")
        self.assertEqual(len(prompt._typed), NAME_MOST + 1)
        prompt.connectionLost(Failure(Exception("gone")))

    def test_unknownAndForbiddenSaidAlike(self) -> None:
        """A line of write/read (people) asked for over a listener that knows no person is answered as a line that is not there, and not listed."""
        prompt, transport = self.connect(self.factory())
        transport.clear()
        prompt.dataReceived(b"secret\n")
        secret = transport.value()
        transport.clear()
        prompt.dataReceived(b"nosuch\n")
        self.assertEqual(secret.replace(b"secret", b"nosuch"), transport.value())
        self.assertEqual(secret, b"[serialgw: no console 'secret' here]\r\n" + PROMPT)
        transport.clear()
        prompt.dataReceived(b"?\n")
        self.assertEqual(transport.value(), b"db2 web1\r\n" + PROMPT)
        self.assertEqual(self.lines["secret"].clients, [])

    def test_patternsFilter(self) -> None:
        """Lines outside the table's lines patterns are neither listed nor given; an empty answer lists too."""
        prompt, transport = self.connect(self.factory(patterns=("web*",)))
        transport.clear()
        prompt.dataReceived(b"\n")
        self.assertEqual(transport.value(), b"web1\r\n" + PROMPT)
        transport.clear()
        prompt.dataReceived(b"db2\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'db2' here]\r\n" + PROMPT)
        self.assertEqual(self.lines["db2"].clients, [])

    def test_noneToList(self) -> None:
        """A client that may use no line is told so when it asks for the list."""
        prompt, transport = self.connect(self.factory(patterns=("secret",)))
        transport.clear()
        prompt.dataReceived(b"?\r\n")
        self.assertEqual(transport.value(), b"(none you may use)\r\n" + PROMPT)

    def test_listBounded(self) -> None:
        """A list is at most LIST_MOST bytes of names, the rest counted."""
        for n in range(1000):
            self.lines[f"line{n:04d}"] = Line(f"line{n:04d}", RecordingDevice(), clock=self.clock)
        prompt, transport = self.connect(self.factory(patterns=("line*",)))
        transport.clear()
        prompt.dataReceived(b"?\n")
        text = transport.value()
        self.assertTrue(text.endswith(b" and 545 more\r\n" + PROMPT), text[-40:])
        self.assertEqual(len(text.split(b" and ")[0]), 455 * 9 - 1)
        self.assertLessEqual(len(text.split(b" and ")[0]), LIST_MOST)

    def test_neverReadingAsker(self) -> None:
        """A client that asks for the list again and again in one packet and never reads gets at most ANSWERS_MOST lists (each at most LIST_MOST bytes of names), then is closed: what waits for it is bounded."""
        for n in range(1000):
            self.lines[f"line{n:04d}"] = Line(f"line{n:04d}", RecordingDevice(), clock=self.clock)
        prompt, transport = self.connect(self.factory())
        prompt.dataReceived(b"?\n" * 10000)
        self.assertTrue(transport.disconnecting)
        text = transport.value()
        self.assertEqual(text.count(b" more\r\n"), 5)
        self.assertLessEqual(len(text), 5 * (LIST_MOST + 20 + len(PROMPT)) + 100)
        prompt.connectionLost(Failure(Exception("gone")))

    def test_listWorkBounded(self) -> None:
        """
        The lines looked at for lists on one listener are at most LIST_WORK in
        LIST_WINDOW seconds: each list looks at every line (about 10 us each:
        a list of 1000 lines held the reactor 9 ms, and connections asking it
        five times each, in a loop from one address, kept it busy without
        bound).  Past that the client is told, as an answer; a name is still
        taken; the next window lists again; one list a window however many lines.
        """
        self.patch(bynameprompt, "LIST_WORK", 3000)
        for n in range(997):
            self.lines[f"line{n:04d}"] = Line(f"line{n:04d}", RecordingDevice(), clock=self.clock)
        factory = self.factory()
        first, firstT = self.connect(factory)
        first.dataReceived(b"?\n?\n?\n")
        self.assertEqual(firstT.value().count(b" more\r\n"), 3)
        second, secondT = self.connect(factory, IPv4Address("TCP", "192.0.2.8", 40001))
        secondT.clear()
        second.dataReceived(b"?\n")
        self.assertEqual(secondT.value(), b"[serialgw: not listed: lists are asked for too often on this port now (at "
                                          b"most 3000 lines looked at in 10 s); type a console's name, or ? again "
                                          b"in a few seconds]\r\n" + PROMPT)
        self.assertEqual(second.answers, 1)
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "not listed" in e["log_format"]]
        self.assertEqual(said, ["by-name: 192.0.2.8:40001 asked for the list: not listed, 3000 lines looked at in 10 s "
                                "on this listener (at most 3000)"])
        second.dataReceived(b"web1\r")
        self.assertEqual([c.peer for c in self.lines["web1"].clients], ["192.0.2.8:40001"])
        self.clock.advance(bynameprompt.LIST_WINDOW)
        firstT.clear()
        first.dataReceived(b"?\n")
        self.assertTrue(firstT.value().endswith(b" more\r\n" + PROMPT))
        # More lines than LIST_WORK: one list a window.
        self.patch(bynameprompt, "LIST_WORK", 500)
        self.clock.advance(bynameprompt.LIST_WINDOW)
        third, thirdT = self.connect(factory, IPv4Address("TCP", "192.0.2.9", 40002))
        third.dataReceived(b"?\n?\n")
        self.assertEqual(thirdT.value().count(b" more\r\n"), 1)
        self.assertEqual(thirdT.value().count(b"not listed"), 1)

    def test_nameTooLong(self) -> None:
        """A name past NAME_MOST characters closes the connection at once, said (a client sending without end holds nothing)."""
        prompt, transport = self.connect(self.factory())
        transport.clear()
        prompt.dataReceived(b"a" * NAME_MOST)
        self.assertFalse(transport.disconnecting)
        prompt.dataReceived(b"a" * 100000)
        self.assertEqual(transport.value(), b"\r\n[serialgw: a console's name is at most 128 characters: disconnected]\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(prompt._typed), NAME_MOST + 1)
        prompt.dataReceived(b"web1\n")
        self.assertEqual(self.lines["web1"].clients, [])
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.aborted)
        prompt.connectionLost(Failure(Exception("gone")))

    def test_tooSlow(self) -> None:
        """A client that names no line within ANSWER_TIME s is told and closed; one that never reads is cut CLOSE_GRACE s later."""
        prompt, transport = self.connect(self.factory())
        prompt.dataReceived(b"web")
        self.clock.advance(ANSWER_TIME - 0.5)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.5)
        self.assertEqual(transport.value(), PROMPT + b"\r\n[serialgw: no console named within 30 s: disconnected]\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.made.pending.total, 0)
        self.clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.aborted)
        prompt.connectionLost(Failure(Exception("gone")))

    def test_answersBounded(self) -> None:
        """Five answers that name no line (lists, wrong names, empty lines) and the connection is closed: a script cannot ask for ever."""
        prompt, transport = self.connect(self.factory())
        prompt.dataReceived(b"?\nx\n\ny\n")
        self.assertFalse(transport.disconnecting)
        transport.clear()
        prompt.dataReceived(b"z\nweb1\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'z' here]\r\n"
                                            b"\r\n[serialgw: 5 answers and no console: disconnected]\r\n")
        self.assertEqual(self.lines["web1"].clients, [])
        prompt.connectionLost(Failure(Exception("gone")))

    def test_controlKeys(self) -> None:
        """Backspace (DEL, ^H) takes back a key; ^C or ^D leave; other control characters are part of a name no line has, shown escaped."""
        prompt, transport = self.connect(self.factory())
        prompt.dataReceived(b"wex\x7fb2\x081\n")
        self.assertEqual(len(self.lines["web1"].clients), 1)
        prompt2, transport2 = self.connect(self.factory())
        transport2.clear()
        prompt2.dataReceived(b"\x1b[31mweb1\n")
        self.assertEqual(transport2.value(), b"[serialgw: no console '\\x1b[31mweb1' here]\r\n" + PROMPT)
        transport2.clear()
        prompt2.dataReceived(b"we\x03b1\n")
        self.assertEqual(transport2.value(), b"\r\n[serialgw: bye: disconnected]\r\n")
        prompt2.connectionLost(Failure(Exception("gone")))

    def test_pendingBounded(self) -> None:
        """At most 8 connections from one address wait at the prompt, 64 in all; past that they are refused at accept; a chosen line frees the place."""
        factory = self.factory()
        prompts = [self.connect(factory)[0] for _ in range(8)]
        self.assertIsNone(factory.buildProtocol(PEER))
        prompts[0].dataReceived(b"web1\n")
        self.assertIsNotNone(self.connect(factory)[0])
        others = [self.connect(factory, IPv4Address("TCP", f"198.51.100.{n}", 5000))[0] for n in range(56)]
        self.assertEqual(factory.pending.total, 64)
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "203.0.113.1", 5000)))
        refusals = [formatEvent(e) for e in self.log.at(LogLevel.warn)]
        self.assertEqual(refusals, ["by-name: connection from 192.0.2.7:40000 refused: 8 at the prompt already from "
                                    "there (at most 8)", "by-name: connection from 203.0.113.1:5000 refused: 64 at "
                                    "the prompt already (at most 64)"])
        factory.closeAll()
        for prompt in prompts[1:] + others:
            self.assertTrue(prompt.transport.disconnecting)
            self.assertTrue(prompt.transport.value().endswith(b"[serialgw: the gateway is stopping: disconnected]\r\n"))
            prompt.connectionLost(Failure(Exception("gone")))
        self.assertEqual((factory.pending.total, factory.pending.bySource), (0, {}))

    def test_allowRefusedAtAccept(self) -> None:
        """The listener's allow= refuses an address at accept, before any prompt."""
        factory = self.factory("raw,allow=10.0.0.0/8+tcp:0")
        self.assertIsNone(factory.buildProtocol(PEER))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.1.2.3", 5000)))

    def test_fullLine(self) -> None:
        """A full line (max-clients) refuses the client that names it, saying so, as its own listener does."""
        line = self.lines["web1"]
        line.maxClients = 1
        first, _ = self.connect(self.factory())
        first.dataReceived(b"web1\n")
        second, transport = self.connect(self.factory())
        transport.clear()
        second.dataReceived(b"web1\n")
        self.assertEqual(transport.value(), b"\r\n[serialgw: web1 is full: 1 client (max-clients)]\r\n")
        self.assertEqual(len(line.clients), 1)
        second.connectionLost(Failure(Exception("gone")))

    def test_kickOldUser(self) -> None:
        """kick-old-user: a client that names a full line takes the oldest one's place."""
        line = self.lines["web1"]
        line.maxClients, line.kickOld = 1, True
        first, one = self.connect(self.factory())
        first.dataReceived(b"web1\n")
        second, _ = self.connect(self.factory())
        second.dataReceived(b"web1\n")
        self.assertIs(line.clients[0], second.inner)
        self.assertTrue(one.disconnecting)
        first.connectionLost(Failure(Exception("gone")))

    def test_choosingInALoopLogsBounded(self) -> None:
        """A client connecting and choosing a line 100 times writes at most the listener's budget of 'chose' lines (each was one)."""
        factory = self.factory()
        for _ in range(100):
            prompt, _ = self.connect(factory)
            prompt.dataReceived(b"web1\n")
            prompt.connectionLost(Failure(Exception("gone")))
        chose = [e for e in self.log.events if "chose" in e.get("log_format", "")]
        self.assertLessEqual(len(chose), 20)

    def test_connectionLostAtPrompt(self) -> None:
        """A client that leaves at the prompt leaves no timer and no place taken."""
        factory = self.factory()
        prompt, _ = self.connect(factory)
        prompt.connectionLost(Failure(Exception("gone")))
        self.assertEqual((factory.pending.total, factory.prompts), (0, set()))

    def test_unknownNameLogged(self) -> None:
        """A name not found is logged with the peer and the name as typed (escaped), within the listener's budget."""
        prompt, _ = self.connect(self.factory())
        prompt.dataReceived(b"secret\n")
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "asked for" in e["log_format"]]
        self.assertEqual(said, ["by-name: 192.0.2.7:40000 asked for 'secret': no line of that name it may use"])
        self.assertEqual(self.log.at(LogLevel.info)[-1]["budget"], "by-name listener raw+tcp:0")

    def test_longNameCutWithItsLength(self) -> None:
        """A name of 100 characters not found: its first 64 and its length, in the log and to the client (it was cut without a word)."""
        prompt, transport = self.connect(self.factory())
        transport.clear()
        prompt.dataReceived(b"x" * 100 + b"\n")
        shown = "'" + "x" * 64 + "'... (100 characters)"
        said = [formatEvent(e) for e in self.log.at(LogLevel.info) if "asked for" in e["log_format"]]
        self.assertEqual(said, [f"by-name: 192.0.2.7:40000 asked for {shown}: no line of that name it may use"])
        self.assertTrue(transport.value().startswith(f"[serialgw: no console {shown} here]\r\n".encode()), transport.value())


class PeopleTests(SynchronousTestCase):
    """Over TLS with client certificates (ca=), a certificate's CN is a person, and the chosen line's write / read decide."""

    def setUp(self) -> None:
        from tests.certs import Authority

        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.spec = f"tls:0:cert={cert}:key={key}:ca={ca.path}"
        self.plain = f"tls:0:cert={cert}:key={key}"
        self.clock = Clock()
        self.lines = {name: Line(name, RecordingDevice(), clock=self.clock) for name in ("open", "ops", "watch")}
        self.lines["ops"].rights = Rights(write=("alice",))
        self.lines["watch"].rights = Rights(write=("alice",), read=("carol",))
        self.subject = "carol"
        from serialgw.clients import factory as factoryModule
        from serialgw.clients import session as sessionModule

        # (What the handshake's certificate would say, where each module asks it.)
        for module in (byname, factoryModule, sessionModule):
            self.patch(module, "peerSubject", lambda transport: self.subject)

    def connect(self, spec: str) -> tuple[Any, Any]:
        factory = ByNameFactory(parseListener(spec), ("*",), lambda: self.lines, self.clock, HandshakeTable())
        gate = factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        gate.makeConnection(transport)
        self.assertEqual(transport.value(), b"")
        gate.handshakeCompleted()
        self.assertEqual(transport.value(), PROMPT)
        transport.clear()
        return gate, transport

    def test_personSeesTheirLines(self) -> None:
        """carol is listed the lines she may use (not ops), is read-only on watch, and ops is not there to her."""
        gate, transport = self.connect(self.spec)
        gate.dataReceived(b"?\n")
        self.assertEqual(transport.value(), b"open watch\r\n" + PROMPT)
        transport.clear()
        gate.dataReceived(b"ops\n")
        self.assertEqual(transport.value(), b"[serialgw: no console 'ops' here]\r\n" + PROMPT)
        gate.dataReceived(b"watch\n")
        self.assertEqual(gate.client.peer, "carol (192.0.2.7:40000)")
        client = self.lines["watch"].clients[0]
        self.assertIs(client.role, Role.READONLY)
        # The person is the session's, as through the line's own TLS listener: reloads of write / read reach it.
        self.assertEqual((client.user, client.peer), ("carol", "192.0.2.7:40000 (carol)"))
        gate.connectionLost(Failure(Exception("gone")))
        self.assertEqual(self.lines["watch"].clients, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_writerPerson(self) -> None:
        """alice writes on ops."""
        self.subject = "alice"
        gate, _ = self.connect(self.spec)
        gate.dataReceived(b"ops\n")
        self.assertIs(self.lines["ops"].clients[0].role, Role.WRITER)
        gate.connectionLost(Failure(Exception("gone")))

    def test_readonlySubject(self) -> None:
        """The listener's readonly= makes a certificate read-only on the line it chooses, though the line lets it write."""
        self.subject = "alice"
        gate, _ = self.connect(self.spec + ":subjects=bob:readonly=alice")
        gate.dataReceived(b"ops\n")
        self.assertIs(self.lines["ops"].clients[0].role, Role.READONLY)
        gate.connectionLost(Failure(Exception("gone")))

    def test_noPersonWithoutCA(self) -> None:
        """TLS without ca= knows no person: lines with write / read are not there to its clients."""
        gate, transport = self.connect(self.plain)
        gate.dataReceived(b"\n")
        self.assertEqual(transport.value(), b"open\r\n" + PROMPT)
        gate.connectionLost(Failure(Exception("gone")))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class PromptIsProtocolTests(SynchronousTestCase):
    def test_noticesNothingBeforeConnection(self) -> None:
        """A prompt made and never connected (a refused TLS handshake) leaves no count behind when it is lost."""
        factory = ByNameFactory(parseListener("raw+tcp:0"), ("*",), lambda: {}, Clock())
        prompt = NamePrompt(factory, PEER)
        prompt.connectionLost(Failure(Exception("gone")))
        self.assertEqual(factory.pending.total, 0)
