"""
kick-old-user (ser2net's kickolduser): a client connecting to a full line
(max-clients) takes the place of the oldest person, who is told why and
disconnected; one the listener would not admit (allow=) costs nobody
their place.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.factory import LineFactory
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.specs import ConfigError
from serialgw.line.hub import Line
from tests.app.test_tap import parse
from tests.fakes import RecordingDevice, observeLog
from tests.realio import writeTemp


class KickOldUserTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.line = Line("rack4", RecordingDevice(), clock=Clock())
        self.line.maxClients = 1
        self.line.kickOld = True
        self.events: list[dict[str, Any]] = []
        observeLog(self, self.events.append)

    def connect(self, listener: str, port: int, host: str = "127.0.0.1") -> tuple[Any, StringTransport]:
        factory = LineFactory(self.line, parseListener(listener), clock=self.line.clock)
        address = IPv4Address("TCP", host, port)
        protocol = factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        if protocol is not None:
            protocol.makeConnection(transport)
        return protocol, transport

    def test_oldestMakesRoom(self) -> None:
        """max-clients 1: a second telnet client is attached, the first told who took its place and why, then disconnected; the log says so."""
        first, firstT = self.connect("telnet+4444", 5)
        firstT.clear()
        second, secondT = self.connect("telnet+4444", 6)
        self.assertEqual(firstT.value(), b"\r\n[serialgw: 127.0.0.1:6 took your place on rack4 (max-clients 1, "
                                          b"kick-old-user)]\r\n")
        self.assertTrue(firstT.disconnecting)
        self.assertFalse(secondT.disconnecting)
        self.assertEqual(self.line.clients, [second])
        self.assertIn("rack4: 127.0.0.1:5 disconnected: 127.0.0.1:6 took its place (max-clients 1, kick-old-user)",
                      [formatEvent(e) for e in self.events])

    def test_onlyTheOldestGoes(self) -> None:
        """max-clients 2: the third raw client takes the first one's place (a raw program is told nothing: its data stays clean); the second stays."""
        self.line.maxClients = 2
        first, firstT = self.connect("raw+4445", 5)
        second, secondT = self.connect("raw+4445", 6)
        third, _ = self.connect("raw+4445", 7)
        self.assertEqual((firstT.value(), firstT.disconnecting, secondT.disconnecting), (b"", True, False))
        self.assertEqual(self.line.clients, [second, third])

    def test_notAdmittedKicksNobody(self) -> None:
        """A connection from an address the listener does not allow is refused, the person there kept."""
        first, firstT = self.connect("telnet,allow=10.0.0.0/8+4444", 5, host="10.0.0.5")
        refused, _ = self.connect("telnet,allow=10.0.0.0/8+4444", 6)
        self.assertIsNone(refused)
        self.assertEqual((self.line.clients, firstT.disconnecting), ([first], False))

    def test_withoutItRefused(self) -> None:
        """Without kick-old-user the newcomer is refused as before, the person there kept."""
        self.line.kickOld = False
        first, firstT = self.connect("telnet+4444", 5)
        _, refusedT = self.connect("telnet+4444", 6)
        self.assertEqual(refusedT.value(), b"\r\n[serialgw: rack4 is full: 1 client (max-clients)]\r\n")
        self.assertEqual((self.line.clients, firstT.disconnecting), ([first], False))

    def test_readOnlyTakesNoWritersPlace(self) -> None:
        """A read-only newcomer (a ro listener) takes no writer's place: refused as on a full line, the writer kept (seen live: a ro connection disconnected the person typing, each time); nobody is kicked for nothing."""
        self.line.maxClients = 2
        first, firstT = self.connect("raw+4445", 5)
        second, secondT = self.connect("raw+4445", 6)
        refused, refusedT = self.connect("telnet,ro+4446", 7)
        self.assertEqual(refusedT.value(), b"\r\n[serialgw: rack4 is full: 2 clients (max-clients)]\r\n")
        self.assertEqual((self.line.clients, firstT.disconnecting, secondT.disconnecting), ([first, second], False,
                                                                                           False))

    def test_readOnlyTakesAReadOnlyOnesPlace(self) -> None:
        """A read-only newcomer takes the oldest read-only person's place, past older writers; a writer newcomer takes the oldest's, whatever its role."""
        self.line.maxClients = 3
        writer, writerT = self.connect("raw+4445", 5)
        watcher, watcherT = self.connect("raw,ro+4446", 6)
        later, laterT = self.connect("raw,ro+4446", 7)
        newcomer, _ = self.connect("raw,ro+4446", 8)
        self.assertEqual((writerT.disconnecting, watcherT.disconnecting, laterT.disconnecting), (False, True, False))
        self.assertEqual(self.line.clients, [writer, later, newcomer])
        typist, _ = self.connect("raw+4445", 9)
        self.assertEqual(self.line.clients, [later, newcomer, typist])

    def test_dialOutNeitherKicksNorIsKicked(self) -> None:
        """A dial-out (the gateway's own connection, made again at once when it goes) is not disconnected for a newcomer, nor does its reconnection take a person's place: each kicked the other in turn, for ever (seen live: a person connecting to a line at max-clients 1 with a dial-out was cut 1.7 s later by the dial-out's reconnection, and cut it again)."""
        dialOut, dialOutT = self.connect("tcp:192.0.2.5:4444", 4444, host="192.0.2.5")
        refused, refusedT = self.connect("raw+4445", 5)
        self.assertEqual((self.line.clients, dialOutT.disconnecting, refusedT.disconnecting), ([dialOut], False, True))
        self.line.detach(dialOut)
        person, personT = self.connect("raw+4445", 6)
        again, againT = self.connect("tcp:192.0.2.5:4444", 4444, host="192.0.2.5")
        self.assertEqual((self.line.clients, personT.disconnecting), ([person], False))
        self.assertEqual(againT.value(), b"\r\n[serialgw: rack4 is full: 1 client (max-clients)]\r\n")


class KickOldUserKeyTests(SynchronousTestCase):
    def test_key(self) -> None:
        """kick-old-user = true (a line's or [defaults]'); left out: false; with max-clients = 0 refused, naming the file's line."""
        text = '[defaults]\nmax-clients = 1\nkick-old-user = true\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
        (line,) = loadConfig(writeTemp(self, text))
        self.assertEqual((line.kickOldUser, line.maxClients), (True, 1))
        (plain,) = loadConfig(writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'))
        self.assertEqual(plain.kickOldUser, False)
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nmax-clients = 0\nkick-old-user = true\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:5: [lines.a] kick-old-user: means nothing with max-clients = 0 (no limit): the "
                               "line is never full, nobody makes room; give max-clients (ser2net's max-connections)")
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nkick-old-user = "yes"\n')
        said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        self.assertEqual(said, "FILE:4: [lines.a] kick-old-user: expected true or false, not 'yes'")

    def test_option(self) -> None:
        """--kick-old-user for the single line; with --max-clients 0 refused."""
        self.assertEqual(parse("--device", "/dev/ttyUSB0", "--max-clients", "1", "--kick-old-user")["lines"][0].kickOldUser,
                         True)
        from twisted.python.usage import UsageError

        error = self.assertRaises(UsageError, parse, "--device", "/dev/ttyUSB0", "--max-clients", "0", "--kick-old-user")
        self.assertEqual(str(error), "--kick-old-user means nothing with --max-clients 0 (no limit): the line is never full")
