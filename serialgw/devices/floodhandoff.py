"""
The device's side of a flooding read (L{serialgw.devices.floodread}): when
a tty whose reads keep coming back full (L{FULL_READS} reads of at least
L{FULL} bytes in a row) is handed to a mover, how many movers may run
(L{MOST_MOVERS}), how long a mover that could not start or failed is not
tried again (L{REFUSED_WAIT}), and what the mover's pipe still holds
handed on at a loss, a change of the line errors' marking or a reload
(L{FloodReading}, mixed into L{serialgw.devices.device.SerialDevice}).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from twisted.logger import Logger

from serialgw.devices.floodread import MODES, FloodReader

# (The namespace its events had before this module was split from floodread.)
log = Logger(namespace="serialgw.devices.floodread")

# A read of at least FULL bytes, FULL_READS times in a row, hands the tty
# to a mover (a line discipline holds at most 4095 bytes).
FULL = 2048
FULL_READS = 4
# The most movers running at once in a reactor (more only take turns on
# the cores: 24 flooding lines ran 24 processes, 207 MB); a flooding tty
# past them is read by the reactor, as with no movers.
def usableCores() -> int:
    """The cores this process may run on (taskset, a systemd CPUAffinity=, a container's cpuset), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


MOST_MOVERS = usableCores()
# A mover that could not start (no descriptors, no processes left) is tried again after this many seconds.
REFUSED_WAIT = 60.0


def readerMode(reactor: Any) -> Optional[str]:
    """How the reactor has a flooding tty read: C{None} (itself), C{"thread"} or C{"process"}."""
    mode = getattr(reactor, "movers", None)
    return mode if mode in MODES else None


class FloodReading:
    """
    L{serialgw.devices.device.SerialDevice}'s side (a mixin): a tty whose
    reads keep coming back full is read through a L{FloodReader} while
    the reactor asks for it.
    """

    reactor: Any
    port: Any
    name: str
    _fileno: int
    _reading: bool
    _wantReading: bool
    up: bool
    closed: bool
    _reader: Optional[FloodReader] = None
    _fullReads = 0
    # Handing on what the mover moved (see _movedBeforeLoss).
    _fromPipe = False
    # A mover failed to start: not tried again before this time (the reactor's clock).
    _refusedUntil = 0.0
    # (Tests: a mover they run themselves.)
    _startMover = True
    # A thread mover the stall watch left behind (stuck): none other is started for the device while it lives.
    _leftBehind: Optional[FloodReader] = None

    def _countRead(self, size: int) -> None:
        """The reactor read C{size} bytes: after FULL_READS full ones in a row, a mover reads it."""
        if size < FULL:
            self._fullReads = 0
            return
        self._fullReads += 1
        mode = readerMode(self.reactor)
        if self._fullReads < FULL_READS or not self._reading or mode is None:
            return
        if self.reactor.seconds() < self._refusedUntil:
            return
        if getattr(self.reactor, "moving", 0) >= MOST_MOVERS:
            return
        if getattr(self.port, "decode", None) is None:
            return
        if self._leftBehind is not None and self._leftBehind.leftBehind():
            return  # (one stuck thread a device at most: a hanging driver left one behind every REFUSED_WAIT)
        self._leftBehind = None
        self._fullReads = 0
        try:
            reader = FloodReader(self.reactor, self._fileno, self.name, self._fromMover, self._givenBack, mode,
                                 self._startMover, self._moverFailed)
        except (OSError, RuntimeError) as e:
            # Not tried again for a while (tried every FULL_READS reads, it was a line each: 547 for 9 MB).
            self._refusedUntil = self.reactor.seconds() + REFUSED_WAIT
            log.warn("{device}: cannot start a mover ({mode}): {error}; the reactor reads it (tried again in {wait:.0f} s)",
                     device=self.name, mode=mode, error=e, wait=REFUSED_WAIT)
            return
        self.reactor.removeReader(self)
        self._reading = False
        self._reader = reader

    def _fromMover(self, data: bytes) -> None:
        self._fromPipe = True
        try:
            self._received(self.port.decode(data))  # type: ignore[attr-defined]
        finally:
            self._fromPipe = False

    def _moverFailed(self, why: str) -> None:
        """A mover that started failed as it ran: not tried again for a while (as one that cannot start)."""
        self._refusedUntil = self.reactor.seconds() + REFUSED_WAIT
        line = getattr(getattr(self, "sink", None), "name", None)
        log.warn("{where}: its mover failed ({error}); the reactor reads it (tried again in {wait:.0f} s)",
                 where=f"{line} ({self.name})" if line else self.name, line=line, device=self.name, error=why,
                 wait=REFUSED_WAIT)

    def _givenBack(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader.leftBehind():
            self._leftBehind = reader
        if self._wantReading:
            self.start()  # type: ignore[attr-defined]

    def _movedBeforeLoss(self) -> bool:
        """
        The device is being lost or closed: what its mover moved, still in the
        pipe, is its output from before, delivered first, paused or not (at
        most PIPE_SIZE past the pause).  Dropped with the pipe, a hang-up
        while a lossless client was behind lost 64 KiB more than without a
        mover (seen: 70 KB against 15 KB).  Whether the device is still to
        be lost (what the delivery set off may have lost or closed it).
        """
        if self._reader is not None and not self._fromPipe:
            # (Not inside a delivery of the pipe's, whose line the next would overtake: dropped.)
            self._reader.deliverHeld()
        return bool(self.up and not self.closed)

    def _movedBeforeMarking(self) -> None:
        """
        Line errors are to be marked, or no longer (PARMRK: an RFC 2217
        client's SET-LINESTATE-MASK, its end): what the mover moved, still in
        the pipe, was read under the marking before, and is delivered now,
        decoded so (paused too, as at a loss, but once a pause: later
        changes in it leave the pipe to the resume).  Decoded after the change,
        a flood's 0xFF bytes were halved as marked ones, or marks passed on
        as data: 34802 of 2 MB of 0xFF lost at a mask set mid-flood (the
        reactor alone: 2048, what the tty itself held).
        """
        reader = self._reader
        if reader is None or self._fromPipe:
            return
        if reader.isPaused():
            # Once a pause: the mover refills the pipe, and a client setting and clearing its mask
            # again and again had each refill past the pause, a lossless client's queue without bound.
            if reader.heldPastThePause:
                return
            reader.heldPastThePause = True
        reader.deliverHeld()

    def deliverRead(self) -> None:
        """
        What its mover moved, still in the pipe, is handed on now, paused or
        not (IDevice.deliverRead: a reload removing the line disconnects its
        people before the device closes, and the close's own delivery then
        reached none of them: 37-72 KB fewer than without a mover, seen).
        """
        if self._reader is not None and not self._fromPipe:
            self._reader.deliverHeld()

    def _stopMover(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.stop()
