"""
The break sequencer of a local device: one break at a time, in order with
the output around it, and never a blocking call.

A break asked for waits until the device's own write queue is written
(L{DRAINING_QUEUE}), then until the driver's output queue is empty, polled
every L{DRAIN_POLL} seconds and for at most L{DRAIN_LIMIT} seconds from the
request (L{DRAINING_DRIVER}: a UART stopped by flow control would hold it
for ever); then the break condition is set (L{BREAKING}) and cleared
C{duration} seconds later with C{callLater}.  The device holds what is
written meanwhile and writes it when told the break is over.

    IDLE --send--> DRAINING_QUEUE --queueEmpty--> DRAINING_DRIVER --breakSet--> BREAKING --timeUp--> IDLE

The whole table is at the bottom of the module; a transition it lacks is a
bug and raises C{KeyError}.
"""

from __future__ import annotations

import enum
from typing import Callable, Literal, Optional, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from serialgw.config.specs import SerialSettings
from serialgw.devices.errors import errorReason
from serialgw.interfaces import IPort

log = Logger()

# How often, and for how long at most, to wait for the UART to drain its
# output queue before a break.
DRAIN_POLL = 0.005
DRAIN_LIMIT = 2.0


class BreakState(enum.Enum):
    IDLE = "idle"
    """No break: output flows."""
    DRAINING_QUEUE = "draining the queue"
    """A break is asked for: the device's own write queue is written first."""
    DRAINING_DRIVER = "draining the driver"
    """The driver's output queue (TIOCOUTQ) empties, polled."""
    BREAKING = "breaking"
    """The break condition is set, cleared when the time is up."""


IDLE = BreakState.IDLE
DRAINING_QUEUE = BreakState.DRAINING_QUEUE
DRAINING_DRIVER = BreakState.DRAINING_DRIVER
BREAKING = BreakState.BREAKING

Event = Literal["send", "retime", "queueEmpty", "driverBusy", "breakSet", "retimed", "setFailed", "timeUp", "stop",
                "cancel"]


class BreakTarget(Protocol):
    """What a sequencer drives: a device, whose current port takes the break."""

    @property
    def name(self) -> str:
        """Who to name in a warning."""

    @property
    def port(self) -> IPort:
        """The port now open (a reopened device has a new one)."""

    def breakFailed(self, error: OSError) -> bool:
        """
        Setting or clearing the break failed: C{True} if the device is gone
        (it has taken its loss path, which L{BreakSequencer.cancel}s).
        """

    def breakOver(self) -> None:
        """The break is over, or called off: what was held may go."""

    def retimed(self, settings: SerialSettings) -> bool:
        """
        A settings change waited for the output before it (L{BreakSequencer.retime}):
        apply it now; C{False} if the device was found gone (it has taken its loss path).
        """


