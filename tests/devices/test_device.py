"""
Tests for serialgw.devices.device: the reactor side of a serial device.
"""

from __future__ import annotations

import errno
import termios

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from serialgw.config.specs import SerialSettings
from serialgw.devices.absent import AbsentPort
from serialgw.devices.breaks import DRAIN_LIMIT, DRAIN_POLL
from serialgw.devices.device import HIGH_WATER, SerialDevice
from serialgw.devices.errors import DeviceError
from serialgw.devices.termio import LINE_BREAK
from serialgw.interfaces import IDevice, IDeviceSink, IPort
from tests.fakes import RecordingPort


@implementer(IDeviceSink)
class Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.writable: list[bool] = []
        self.lost: list[object] = []
        self.lineStates: list[int] = []
        self.ups = 0
        self.notOpened: list[str] = []
        self.settingsBefore: list[object] = []

    def deviceDataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def deviceWritable(self, writable: bool) -> None:
        self.writable.append(writable)

    def deviceLost(self, reason: object) -> None:
        self.lost.append(reason)

    def deviceLineState(self, state: int) -> None:
        self.lineStates.append(state)

    def deviceUp(self) -> None:
        self.ups += 1

    def deviceNotOpened(self, reason: str) -> None:
        self.notOpened.append(reason)

    def deviceSettings(self, before: object) -> None:
        self.settingsBefore.append(before)


class SerialDeviceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.port = RecordingPort(self.reactor)
        self.sink = Sink()
        self.device = SerialDevice(self.port, self.reactor, 0.25, self.sink)

    def tearDown(self) -> None:
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_fakesProvideInterfaces(self) -> None:
        """The recording port is a full IPort, the sink an IDeviceSink; the device over them an IDevice."""
        verifyObject(IPort, self.port)
        verifyObject(IDevice, self.device)
        from zope.interface import directlyProvides

        directlyProvides(self.sink, IDeviceSink)
        verifyObject(IDeviceSink, self.sink)

    def test_writeGoesStraightThrough(self) -> None:
        """With nothing queued, a write reaches the port at once."""
        self.device.write(b"abc")
        self.assertEqual(self.port.events, [(0, "write", b"abc")])
        self.assertNotIn(self.device, self.reactor.getWriters())

    def test_partialWriteQueuesRest(self) -> None:
        """What the port does not take is queued and written when writable."""
        self.port.accept = 2
        self.device.write(b"abcde")
        self.device.write(b"fg")
        self.assertIn(self.device, self.reactor.getWriters())
        self.device.doWrite()
        self.device.doWrite()
        self.device.doWrite()
        self.assertEqual(self.port.written(), b"abcdefg")
        self.assertNotIn(self.device, self.reactor.getWriters())

    def test_readDelivered(self) -> None:
        """Bytes read from the port go to the sink unchanged."""
        self.device.start()
        self.assertIn(self.device, self.reactor.getReaders())
        self.port.incoming.append(b"\x00\xff\r\n")
        self.device.doRead()
        self.assertEqual(self.sink.data, [b"\x00\xff\r\n"])

    def test_breakSetAndClearedWithClock(self) -> None:
        """A break sets the condition now and clears it 250 ms later."""
        self.assertTrue(self.device.sendBreak())
        self.reactor.advance(0.249)
        self.assertEqual(self.port.events, [(0, "break", True)])
        self.reactor.advance(0.001)
        self.assertEqual(self.port.events, [(0, "break", True), (0.25, "break", False)])
        self.assertFalse(self.device.breaking)

    def test_breakDuration(self) -> None:
        """An explicit duration overrides the device's default."""
        self.device.sendBreak(1.5)
        self.reactor.advance(1.5)
        self.assertEqual([(t, v) for t, what, v in self.port.events], [(0, True), (1.5, False)])

    def test_breakNotDoubled(self) -> None:
        """A break asked for during one is refused: one set, one clear."""
        self.assertTrue(self.device.sendBreak())
        self.reactor.advance(0.1)
        self.assertFalse(self.device.sendBreak())
        self.reactor.advance(0.15)
        self.assertEqual(self.port.events, [(0, "break", True), (0.25, "break", False)])
        self.assertEqual(self.device.breaks, 1)
        self.assertTrue(self.device.sendBreak())
        self.reactor.advance(0.25)
        self.assertEqual(self.device.breaks, 2)

    def test_dataAfterBreakWaits(self) -> None:
        """Bytes written during a break reach the port after it is cleared."""
        self.device.write(b"before")
        self.device.sendBreak()
        self.device.write(b"during")
        self.device.write(b"+more")
        self.reactor.advance(0.25)
        self.device.write(b"after")
        self.assertEqual(
            self.port.events,
            [
                (0, "write", b"before"),
                (0, "break", True),
                (0.25, "break", False),
                (0.25, "write", b"during+more"),
                (0.25, "write", b"after"),
            ],
        )

    def test_queuedDataBeforeBreak(self) -> None:
        """Data still queued when a break is asked for is written first."""
        self.port.accept = 3
        self.device.write(b"abcdef")
        self.device.sendBreak()
        self.device.write(b"X")
        self.assertEqual(self.port.events, [(0, "write", b"abc")])
        self.device.doWrite()
        self.assertEqual(self.port.events[-2:], [(0, "write", b"def"), (0, "break", True)])
        self.reactor.advance(0.25)
        self.assertEqual(self.port.events[-2:], [(0.25, "break", False), (0.25, "write", b"X")])

    def test_breakWaitsForDriverQueue(self) -> None:
        """The break waits until the driver's output queue is empty."""
        self.port.pending = 10
        self.device.sendBreak()
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.port.events, [])
        self.port.pending = 0
        self.reactor.advance(DRAIN_POLL)
        self.assertEqual(self.port.events, [(DRAIN_POLL * 2, "break", True)])
        self.reactor.advance(0.25)

    def test_breakDrainLimited(self) -> None:
        """A queue that never drains (flow control stopped) delays a break at most DRAIN_LIMIT."""
        self.port.pending = 10
        self.device.sendBreak()
        for _ in range(int(DRAIN_LIMIT / DRAIN_POLL) + 2):
            self.reactor.advance(DRAIN_POLL)
        events = [(what, v) for _, what, v in self.port.events]
        self.assertEqual(events, [("break", True)])
        self.assertTrue(DRAIN_LIMIT <= self.port.events[0][0] < DRAIN_LIMIT + DRAIN_POLL * 1.5)
        self.reactor.advance(0.25)
        self.assertEqual([v for _, what, v in self.port.events], [True, False])

    def test_backpressure(self) -> None:
        """The sink is told when the queue passes the high mark and falls under the low one."""
        self.port.accept = 0
        self.device.write(b"x" * (HIGH_WATER + 1))
        self.assertEqual(self.sink.writable, [False])
        self.port.accept = None
        self.device.doWrite()
        self.assertEqual(self.sink.writable, [False, True])
        self.assertEqual(len(self.port.written()), HIGH_WATER + 1)

    def test_closedWhileBehindWithTypingWaiting(self) -> None:
        """Closed while it took no input, its line resuming a person's waiting typing as the queue is dropped: that typing is dropped too (counted), not written to the port after the queue before it was dropped."""
        self.port.accept = 0
        self.device.write(b"x" * (HIGH_WATER + 1))

        def writable(writable: bool) -> None:
            self.sink.writable.append(writable)
            if writable:
                self.device.write(b"typed")

        self.sink.deviceWritable = writable  # type: ignore[method-assign]
        self.port.accept = None
        self.device.close()
        self.assertEqual(self.sink.writable, [False, True])
        self.assertEqual(self.port.written(), b"")
        self.assertEqual(self.device.dropped, HIGH_WATER + 1 + 5)

    def test_lineStateReported(self) -> None:
        """A break seen by the port, while line errors are watched, reaches the sink after the data read with it."""
        self.device.start()
        self.device.watchLineErrors(True)
        self.port.incoming.append(b"x")
        self.port.lineState = LINE_BREAK
        self.device.doRead()
        self.assertEqual((self.sink.data, self.sink.lineStates), ([b"x"], [LINE_BREAK]))
        self.device.doRead()
        self.assertEqual(self.sink.lineStates, [LINE_BREAK])

    def test_failingSinkKeepsTheReader(self) -> None:
        """
        Whatever the sink raises (data, line state), doRead returns nothing
        that would make the reactor drop the device: it stays open and read.
        """
        def dataBoom(data: bytes) -> None:
            raise RuntimeError("bug above")

        def stateBoom(state: int) -> None:
            raise RuntimeError("bug above")

        self.sink.deviceDataReceived = dataBoom  # type: ignore[method-assign]
        self.sink.deviceLineState = stateBoom  # type: ignore[method-assign]
        self.device.start()
        self.device.watchLineErrors(True)
        self.port.incoming.append(b"x")
        self.port.lineState = LINE_BREAK
        self.assertIsNone(self.device.doRead())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertTrue(self.device.usable)
        self.assertIn(self.device, self.reactor.getReaders())

    def test_stopBreak(self) -> None:
        """stopBreak clears a held break at once, cancels its timer, and releases held data."""
        self.device.sendBreak(30)
        self.device.write(b"later")
        self.reactor.advance(1)
        self.device.stopBreak()
        self.assertEqual(
            self.port.events, [(0, "break", True), (1, "break", False), (1, "write", b"later")]
        )
        self.assertFalse(self.device.breaking)

    def test_stopBreakWhileDraining(self) -> None:
        """A break still waiting for output to drain is called off, never set."""
        self.port.accept = 0
        self.device.write(b"slow")
        self.device.sendBreak()
        self.device.stopBreak()
        self.port.accept = None
        self.device.doWrite()
        self.assertEqual(self.port.events, [(0, "write", b"slow")])

    def test_purgeTransmit(self) -> None:
        """Purging transmit drops our queue and held bytes, and flushes the driver."""
        self.port.accept = 0
        self.device.write(b"queued")
        self.device.purge(receive=False, transmit=True)
        self.port.accept = None
        self.assertNotIn(self.device, self.reactor.getWriters())
        self.assertEqual(self.device.queuedBytes(), 0)
        self.assertEqual(self.port.events, [(0, "purge", (False, True))])

    def test_modemLineWithout(self) -> None:
        """Without modem lines (ENOTTY), DTR/RTS requests are remembered and reported."""
        self.assertFalse(self.device.setModemLine("dtr", False))
        self.assertEqual(self.device.modemLines, {"dtr": False, "rts": True})
        self.assertIsNone(self.device.modemState())

    def test_modemLineFailure(self) -> None:
        """Where setting a line fails on real hardware, the state in effect is reported."""
        self.port.modem = 0x30
        self.assertFalse(self.device.setModemLine("rts", False))
        self.port.modemError = OSError(errno.EPERM, "Operation not permitted")
        self.assertTrue(self.device.setModemLine("dtr", True))
        self.assertFalse(self.device.setModemLine("rts", True))
        self.assertEqual(self.port.events, [(0, "rts", False)])

    def test_readErrorLosesDevice(self) -> None:
        """EIO on read closes the device and tells the sink, once."""
        self.device.start()
        self.port.error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.assertEqual(len(self.sink.lost), 1)
        self.assertTrue(self.port.closed)
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.device.write(b"dropped")
        self.assertFalse(self.device.sendBreak())

    def test_closeDuringBreakClears(self) -> None:
        """Closing during a break clears the condition and cancels the timer."""
        self.device.sendBreak()
        self.device.close()
        self.assertEqual([(w, v) for _, w, v in self.port.events], [("break", True), ("break", False), ("close", None)])


