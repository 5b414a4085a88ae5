"""
A local device going and coming back: however it goes (a read or write
fails, a control call finds it gone, the reactor reports a hang-up, a
hang-up seen while reading is paused), one path, L{LossAndReturn._lost}:
logged, its line told, reopened with backoff (L{Reopener}); the reopen
supervisor's answers when it is back (L{serialgw.devices.reopen.ReopenTarget});
and its close for good.

L{LossAndReturn} is a part of L{serialgw.devices.device.SerialDevice}, kept
apart: it works on the device's port, queues and state.
"""

from __future__ import annotations

import errno
import termios
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet import error
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.config.specs import SerialSettings
from serialgw.devices.breaks import BreakSequencer
from serialgw.devices.errors import errorReason
from serialgw.devices.ports import PtyPort
from serialgw.devices.reopen import OPENING, Reopener
from serialgw.devices.sources import Held, Sources
from serialgw.interfaces import IPort

log = Logger()

# While reading is paused (a lossless client behind), the device is looked
# at this often for a hang-up (unplugged, a pty's master closed): unread, it
# was seen only once reading resumed, the line "up" on a device long gone.
HANGUP_CHECK = 1.0
# What a call on a device that is gone fails with: a tty hung up (EIO), a
# USB adapter unplugged (ENXIO, ENODEV).
GONE = frozenset((errno.EIO, errno.ENXIO, errno.ENODEV))


class DeviceLost(Exception):
    """
    A device went away; the message says how, for people (C{hung up},
    C{Input/output error}).
    """


