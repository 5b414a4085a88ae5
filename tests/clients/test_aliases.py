"""
A line's aliases (conserver's aliases): the line is reached under each of
them as under its name, at a [by-name] prompt and as an SSH user name,
with the line's own rights and bounds; an alias gives no line its patterns
or rights do not.
"""

from __future__ import annotations

import struct

from twisted.conch.ssh.common import NS
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lines import retuneLine
from serialgw.clients.byname import ByNameFactory
from serialgw.clients.bynameprompt import ANSWER_TIME
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.config.listeners import parseListener
from serialgw.config.parsers import parseDevice
from serialgw.config.people import Rights
from serialgw.config.specs import LineConfig
from serialgw.line.hub import Line, lineNamed
from serialgw.line.role import Role
from tests.clients.test_byname import PEER, Transport
from tests.clients.test_ssh import Harness
from tests.fakes import RecordingDevice


class LineNamedTests(SynchronousTestCase):
    def test_nameThenAlias(self) -> None:
        """A line's own name finds it, so does each of its aliases; anything else finds none."""
        clock = Clock()
        web1, db2 = Line("web1", RecordingDevice(), clock=clock), Line("db2", RecordingDevice(), clock=clock)
        web1.aliases = ("rack4-web1", "10.0.4.11")
        lines = {"web1": web1, "db2": db2}
        self.assertIs(lineNamed(lines, "web1"), web1)
        self.assertIs(lineNamed(lines, "10.0.4.11"), web1)
        self.assertIs(lineNamed(lines, "db2"), db2)
        self.assertIsNone(lineNamed(lines, "rack4-db2"))
        self.assertIsNone(lineNamed(lines, "Web1"))


class ByNameAliasTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.lines = {name: Line(name, RecordingDevice(), clock=self.clock) for name in ("web1", "db2", "secret")}
        self.lines["web1"].aliases = ("old-web1",)
        self.lines["db2"].aliases = ("rack4-db2",)
        self.lines["secret"].aliases = ("open",)
        self.lines["secret"].rights = Rights(write=("alice",))

    def tearDown(self) -> None:
        for line in self.lines.values():
            for client in list(line.clients):
                client.connectionLost(Failure(Exception("end")))  # type: ignore[attr-defined]
        self.clock.advance(ANSWER_TIME)
        self.clock.advance(CLOSE_GRACE)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def connect(self, patterns: tuple[str, ...] = ("*",)) -> tuple[object, Transport]:
        factory = ByNameFactory(parseListener("raw+tcp:0"), patterns, lambda: self.lines, self.clock)
        prompt = factory.buildProtocol(PEER)
        transport = Transport(peerAddress=PEER)
        prompt.makeConnection(transport)
        transport.clear()
        return prompt, transport

    def test_aliasJoinsTheLine(self) -> None:
        """An alias typed at the prompt joins its line, as its name does: typing after Enter reaches that line's device."""
        prompt, transport = self.connect()
        prompt.dataReceived(b"old-web1\r\nAT\r")  # type: ignore[attr-defined]
        line = self.lines["web1"]
        self.assertEqual(len(line.clients), 1)
        self.assertIs(prompt.inner, line.clients[0])  # type: ignore[attr-defined]
        self.assertEqual(line.device.events, [("write", b"AT\r")])  # type: ignore[attr-defined]

    def test_aliasGivesNothingMore(self) -> None:
        """An alias of a line outside the listener's patterns, or of a line with write / read to a client that is no person, is answered as a name not there."""
        prompt, transport = self.connect(("web*",))
        prompt.dataReceived(b"rack4-db2\r\n")  # type: ignore[attr-defined]
        self.assertIn(b"no console 'rack4-db2' here", transport.value())
        transport.clear()
        prompt.dataReceived(b"open\r\n")  # type: ignore[attr-defined]
        self.assertIn(b"no console 'open' here", transport.value())
        self.assertEqual([len(line.clients) for line in self.lines.values()], [0, 0, 0])


class SSHAliasTests(SynchronousTestCase):
    def test_userNameAnAlias(self) -> None:
        """An SSH user name (or exec command) that is an alias attaches to its line, with the line's rights: a person it gives read only to is read-only; one it gives nothing is refused as for the name."""
        h = Harness()
        h.lines["con1"].aliases = ("rack4-con1",)
        h.lines["con1"].rights = Rights(write=("ops1",), read=("ops2",))
        channel, conn = h.channel(lineName="rack4-con1")
        self.assertTrue(channel.requestReceived(b"shell", b""))
        self.assertEqual((h.lines["con1"].clients, channel.role), ([channel], Role.WRITER))
        reader, _ = h.channel(user="ops2", lineName="whatever")
        self.assertTrue(reader.requestReceived(b"exec", NS(b"rack4-con1")))
        self.assertIs(reader.role, Role.READONLY)
        stranger, strangerConn = h.channel(user="ops3", lineName="rack4-con1")
        self.assertTrue(stranger.requestReceived(b"shell", b""))
        h.clock.advance(0)
        self.assertEqual(strangerConn.extData[stranger],
                         [(1, b"serialgw: 'rack4-con1' is not a line you may use; you may use none\n")])
        self.assertEqual(strangerConn.requests[stranger], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertEqual(len(h.lines["con1"].clients), 2)


class ReloadTests(SynchronousTestCase):
    def test_reloadSetsAliases(self) -> None:
        """A reload's aliases are the line's from then on (an alias taken out no longer finds it); those on the line stay."""
        clock = Clock()
        line = Line("web1", RecordingDevice(), clock=clock)
        old = LineConfig(name="web1", device=parseDevice("/dev/ttyUSB0"), listeners=(), aliases=("a1",))
        line.aliases = old.aliases
        retuneLine(line, old, LineConfig(name="web1", device=old.device, listeners=(), aliases=("a2", "a3")))
        self.assertEqual(line.aliases, ("a2", "a3"))
        self.assertIsNone(lineNamed({"web1": line}, "a1"))
        self.assertIs(lineNamed({"web1": line}, "a3"), line)
