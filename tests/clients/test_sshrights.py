"""
The SSH listener's own options under a reload: C{ro} and C{allow=} in
C{[ssh] listen} reach the sessions already there, as a line listener's do
(its endpoint and host key wait for a restart).
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh import keys
from twisted.conch.test.test_session import StubConnection
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.clients.ssh import GatewaySSHFactory, Person, Realm
from serialgw.clients.sshauth import Login
from serialgw.clients.sshsession import SSHClient
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import SSHSpec, UserSpec
from serialgw.line.role import Role
from tests.clients.test_ssh import SSHTransportStub, newKey, publicLine, sent
from tests.fakes import LogEvents
from tests.realio import ptyLine, startedPty, startGateway

LISTEN = "tcp:0:interface=127.0.0.1"


def loggedIn(factory: GatewaySSHFactory, user: str, key: keys.Key, line: str = "t",
             shell: bool = True) -> tuple[Person, Any]:
    """A person logged in with C{key} (from 192.0.2.7); with C{shell}, their session on C{line}."""
    realm = factory.portal.realm
    assert isinstance(realm, Realm)
    _, person, _ = realm.requestAvatar(Login(user, line, key.public().blob()), None, IConchUser)
    assert isinstance(person, Person)
    person.conn = StubConnection(SSHTransportStub())
    if shell:
        channel = person._session(1 << 20, 32768, b"", person)
        channel.conn = person.conn
        channel.requestReceived(b"shell", b"")
    return person, person.conn


class ListenerOptionsReloadTests(TestCase):
    def setUp(self) -> None:
        self.pty = startedPty(self)
        self.keys = {name: newKey() for name in ("ops1", "ops2", "ops3")}
        users = tuple(UserSpec(name, (publicLine(key),)) for name, key in self.keys.items())
        self.spec = SSHSpec(parseSSHListener(LISTEN), self.mktemp(), users)
        self.service = startGateway(self, ptyLine(self.pty), ssh=self.spec)
        self.factory = self.service.sshFactory

    def reload(self, listener: str) -> None:
        self.service.reloadUsers(attrs.evolve(self.spec, listener=parseSSHListener(listener)))

    def test_roAddedMakesSessionsReadOnly(self) -> None:
        """ro added to [ssh] listen by a reload: a session there is read-only at once (told; its typing and breaks refused), and the next one attaches read-only; no restart asked for (the endpoint is the same)."""
        events = LogEvents(self)
        ops1, conn1 = loggedIn(self.factory, "ops1", self.keys["ops1"])
        session = ops1.session
        assert isinstance(session, SSHClient)
        line = self.service.lines["t"]
        self.assertEqual(session.role, Role.WRITER)
        self.reload(f"ro+{LISTEN}")
        self.assertEqual(session.role, Role.READONLY)
        self.assertIn(b"[serialgw: you are read-only now: a reload made the SSH listener read-only]",
                      sent(conn1, session))
        session.dataReceived(b"reboot\r")
        self.assertFalse(session.requestReceived(b"break", struct.pack(">L", 1000)))
        self.assertEqual((line.refused, line.device.breaks), (7, 0))
        ops2, _ = loggedIn(self.factory, "ops2", self.keys["ops2"])
        assert ops2.session is not None
        self.assertEqual(ops2.session.role, Role.READONLY)
        self.assertEqual([e for e in events.at(LogLevel.warn) if "restart" in e["log_format"]], [])

    async def test_allowNarrowedCutsThoseOutside(self) -> None:
        """allow= narrowed in [ssh] listen by a reload: a session from an address it no longer admits is told and off the line at once, a person logged in without a session cut; one it admits stays; a session asked for afterwards from outside is refused."""
        ops1, conn1 = loggedIn(self.factory, "ops1", self.keys["ops1"])
        ops2, conn2 = loggedIn(self.factory, "ops2", self.keys["ops2"], shell=False)
        line = self.service.lines["t"]
        session = ops1.session
        assert isinstance(session, SSHClient)
        self.reload(f"allow=192.0.2.0/24+{LISTEN}")
        self.assertEqual((line.clients, conn2.transport.transport.disconnecting), ([session], False))
        self.reload(f"allow=10.0.0.0/8+{LISTEN}")
        self.assertEqual(line.clients, [])
        self.assertIn(b"[serialgw: your address is no longer allowed over SSH (a reload changed [ssh] listen): "
                      b"disconnected]", sent(conn1, session))
        self.assertEqual(conn1.requests[session], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertTrue(conn2.transport.transport.disconnecting)
        session.dataReceived(b"x")
        self.assertEqual(line.refused + line.bytesGiven, 0)
        # One that logged in meanwhile (its TCP connection taken before the reload) gets no session.
        ops3, conn3 = loggedIn(self.factory, "ops3", self.keys["ops3"])
        self.assertEqual(line.clients, [])
        await deferLater(reactor, 0, lambda: None)
        assert ops3.session is not None
        self.assertEqual(conn3.extData[ops3.session], [(1, b"serialgw: your address is no longer allowed\n")])
        self.assertEqual(conn3.requests[ops3.session], [(b"exit-status", struct.pack(">L", 1), False)])
        session.closed()  # (the client closes its channel: no cut left to wait for)


class PlacesPerPersonTests(SynchronousTestCase):
    def test_readOnlyPersonCannotFillTheLine(self) -> None:
        """A person may have PERSON_SESSIONS_PER_LINE sessions on a line, a read-only one too: one more is refused, said, exit 1; a writer still gets in (a read-only person took all of max-clients and kept the writers out)."""
        from serialgw.clients.session import PERSON_SESSIONS_PER_LINE
        from serialgw.config.people import Rights
        from tests.clients.test_ssh import Harness

        h = Harness()
        line = h.addLine("web1", Rights(write=("ops1",), read=("watcher1",)))
        line.maxClients = PERSON_SESSIONS_PER_LINE + 1
        for _ in range(PERSON_SESSIONS_PER_LINE):
            channel, _ = h.channel(user="watcher1", lineName="web1")
            channel.requestReceived(b"shell", b"")
        extra, conn = h.channel(user="watcher1", lineName="web1")
        extra.requestReceived(b"shell", b"")
        writer, _ = h.channel(user="ops1", lineName="web1")
        writer.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(conn.extData[extra], [(1, b"serialgw: web1: you have 8 sessions there already "
                                                   b"(at most 8 a person)\n")])
        self.assertEqual(conn.requests[extra], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertEqual((len(line.clients), writer in line.clients, extra in line.clients), (9, True, False))


class SessionsPerPersonTests(SynchronousTestCase):
    """A person's SSH sessions on all lines together are bounded ([ssh] sessions-per-person, 32 by default): with 8 a line alone, a person with read = ["*"] on 1000 lines could hold 8000 (about 3 GB)."""

    def harness(self, lines: int) -> Any:
        from serialgw.config.people import Rights
        from tests.clients.test_ssh import Harness

        h = Harness()
        for n in range(lines):
            h.addLine(f"l{n}", Rights(write=("ops1",), read=("*",)))
        return h

    def fill(self, h: Any, user: str, count: int) -> list[SSHClient]:
        """C{count} sessions of C{user}, 4 a line (under the 8 a line)."""
        sessions = []
        for n in range(count):
            channel, _ = h.channel(user=user, lineName=f"l{n // 4}")
            channel.requestReceived(b"shell", b"")
            sessions.append(channel)
        return sessions

    def test_oneMoreThanAllowedRefused(self) -> None:
        """The person's 33rd session, on a line where they have none, is refused: told, exit 1, a named log line; another person still gets in there; once one of theirs closes, they get in again."""
        from serialgw.config.people import PERSON_SESSIONS

        events = LogEvents(self)
        h = self.harness(10)
        mine = self.fill(h, "nagios", PERSON_SESSIONS)
        self.assertEqual(sum(len(h.lines[f"l{n}"].clients) for n in range(10)), 32)
        extra, conn = h.channel(user="nagios", lineName="l9")
        extra.channelOpen(b"")
        extra.requestReceived(b"shell", b"")
        other, _ = h.channel(user="ops1", lineName="l9")
        other.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(conn.extData[extra], [(1, b"serialgw: you have 32 sessions already, on all lines "
                                                   b"(at most 32 a person)\n")])
        self.assertEqual(conn.requests[extra], [(b"exit-status", struct.pack(">L", 1), False)])
        self.assertEqual(h.lines["l9"].clients, [other])
        [said] = [formatEvent(e) for e in events.at(LogLevel.warn) if "on all lines" in e["log_format"]]
        self.assertEqual(said, "ssh: nagios (192.0.2.7:40000) refused a session on l9: nagios has 32 sessions already, "
                               "on all lines (at most 32 a person: [ssh] sessions-per-person)")
        extra.closed()  # (a refused session counts for nothing)
        mine[0].closed()
        again, conn = h.channel(user="nagios", lineName="l9")
        again.requestReceived(b"shell", b"")
        self.assertEqual((h.lines["l9"].clients, h.gateway.sessionsOf("nagios")), ([other, again], 32))

    def test_configuredBound(self) -> None:
        """The gateway's bound is its own (sessions-per-person): 2 lets a person have 2 sessions, on two lines, and refuses the third, saying 2."""
        h = self.harness(3)
        h.gateway.sessionsPerPerson = 2
        for name in ("l0", "l1"):
            channel, _ = h.channel(user="nagios", lineName=name)
            channel.requestReceived(b"shell", b"")
        extra, conn = h.channel(user="nagios", lineName="l2")
        extra.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(conn.extData[extra], [(1, b"serialgw: you have 2 sessions already, on all lines "
                                                   b"(at most 2 a person)\n")])

    def test_oneSessionSaidSo(self) -> None:
        """With sessions-per-person 1, the second is told and logged '1 session' (it said '1 sessions')."""
        events = LogEvents(self)
        h = self.harness(2)
        h.gateway.sessionsPerPerson = 1
        channel, _ = h.channel(user="nagios", lineName="l0")
        channel.requestReceived(b"shell", b"")
        extra, conn = h.channel(user="nagios", lineName="l1")
        extra.channelOpen(b"")
        extra.requestReceived(b"shell", b"")
        h.clock.advance(0)
        self.assertEqual(conn.extData[extra], [(1, b"serialgw: you have 1 session already, on all lines "
                                                   b"(at most 1 a person)\n")])
        [said] = [formatEvent(e) for e in events.at(LogLevel.warn) if "on all lines" in e["log_format"]]
        self.assertEqual(said, "ssh: nagios (192.0.2.7:40000) refused a session on l1: nagios has 1 session already, "
                               "on all lines (at most 1 a person: [ssh] sessions-per-person)")


class SessionsPerPersonReloadTests(TestCase):
    def test_reloadSetsTheBound(self) -> None:
        """A reload's [ssh] sessions-per-person holds for the sessions that start afterwards (said); those there stay."""
        events = LogEvents(self)
        pty = startedPty(self)
        key = newKey()
        spec = SSHSpec(parseSSHListener(LISTEN), self.mktemp(), (UserSpec("ops1", (publicLine(key),)),))
        service = startGateway(self, ptyLine(pty), ssh=spec)
        first, _ = loggedIn(service.sshFactory, "ops1", key)
        service.reloadUsers(attrs.evolve(spec, sessionsPerPerson=1))
        self.assertEqual(service.sshFactory.gateway.sessionsPerPerson, 1)
        assert service.ssh is not None
        self.assertEqual(service.ssh.sessionsPerPerson, 1)
        self.assertIn("reload: [ssh] sessions-per-person 1 (was 32), for the sessions that start from now on",
                      [formatEvent(e) for e in events.at(LogLevel.info)])
        second, conn = loggedIn(service.sshFactory, "ops1", key)
        line = service.lines["t"]
        self.assertEqual(line.clients, [first.session])
        assert first.session is not None and second.session is not None
        first.session.closed()
        second.session.closed()
