"""
Pacing for slow devices (C{pace}, C{pace-line}): output to a local device
one byte (or one line) at a time, with timers between, never a sleep.

L{Pacing} is a part of L{serialgw.devices.device.SerialDevice}, kept apart:
it works on the device's output queue, port and counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serialgw.devices.breaks import DRAINING_QUEUE, BreakSequencer
from serialgw.devices.sources import Sources


class Pacing:
    """
    Paced output of a L{serialgw.devices.device.SerialDevice}: at least
    C{pace} seconds between bytes written, at least C{paceLine} after a CR.
    """

    # The device's, which this part works on.
    reactor: Any
    port: Any
    bytesWritten: int
    _out: bytearray
    _outFrom: Sources
    _breaks: BreakSequencer
    pace: float
    paceLine: float
    _paced: bool
    _paceCall: Any
    _nextWrite: float

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        @property
        def usable(self) -> bool: ...
        def _lost(self, error: BaseException) -> None: ...
        def _startWriting(self) -> None: ...
        def _checkWatermark(self) -> None: ...

    def setPace(self, pace: float, paceLine: float = 0.0) -> None:
        """
        Hold at least C{pace} seconds between bytes written to the device,
        and at least C{paceLine} after each CR (timers, never a sleep);
        C{0, 0}: off (the default).  Output queued meanwhile counts towards
        the high-water mark, so writers are paused behind it.
        """
        self.pace, self.paceLine = max(0.0, pace), max(0.0, paceLine)
        self._paced = bool(self.pace or self.paceLine)
        if self._paceCall is not None:
            # A gap of the old pace under way (a reload): the next byte goes
            # at the new one.
            self._cancelPace()
            self._nextWrite = min(self._nextWrite, self.reactor.seconds() + max(self.pace, self.paceLine))
            if self._paced:
                self._pump()
            elif self._out and self.usable:
                self._startWriting()

    def _pump(self) -> None:
        """
        Paced output: the next byte (with C{pace} 0, everything up to and
        including the next CR) when its time has come, then a timer for the
        one after.
        """
        self._paceCall = None
        if not self._out or not self.usable:
            return
        now = self.reactor.seconds()
        if now < self._nextWrite:
            self._paceCall = self.reactor.callLater(self._nextWrite - now, self._pump)
            return
        out = self._out
        if self.pace:
            chunk = out[:1]
        else:
            cr = out.find(b"\r")
            chunk = out[: cr + 1] if cr >= 0 else out
        try:
            n = self.port.write(chunk)
        except OSError as e:
            self._lost(e)
            return
        if not n:
            self._startWriting()
            return
        last = chunk[n - 1]
        del out[:n]
        self._outFrom.taken(n)
        self.bytesWritten += n
        gap = max(self.pace, self.paceLine) if last == 0x0D else self.pace
        self._nextWrite = now + gap
        if out:
            if gap:
                self._paceCall = self.reactor.callLater(gap, self._pump)
            else:
                self._startWriting()
        elif self._breaks.state is DRAINING_QUEUE:
            self._breaks.queueEmpty()
        self._checkWatermark()

    def _cancelPace(self) -> None:
        if self._paceCall is not None and self._paceCall.active():
            self._paceCall.cancel()
        self._paceCall = None
