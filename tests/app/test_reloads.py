"""
SIGHUP reloads under pressure: signals that come faster than reloads end
(a storm of them, the file rewritten meanwhile), on fake ports and a
memory reactor driven by its clock.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import filereload
from serialgw.app.notify import Notifier
from serialgw.app.process import TwistdGatewayService
from serialgw.app.reload import LINES_PER_TURN
from serialgw.app.service import GatewayService
from serialgw.config.file import loadConfig
from serialgw.config.logspec import LogSpec
from serialgw.config.shard import Shard
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.line.strings import LET_GO_LIMIT
from tests.app.test_notify import FakeSystemd
from tests.fakes import LogEvents, RecordingPort, ThreadedReactorClock, oneTurn
from tests.line.test_attach import person


class ReloadStormTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.path = os.path.abspath(self.mktemp())
        self.systemd = FakeSystemd(self)
        self.log = LogEvents(self)
        self.reads = 0
        loadFile = filereload.loadFile

        def counting(path: str, shards: Any = None, held: Any = ()) -> Any:
            self.reads += 1
            return loadFile(path, shards)

        self.patch(filereload, "loadFile", counting)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        self.ports.append(port)
        return port

    def write(self, *names: str) -> None:
        with open(self.path, "w") as f:
            f.write("[defaults]\nlock = false\n")
            for name in names:
                f.write(f'[lines.{name}]\ndevice = "/dev/fake-{name}"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n'
                        f'close-string = "bye\\r"\n')

    def gateway(self, *names: str, signals: bool = False) -> TwistdGatewayService:
        """A started gateway of lines C{names} from the file (with C{signals}, its SIGHUP and SIGUSR1 handlers taken)."""
        self.write(*names)
        service = TwistdGatewayService(loadConfig(self.path), reactor=self.clock, openPort=self.openPort)
        service.configPath = self.path
        service.notifier = Notifier(self.clock, service.statusText, environ=self.systemd.environ,
                                    monotonic=lambda: 42)
        if signals:
            for signum in (signal.SIGHUP, signal.SIGUSR1):
                self.addCleanup(signal.signal, signum, signal.getsignal(signum))
            TwistdGatewayService.privilegedStartService(service)
        # (Not TwistdGatewayService's own start: it would freeze the collector.)
        GatewayService.startService(service)
        self.systemd.messages()
        return service

    def test_stormReadsTheFileOnce(self) -> None:
        """100 SIGHUPs while a reload waits for a device to take its close-string: the file is read once more, at the end, and its last version applied."""
        service = self.gateway("a", "b")
        service.lines["a"].attach(person())
        self.ports[0].accept = 0  # a's device takes nothing: its close waits LET_GO_LIMIT s
        self.write("b")
        first = service.reloadFile()
        self.assertEqual(self.reads, 1)
        storm = []
        for i in range(100):
            self.write("b", f"c{i}")
            storm.append(service.reloadFile())
        self.assertEqual(self.reads, 1)
        self.assertFalse(first.called)
        self.clock.advance(LET_GO_LIMIT)
        self.assertEqual(self.successResultOf(first), {"added": [], "changed": [], "removed": ["a"]})
        self.assertEqual(self.reads, 2)
        results = [self.successResultOf(d) for d in storm]
        self.assertEqual(results, [{"added": ["c99"], "changed": [], "removed": []}] * 100)
        self.assertEqual(sorted(service.lines), ["b", "c99"])
        self.assertEqual(self.systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s); reloaded: 0 added, 0 changed, 1 removed",
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=2 line(s), 2 up, 0 down; 0 client(s); reloaded: 1 added, 0 changed, 0 removed",
        ])
        self.assertEqual([e["count"] for e in self.log.events if "count" in e and "SIGHUP" in e["log_format"]],
                         [99])
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_turnedOffSaid(self) -> None:
        """
        A reload turning a line off (enable = false, its table kept) tells
        its people so; one removing a line's table, that it was removed
        (both were told 'this line was removed from the configuration',
        seen live: a table still in the file).
        """
        service = self.gateway("a", "b", "c")
        a, b = person("a:1"), person("b:1")
        service.lines["a"].attach(a)
        service.lines["b"].attach(b)
        self.write("a", "c")
        with open(self.path) as f:
            text = f.read()
        with open(self.path, "w") as f:
            f.write(text.replace("[lines.a]\n", "[lines.a]\nenable = false\n"))
        reloaded = service.reloadFile()
        self.clock.advance(LET_GO_LIMIT)
        self.assertEqual(self.successResultOf(reloaded), {"added": [], "changed": [], "removed": ["a", "b"]})
        self.assertEqual((a.notices, b.notices), (["this line was turned off by a reload (enable = false)"],
                                                  ["this line was removed from the configuration"]))
        self.successResultOf(service.stopService())

    def test_stopWhileOneWaits(self) -> None:
        """SIGHUPs waiting behind a reload when the gateway stops: the file is not read again, systemd hears nothing more."""
        service = self.gateway("a", "b")
        service.lines["a"].attach(person())
        self.ports[0].accept = 0
        self.write("b")
        service.reloadFile()
        waiting = service.reloadFile()
        stopped = service.stopService()
        self.systemd.messages()
        self.clock.advance(LET_GO_LIMIT)
        self.successResultOf(stopped)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(self.reads, 1)
        self.assertEqual(self.systemd.messages(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_signalsWhileReading(self) -> None:
        """SIGHUPs that come while the file is read (a 1000-line file takes 0.4 s): one more reading after it, not one each."""
        self.clock = ThreadedReactorClock()
        service = self.gateway("a", signals=True)
        handler = signal.getsignal(signal.SIGHUP)
        assert callable(handler)
        loadFile = filereload.loadFile

        def slow(path: str, shards: Any = None, held: Any = ()) -> Any:
            if self.reads == 0:
                for _ in range(50):
                    handler(signal.SIGHUP, None)
            return loadFile(path, shards)

        self.patch(filereload, "loadFile", slow)
        self.write("a", "b")
        handler(signal.SIGHUP, None)
        handler(signal.SIGHUP, None)
        for _ in range(5):
            oneTurn(self.clock)
        self.assertEqual(self.reads, 2)
        self.assertEqual(sorted(service.lines), ["a", "b"])
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWhileReading(self) -> None:
        """The gateway stops while the file is read off the reactor: what was read is not applied, systemd hears nothing after STOPPING=1."""
        service = self.gateway("a")
        reads: list[tuple[defer.Deferred[Any], Callable[[], Any]]] = []

        def later(reactor: Any, work: Callable[[], Any]) -> defer.Deferred[Any]:
            reads.append((defer.Deferred(), work))
            return reads[-1][0]

        self.patch(filereload, "offTheReactor", later)
        self.write("a", "b")
        reloaded = service.reloadFile()
        self.successResultOf(service.stopService())
        self.assertEqual(self.systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration", "STOPPING=1\nSTATUS=stopping"])
        (read, work), = reads
        read.callback(work())
        self.assertIsNone(self.successResultOf(reloaded))
        self.assertEqual(self.systemd.messages(), [])
        self.assertEqual(service.lines, {})
        self.assertEqual(len(self.ports), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_addedInTurns(self) -> None:
        """
        A reload adding 20 lines opens at most LINES_PER_TURN (8) a turn of
        the reactor, the other lines served in between (1000 at once held
        them 3-5 s); the binds that check their listeners first, and
        closing them again, count as CHANGES_PER_TURN (32) a turn do.
        """
        service = self.gateway("a")
        names = [f"n{i}" for i in range(20)]
        self.write("a", *names)
        reloaded = service.reloadFile()
        opened = [len(self.ports)]
        while not reloaded.called:
            oneTurn(self.clock)
            opened.append(len(self.ports))
        self.assertEqual(LINES_PER_TURN, 8)
        # Turn 1: 20 listeners bound and 12 closed again; turn 2: 8 closed, 6 lines opened.
        self.assertEqual(opened, [1, 7, 15, 21])
        self.assertEqual(self.successResultOf(reloaded), {"added": names, "changed": [], "removed": []})
        self.assertEqual(list(service.lines), ["a", *names])
        self.assertEqual([c.name for c in service.configs], ["a", *names])
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_changesInTurns(self) -> None:
        """
        A reload removing, reopening and retuning many lines at once closes
        or retunes at most CHANGES_PER_TURN (32) of them a turn of the
        reactor, and opens LINES_PER_TURN (8) a turn, the other lines
        served in between (1000 changed at once held them 0.1-0.6 s); what
        it reports and what runs after it are as when it was done at once.
        """
        from serialgw.app.applying import CHANGES_PER_TURN

        def config(n: int, device: str = "fake", backlog: int = 65536) -> LineConfig:
            return LineConfig(f"n{n}", DeviceSpec("tty", f"/dev/{device}-{n}"), lock=False, backlog=backlog)

        service = GatewayService([config(n) for n in range(100)], reactor=self.clock, openPort=self.openPort)
        service.startService()
        newConfigs = ([config(n, backlog=4096) for n in range(40, 70)] + [config(n, device="other") for n in range(70, 100)]
                      + [config(n) for n in range(100, 110)])

        def state() -> tuple[int, int, int]:
            closed = sum(port.closed for port in self.ports)
            retuned = sum(service.lines[f"n{n}"].backlogSize == 4096 for n in range(40, 70) if f"n{n}" in service.lines)
            return closed, retuned, len(self.ports) - 100

        states = [state()]
        reloaded = service.reload(newConfigs)
        states.append(state())
        while not reloaded.called:
            oneTurn(self.clock)
            states.append(state())
        # (Closed, retuned, opened) each turn: 32 a turn, an open counting four.
        steps = [(c1 - c0, r1 - r0, o1 - o0) for (c0, r0, o0), (c1, r1, o1) in zip(states, states[1:], strict=False)]
        self.assertEqual((CHANGES_PER_TURN, steps), (32, [
            (32, 0, 0), (32, 0, 0), (6, 26, 0), (0, 4, 7), (0, 0, 8), (0, 0, 8), (0, 0, 8), (0, 0, 8), (0, 0, 1)]))
        self.assertEqual(self.successResultOf(reloaded), {
            "added": [f"n{n}" for n in range(100, 110)],
            "changed": [f"n{n}" for n in range(70, 100)] + [f"n{n}" for n in range(40, 70)],
            "removed": [f"n{n}" for n in range(40)]})
        self.assertEqual([c.name for c in service.configs], [f"n{n}" for n in range(40, 70)] + [f"n{n}" for n in range(70, 110)])
        self.assertEqual(sorted(service.lines), sorted(f"n{n}" for n in range(40, 110)))
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWhileClosing(self) -> None:
        """The gateway stops while a reload closes lines in turns: nothing more is closed, retuned or opened by it, the stop closes the rest, and the reload says it was not done."""
        service = GatewayService([LineConfig(f"n{n}", DeviceSpec("tty", f"/dev/fake-{n}"), lock=False) for n in range(100)],
                                 reactor=self.clock, openPort=self.openPort)
        service.startService()
        reloaded = service.reload([LineConfig(f"n{n}", DeviceSpec("tty", f"/dev/other-{n}"), lock=False) for n in range(100)])
        self.assertEqual(sum(port.closed for port in self.ports), 32)
        stopped = service.stopService()
        oneTurn(self.clock)
        self.successResultOf(stopped)
        self.assertEqual(self.successResultOf(reloaded), {"refused": ["the gateway stopped before the reload was done"]})
        self.assertEqual((len(self.ports), all(port.closed for port in self.ports), service.lines), (100, True, {}))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopWhileAdding(self) -> None:
        """The gateway stops while a reload opens lines in turns: no line is opened after the stop, nor left open, and the reload says it was not done."""
        service = self.gateway("a")
        self.write("a", *[f"n{i}" for i in range(20)])
        reloaded = service.reloadFile()
        oneTurn(self.clock)
        self.assertEqual(len(self.ports), 7)
        stopped = service.stopService()
        oneTurn(self.clock)
        self.successResultOf(stopped)
        self.assertEqual(self.successResultOf(reloaded), {"refused": ["the gateway stopped before the reload was done"]})
        self.assertEqual(len(self.ports), 7)
        self.assertTrue(all(port.closed for port in self.ports))
        self.assertEqual(service.lines, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])



class Probe:
    """A listener a reload's check bound (see bindChecker), recording when it was closed again."""

    def __init__(self, turns: list[int]) -> None:
        self.turns = turns
        self.closedIn: Optional[int] = None

    def stopListening(self) -> None:
        self.closedIn = self.turns[0]


