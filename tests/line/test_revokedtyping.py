"""
What a client typed that waits in the device's queue when a reload takes
its write right away: dropped, counted refused, said, as what it types
from then on (it was written after the reload: 66,430 bytes of a 200 KB
SSH paste).  The queue knows whose its bytes are (L{Sources}).
"""

from __future__ import annotations

from typing import Any

from twisted.conch.interfaces import IConchUser
from twisted.conch.test.test_session import StubConnection
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.ssh import GatewaySSHFactory, Person, Realm
from serialgw.clients.sshauth import KeyRing, Login
from serialgw.clients.sshsession import SSHClient
from serialgw.config.gatewaylisteners import parseSSHListener
from serialgw.config.people import Rights
from serialgw.devices.device import HIGH_WATER, PIECE_COST, SerialDevice
from serialgw.devices.sources import Sources, cutHeld, joined
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.clients.test_ssh import Harness, SSHTransportStub, newKey
from tests.fakes import LogEvents, RecordingClient, RecordingPort

A, B = object(), object()


class SourcesTests(SynchronousTestCase):
    def test_runsFollowTheQueue(self) -> None:
        """Runs join one source's writes, follow what is written from the front, and a cut takes one source's bytes out in place, the rest in order."""
        out, sources = bytearray(), Sources()
        for who, data in ((A, b"aa"), (A, b"a"), (B, b"bbb"), (None, b"n"), (A, b"AA")):
            out += data
            sources.add(who, len(data))
        self.assertEqual([list(r) for r in sources.runs], [[A, 3], [B, 3], [None, 1], [A, 2]])
        sources.taken(2)
        del out[:2]
        self.assertEqual([list(r) for r in sources.runs], [[A, 1], [B, 3], [None, 1], [A, 2]])
        self.assertEqual(sources.cut(out, A), 3)
        self.assertEqual((bytes(out), [list(r) for r in sources.runs]), (b"bbbn", [[B, 3], [None, 1]]))
        self.assertEqual(sources.cut(out, None), 0)
        self.assertEqual(sources.cut(out, A), 0)
        sources.taken(4)
        self.assertEqual(list(sources.runs), [])

    def test_cutHeld(self) -> None:
        """A break's held pieces without one source's; a change's place among them (its count of pieces before it) kept."""
        held = [(A, b"1"), (B, b"22"), (A, b"333"), (B, b"4")]
        self.assertEqual(cutHeld(held, A, 3), ([(B, b"22"), (B, b"4")], 4, 1))
        self.assertEqual(cutHeld(held, None, 3), (held, 0, 3))
        self.assertEqual(joined([(A, b"1"), (A, b"2"), (B, b"3"), (A, b"4")]), [(A, b"12"), (B, b"3"), (A, b"4")])


class DeviceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.port = RecordingPort(self.reactor, accept=0)
        self.device = SerialDevice(self.port, self.reactor)

    def test_dropsOneSourcesQueuedBytes(self) -> None:
        """A device that takes nothing: one source's queued bytes dropped (counted unsent), the others' written in order once it takes them."""
        for who, data in ((A, b"a1"), (B, b"b1"), (A, b"a2"), (None, b"n1")):
            self.device.write(data, who)
        self.assertEqual(self.device.dropQueuedFrom(A), 4)
        self.assertEqual(self.device.unsent, 4)
        self.port.accept = None
        self.device.doWrite()
        self.assertEqual(self.port.written(), b"b1n1")
        self.assertEqual(self.device.dropQueuedFrom(A), 0)

    def test_partlyWrittenRunsAndPacing(self) -> None:
        """What was written of a source's run stays written; its rest is dropped; paced writes keep the runs in step."""
        self.device.write(b"a" * 10, A)
        self.port.accept = 4
        self.device.doWrite()
        self.device.write(b"bb", B)
        self.assertEqual(self.device.dropQueuedFrom(A), 6)
        self.port.accept = None
        self.device.doWrite()
        self.assertEqual(self.port.written(), b"aaaabb")

    def test_pacedWritesKeepRunsInStep(self) -> None:
        """A paced device writes a byte a time from the queue's front: the runs follow, and a cut mid-way drops the rest of one source's only."""
        self.port.accept = None
        self.device.setPace(0.01)
        self.device.write(b"abc", A)
        self.device.write(b"xy", B)
        self.device.write(b"de", A)
        self.reactor.advance(0.01)
        self.assertEqual(self.port.written(), b"ab")
        self.assertEqual(self.device.dropQueuedFrom(A), 3)
        for _i in range(5):
            self.reactor.advance(0.01)
        self.assertEqual(self.port.written(), b"abxy")
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_heldByABreak(self) -> None:
        """Bytes held while a break is under way are dropped by their source too; the others follow the break."""
        self.port.accept = None
        self.assertTrue(self.device.sendBreak(0.25))
        self.device.write(b"held-a", A)
        self.device.write(b"held-b", B)
        self.assertEqual(self.device.dropQueuedFrom(A), 6)
        self.reactor.advance(0.25)
        self.assertEqual(self.port.written(), b"held-b")

    def test_watermarkFollows(self) -> None:
        """Dropping a source's queued bytes below the low-water mark lets the writers go on."""
        line = Line("l", self.device, clock=self.reactor)
        self.device.sink = line
        writer = RecordingClient("w")
        line.attach(writer)
        line.clientData(writer, b"x" * (HIGH_WATER + 1))
        self.assertFalse(line.writable)
        self.device.dropQueuedFrom(writer)
        self.assertTrue(line.writable)


    def test_writersByTurnsBoundedByTheirRuns(self) -> None:
        """Two writers typing a byte each by turns into a device that takes nothing: every run (and every piece a break holds) counts PIECE_COST against the high-water mark, so the writers are paused after 1010 bytes, 1010 runs (it was 65,537 runs of a byte, 81 bytes of bookkeeping a byte queued, 5.3 MB); one writer's run costs its bytes alone; all is written in order once the device takes it."""
        line = Line("l", self.device, clock=self.reactor)
        self.device.sink = line
        a, b = RecordingClient("a:1"), RecordingClient("b:2")
        line.attach(a)
        line.attach(b)
        typed = 0
        while line.writable:
            line.clientData((a, b)[typed % 2], b"ab"[typed % 2:typed % 2 + 1])
            typed += 1
        self.assertEqual(PIECE_COST, 64)
        self.assertEqual((typed, len(self.device._outFrom.runs)), (1010, 1010))  # 1010 + 64 * 1009 > 65536
        self.assertEqual((a.paused, b.paused), (1, 1))
        self.port.accept = None
        self.device.doWrite()
        self.assertEqual((self.port.written(), line.writable, a.resumed, b.resumed), (b"ab" * 505, True, 1, 1))
        # One writer: its bytes alone count, as before (one run).
        self.port.accept = 0
        for _ in range(HIGH_WATER):
            line.clientData(a, b"x")
        self.assertEqual((line.writable, len(self.device._outFrom.runs)), (True, 1))
        self.port.accept = None
        self.device.doWrite()
        # A break's held pieces, one a write, count too.
        self.port.accept = 0
        self.device.write(b"q")
        self.assertTrue(self.device.sendBreak(0.25))
        held = 0
        while line.writable:
            line.clientData(a, b"h")
            held += 1
        self.assertEqual((held, len(self.device._held)), (1009, 1009))  # 1 queued + 1009 held + 64 * 1009 > 65536
        self.port.accept = None
        self.device.doWrite()
        self.reactor.advance(0.25)
        self.device.doWrite()
        self.assertEqual(self.port.written()[-1010:], b"q" + b"h" * 1009)
        self.assertTrue(line.writable)

