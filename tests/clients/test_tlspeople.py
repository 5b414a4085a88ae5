"""
A TLS client certificate's CN is a person: how many TLS sessions it may
have on all lines together is [tls] sessions-per-person (32 by default),
set at the start and by a reload; SSH sessions, bounded by [ssh]'s own
setting, are not counted in it.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.clients import factory as factoryModule
from serialgw.clients.factory import LineFactory
from serialgw.clients.handshakes import HandshakeTable
from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.people import Rights
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.certs import Authority
from tests.fakes import LogEvents, RecordingClient, RecordingDevice, RecordingPort


class PeopleOnAllLinesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = LogEvents(self)
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        self.spec = parseListener(f"tls:0:cert={cert}:key={key}:ca={ca.path}")
        self.table = HandshakeTable()
        self.subject = "carol"
        self.patch(factoryModule, "peerSubject", lambda transport: self.subject)

    def lines(self, count: int) -> tuple[list[Line], list[LineFactory]]:
        lines = [Line(f"l{n}", RecordingDevice(), clock=Clock()) for n in range(count)]
        for line in lines:
            line.rights = Rights(write=("alice",), read=("*",))
        return lines, [LineFactory(line, self.spec, clock=Clock(), inFlight=self.table) for line in lines]

    def admit(self, line: Line, factory: LineFactory, user: str = "carol") -> bool:
        """A client of C{user} admitted on C{line} (and attached) or not."""
        client = RecordingClient(user, Role.READONLY)
        client.person, client.user, client.line = True, user, line  # type: ignore[attr-defined]
        if not factory._admit(StringTransport(), client):
            return False
        line.attach(client)
        return True

    def refusals(self) -> list[str]:
        return [formatEvent(e) for e in self.log.at(LogLevel.warn) if "on all lines" in e["log_format"]]

    def test_boundIsTheSetting(self) -> None:
        """With sessions-per-person 40, a CN has 40 TLS sessions on 5 lines (8 each, the bound a line), the 41st refused, said with the setting's name; it was 32 whatever the file said (a log collector on more than 32 lines was refused)."""
        self.table.sessionsPerPerson = 40
        lines, factories = self.lines(6)
        for n in range(40):
            self.assertTrue(self.admit(lines[n // 8], factories[n // 8]), n)
        self.assertFalse(self.admit(lines[5], factories[5]))
        self.assertEqual(self.refusals(), ["l5: TLS client 192.168.1.1:54321 (carol) refused: 40 sessions of carol on "
                                           "all lines already (at most 40 a person: [tls] sessions-per-person)"])

    def test_oneSessionSaidSo(self) -> None:
        """With sessions-per-person 1, the second is refused saying '1 session' (it said '1 sessions'); certificates without a CN too."""
        self.table.sessionsPerPerson = 1
        lines, factories = self.lines(2)
        self.assertTrue(self.admit(lines[0], factories[0]))
        self.assertFalse(self.admit(lines[1], factories[1]))
        self.subject = ""
        self.assertTrue(self.admit(lines[0], factories[0], ""))
        self.assertFalse(self.admit(lines[1], factories[1], ""))
        self.assertEqual(self.refusals(), [
            "l1: TLS client 192.168.1.1:54321 (carol) refused: 1 session of carol on all lines already (at most 1 a "
            "person: [tls] sessions-per-person)",
            "l1: TLS client 192.168.1.1:54321 (no CN) refused: 1 session of certificates without a CN on all lines "
            "already (at most 1 a person: [tls] sessions-per-person)"])

    def test_sshSessionsNotCounted(self) -> None:
        """The person's sessions that came otherwise (SSH, its own bound) are not counted in the TLS bound: with 1, carol on a line over SSH still gets one TLS session."""
        self.table.sessionsPerPerson = 1
        lines, factories = self.lines(2)
        ssh = RecordingClient("carol over ssh", Role.WRITER)
        ssh.person, ssh.user = True, "carol"  # type: ignore[attr-defined]
        lines[1].attach(ssh)
        self.assertTrue(self.admit(lines[0], factories[0]))
        self.assertFalse(self.admit(lines[1], factories[1]))

    def test_lowerBoundKeepsThoseIn(self) -> None:
        """A bound lowered under what a person has (a reload) cuts nobody: the next is refused until they are under it."""
        lines, factories = self.lines(1)
        for _ in range(3):
            self.assertTrue(self.admit(lines[0], factories[0]))
        self.table.sessionsPerPerson = 2
        self.assertEqual(len(lines[0].clients), 3)
        self.assertFalse(self.admit(lines[0], factories[0]))
        lines[0].detach(lines[0].clients[0])
        self.assertFalse(self.admit(lines[0], factories[0]))
        lines[0].detach(lines[0].clients[0])
        self.assertTrue(self.admit(lines[0], factories[0]))


class SettingAppliedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.log = LogEvents(self)
        self.path = os.path.abspath(self.mktemp())

    def write(self, tls: str) -> None:
        with open(self.path, "w") as f:
            f.write(f'{tls}[defaults]\nlock = false\n[lines.a]\ndevice = "/dev/fake-a"\n'
                    'listen = "raw+tcp:0:interface=127.0.0.1"\n')

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        return port

    def test_atTheStart(self) -> None:
        """The file's [tls] sessions-per-person is the gateway's bound from the start (32 without it)."""
        for tls, most in (("", 32), ("[tls]\nsessions-per-person = 100\n", 100)):
            self.write(tls)
            options = tap.Options()
            options.parseOptions(["--config", self.path])
            service = tap.makeService(options, reactor=self.clock)
            self.assertEqual(service.listeners.handshakes.sessionsPerPerson, most)

    def test_reload(self) -> None:
        """A reload's [tls] sessions-per-person is the bound from then on (said); a refused reload's is not; one that leaves it out puts back 32."""
        self.write("[tls]\nsessions-per-person = 100\n")
        service = TwistdGatewayService(loadConfig(self.path), reactor=self.clock, openPort=self.openPort)
        service.configPath = self.path
        GatewayService.startService(service)
        self.write("[tls]\nsessions-per-person = 500\n")
        service.reloadFile()
        self.assertEqual(service.listeners.handshakes.sessionsPerPerson, 500)
        self.assertIn("reload: [tls] sessions-per-person 500 (was 32), for the TLS clients let in from now on",
                      [formatEvent(e) for e in self.log.at(LogLevel.info)])
        self.write("[tls]\nsessions-per-person = 7\n")
        with open(self.path, "a") as f:
            f.write("[lines.b]\n")  # (no device: refused)
        service.reloadFile()
        self.assertEqual(service.listeners.handshakes.sessionsPerPerson, 500)
        self.assertIn("reload refused", " ".join(formatEvent(e) for e in self.log.at(LogLevel.error)))
        self.write("")
        service.reloadFile()
        self.assertEqual(service.listeners.handshakes.sessionsPerPerson, 32)
        self.successResultOf(service.stopService())
