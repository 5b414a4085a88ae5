"""
Modem lines read for RFC 2217 clients on many lines: one timer for all, a
slice a turn, so lines whose adapters take long to answer TIOCMGET (a USB
control transfer) never hold the others (line/modempolls.py).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.hub import Line
from serialgw.line.modempolls import POLL_INTERVAL, pollsOf
from tests.fakes import CallObserver, RecordingClient, RecordingDevice


class TimedModemDevice(RecordingDevice):
    """A device whose modem lines take C{cost} seconds of the clock to read; each read recorded (time, name)."""

    def __init__(self, clock: Clock, name: str, reads: list[tuple[float, str]], cost: float) -> None:
        RecordingDevice.__init__(self)
        self.clock, self.name, self.reads, self.cost = clock, name, reads, cost
        self.modem = 0x30

    def modemState(self) -> Optional[int]:
        if len(self.reads) >= 5000:
            # (Every line read in each turn, a turn longer than the interval: the clock never gets out.)
            raise AssertionError("modem lines read without end")
        self.reads.append((round(self.clock.seconds(), 6), self.name))
        self.clock.rightNow += self.cost  # (the ioctl: no call runs meanwhile)
        return self.modem


class ModemPollTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.reads: list[tuple[float, str]] = []

    def controlled(self, n: int, cost: float) -> list[tuple[Line, RecordingClient]]:
        """N lines, each with an RFC 2217 client controlling it (its first read is the controller's arrival)."""
        made = []
        for i in range(n):
            device = TimedModemDevice(self.clock, f"l{i}", self.reads, 0.0)
            line = Line(f"l{i}", device, clock=self.clock)
            client = RecordingClient(f"c{i}")
            line.attach(client)
            line.addController(client)
            device.cost = cost
            made.append((line, client))
        del self.reads[:]
        return made

    def toNext(self) -> None:
        """Advance the clock to its next call."""
        self.clock.advance(min(call.getTime() for call in self.clock.getDelayedCalls()) - self.clock.seconds())

    def test_slowReadsTakeTurns(self) -> None:
        """Four lines whose modem lines take 2 ms to read: one read a turn, a rest of 4 times its time between, not all four in one turn."""
        self.controlled(4, 0.002)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(self.reads, [(0.05, "l0")])
        for _ in range(4):
            self.toNext()
        # The next round starts POLL_INTERVAL after this one did.
        self.assertEqual(self.reads, [(0.05, "l0"), (0.06, "l1"), (0.07, "l2"), (0.08, "l3"), (0.1, "l0")])

    def test_readingTakesAFifthAtMost(self) -> None:
        """100 lines whose reads take 2 ms each: over 10 s no turn reads more than once, and reading takes at most a fifth of the time."""
        self.controlled(100, 0.002)
        turns = 0
        while self.clock.seconds() < 10.0:
            before = len(self.reads)
            self.toNext()
            self.assertEqual(len(self.reads) - before, 1)
            turns += 1
        self.assertEqual(turns, len(self.reads))
        self.assertLessEqual(len(self.reads) * 0.002 / self.clock.seconds(), 0.2)
        # Every line read in turn: a round is 100 reads.
        self.assertEqual([name for _, name in self.reads[:200]], [f"l{i % 100}" for i in range(200)])

    def test_fastReadsEveryInterval(self) -> None:
        """1000 lines whose reads take no time: all read in one turn every 50 ms, one timer for them all."""
        self.controlled(1000, 0.0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(len(self.reads), 1000)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(len(self.reads), 2000)
        self.assertEqual({t for t, _ in self.reads}, {0.05, 0.1})

    def test_manyLinesAtUSBCost(self) -> None:
        """1000 lines at 0.3 ms a read: a turn reads at most 4 (1 ms and the read under way), never 1000 (0.3 s)."""
        self.controlled(1000, 0.0003)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual(len(self.reads), 4)
        self.assertEqual({t for t, _ in self.reads}, {0.05, 0.0503, 0.0506, 0.0509})

    def test_changeToldAndLeaverNotRead(self) -> None:
        """A change is told to the line's client at its read; a line whose controller left is read no more, and the last one's going ends the timer."""
        made = self.controlled(3, 0.0)
        (line0, client0), (line1, client1), (line2, client2) = made
        assert isinstance(line1.device, TimedModemDevice)
        line1.device.modem = 0x30 | 0x80
        line2.detach(client2)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual([name for _, name in self.reads], ["l0", "l1"])
        self.assertEqual((client0.modem, client1.modem), ([], [0x30 | 0x80]))
        line0.detach(client0)
        line1.detach(client1)
        self.assertEqual((self.clock.getDelayedCalls(), pollsOf(self.clock)), ([], None))

    def test_oneLineFailingStopsNoOther(self) -> None:
        """A line whose read raises (logged, naming it) stops no other line's reads: the rest of the round and every later round read them all."""
        made = self.controlled(3, 0.0)
        failing = made[1][0].device
        assert isinstance(failing, TimedModemDevice)

        def broken() -> Optional[int]:
            self.reads.append((round(self.clock.seconds(), 6), "l1"))
            raise RuntimeError("modem read broke")

        failing.modemState = broken  # type: ignore[method-assign]
        events: list[dict[str, Any]] = []
        observer = CallObserver(events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.clock.advance(POLL_INTERVAL)
        self.clock.advance(POLL_INTERVAL)
        self.assertEqual([name for _, name in self.reads], ["l0", "l1", "l2"] * 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual([e.get("line") for e in events if "log_failure" in e], ["l1", "l1"])

    def test_clockSetForwardDuringARead(self) -> None:
        """The wall clock set forward an hour during a read: the reads go on within a second, not 4 hours later."""
        made = self.controlled(2, 0.0)
        device = made[0][0].device
        assert isinstance(device, TimedModemDevice)
        device.cost = 3600.0
        self.clock.advance(POLL_INTERVAL)
        device.cost = 0.0
        self.toNext()
        self.assertEqual(self.reads[:2], [(0.05, "l0"), (3601.05, "l1")])