class LineTests(SynchronousTestCase):
    def test_readOnlyDropsWhatItTypedQueued(self) -> None:
        """A writer made read-only (a reload) while its paste waits for the device: the rest is dropped, refused and said (log, notice); another writer's typing goes on."""
        reactor = MemoryReactorClock()
        port = RecordingPort(reactor, accept=0)
        device = SerialDevice(port, reactor)
        line = Line("rack1", device, clock=reactor)
        device.sink = line
        first, second = RecordingClient("one:1"), RecordingClient("two:2")
        line.attach(first)
        line.attach(second)
        events = LogEvents(self)
        line.clientData(first, b"p" * 1000)
        line.clientData(second, b"ok")
        line.clientData(first, b"q" * 500)
        line.makeReadOnly(first, "a reload made it so")
        self.assertEqual(first.role, Role.READONLY)
        self.assertEqual(line.refused, 1500)
        self.assertEqual(first.notices[-1], "1500 byte(s) you typed were not sent: a reload took your write right away")
        [said] = [e for e in events.events if "not yet written" in e["log_format"]]
        self.assertEqual((said["line"], said["peer"], said["count"]), ("rack1", "one:1", 1500))
        port.accept = None
        device.doWrite()
        self.assertEqual(port.written(), b"ok")
        self.assertEqual(line.bytesToDevice, 2)


    def test_rightsTakenAwayDropsWhatItTypedQueued(self) -> None:
        """A person a reload leaves in neither list is disconnected, and what they typed that waits for the device is dropped, refused and told, as for one made read-only."""
        reactor = MemoryReactorClock()
        port = RecordingPort(reactor, accept=0)
        device = SerialDevice(port, reactor)
        line = Line("rack1", device, clock=reactor)
        device.sink = line
        person = RecordingClient("ops1 (192.0.2.7:1)")
        person.user = "ops1"
        line.attach(person)
        line.clientData(person, b"r" * 700)
        line.applyRights(Rights(write=("ops2",), read=("ops2",)))
        self.assertEqual((person.disconnected, line.refused), (1, 700))
        self.assertEqual(person.notices[-2:], ["700 byte(s) you typed were not sent: a reload took your write right "
                                               "away", "ops1 may no longer use rack1"])
        port.accept = None
        device.doWrite()
        self.assertEqual(port.written(), b"")


class SSHReloadTests(SynchronousTestCase):
    def sshLine(self) -> tuple[Line, RecordingPort, SerialDevice, GatewaySSHFactory]:
        """An SSH listener's gateway whose line's device takes nothing (RecordingPort accepting 0 bytes)."""
        h = Harness()
        reactor = MemoryReactorClock()
        port = RecordingPort(reactor, accept=0)
        device = SerialDevice(port, reactor)
        line = h.lines["con1"] = Line("con1", device, clock=h.clock)
        device.sink = line
        return line, port, device, GatewaySSHFactory(newKey(), KeyRing(()), h.gateway)

    def loggedIn(self, factory: GatewaySSHFactory) -> Any:
        """ops1 logged in (some key) with a session on con1, as a writer."""
        realm = factory.portal.realm
        assert isinstance(realm, Realm)
        key = newKey()
        _, person, _ = realm.requestAvatar(Login("ops1", "con1", key.public().blob()), None, IConchUser)
        assert isinstance(person, Person)
        person.conn = StubConnection(SSHTransportStub())
        session: Any = person._session(1 << 20, 32768, b"", person)
        session.conn = person.conn
        self.assertTrue(session.requestReceived(b"shell", b""))
        assert isinstance(session, SSHClient)
        self.assertEqual(session.role, Role.WRITER)
        return session

    def test_sshListenerMadeReadOnly(self) -> None:
        """ro added to [ssh] listen by a reload while a person's paste waits for the device: what waits is not written (it was: 66,430 of a 200 KB paste reached the device after the reload)."""
        line, port, device, factory = self.sshLine()
        session = self.loggedIn(factory)
        session.dataReceived(b"x" * 20000)
        factory.setListener(parseSSHListener("ro+tcp:0"))
        self.assertEqual((session.role, line.refused), (Role.READONLY, 20000))
        port.accept = None
        device.doWrite()
        self.assertEqual(port.written(), b"")

    def test_sshKeyRemoved(self) -> None:
        """A person whose key a reload removes is disconnected, and what they typed that waits for the device is dropped."""
        line, port, device, factory = self.sshLine()
        session = self.loggedIn(factory)
        session.dataReceived(b"k" * 3000)
        factory.setUsers(())
        self.assertEqual(line.refused, 3000)
        port.accept = None
        device.doWrite()
        self.assertEqual(port.written(), b"")
