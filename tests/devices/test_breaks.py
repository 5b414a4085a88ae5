"""
Tests for serialgw.devices.breaks: the break sequencer alone, on a
recording port and a Clock, each test comparing the exact transitions
(time, event, state) with what the port saw.
"""

from __future__ import annotations

import errno
from typing import Optional

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from serialgw.devices.breaks import (
    BREAKING,
    DRAIN_LIMIT,
    DRAIN_POLL,
    DRAINING_DRIVER,
    DRAINING_QUEUE,
    IDLE,
    BreakSequencer,
    BreakState,
    Event,
)
from tests.fakes import RecordingPort


class Target:
    """A device as the sequencer sees it: a port, a loss path (C{gone}: errnos that mean gone), a release."""

    def __init__(self, clock: Clock) -> None:
        self.name = "ttyS9"
        self.clock = clock
        self.port = RecordingPort(clock)
        self.gone = {errno.EIO}
        self.failed: list[int] = []
        self.released: list[float] = []
        self.sequencer: Optional[BreakSequencer] = None

    def breakFailed(self, error: OSError) -> bool:
        assert error.errno is not None
        self.failed.append(error.errno)
        if error.errno in self.gone:
            # The device's loss path cancels the break.
            assert self.sequencer is not None
            self.sequencer.cancel()
            return True
        return False

    def breakOver(self) -> None:
        self.released.append(self.clock.seconds())

    def retimed(self, settings: object) -> bool:
        self.port._record("retimed", settings)
        return True


class SequencerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.target = Target(self.clock)
        self.port = self.target.port
        self.moves: list[tuple[float, Event, BreakState]] = []
        self.breaks = BreakSequencer(self.target, self.clock, self.observe)
        self.target.sequencer = self.breaks

    def tearDown(self) -> None:
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIs(self.breaks.state, IDLE)

    def observe(self, event: Event, state: BreakState) -> None:
        self.moves.append((round(self.clock.seconds(), 6), event, state))

    def failSet(self, code: int, setting: bool = True) -> None:
        """Make setting (or, C{setting} false, clearing) the break fail with C{code}; the other still works."""
        record = self.port.setBreak

        def setBreak(on: bool) -> None:
            if on == setting:
                raise OSError(code, "failed")
            record(on)

        self.port.setBreak = setBreak  # type: ignore[method-assign]

    def test_plainBreak(self) -> None:
        """Nothing queued, the driver empty: the break is set at once and cleared after its duration, then released."""
        self.assertTrue(self.breaks.send(0.25, queued=False))
        self.clock.advance(0.25)
        self.assertEqual(self.moves, [(0, "send", DRAINING_QUEUE), (0, "queueEmpty", DRAINING_DRIVER),
                                      (0, "breakSet", BREAKING), (0.25, "timeUp", IDLE)])
        self.assertEqual(self.port.events, [(0, "break", True), (0.25, "break", False)])
        self.assertEqual(self.target.released, [0.25])

    def test_queueFirst(self) -> None:
        """With the device's queue not empty, the sequencer waits (no timer) until told it is empty."""
        self.breaks.send(1.5, queued=True)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(3)
        self.assertEqual((self.moves, self.port.events), ([(0, "send", DRAINING_QUEUE)], []))
        self.breaks.queueEmpty()
        self.clock.advance(1.5)
        self.assertEqual(self.moves[1:], [(3, "queueEmpty", DRAINING_DRIVER), (3, "breakSet", BREAKING),
                                          (4.5, "timeUp", IDLE)])
        self.assertEqual(self.port.events, [(3, "break", True), (4.5, "break", False)])

    def test_driverPolled(self) -> None:
        """The driver's queue is polled every DRAIN_POLL until empty; then the break."""
        self.port.pending = 10
        self.breaks.send(0.25, queued=False)
        self.clock.advance(DRAIN_POLL)
        self.port.pending = 0
        self.clock.advance(DRAIN_POLL)
        self.clock.advance(0.25)
        self.assertEqual(self.moves, [(0, "send", DRAINING_QUEUE), (0, "queueEmpty", DRAINING_DRIVER),
                                      (0, "driverBusy", DRAINING_DRIVER),
                                      (DRAIN_POLL, "driverBusy", DRAINING_DRIVER),
                                      (DRAIN_POLL * 2, "breakSet", BREAKING),
                                      (DRAIN_POLL * 2 + 0.25, "timeUp", IDLE)])
        self.assertEqual([(round(t, 6), v) for t, _, v in self.port.events],
                         [(DRAIN_POLL * 2, True), (DRAIN_POLL * 2 + 0.25, False)])

    def test_drainLimited(self) -> None:
        """A driver that never drains (flow control stopped) holds the break DRAIN_LIMIT from the request, no longer."""
        self.clock.advance(1)
        self.breaks.send(0.25, queued=True)
        self.clock.advance(0.5)
        self.port.pending = 10
        self.breaks.queueEmpty()
        for _ in range(int(DRAIN_LIMIT / DRAIN_POLL) + 10):
            if self.breaks.state is not DRAINING_DRIVER:
                break
            self.clock.advance(DRAIN_POLL)
        polls = [t for t, event, _ in self.moves if event == "driverBusy"]
        breakSet = [t for t, event, _ in self.moves if event == "breakSet"]
        self.assertEqual((polls[0], len(breakSet)), (1.5, 1))
        self.assertTrue(polls[-1] <= 1 + DRAIN_LIMIT <= breakSet[0] <= 1 + DRAIN_LIMIT + DRAIN_POLL, (polls[-1], breakSet))
        self.clock.advance(0.25)
        self.assertEqual(self.moves[-1][1:], ("timeUp", IDLE))

    def test_oneAtATime(self) -> None:
        """While a break is under way (any state) another is refused: nothing moves, nothing is set twice."""
        self.port.pending = 1
        self.breaks.send(0.25, queued=True)
        seen = []
        for step in (self.breaks.queueEmpty, lambda: setattr(self.port, "pending", 0),
                     lambda: self.clock.advance(DRAIN_POLL)):
            seen.append(self.breaks.state)
            before = list(self.moves)
            self.assertFalse(self.breaks.send(9, queued=False))
            self.assertEqual(self.moves, before)
            step()
        self.assertEqual(seen, [DRAINING_QUEUE, DRAINING_DRIVER, DRAINING_DRIVER])
        self.assertIs(self.breaks.state, BREAKING)
        self.assertFalse(self.breaks.send(9, queued=False))
        self.clock.advance(0.25)
        self.assertEqual([v for _, _, v in self.port.events], [True, False])
        self.assertTrue(self.breaks.send(0.25, queued=False))
        self.clock.advance(0.25)

    def test_queueEmptyOnlyWhileDrainingTheQueue(self) -> None:
        """queueEmpty idle, while the driver is polled or during the break changes nothing (no second poller)."""
        self.breaks.queueEmpty()
        self.port.pending = 1
        self.breaks.send(0.25, queued=False)
        self.breaks.queueEmpty()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.port.pending = 0
        self.clock.advance(DRAIN_POLL)
        self.breaks.queueEmpty()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0.25)
        self.assertEqual([e for _, e, _ in self.moves], ["send", "queueEmpty", "driverBusy", "breakSet", "timeUp"])

    def test_stopWhileDrainingTheQueue(self) -> None:
        """BREAK-OFF before the queue is written: called off, never set, what was held released."""
        self.breaks.send(0.25, queued=True)
        self.clock.advance(1)
        self.breaks.stop()
        self.assertEqual(self.moves, [(0, "send", DRAINING_QUEUE), (1, "stop", IDLE)])
        self.assertEqual((self.port.events, self.target.released), ([], [1]))

    def test_stopWhileDrainingTheDriver(self) -> None:
        """BREAK-OFF while the driver is polled: the poll stops, the break is never set."""
        self.port.pending = 10
        self.breaks.send(0.25, queued=False)
        self.clock.advance(DRAIN_POLL)
        self.breaks.stop()
        self.assertEqual([(e, s) for _, e, s in self.moves][-1], ("stop", IDLE))
        self.assertEqual((self.port.events, self.target.released), ([], [DRAIN_POLL]))

    def test_stopWhileBreaking(self) -> None:
        """BREAK-OFF during the break clears it now; its timer is gone."""
        self.breaks.send(30, queued=False)
        self.clock.advance(1)
        self.breaks.stop()
        self.assertEqual(self.moves[-2:], [(0, "breakSet", BREAKING), (1, "stop", IDLE)])
        self.assertEqual(self.port.events, [(0, "break", True), (1, "break", False)])
        self.assertEqual(self.target.released, [1])
        self.breaks.stop()
        self.assertEqual(len(self.moves), 4)

    def test_cancelInEachState(self) -> None:
        """cancel (the device closes or goes) returns to idle from any state; it clears only a set break, releases nothing."""
        self.breaks.cancel()
        self.assertEqual(self.moves, [])
        self.breaks.send(0.25, queued=True)
        self.breaks.cancel()
        self.port.pending = 1
        self.breaks.send(0.25, queued=False)
        self.breaks.cancel()
        self.port.pending = 0
        self.breaks.send(0.25, queued=False)
        self.breaks.cancel()
        self.assertEqual([(e, s) for _, e, s in self.moves],
                         [("send", DRAINING_QUEUE), ("cancel", IDLE),
                          ("send", DRAINING_QUEUE), ("queueEmpty", DRAINING_DRIVER), ("driverBusy", DRAINING_DRIVER),
                          ("cancel", IDLE),
                          ("send", DRAINING_QUEUE), ("queueEmpty", DRAINING_DRIVER), ("breakSet", BREAKING),
                          ("cancel", IDLE)])
        self.assertEqual(self.port.events, [(0, "break", True), (0, "break", False)])
        self.assertEqual(self.target.released, [])

    def test_setRefused(self) -> None:
        """Setting the break fails (EPERM): a warning naming the device, back to idle, what was held released."""
        self.failSet(errno.EPERM)
        with capturedLogs() as events:
            self.breaks.send(0.25, queued=False)
        self.assertEqual(self.moves[-1], (0, "setFailed", IDLE))
        self.assertEqual((self.target.failed, self.target.released, self.port.events), ([errno.EPERM], [0], []))
        self.assertEqual([(e["device"], e["reason"]) for e in events if "cannot set break" in e["log_format"]],
                         [("ttyS9", "failed")])

    def test_setFindsItGone(self) -> None:
        """Setting the break fails with EIO: the device's loss path cancels it; no warning, nothing released."""
        self.failSet(errno.EIO)
        with capturedLogs() as events:
            self.breaks.send(0.25, queued=False)
        self.assertEqual(self.moves[-1], (0, "cancel", IDLE))
        self.assertEqual((self.target.failed, self.target.released), ([errno.EIO], []))
        self.assertEqual([e for e in events if "break" in e["log_format"]], [])

    def test_clearRefused(self) -> None:
        """Clearing fails (EPERM): a warning, and the break is over all the same."""
        self.failSet(errno.EPERM, setting=False)
        with capturedLogs() as events:
            self.breaks.send(0.25, queued=False)
            self.clock.advance(0.25)
        self.assertEqual(self.moves[-1], (0.25, "timeUp", IDLE))
        self.assertEqual((self.target.failed, self.target.released), ([errno.EPERM], [0.25]))
        self.assertEqual([e["device"] for e in events if "cannot clear break" in e["log_format"]], ["ttyS9"])

    def test_clearFindsItGone(self) -> None:
        """Clearing fails with EIO: the loss path cancels the break (its own clear attempt fails quietly)."""
        self.failSet(errno.EIO, setting=False)
        self.breaks.send(0.25, queued=False)
        self.clock.advance(0.25)
        self.assertEqual(self.moves[-2:], [(0, "breakSet", BREAKING), (0.25, "cancel", IDLE)])
        self.assertEqual((self.target.failed, self.target.released), ([errno.EIO], []))

    def test_noTransitionOutsideTheTable(self) -> None:
        """An event the table has no row for, in the state it comes in, is a bug: KeyError, the state unchanged."""
        self.assertRaises(KeyError, self.breaks._move, "timeUp")
        self.assertIs(self.breaks.state, IDLE)
        self.assertEqual(self.moves, [])