class ChecksInTurnsTests(SynchronousTestCase):
    """The checks that make a reload all or nothing (every new listener bound) run CHANGES_PER_TURN a turn too."""

    def setUp(self) -> None:
        from serialgw.app import reload as plans

        self.clock = MemoryReactorClock()
        self.turns = [0]
        # Each probe the checks bound: the turn it was bound in, and itself.
        self.probes: list[tuple[int, Probe]] = []

        def listenAtOnce(server: Any, factory: Any) -> Probe:
            probe = Probe(self.turns)
            self.probes.append((self.turns[0], probe))
            return probe

        self.patch(plans, "listenAtOnce", listenAtOnce)
        self.dir = os.path.abspath(self.mktemp())
        os.mkdir(self.dir)

    def openPort(self, *args: Any) -> RecordingPort:
        return RecordingPort(self.clock)

    def config(self, n: int) -> LineConfig:
        from serialgw.config.listeners import parseListener

        return LineConfig(f"n{n}", DeviceSpec("tty", f"/dev/fake-{n}"), lock=False,
                          listeners=(parseListener(f"unix:{self.dir}/n{n}.sock"),))

    def turnsUntil(self, reloaded: defer.Deferred[Any]) -> Any:
        """The reactor's turns until C{reloaded} fires (the reload's call was turn 0); its result."""
        while not reloaded.called:
            self.turns[0] += 1
            oneTurn(self.clock)
        return self.successResultOf(reloaded)

    def test_bindsInTurns(self) -> None:
        """A reload adding 100 lines binds their 100 new listeners to check them 32 a turn (a bind and its close each count as a change), and adds them all."""
        service = GatewayService([self.config(0)], reactor=self.clock, openPort=self.openPort)
        service.startService()
        reloaded = service.reload([self.config(n) for n in range(101)])
        self.assertEqual(self.turnsUntil(reloaded), {"added": [f"n{n}" for n in range(1, 101)], "changed": [], "removed": []})
        bound = [sum(1 for turn, _ in self.probes if turn == n) for n in range(5)]
        closed = [sum(1 for _, probe in self.probes if probe.closedIn == n) for n in range(9)]
        self.assertEqual((bound, closed), ([32, 32, 32, 4, 0], [0, 0, 0, 28, 32, 32, 8, 0, 0]))
        self.assertEqual(len(service.lines), 101)
        self.successResultOf(service.stopService())

    def test_refusedInTurns(self) -> None:
        """A listener that cannot be bound, found in a later turn of the checks: the reload is refused with its reason, nothing changed, every listener it bound closed again."""
        from serialgw.app.binding import StartupError

        service = GatewayService([self.config(0)], reactor=self.clock, openPort=self.openPort)
        service.startService()
        endpoint = service.listeners.endpoint

        def refusing(name: str, spec: Any, factory: Any) -> Any:
            if name == "n70":
                raise StartupError("line 'n70': refused by the test")
            return endpoint(name, spec, factory)

        self.patch(service.listeners, "endpoint", refusing)
        reloaded = service.reload([self.config(n) for n in range(101)])
        self.assertEqual(self.turnsUntil(reloaded), {"refused": ["line 'n70': refused by the test"]})
        self.assertEqual((len(self.probes), [probe.closedIn for _, probe in self.probes]), (69, [2] * 69))
        self.assertEqual((list(service.lines), [c.name for c in service.configs]), (["n0"], ["n0"]))
        self.successResultOf(service.stopService())

    def test_stopWhileChecking(self) -> None:
        """The gateway stops while a reload's checks run in turns: what they bound is closed, nothing else is done, and the reload says it was not done."""
        service = GatewayService([self.config(0)], reactor=self.clock, openPort=self.openPort)
        service.startService()
        reloaded = service.reload([self.config(n) for n in range(101)])
        self.successResultOf(service.stopService())
        self.assertEqual(self.turnsUntil(reloaded), {"refused": ["the gateway stopped before the reload was done"]})
        self.assertEqual([probe.closedIn for _, probe in self.probes], [1] * 32)
        self.assertEqual(service.lines, {})
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ShardRetryTests(SynchronousTestCase):
    """
    --shard: a line that moves between processes is let go by one and taken
    by the other at their reloads (systemctl reload 'serialgw@*' signals
    both at once); the one it joins, reloading first, finds its port (its
    socket, its pty link) still held, and its reload is refused: tried again.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.ports: list[RecordingPort] = []
        self.path = os.path.abspath(self.mktemp())
        self.directory = os.path.abspath(self.mktemp())
        self.systemd = FakeSystemd(self)
        self.log = LogEvents(self)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        self.ports.append(port)
        return port

    def write(self, joining: bool) -> None:
        with open(self.path, "w") as f:
            f.write('[defaults]\nlock = false\n[lines.a]\ndevice = "/dev/fake-a"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n')
            if joining:
                # Its file: listener's directory stands for what the other process still holds.
                f.write(f'[lines.b]\ndevice = "/dev/fake-b"\nlisten = "file:{self.directory}/b.out"\n')

    def gateway(self, shard: Optional[Shard]) -> TwistdGatewayService:
        self.write(False)
        service = TwistdGatewayService(loadConfig(self.path), reactor=self.clock, openPort=self.openPort)
        service.configPath = self.path
        service.shard = shard
        service.notifier = Notifier(self.clock, service.statusText, environ=self.systemd.environ,
                                    monotonic=lambda: 42)
        GatewayService.startService(service)
        self.systemd.messages()
        return service

    def stop(self, service: TwistdGatewayService) -> None:
        self.successResultOf(service.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def retries(self) -> list[float]:
        return [e["delay"] for e in self.log.events if "trying again" in e["log_format"]]

    def test_triedAgain(self) -> None:
        """A refused reload of a process of --shard is tried again after 1 s, and applied once what it needs is free."""
        service = self.gateway(Shard(0, 1))
        self.write(True)
        self.assertEqual(list(self.successResultOf(service.reloadFile())), ["refused"])
        self.assertEqual(self.retries(), [1.0])
        os.mkdir(self.directory)
        self.clock.advance(1.0)
        self.assertEqual(sorted(service.lines), ["a", "b"])
        self.assertEqual(self.systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s); reload refused, see the log",
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=2 line(s), 2 up, 0 down; 1 client(s); reloaded: 1 added, 0 changed, 0 removed",
        ])
        self.stop(service)

    def test_givesUp(self) -> None:
        """Refused again and again: tried after 1, 2 and 4 s, then it stays refused (the log says so each time)."""
        service = self.gateway(Shard(0, 1))
        self.write(True)
        service.reloadFile()
        for delay in (1.0, 2.0, 4.0, 8.0):
            self.clock.advance(delay)
        self.assertEqual(self.retries(), [1.0, 2.0, 4.0])
        self.assertEqual(len([e for e in self.log.events if "reload refused" in e["log_format"]]), 4)
        self.assertEqual(list(service.lines), ["a"])
        self.stop(service)

    def test_sighupStartsOver(self) -> None:
        """A SIGHUP while a retry waits takes its place (one reading), and its own refusal is tried again from 1 s."""
        service = self.gateway(Shard(0, 1))
        self.write(True)
        service.reloadFile()
        self.clock.advance(1.0)
        self.assertEqual(self.retries(), [1.0, 2.0])
        service.reloadFile()
        self.assertEqual(self.retries(), [1.0, 2.0, 1.0])
        os.mkdir(self.directory)
        self.clock.advance(1.0)
        self.assertEqual(sorted(service.lines), ["a", "b"])
        self.stop(service)

    def test_sighupWhileRefused(self) -> None:
        """A SIGHUP waiting behind a reload that is then refused: that refusal is not tried again, the SIGHUP's own reading is (one retry at a time)."""
        service = self.gateway(Shard(0, 1))
        reads: list[tuple[defer.Deferred[Any], Callable[[], Any]]] = []

        def later(reactor: Any, work: Callable[[], Any]) -> defer.Deferred[Any]:
            reads.append((defer.Deferred(), work))
            return reads[-1][0]

        self.patch(filereload, "offTheReactor", later)
        self.write(True)
        first = service.reloadFile()
        second = service.reloadFile()
        read, work = reads.pop()
        read.callback(work())
        self.assertEqual(list(self.successResultOf(first)), ["refused"])
        self.assertEqual(self.retries(), [])
        read, work = reads.pop()
        read.callback(work())
        self.assertEqual(list(self.successResultOf(second)), ["refused"])
        self.assertEqual(self.retries(), [1.0])
        self.assertEqual([c.func for c in self.clock.getDelayedCalls()].count(service._retry), 1)  # type: ignore[attr-defined]
        self.stop(service)

    def test_stopCancels(self) -> None:
        """The gateway stopping while a retry waits: no retry."""
        service = self.gateway(Shard(0, 1))
        self.write(True)
        service.reloadFile()
        self.stop(service)
        self.clock.advance(8.0)
        self.assertEqual(len([e for e in self.log.events if "reload refused" in e["log_format"]]), 1)

    def test_oneProcessNotTriedAgain(self) -> None:
        """Without --shard a refused reload stays refused (no other process of ours lets go)."""
        service = self.gateway(None)
        self.write(True)
        service.reloadFile()
        self.assertEqual(self.retries(), [])
        self.stop(service)