class BreakSequencer:
    """
    The states of one device's break (see the module); C{observer}, if
    given, hears every transition as C{(event, new state)}.
    """

    def __init__(
        self,
        target: BreakTarget,
        clock: IReactorTime,
        observer: Optional[Callable[[Event, BreakState], None]] = None,
    ) -> None:
        self.target = target
        self.clock = clock
        self.observer = observer
        self.state = IDLE
        self.duration = 0.0
        # A settings change waiting for the output before it (see retime), not a break.
        self.settings: Optional[SerialSettings] = None
        self._deadline = 0.0
        self._call: Optional[IDelayedCall] = None

    def send(self, duration: float, queued: bool) -> bool:
        """
        Ask for a break of C{duration} seconds after the output queued so
        far (C{queued}: the device's own queue holds some, and it will call
        L{queueEmpty}).  Return C{False}, doing nothing, if a break is under way.
        """
        if self.state is not IDLE:
            return False
        self.duration = duration
        self._deadline = self.clock.seconds() + DRAIN_LIMIT
        self._move("send")
        if not queued:
            self.queueEmpty()
        return True

    def retime(self, settings: SerialSettings, queued: bool) -> bool:
        """
        A settings change (RFC 2217 SET-BAUDRATE...) after the output queued
        so far, as tcsetattr's TCSADRAIN orders it: drained as for a break
        (the device's queue, then the driver's, at most DRAIN_LIMIT s), then
        C{target.retimed(settings)} instead of a break, what was held
        meanwhile released.  C{False}, doing nothing, if a break or another
        change is under way.
        """
        if self.state is not IDLE:
            return False
        self.settings = settings
        self._deadline = self.clock.seconds() + DRAIN_LIMIT
        self._move("retime")
        if not queued:
            self.queueEmpty()
        return True

    def queueEmpty(self) -> None:
        """The device's own queue is empty (written or purged): on to the driver's."""
        if self.state is not DRAINING_QUEUE:
            return
        self._move("queueEmpty")
        self._poll()

    def stop(self) -> None:
        """
        End the break now (RFC 2217 BREAK-OFF): cleared if set; one still
        waiting for the output is called off, never set.
        """
        if self.state is IDLE or self.settings is not None:
            return  # (no break; a settings change waiting is not called off)
        self._cancelCall()
        if self.state is BREAKING:
            self._clear("stop")
        else:
            self._move("stop")
            self.target.breakOver()

    def cancel(self) -> None:
        """
        The device is going (closed or lost): back to idle, the condition
        cleared if it was set (errors ignored), nothing released.
        """
        self._cancelCall()
        self.settings = None
        if self.state is IDLE:
            return
        if self.state is BREAKING:
            try:
                self.target.port.setBreak(False)
            except OSError:
                pass
        self._move("cancel")

    def _poll(self) -> None:
        """While the driver still sends, look again later; then set the break."""
        self._call = None
        port = self.target.port
        if port.outputPending() > 0 and self.clock.seconds() < self._deadline:
            self._move("driverBusy")
            self._call = self.clock.callLater(DRAIN_POLL, self._poll)
            return
        if self.settings is not None:
            settings, self.settings = self.settings, None
            if self.target.retimed(settings):
                self._move("retimed")
                self.target.breakOver()
            return
        try:
            port.setBreak(True)
        except OSError as e:
            if self.target.breakFailed(e):
                return
            log.warn("{device}: cannot set break: {reason}", device=self.target.name, reason=errorReason(e))
            self._move("setFailed")
            self.target.breakOver()
            return
        self._move("breakSet")
        self._call = self.clock.callLater(self.duration, self._timeUp)

    def _timeUp(self) -> None:
        self._call = None
        self._clear("timeUp")

    def _clear(self, event: Event) -> None:
        """Clear the break condition, then idle and release (a gone device cancels instead)."""
        try:
            self.target.port.setBreak(False)
        except OSError as e:
            if self.target.breakFailed(e):
                return
            log.warn("{device}: cannot clear break: {reason}", device=self.target.name, reason=errorReason(e))
        self._move(event)
        self.target.breakOver()

    def _cancelCall(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _move(self, event: Event) -> None:
        self.state = _TRANSITIONS[self.state, event]
        if self.observer is not None:
            self.observer(event, self.state)


# (state, event) -> the next state; nothing else may happen.
_TRANSITIONS: dict[tuple[BreakState, Event], BreakState] = {
    (IDLE, "send"): DRAINING_QUEUE,
    (IDLE, "retime"): DRAINING_QUEUE,
    (DRAINING_DRIVER, "retimed"): IDLE,
    (DRAINING_QUEUE, "queueEmpty"): DRAINING_DRIVER,
    (DRAINING_DRIVER, "driverBusy"): DRAINING_DRIVER,
    (DRAINING_DRIVER, "breakSet"): BREAKING,
    (DRAINING_DRIVER, "setFailed"): IDLE,
    (BREAKING, "timeUp"): IDLE,
    (DRAINING_QUEUE, "stop"): IDLE,
    (DRAINING_DRIVER, "stop"): IDLE,
    (BREAKING, "stop"): IDLE,
    (DRAINING_QUEUE, "cancel"): IDLE,
    (DRAINING_DRIVER, "cancel"): IDLE,
    (BREAKING, "cancel"): IDLE,
}
