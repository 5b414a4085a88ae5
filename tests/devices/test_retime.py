"""
A settings change (RFC 2217 SET-BAUDRATE and the others) asked while
output is still on its way to the device (its own write queue, the
driver's output queue) is applied once that output has gone, as
tcsetattr's TCSADRAIN orders it, without blocking: what was typed before
a rate change goes at the old rate, what comes after it at the new.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import SerialSettings
from serialgw.devices.breaks import DRAIN_LIMIT, DRAIN_POLL
from serialgw.devices.device import SerialDevice
from tests.devices.test_device import Sink
from tests.fakes import RecordingPort

SLOW = SerialSettings(9600)
FAST = SerialSettings(115200)


class RetimeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.port = RecordingPort(self.reactor)
        self.sink = Sink()
        self.device = SerialDevice(self.port, self.reactor, 0.25, self.sink)

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def calls(self) -> list[tuple[str, object]]:
        return [(what, value) for _, what, value in self.port.events]

    def test_afterOwnQueue(self) -> None:
        """A rate change behind bytes in the device's own queue waits for them; bytes written after it go after it."""
        self.port.accept = 4
        self.device.write(b"stty 9600\r")
        self.assertEqual(self.device.apply(SLOW), SLOW)
        self.device.write(b"after")
        self.assertEqual(self.calls(), [("write", b"stty")])
        while self.device in self.reactor.getWriters():
            self.device.doWrite()
        self.reactor.advance(0)
        while self.device in self.reactor.getWriters():
            self.device.doWrite()
        self.assertEqual(self.calls(), [("write", b"stty"), ("write", b" 960"), ("write", b"0\r"), ("apply", SLOW),
                                        ("write", b"afte"), ("write", b"r")])
        self.assertEqual((self.device.settings, self.sink.settingsBefore), (SLOW, []))

    def test_afterDriverQueue(self) -> None:
        """Nothing queued here but the driver still sends (TIOCOUTQ): the change waits for it, polled, no longer than DRAIN_LIMIT."""
        self.port.pending = 10
        self.device.apply(SLOW)
        self.device.write(b"x")
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.calls(), [])
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.calls(), [("apply", SLOW), ("write", b"x")])
        # A driver held by flow control: applied after DRAIN_LIMIT all the same.
        self.port.pending = 5
        self.device.apply(FAST)
        self.reactor.pump([DRAIN_POLL] * int(DRAIN_LIMIT / DRAIN_POLL + 2))
        self.assertEqual(self.calls()[-1], ("apply", FAST))

    def test_nothingQueuedAtOnce(self) -> None:
        """With nothing on its way, the change is applied at once, as before."""
        self.assertEqual(self.device.apply(SLOW), SLOW)
        self.assertEqual(self.calls(), [("apply", SLOW)])

    def test_portTakesLessSaid(self) -> None:
        """The port takes less than was answered (a pty forces 8 bits): the sink is told, with what it was answered."""
        seven = SerialSettings(9600, 7)
        self.port.apply = lambda settings: SLOW  # type: ignore[method-assign]
        self.port.pending = 3
        self.assertEqual(self.device.apply(seven), seven)
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual((self.device.settings, self.sink.settingsBefore), (SLOW, [seven]))

    def test_laterChangeReplacesWaitingOne(self) -> None:
        """A second change while the first waits, nothing written between them: only the last is applied."""
        self.port.pending = 3
        self.device.apply(SLOW)
        self.device.apply(FAST)
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.calls(), [("apply", FAST)])

    def test_changeAfterHeldBytesWaitsForThem(self) -> None:
        """A second change with bytes written since the first: applied after those bytes, which go at the first's rate."""
        self.port.pending = 3
        self.device.apply(SLOW)
        self.device.write(b"between")
        self.device.apply(FAST)
        self.device.write(b"last")
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.calls(), [("apply", SLOW), ("write", b"between"), ("apply", FAST), ("write", b"last")])

    def test_breakOffLeavesTheChange(self) -> None:
        """An RFC 2217 BREAK-OFF while a change waits does not call the change off."""
        self.port.pending = 3
        self.device.apply(SLOW)
        self.device.stopBreak()
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.calls(), [("apply", SLOW)])

    def test_lostWhileWaiting(self) -> None:
        """The device lost while a change waits: nothing left behind; the change is kept for its return."""
        self.port.pending = 3
        self.device.apply(SLOW)
        self.device.write(b"dropped")
        self.device.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((self.device.up, self.device.settings), (False, SLOW))
        self.assertEqual(self.device.dropped, 7)
        self.device.close()

    def test_purgeLetsItGo(self) -> None:
        """A purge of the output (RFC 2217 PURGE-DATA) while a change waits: applied once the queue is dropped."""
        self.port.accept = 0
        self.device.write(b"stuck")
        self.device.apply(SLOW)
        self.device.purge(False, True)
        self.reactor.advance(0)
        self.assertEqual(self.calls(), [("purge", (False, True)), ("apply", SLOW)])

    def test_closeAppliesTheWaitingChange(self) -> None:
        """The device closed while a change waits (the settings put back at a line's close): applied before the close, the queue dropped."""
        self.port.accept = 0
        self.device.write(b"stuck")
        self.device.apply(SLOW)
        self.device.close()
        self.assertEqual(self.calls(), [("apply", SLOW), ("close", None)])
        self.assertEqual((self.device.settings, self.device.dropped), (SLOW, 5))