class ReadingTests(TestCase):
    timeout = 30

    async def test_fileReadOffTheReactor(self) -> None:
        """A reload reads and parses the file on a thread of its own (a 1000-line file held every line 0.4 s); what it finds wrong is refused as before."""
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write('[lines.a]\nlisten = "raw+tcp:0:interface=127.0.0.1"\n')
        readers: list[str] = []
        loadFile = filereload.loadFile

        def recording(path: str, shards: Any = None, held: Any = ()) -> Any:
            readers.append(threading.current_thread().name)
            return loadFile(path, shards)

        self.patch(filereload, "loadFile", recording)
        log = LogEvents(self)
        service = TwistdGatewayService([])
        service.configPath = path
        self.assertIsNone(await service.reloadFile())
        self.assertEqual(len(readers), 1)
        self.assertNotEqual(readers[0], threading.main_thread().name)
        (refused,) = [e for e in log.events if "reload refused" in e["log_format"]]
        self.assertIn("[lines.a]", refused["reason"])


class CountingList(list[Any]):
    """A line's list of console logs that counts how often it is gone through."""

    walks = 0

    def __iter__(self) -> Any:
        CountingList.walks += 1
        return list.__iter__(self)


class LogRetuneTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)

    def openPort(self, *args: Any) -> RecordingPort:
        return RecordingPort(self.clock)

    def config(self, name: str, log: str, format: str = "") -> LineConfig:
        return LineConfig(name, DeviceSpec("tty", f"/dev/fake-{name}"), lock=False,
                          log=LogSpec(os.path.join(self.directory, log), format=format, maxSize=0, daily=False))

    def read(self, log: str) -> bytes:
        with open(os.path.join(self.directory, log), "rb") as f:
            return f.read()

    def test_logsSwapped(self) -> None:
        """Two lines swap their console logs and a third's format changes in one reload: each file then gets its new line's output, nothing twice."""
        service = GatewayService([self.config("a", "a.log"), self.config("b", "b.log"), self.config("c", "c.log", "[%Y] ")],
                                 reactor=self.clock, openPort=self.openPort)
        service.startService()
        for name in "abc":
            service.lines[name].deviceDataReceived(b"before " + name.encode() + b"\n")
        reloaded = service.reload([self.config("a", "b.log"), self.config("b", "a.log"), self.config("c", "c.log", "")])
        self.assertEqual(self.successResultOf(reloaded), {"added": [], "changed": ["a", "b", "c"], "removed": []})
        for name in "abc":
            service.lines[name].deviceDataReceived(b"after " + name.encode() + b"\n")
            self.assertEqual(len(service.lines[name].logs), 1)
        self.successResultOf(service.stopService())
        stop = b"[serialgw: the gateway is stopping]\n"
        self.assertEqual((self.read("a.log"), self.read("b.log")), (b"before a\nafter b\n" + stop, b"before b\nafter a\n" + stop))
        # (Stamped with the clock's time: 0, 1970.)
        self.assertEqual(self.read("c.log"), b"[1970] before c\nafter c\n" + stop)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_logsRetunedInLinearTime(self) -> None:
        """A reload changing 300 lines' console logs (a [defaults] log-format) goes through each line's logs a few times, not once per other line (1000 lines: 1.7 s with every line held)."""
        configs = [self.config(f"l{i}", f"l{i}.log") for i in range(300)]
        service = GatewayService(configs, reactor=self.clock, openPort=self.openPort)
        service.startService()
        for line in service.lines.values():
            line.logs = CountingList(line.logs)
        CountingList.walks = 0
        reloaded = service.reload([self.config(f"l{i}", f"l{i}.log", "%H ") for i in range(300)])
        self.clock.advance(0)  # (retuned CHANGES_PER_TURN a turn)
        self.successResultOf(reloaded)
        self.assertLessEqual(CountingList.walks, 10 * 300)
        self.successResultOf(service.stopService())
