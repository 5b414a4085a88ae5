"""
The local device: an open tty or pty whose bytes the reactor moves.

L{SerialDevice} owns one file descriptor: it reads what the device sends and
hands it to its sink (the line), queues what the line writes, and sends
breaks without blocking (set the break condition, clear it with C{callLater}),
keeping the order of data around them; when the device goes, it opens it
again with backoff.  The OS-level calls live behind L{IPort} (see
L{serialgw.devices.ports}), so the logic is tested with a recording fake
and a C{Clock}.
"""

from __future__ import annotations

import errno
import termios
from typing import Any, Callable, Optional

from twisted.internet import error
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import SerialSettings
from serialgw.devices.breaks import DRAINING_QUEUE, IDLE, BreakSequencer
from serialgw.devices.early import EarlyHold
from serialgw.devices.errors import errorReason
from serialgw.devices.floodread import FloodReading
from serialgw.devices.nosink import NoSink
from serialgw.devices.pacing import Pacing
from serialgw.devices.reopen import OPENING, Reopener
from serialgw.devices.retime import SettingsInOrder
from serialgw.interfaces import IDevice, IDeviceSink, IPort

log = Logger()

HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
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


@implementer(IDevice)
class SerialDevice(SettingsInOrder, Pacing, EarlyHold, FloodReading):
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
    (C{reopener.openNow()}: off the reactor thread).
    """

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
    ) -> None:
        self.port = port
        self.name: str = port.name
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
        self._held: list[bytes] = []
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
        # Pacing for slow devices (off by default): at least pace seconds
        # between bytes written, at least paceLine after a CR.
        self.pace = 0.0
        self.paceLine = 0.0
        self._paced = False
        self._paceCall: Any = None
        self._nextWrite = 0.0
        # The process holding the device's UUCP lock, while that keeps it down.
        self.lockedBy: Optional[int] = None
        if downReason is not None:
            # Not there at start: down from the first moment, reopened as
            # if it had vanished.
            self.up = False
            self.downReason = downReason
            self._fileno = -1
            if opener is None:
                self.closed = True
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
                self.bytesWritten += n
        if not self._out:
            self._stopWriting()
            if self._breaks.state is DRAINING_QUEUE:
                self._breaks.queueEmpty()
        self._checkWatermark()
        return None

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

    def write(self, data: bytes) -> None:
        """
        Queue bytes for the device, after any break under way; dropped (and
        counted) while the device is down.
        """
        if not data:
            return
        if self._out or self._breaks.state is not IDLE or not self.up or self.closed or self._paced:
            self._queue(data)
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
            self._startWriting()
            self._checkWatermark()
        elif not self._writable:
            self._checkWatermark()

    def _queue(self, data: bytes) -> None:
        if not self.usable:
            self.dropped += 0 if self._hold(data) else len(data)
            return
        if self._breaks.state is not IDLE:
            self._held.append(data)
            self._heldSize += len(data)
        else:
            self._out += data
        self._checkWatermark()

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
            self._held, self._heldSize = [], 0
            self._stopWriting()
            self._cancelPace()
            if self._breaks.state is DRAINING_QUEUE:
                self._breaks.queueEmpty()
            self._checkWatermark()

    def queuedBytes(self) -> int:
        # The driver's output queue too (TIOCOUTQ): what a close drops (see close).
        return len(self._out) + self._heldSize + len(self._early) + (self.port.outputPending() if self.usable else 0)

    def close(self) -> None:
        """
        Close for good: no reopening; down from now on (what it is given is
        dropped, counted).  What the driver still holds is purged first: a
        tty's close waits for it (closing_wait, 30 s on a port held by flow
        control), and the reactor with it.
        """
        if self.closed:
            return
        self.reopener.stop()
        pending = self.port.outputPending() if self.up else 0
        if pending:
            try:
                self.port.purge(False, True)
                self.dropped += pending
                self.unsent += pending
            except (OSError, termios.error) as e:
                log.warn("{device}: cannot purge before closing: {reason}", device=self.name, reason=errorReason(e))
        if self.up:
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
        self._held, self._heldSize = [], 0
        self._checkWatermark()
        self._fileno = -1
        try:
            self.port.close()
        except OSError as e:
            log.warn("{device}: error on close: {reason}", device=self.name, reason=errorReason(e))

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
        queued = len(self._out) + self._heldSize + len(self._early)
        if self._writable and queued > HIGH_WATER:
            self._writable = False
            self.sink.deviceWritable(False)
        elif not self._writable and queued < LOW_WATER:
            self._writable = True
            self.sink.deviceWritable(True)

    # The break sequencer's target (see BreakTarget)

    def breakFailed(self, error: OSError) -> bool:
        return self._gone(error)

    def breakOver(self) -> None:
        held, self._held, self._heldSize = self._held, [], 0
        before, after = self._splitHeld(held)
        if before:
            self.write(b"".join(before))
        else:
            self._checkWatermark()
        self._applyNext(after)

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