class ReopeningDevice(SynchronousTestCase):
    """
    Set-up of a started SerialDevice on a RecordingPort whose opener gives
    a new port each time, after failing C{absent} times (backoff 0.5 * 2**n).
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.ports = [RecordingPort(self.reactor)]
        self.absent = 0
        self.sink = Sink()

        def opener() -> RecordingPort:
            if self.absent:
                self.absent -= 1
                raise DeviceError("cannot open device 'fake': No such file or directory")
            port = RecordingPort(self.reactor)
            self.ports.append(port)
            return port

        self.opener = opener
        self.device = SerialDevice(self.ports[0], self.reactor, 0.25, self.sink, opener=opener,
                                   reopenPolicy=lambda attempt: 0.5 * 2**attempt)
        self.device.start()

    def tearDown(self) -> None:
        self.device.close()
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class ReopenTests(ReopeningDevice, SynchronousTestCase):
    def unplug(self) -> None:
        self.ports[-1].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()

    def reopenGap(self) -> float:
        """Unplug the device; how long until it is opened again."""
        self.unplug()
        lost, count = self.reactor.seconds(), len(self.ports)
        while len(self.ports) == count:
            self.reactor.advance(min(c.getTime() for c in self.reactor.getDelayedCalls()) - self.reactor.seconds())
        return self.reactor.seconds() - lost

    def test_flappingDeviceBacksOff(self) -> None:
        """A device that comes back and fails at once, again and again (EIO at its first read: a flaky USB adapter or cable), is opened ever more rarely, not every 0.5 s for ever; back for 10 s, its next loss starts from 0.5 s again."""
        self.assertEqual([self.reopenGap() for _ in range(5)], [0.5, 1.0, 2.0, 4.0, 8.0])
        self.reactor.advance(10.0)
        self.assertEqual(self.reopenGap(), 0.5)

    def test_hangupSeenWhilePaused(self) -> None:
        """
        A device that hangs up while its reading is paused (a lossless
        client behind): looked at every HANGUP_CHECK s, it is lost (down,
        the sink told) and reopened, not kept "up" until reading resumes.
        """
        from serialgw.devices.loss import HANGUP_CHECK

        self.device.pauseReading()
        self.reactor.advance(HANGUP_CHECK)
        self.assertEqual((self.device.up, self.sink.lost), (True, []))
        self.ports[-1].hung = True
        self.reactor.advance(HANGUP_CHECK)
        self.assertEqual((self.device.up, self.device.downReason, len(self.sink.lost)), (False, "hung up", 1))
        self.assertTrue(self.ports[0].closed)
        # Back while still paused: not read, and watched again.
        self.reactor.advance(0.5)
        self.assertEqual((len(self.ports), self.device.up, self.sink.ups), (2, True, 1))
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.ports[-1].hung = True
        self.reactor.advance(HANGUP_CHECK)
        self.assertEqual((self.device.up, len(self.sink.lost)), (False, 2))
        # (Back after 1 s: it was lost within STABLE_UP s of its return, the backoff carried on.)
        self.reactor.advance(1.0)
        # Reading again: no more looking.
        self.device.resumeReading()
        self.assertIn(self.device, self.reactor.getReaders())
        self.ports[-1].hung = True
        self.reactor.advance(HANGUP_CHECK)
        self.assertEqual((self.device.up, len(self.sink.lost)), (True, 2))

    def test_reopenWithBackoff(self) -> None:
        """A vanished device is reopened with backoff; settings and DTR come back; the sink hears both events."""
        self.device.apply(SerialSettings(9600, stopbits=2))
        self.device.setModemLine("dtr", False)
        self.absent = 2
        self.unplug()
        self.assertEqual((len(self.sink.lost), self.sink.ups), (1, 0))
        self.assertFalse(self.device.up)
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.reactor.advance(0.5)
        self.reactor.advance(1.0)
        self.assertEqual(len(self.ports), 1)
        self.reactor.advance(2.0)
        self.assertEqual((len(self.ports), self.sink.ups), (2, 1))
        self.assertTrue(self.device.up)
        self.assertIn(self.device, self.reactor.getReaders())
        self.assertEqual(self.ports[1].settings, SerialSettings(9600, stopbits=2))

    def test_downDropsAndCounts(self) -> None:
        """While down, writes are dropped and counted, breaks refused, settings remembered for later."""
        self.port = self.ports[0]
        self.port.accept = 0
        self.device.write(b"queued")
        self.unplug()
        self.device.write(b"lost")
        self.assertFalse(self.device.sendBreak())
        self.assertEqual(self.device.apply(SerialSettings(1200)), SerialSettings(1200))
        self.assertEqual(self.device.dropped, 10)
        self.reactor.advance(0.5)
        self.assertEqual(self.ports[1].settings, SerialSettings(1200))
        self.device.write(b"fresh")
        self.assertEqual(self.ports[1].written(), b"fresh")

    def test_closeStopsReopening(self) -> None:
        """close() while down cancels the reopen timer."""
        self.unplug()
        self.device.close()
        self.reactor.advance(10)
        self.assertEqual(len(self.ports), 1)


class LossPathTests(ReopeningDevice, SynchronousTestCase):
    """
    Every way a device can go takes the one loss path: "device lost" logged
    once, the sink told, up false with a reason while down, reopened with
    backoff, back with the sink told.
    """

    def assertLostThenBack(self, lose: object, reason: str) -> None:
        """Run C{lose}; check the one loss path, then the way back (two failed attempts first)."""
        self.absent = 2
        with capturedLogs() as events:
            lose()  # type: ignore[operator]
        lost = [e for e in events if "device lost" in e["log_format"]]
        self.assertEqual([(e["device"], e["reason"]) for e in lost], [("fake", reason)])
        self.assertEqual((len(self.sink.lost), self.sink.ups), (1, 0))
        self.assertEqual((self.device.up, self.device.closed, self.device.downReason), (False, False, reason))
        self.assertTrue(self.ports[0].closed)
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.assertNotIn(self.device, self.reactor.getWriters())
        self.reactor.advance(0.5)
        self.reactor.advance(1.0)
        self.assertEqual(self.device.downReason, "cannot open device 'fake': No such file or directory")
        self.assertEqual(len(self.ports), 1)
        self.reactor.advance(2.0)
        self.assertEqual((len(self.ports), self.sink.ups, len(self.sink.lost)), (2, 1, 1))
        self.assertEqual((self.device.up, self.device.downReason), (True, None))
        self.assertIn(self.device, self.reactor.getReaders())

    def test_readEIO(self) -> None:
        """EIO on read (a tty hung up) is a loss."""
        def lose() -> None:
            self.ports[0].error = OSError(errno.EIO, "Input/output error")
            self.device.doRead()

        self.assertLostThenBack(lose, "Input/output error")

    def test_readENXIO(self) -> None:
        """ENXIO on read (a USB adapter gone) is a loss."""
        def lose() -> None:
            self.ports[0].error = OSError(errno.ENXIO, "No such device or address")
            self.device.doRead()

        self.assertLostThenBack(lose, "No such device or address")

    def test_reactorHangup(self) -> None:
        """
        EPOLLHUP without EPOLLIN: the reactor calls connectionLost with
        ConnectionDone (it used to close the device for good, silently).
        """
        self.assertLostThenBack(lambda: self.device.connectionLost(Failure(ConnectionDone())), "hung up")

    def test_reactorConnectionLost(self) -> None:
        """EPOLLHUP on a device only written to: ConnectionLost; a loss like any other."""
        self.assertLostThenBack(lambda: self.device.connectionLost(Failure(ConnectionLost())), "hung up")

    def test_reactorDropsAfterException(self) -> None:
        """An exception out of doRead makes the reactor call connectionLost with it: a loss, never a close."""
        self.assertLostThenBack(lambda: self.device.connectionLost(Failure(RuntimeError("bug in a port"))),
                                "bug in a port")

    def test_writeFails(self) -> None:
        """A write with nothing queued that fails (EIO) is a loss; its bytes are counted dropped (not unsent: never given)."""
        def lose() -> None:
            self.ports[0].error = OSError(errno.EIO, "Input/output error")
            self.device.write(b"xyz")

        self.assertLostThenBack(lose, "Input/output error")
        self.assertEqual((self.device.dropped, self.device.unsent), (3, 0))

    def test_queuedWriteFails(self) -> None:
        """A queued write that fails when the device is writable again is a loss; the queue is counted as dropped."""
        def lose() -> None:
            self.ports[0].accept = 0
            self.device.write(b"queued")
            self.ports[0].error = OSError(errno.EIO, "Input/output error")
            self.device.doWrite()

        self.assertLostThenBack(lose, "Input/output error")
        self.assertEqual(self.device.dropped, 6)

    def test_ioctlFindsItGone(self) -> None:
        """A control call that fails with ENODEV (the device went) is a loss, not a warning."""
        def lose() -> None:
            self.ports[0].modem = 0x30
            self.ports[0].modemError = OSError(errno.ENODEV, "No such device")
            self.assertTrue(self.device.setModemLine("dtr", True))

        self.assertLostThenBack(lose, "No such device")

    def test_breakFindsItGone(self) -> None:
        """A break whose TIOCSBRK fails with EIO is a loss; the break is over."""
        def lose() -> None:
            self.ports[0].setBreak = self.failingBreak  # type: ignore[method-assign]
            self.assertTrue(self.device.sendBreak())

        self.assertLostThenBack(lose, "Input/output error")
        self.assertFalse(self.device.breaking)

    def test_settingsFindItGone(self) -> None:
        """
        New settings (a reload, RFC 2217) on a device that hung up unseen
        (not read yet: a wait listener): termios's EIO is a loss, the
        settings are kept for the reopened device (the error escaped to
        the caller: a reload stopped half way).
        """
        def lose() -> None:
            self.ports[0].apply = self.failingSettings  # type: ignore[method-assign]
            self.assertEqual(self.device.apply(SerialSettings(9600)), SerialSettings(9600))

        self.assertLostThenBack(lose, "Input/output error")
        self.assertEqual((self.device.settings, self.ports[1].settings), (SerialSettings(9600), SerialSettings(9600)))

    def test_purgeFindsItGone(self) -> None:
        """A purge (RFC 2217 PURGE-DATA) whose tcflush fails with EIO is a loss (termios.error escaped to the client)."""
        def lose() -> None:
            self.ports[0].purge = self.failingPurge  # type: ignore[method-assign]
            self.device.purge(True, True)

        self.assertLostThenBack(lose, "Input/output error")

    def test_lostWhileBehindWithTypingWaiting(self) -> None:
        """Lost while it took no input, its line resuming a person's waiting typing as the queue is dropped (writable again): one loss, and that typing dropped (counted), never written to the port going (it was written there, failed, and the loss ran again inside the first: 'device lost' twice, two reopen timers)."""
        port = self.ports[0]
        port.accept = 0
        self.device.write(b"x" * (HIGH_WATER + 1))
        self.assertEqual(self.sink.writable, [False])

        def writable(writable: bool) -> None:
            self.sink.writable.append(writable)
            if writable:
                self.device.write(b"typed")

        self.sink.deviceWritable = writable  # type: ignore[method-assign]

        def lose() -> None:
            port.error = OSError(errno.EIO, "Input/output error")
            self.device.doRead()

        self.assertLostThenBack(lose, "Input/output error")
        self.assertEqual(self.sink.writable, [False, True])
        self.assertEqual(port.written(), b"")
        self.assertEqual((self.device.dropped, self.device.unsent), (HIGH_WATER + 1 + 5, HIGH_WATER + 1))

    def failingPurge(self, receive: bool, transmit: bool) -> None:
        raise termios.error(errno.EIO, "Input/output error")

    def failingSettings(self, settings: SerialSettings) -> SerialSettings:
        raise termios.error(errno.EIO, "Input/output error")

    def failingBreak(self, on: bool) -> None:
        raise OSError(errno.EIO, "Input/output error")

    def test_lostOnce(self) -> None:
        """A hang-up seen twice (a read error, then the reactor's connectionLost) is one loss."""
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.device.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.sink.lost), 1)
        self.reactor.advance(0.5)
        self.assertEqual((len(self.ports), self.sink.ups), (2, 1))

    def test_connectionLostAfterClose(self) -> None:
        """After close() (down, "closed"), the reactor's connectionLost changes nothing: no loss, no reopening."""
        self.device.close()
        self.device.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((self.sink.lost, self.device.up, self.device.downReason, self.device.closed),
                         ([], False, "closed", True))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_startsDown(self) -> None:
        """A device absent at start is down with its reason from the first moment and reopened with the backoff."""
        self.device.close()
        sink = Sink()
        self.absent = 1
        device = SerialDevice(AbsentPort("/dev/ttyUSB7", SerialSettings(9600)), self.reactor, 0.25, sink,
                              opener=self.opener, reopenPolicy=lambda attempt: 0.5 * 2**attempt,
                              downReason="cannot open device '/dev/ttyUSB7': No such file or directory")
        self.addCleanup(device.close)
        device.start()
        device.write(b"early")
        self.assertEqual((device.up, device.closed, device.dropped), (False, False, 5))
        self.assertEqual(device.downReason, "cannot open device '/dev/ttyUSB7': No such file or directory")
        self.assertFalse(device.sendBreak())
        self.assertNotIn(device, self.reactor.getReaders())
        self.reactor.advance(0.5)
        self.assertEqual(len(self.ports), 1)
        self.reactor.advance(1.0)
        self.assertEqual((len(self.ports), sink.ups, sink.lost), (2, 1, []))
        self.assertEqual((device.up, device.downReason, device.name), (True, None, "fake"))
        self.assertEqual(self.ports[1].settings, SerialSettings(9600))
        self.assertIn(device, self.reactor.getReaders())

    def test_setUpFailsAfterReopen(self) -> None:
        """A reopened device whose set-up raises is closed, still down, and tried again (never left half up)."""
        reopened: list[RecordingPort] = []

        def opener() -> RecordingPort:
            port = RecordingPort(self.reactor)
            if not reopened:
                def boom(settings: SerialSettings) -> SerialSettings:
                    raise RuntimeError("ioctl bug")

                port.apply = boom  # type: ignore[method-assign]
            reopened.append(port)
            return port

        self.device.reopener.opener = opener
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.reactor.advance(0.5)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual((self.device.up, self.device.downReason), (False, "could not be set up again: ioctl bug"))
        self.assertTrue(reopened[0].closed)
        self.assertNotIn(self.device, self.reactor.getReaders())
        self.assertEqual(self.sink.ups, 0)
        self.reactor.advance(1.0)
        self.assertEqual((self.device.up, self.sink.ups, len(reopened)), (True, 1, 2))
        self.assertIn(self.device, self.reactor.getReaders())

    def test_failingSinkOnReturn(self) -> None:
        """A sink that raises on deviceUp does not undo the return: the device is up and read."""
        def boom() -> None:
            raise RuntimeError("bug above")

        self.sink.deviceUp = boom  # type: ignore[method-assign]
        self.ports[0].error = OSError(errno.EIO, "Input/output error")
        self.device.doRead()
        self.reactor.advance(0.5)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.device.up)
        self.assertIn(self.device, self.reactor.getReaders())
