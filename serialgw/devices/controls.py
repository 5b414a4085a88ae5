"""
A local device's controls, beside its data: breaks, DTR and RTS, the modem
lines read, line errors watched, purges (what RFC 2217 and the escape menu
ask of a line, and its settings' C{dtr}/C{rts}), and the break sequencer's
answers (L{serialgw.devices.breaks.BreakTarget}).

L{DeviceControls} is a part of L{serialgw.devices.device.SerialDevice}, kept
apart: it works on the device's port, queues and counters; the OS-level
calls are the port's (L{serialgw.interfaces.IPort}).
"""

from __future__ import annotations

import errno
import termios
from typing import TYPE_CHECKING, Any, Optional

from twisted.logger import Logger

from serialgw.devices.breaks import DRAINING_QUEUE, IDLE, BreakSequencer
from serialgw.devices.errors import errorReason
from serialgw.devices.floodread import FloodReader
from serialgw.devices.sources import Held, Sources, joined

log = Logger()


class DeviceControls:
    """The controls of a L{serialgw.devices.device.SerialDevice} (see the module)."""

    # The device's, which this part works on.
    name: str
    port: Any
    closed: bool
    breakDuration: float
    breaks: int
    modemLines: dict[str, bool]
    lineErrorsWatched: bool
    unsent: int
    _breaks: BreakSequencer
    _out: bytearray
    _outFrom: Sources
    _held: Held
    _heldSize: int
    _reader: Optional[FloodReader]

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        @property
        def usable(self) -> bool: ...
        def write(self, data: bytes, source: Any = None) -> None: ...
        def _gone(self, e: BaseException) -> bool: ...
        def _stopWriting(self) -> None: ...
        def _checkWatermark(self) -> None: ...
        def _cancelPace(self) -> None: ...
        def _splitHeld(self, held: Held) -> tuple[Held, Held]: ...
        def _applyNext(self, after: Held) -> None: ...
        def _movedBeforeMarking(self) -> None: ...

    # Why a break, and DTR and RTS, cannot reach the device (IDevice.noBreak; the status page): a tty takes them,
    # a pty the gateway makes does not (PtyPort: the kernel ignores TIOCSBRK on it).  Not open yet: the line is down.
    @property
    def noBreak(self) -> str:
        return str(getattr(self.port, "noBreak", ""))

    @property
    def noModemLines(self) -> str:
        return str(getattr(self.port, "noModemLines", ""))

    def sendBreak(self, duration: Optional[float] = None) -> bool:
        """
        Send a break of C{duration} seconds (the device's default if
        C{None}) after the output queued so far.  Return C{False}, sending
        nothing, if a break is already under way, or if none can reach the
        device (L{noBreak}).
        """
        if not self.usable or self._breaks.state is not IDLE or self.noBreak:
            return False
        self.breaks += 1
        return self._breaks.send(self.breakDuration if duration is None else duration, queued=bool(self._out))

    def stopBreak(self) -> None:
        """
        End a break now (RFC 2217 BREAK-OFF); a break still waiting for the
        output to drain is called off.
        """
        self._breaks.stop()

    @property
    def breaking(self) -> bool:
        return self._breaks.state is not IDLE

    def setModemLine(self, name: str, on: bool) -> bool:
        """
        Set DTR or RTS; return the state now in effect.  Where the device
        has no such line (a pty) the request is remembered and reported.
        """
        if not self.usable:
            if not self.closed:
                self.modemLines[name] = on
            return self.modemLines[name]
        try:
            self.port.setModemLine(name, on)
        except OSError as e:
            if self._gone(e):
                self.modemLines[name] = on
                return on
            if e.errno not in (errno.ENOTTY, errno.EINVAL):
                log.warn(
                    "{device}: cannot set {name} {state}: {reason}",
                    device=self.name,
                    name=name.upper(),
                    state="on" if on else "off",
                    reason=errorReason(e),
                )
                return self.modemLines[name]
        self.modemLines[name] = on
        return on

    def modemState(self) -> Optional[int]:
        """CTS/DSR/RI/CD as RFC 2217 bits, or C{None} where there are none."""
        if not self.usable:
            return None
        try:
            return self.port.modemState()
        except OSError as e:
            if self._gone(e):
                return None
            log.warn("{device}: cannot read modem lines: {reason}", device=self.name, reason=errorReason(e))
            return None

    def watchLineErrors(self, on: bool) -> None:
        """Detect breaks and receive errors while someone listens (see IPort)."""
        if on != self.lineErrorsWatched and self.usable:
            # What a mover moved was read under the marking before: decoded so, first.
            self._movedBeforeMarking()
        self.lineErrorsWatched = on
        if self.usable:
            self.port.watchLineErrors(on)

    def purge(self, receive: bool, transmit: bool) -> None:
        """
        Discard input not yet read and/or output not yet sent, in the
        driver and in our own queues.
        """
        if not self.usable:
            return
        pending = self.port.outputPending() if transmit else 0  # what the purge drops of the driver's
        if receive and self._reader is not None:
            self._reader.discard()
        try:
            self.port.purge(receive, transmit)
        except (OSError, termios.error) as e:
            if self._gone(e):
                return
            log.warn("{device}: cannot purge: {reason}", device=self.name, reason=errorReason(e))
            pending = 0
        if transmit:
            self.unsent += pending + len(self._out) + self._heldSize
            del self._out[:]
            self._outFrom.clear()
            self._held, self._heldSize = [], 0
            self._stopWriting()
            self._cancelPace()
            if self._breaks.state is DRAINING_QUEUE:
                self._breaks.queueEmpty()
            self._checkWatermark()


    # The break sequencer's target (see BreakTarget)

    def breakFailed(self, error: OSError) -> bool:
        return self._gone(error)

    def breakOver(self) -> None:
        held, self._held, self._heldSize = self._held, [], 0
        before, after = self._splitHeld(held)
        for source, data in joined(before):
            self.write(data, source)
        if not before:
            self._checkWatermark()
        self._applyNext(after)