class LossAndReturn:
    """The loss, return and close of a L{serialgw.devices.device.SerialDevice} (see the module)."""

    # The device's, which this part works on.
    reactor: Any
    port: Any
    name: str
    settings: SerialSettings
    reopener: Reopener
    up: bool
    closed: bool
    downReason: Optional[str]
    lockedBy: Optional[int]
    dropped: int
    unsent: int
    sink: Any
    modemLines: dict[str, bool]
    lineErrorsWatched: bool
    _fileno: int
    _keptSettings: Optional[SerialSettings]
    _wantReading: bool
    _paused: bool
    _hangupCall: Any
    _reading: bool
    _breaks: BreakSequencer
    _out: bytearray
    _outFrom: Sources
    _held: Held
    _heldSize: int
    _nextSettings: Optional[SerialSettings]
    resting: bool

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        @property
        def usable(self) -> bool: ...
        @property
        def breaking(self) -> bool: ...
        def start(self) -> None: ...
        def _stopWriting(self) -> None: ...
        def _checkWatermark(self) -> None: ...
        def _cancelPace(self) -> None: ...
        def _settleSettings(self) -> None: ...
        def _stopMover(self) -> None: ...
        def _movedBeforeLoss(self) -> bool: ...
        def _dropEarly(self) -> None: ...
        def _writeEarly(self) -> None: ...

    def connectionLost(self, reason: Failure) -> None:
        """
        The reactor gave up on the descriptor: a hang-up it saw itself
        (EPOLLHUP without EPOLLIN: a pty master closed during output), or an
        exception out of doRead/doWrite.  The device is lost, not closed: it
        takes the reopen path like any other loss.
        """
        if self.closed or not self.up:
            return
        why = reason.value
        if why is None or isinstance(why, (error.ConnectionDone, error.ConnectionLost)):
            why = OSError(errno.EIO, "hung up")
        self._lost(why)

    def close(self) -> None:
        """
        Close for good: no reopening; down from now on (what it is given is
        dropped, counted).  What the driver still holds is purged first: a
        tty's close waits for it (closing_wait, 30 s on a port held by flow
        control), and the reactor with it.
        """
        if self.closed:
            return
        # What a mover moved, still in its pipe, is the device's output from before the close, delivered
        # first as the reactor's own reads had been (dropped with the pipe: up to 64 KiB more than the tty held).
        if self.up and not self._movedBeforeLoss() and self.closed:
            return  # (closed by what it set off)
        self.reopener.stop()
        if self.up:
            self._purgeBeforeClosing()
            self._settleSettings()
            self.up = False  # (as in _lost: typing resumed by the queue's drop is dropped, not written)
            self._shutdownPort()
        self._dropEarly()
        self.closed, self.up, self.downReason = True, False, "closed"

    def _watchHangup(self) -> None:
        if self._hangupCall is None and self._paused and self.usable:
            self._hangupCall = self.reactor.callLater(HANGUP_CHECK, self._checkHangup)

    def _stopWatchingHangup(self) -> None:
        if self._hangupCall is not None and self._hangupCall.active():
            self._hangupCall.cancel()
        self._hangupCall = None

    def _checkHangup(self) -> None:
        self._hangupCall = None
        if self._paused and self.usable:
            if self.port.hungUp():
                self._lost(OSError(errno.EIO, "hung up"))
            else:
                self._watchHangup()

    def _shutdownPort(self) -> None:
        self._stopWatchingHangup()
        self._breaks.cancel()
        self._nextSettings = None  # (a change waiting is kept in settings, for a reopen)
        self._cancelPace()
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False
        self._stopMover()
        self._stopWriting()
        lost = len(self._out) + self._heldSize  # never sent (its line counted it given)
        self.dropped += lost
        self.unsent += lost
        del self._out[:]
        self._outFrom.clear()
        self._held, self._heldSize = [], 0
        self._checkWatermark()
        self._fileno = -1
        try:
            self.port.close()
        except OSError as e:
            log.warn("{device}: error on close: {reason}", device=self.name, reason=errorReason(e))

    def _purgeBeforeClosing(self) -> None:
        """
        The port is up and about to be closed here (not lost): what its
        driver still holds is purged, counted dropped and unsent; a tty's
        close waits for it (closing_wait, 30 s on a port held by flow
        control), and the reactor with it.
        """
        pending = self.port.outputPending()
        if pending:
            try:
                self.port.purge(False, True)
                self.dropped += pending
                self.unsent += pending
            except (OSError, termios.error) as e:
                log.warn("{device}: cannot purge before closing: {reason}", device=self.name, reason=errorReason(e))

    def _gone(self, e: BaseException) -> bool:
        """
        After a control call failed (C{OSError}, or C{termios.error} from
        tcsetattr/tcflush): if the error says the device is gone, take the
        loss path and return C{True}.
        """
        code = e.errno if isinstance(e, OSError) else (e.args or (None,))[0]
        if code in GONE:
            self._lost(e)
            return True
        return False

    def _lost(self, error: BaseException) -> None:
        """The one path for a device that went away, however it went (what a mover moved goes first)."""
        if self.closed or not self.up or not self._movedBeforeLoss():
            return
        self.downReason = errorReason(error)
        reason = Failure(DeviceLost(self.downReason))
        # Down before the port is shut: its queue dropped makes it writable
        # again, and its line resumes a person's waiting typing, which is
        # then dropped here (written to the port going, it failed and took
        # this path again inside this one: lost twice, reopened twice).
        self.up = False
        self._shutdownPort()
        log.error("{device}: device lost: {reason}", device=self.name, reason=self.downReason)
        if self.reopener.opener is None:
            self.closed = True
        else:
            self.reopener.start()
        try:
            self.sink.deviceLost(reason)
        except Exception:
            # Reopening is scheduled already: a bug above must not stop it.
            log.failure("{device}: handling the loss failed", device=self.name)

    def reopen(self, why: str) -> Optional[str]:
        """
        IDevice.reopen: up, closed (what it held dropped, counted, as at a
        loss) and opened again at once on the reopen path, its line told
        why; down, the next attempt made now.  Not while a break is under
        way (its end would be lost with the port), nor a pty the gateway
        makes (a new one behind its link: its program would lose the one it
        is on).
        """
        if self.closed:
            return f"{self.name} is closed"
        if self.reopener.opener is None:
            return f"{self.name} cannot be opened again"
        if self.resting:
            return f"{self.name} is closed on demand (it opens as a client comes)"
        if not self.up:
            return self.reopener.now()
        if isinstance(self.port, PtyPort):
            return f"{self.name} is a pty the gateway makes: nothing to reopen (a program opens its link)"
        if self.breaking:
            return "a break is under way; ask again once it is over"
        if not self._movedBeforeLoss():
            return None  # (lost, or closed, by the output it held: on the reopen path already)
        self._purgeBeforeClosing()
        self.downReason = why
        self.up = False
        self._shutdownPort()
        log.info("{device}: closed to be opened again: {reason}", device=self.name, reason=why)
        self.reopener.start()
        try:
            self.sink.deviceLost(Failure(DeviceLost(why)))
        except Exception:
            log.failure("{device}: handling the reopen failed", device=self.name)
        self.reopener.now()  # (its open at the end of this turn, not after policy(0))
        return None

    # The reopen supervisor's target (see ReopenTarget)

    def notTakenBack(self, port: IPort, reason: str) -> None:
        self.up = False
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False
        try:
            port.close()
        except Exception:
            pass
        self._fileno = -1
        self.downReason = reason

    def announceUp(self) -> None:
        try:
            self.sink.deviceUp()
            # Kept for it while it was down, and taken in part only (a pty forces 8 bits): said now.
            kept, self._keptSettings = self._keptSettings, None
            if kept is not None and kept != self.settings:
                self.sink.deviceSettings(kept)
        except Exception:
            log.failure("{device}: handling the return failed", device=self.name)
        self._writeEarly()

    def takeBack(self, port: IPort) -> None:
        """The device is back: settings, modem lines and watching as they were, then reading."""
        self.port = port
        self.name = port.name
        self._fileno = port.fileno()
        port.startWatching(self.reactor)
        self._keptSettings = self.settings
        self.settings = port.apply(self.settings)
        for name, on in self.modemLines.items():
            if not on:
                try:
                    port.setModemLine(name, False)
                except OSError:
                    pass
        if self.lineErrorsWatched:
            port.watchLineErrors(True)
        # Its first open (see OPENING) is said by whoever made it.
        first = self.downReason == OPENING
        self.up = True
        self.downReason = None
        self.lockedBy = None
        self._watchHangup()
        if not first:
            log.info("{device}: device back at {settings}", device=port.name, settings=self.settings.describe())
        if self._wantReading:
            self.start()
