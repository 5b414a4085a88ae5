"""
The local device: an open tty or pty whose bytes the reactor moves.

L{SerialDevice} owns one file descriptor: it reads what the device sends and
hands it to its sink (the line), and queues what the line writes, written
as the device takes it.  That data path is here; its other parts are mixed
in from modules of their own: the controls (breaks, DTR and RTS, purges:
L{serialgw.devices.controls}), the loss, reopen and close
(L{serialgw.devices.loss}), settings changes in order with the output
(L{serialgw.devices.retime}), pacing (L{serialgw.devices.pacing}), what is
typed while it first opens (L{serialgw.devices.early}) and a flooding read
moved off the reactor (L{serialgw.devices.floodhandoff}).  The OS-level calls
live behind L{IPort} (see L{serialgw.devices.ports}), so the logic is
tested with a recording fake and a C{Clock}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import SerialSettings
from serialgw.devices import floodhandoff
from serialgw.devices.breaks import DRAINING_QUEUE, IDLE, BreakSequencer
from serialgw.devices.controls import DeviceControls
from serialgw.devices.early import EarlyHold
from serialgw.devices.floodhandoff import FloodReading
from serialgw.devices.loss import LossAndReturn
from serialgw.devices.nosink import NoSink
from serialgw.devices.ondemand import RestAndWake
from serialgw.devices.pacing import Pacing
from serialgw.devices.reopen import OPENING, Reopener
from serialgw.devices.retime import SettingsInOrder
from serialgw.devices.sources import Held, Sources, cutHeld
from serialgw.interfaces import RESTING, IDevice, IDeviceSink, IPort, IRestingDevice

log = Logger()

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
# What a run of the queue's sources or a held piece costs, about, counted with the bytes against the
# watermarks (a Python list or tuple and its slot: 65-81 bytes measured): two clients alternating
# 1-byte writes into a device that took nothing made a run a byte, 65,537 runs for 64 KiB queued, 5.3 MB.
PIECE_COST = 64


@implementer(IDevice, IRestingDevice)
class SerialDevice(DeviceControls, LossAndReturn, SettingsInOrder, Pacing, EarlyHold, FloodReading, RestAndWake):
    """
    One open device in the reactor.

    Writes go straight to the descriptor when nothing is queued, else to a
    queue drained as the device takes it.  A break (L{BreakSequencer})
    first lets queued output drain (from our queue and from the driver's),
    then sets the break condition and clears it C{duration} seconds later;
    what is written meanwhile is held and written after the break.  A break
    asked for while one is under way is refused, not doubled.

    However the device goes (a read or write fails, an ioctl finds it gone,
    the reactor reports a hang-up through C{connectionLost}), it takes one
    path, L{_lost}: logged as "device lost", the sink told, C{up} false, and
    with an C{opener} it is opened again with backoff (L{Reopener}).  Only L{close} ends
    it for good.  A device that could not be opened at start is made with
    an L{AbsentPort} and C{downReason}: it starts down, on the same path;
    with C{downReason} L{OPENING} its maker opens it at once on that path
    (C{reopener.openNow()}: off the reactor thread); with L{RESTING} it
    waits, closed, until its line wakes it (on demand: L{RestAndWake}).
    """

    # The attributes set in __init__ that no base has a default for are
    # slots, the instance's __dict__ keeping the rest (_fullReads, what
    # tests set): past 30 names (Python 3.11's inline values) it is a dict
    # of the device's own (40 names), where no method call and no
    # attribute read is specialised (see serialgw.line.hub.Line).
    __slots__ = (
        "port", "name", "lineName", "_fileno", "settings", "reopener", "up", "downReason", "dropped",
        "unsent", "_wantReading", "_paused", "_hangupCall", "lineErrorsWatched", "_keptSettings",
        "modemLines", "reactor", "breakDuration", "sink", "_out", "_outFrom", "_held", "_heldSize", "_early",
        "_writable", "_breaks", "_reading", "_writing", "closed", "bytesWritten", "bytesRead", "breaks",
        "pace", "paceLine", "_paced", "_paceCall", "_nextWrite", "lockedBy", "logBudget",
    )

    noSettings = ""

    # A tty's poll waits for its kernel worker when the input is empty: one
    # that stays ready may be polled one-shot (serialgw.app.oneshot).
    oneShotWhileReady = True

    def __init__(
        self,
        port: IPort,
        reactor: Any,
        breakDuration: float = 0.25,
        sink: Optional[IDeviceSink] = None,
        opener: Optional[Callable[[], IPort]] = None,
        reopenPolicy: Callable[[int], float] = lambda attempt: min(0.5 * 2**attempt, 10.0),
        downReason: Optional[str] = None,
        lineName: str = "",
    ) -> None:
        self.port = port
        self.name: str = port.name
        # The name of the line it serves, said in its reopens' log lines (a name: the device knows no line).
        self.lineName = lineName
        self._fileno = port.fileno()
        self.settings: SerialSettings = port.settings
        # Opens the device again after it vanished (never without an opener):
        # attempt n (0, 1, ...) after reopenPolicy(n) seconds.
        self.reopener = Reopener(self, reactor, opener, reopenPolicy)
        self.up = True
        # Why the device is down (None while it is up).
        self.downReason: Optional[str] = None
        # (See IDevice: unsent, given while up and never sent, is part of dropped but for purges.)
        self.dropped = self.unsent = 0
        self._wantReading = False
        self._paused = False
        self._hangupCall: Any = None
        self.lineErrorsWatched = False
        # The settings kept for it while it was down, until it is back (see announceUp).
        self._keptSettings: Optional[SerialSettings] = None
        # Opening a tty raises DTR and RTS.
        self.modemLines = {"dtr": True, "rts": True}
        self.reactor = reactor
        self.breakDuration = breakDuration
        self.sink: Any = sink if sink is not None else NoSink()
        self._out = bytearray()
        # Whose the queue's bytes are (see dropQueuedFrom); what a break or a change holds, by whose.
        self._outFrom = Sources()
        self._held: Held = []
        self._heldSize = 0
        self._early = bytearray()  # (written while it first opens: see EarlyHold)
        self._writable = True
        self._breaks = BreakSequencer(self, reactor)
        self._reading = False
        self._writing = False
        self.closed = False
        self.bytesWritten = 0
        self.bytesRead = 0
        self.breaks = 0
        # Full reads in a row (FloodReading): read on every read, so the device's own (a class
        # attribute is looked up through an instance the slow way in Python 3.11: not specialised).
        self._fullReads = 0
        # Pacing for slow devices (off by default): at least pace seconds
        # between bytes written, at least paceLine after a CR.
        self.pace = 0.0
        self.paceLine = 0.0
        self._paced = False
        self._paceCall: Any = None
        self._nextWrite = 0.0
        # The process holding the device's UUCP lock, while that keeps it down.
        self.lockedBy: Optional[int] = None
        # Its down and up are the gateway's own news: not limited (IDevice.logBudget).
        self.logBudget: Optional[str] = None
        if downReason is not None:
            # Not there at start: down from the first moment, reopened as
            # if it had vanished.
            self.up = False
            self.downReason = downReason
            self._fileno = -1
            if opener is None:
                self.closed = True
            elif downReason == RESTING:
                self.resting = True
            elif downReason != OPENING:
                self.reopener.start()
        else:
            port.startWatching(reactor)

    # IReadDescriptor / IWriteDescriptor

    def fileno(self) -> int:
        # The reactor asks on every event: kept, not asked of the port.
        return self._fileno

    def logPrefix(self) -> str:
        return f"serialgw device {self.name}"

    def doRead(self) -> Optional[Failure]:
        try:
            data = self.port.read()
        except OSError as e:
            self._lost(e)
            return None
        self._received(data)
        # (_countRead's common case, a short read after short reads, without the call.)
        if self._fullReads or len(data) >= floodhandoff.FULL:
            self._countRead(len(data))
        return None

    def _received(self, data: bytes) -> None:
        if data:
            try:
                self.sink.deviceDataReceived(data)
            except Exception:
                # Never let the reactor drop this reader over a bug above us.
                log.failure("{device}: handling device output failed", device=self.name)
            self.bytesRead += len(data)
        if self.lineErrorsWatched:
            lineState = self.port.takeLineState()
            if lineState:
                try:
                    self.sink.deviceLineState(lineState)
                except Exception:
                    log.failure("{device}: handling a line state failed", device=self.name)

    def doWrite(self) -> Optional[Failure]:
        if self._paced:
            # The device took nothing last time: try the paced byte again.
            self._stopWriting()
            self._pump()
            return None
        if self._out:
            try:
                n = self.port.write(self._out)
            except OSError as e:
                self._lost(e)
                return None
            if n:
                del self._out[:n]
                self._outFrom.taken(n)
                self.bytesWritten += n
        if not self._out:
            self._stopWriting()
            if self._breaks.state is DRAINING_QUEUE:
                self._breaks.queueEmpty()
        self._checkWatermark()
        return None

    # The line's side

    def start(self) -> None:
        """Start reading from the device."""
        self._wantReading = True
        if self._reader is not None:
            if not self._paused:
                self._reader.resume()
            return
        if not self._reading and self.usable and not self._paused:
            self._reading = True
            self.reactor.addReader(self)

    @property
    def usable(self) -> bool:
        return self.up and not self.closed

    def pauseReading(self) -> None:
        """Stop reading until resumeReading (a lossless client is behind)."""
        self._paused = True
        if self._reader is not None:
            self._reader.pause()
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False
        self._watchHangup()

    def resumeReading(self) -> None:
        self._paused = False
        self._stopWatchingHangup()
        if self._wantReading:
            self.start()

    def write(self, data: bytes, source: Any = None) -> None:
        """
        Queue bytes for the device, after any break under way; dropped (and
        counted) while the device is down.  C{source}: whose they are (a
        client), for L{dropQueuedFrom}.
        """
        if not data:
            return
        if self._out or self._breaks.state is not IDLE or not self.up or self.closed or self._paced:
            self._queue(data, source)
            if self._paced and self._paceCall is None and not self._writing and self._out:
                self._pump()
            return
        # Nothing queued: straight to the descriptor.
        try:
            n = self.port.write(data)
        except OSError as e:
            # The write that finds the device gone: dropped with it (not
            # unsent: its line sees it down, and never counts it given).
            self.dropped += len(data)
            self._lost(e)
            return
        self.bytesWritten += n
        if n < len(data):
            self._out += data[n:]
            self._outFrom.add(source, len(data) - n)
            self._startWriting()
            self._checkWatermark()
        elif not self._writable:
            self._checkWatermark()

    def _queue(self, data: bytes, source: Any = None) -> None:
        if not self.usable:
            self.dropped += 0 if self._hold(data) else len(data)
            return
        if self._breaks.state is not IDLE:
            self._held.append((source, data))
            self._heldSize += len(data)
        else:
            self._out += data
            self._outFrom.add(source, len(data))
        self._checkWatermark()

    def dropQueuedFrom(self, source: Any) -> int:
        """
        Drop what C{source} wrote that waits in the queue, not written yet
        (its write right taken away); how many bytes.  The driver's own
        queue is written already as far as the gateway can tell, and what
        was held while the device first opened is nobody's.
        """
        cut = self._outFrom.cut(self._out, source)
        self._held, heldCut, self._nextAt = cutHeld(self._held, source, self._nextAt)
        self._heldSize -= heldCut
        if not cut and not heldCut:
            return 0
        self.unsent += cut + heldCut
        if not self._out:
            self._stopWriting()
            self._cancelPace()
            if self._breaks.state is DRAINING_QUEUE:
                self._breaks.queueEmpty()
        self._checkWatermark()
        return cut + heldCut

    def queuedBytes(self) -> int:
        # The driver's output queue too (TIOCOUTQ): what a close drops (see close).
        return len(self._out) + self._heldSize + len(self._early) + (self.port.outputPending() if self.usable else 0)

    # Internals

    def _startWriting(self) -> None:
        if not self._writing:
            self._writing = True
            self.reactor.addWriter(self)

    def _stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)

    def _checkWatermark(self) -> None:
        # The bookkeeping too: bytes written in many small pieces from writers by turns cost more than the
        # bytes (one writer's queue is one run: its bytes alone count, as before).
        queued = (len(self._out) + self._heldSize + len(self._early)
                  + PIECE_COST * (max(len(self._outFrom.runs) - 1, 0) + len(self._held)))
        if self._writable and queued > HIGH_WATER:
            self._writable = False
            self.sink.deviceWritable(False)
        elif not self._writable and queued < LOW_WATER:
            self._writable = True
            self.sink.deviceWritable(True)

