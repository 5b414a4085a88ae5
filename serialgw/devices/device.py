"""
The serial side: an open device whose bytes the reactor moves.

L{SerialDevice} owns one file descriptor: it reads what the device sends and
hands it to its sink (the line), queues what the line writes, and sends
breaks without blocking (set the break condition, clear it with C{callLater}),
keeping the order of data around them.  The OS-level calls live behind
L{IPort}, so the logic is tested with a recording fake and a C{Clock}.

pyserial is used for settings only; the data path reads and writes the file
descriptor directly (pyserial's own C{read}/C{write} use C{select()}).
"""

from __future__ import annotations

import errno
import os
import termios
import tty
from typing import Any, Callable, Optional

import serial
from twisted.internet import defer, error, fdesc, threads
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices import uucplock
from serialgw.devices.links import removeSymlink, replaceSymlink
from serialgw.devices.termio import ErrorMarks, fcntlBreak, markErrors, readModemState, readTermios
from serialgw.interfaces import IDeviceSink, IPort

log = Logger()

READ_SIZE = 65536
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
# How often, and for how long at most, to wait for the UART to drain its
# output queue before a break.
DRAIN_POLL = 0.005
DRAIN_LIMIT = 2.0
# What a call on a device that is gone fails with: a tty hung up (EIO), a
# USB adapter unplugged (ENXIO, ENODEV).
GONE = frozenset((errno.EIO, errno.ENXIO, errno.ENODEV))


class DeviceError(Exception):
    """
    A device could not be opened or set up; the message names it.
    """


class DeviceLost(Exception):
    """
    A device went away; the message says how, for people (C{hung up},
    C{Input/output error}).
    """


class DeviceLocked(DeviceError):
    """
    A live process holds the device's UUCP lock (C{pid}): the line waits.
    """

    def __init__(self, message: str, pid: int) -> None:
        DeviceError.__init__(self, message)
        self.pid = pid


_FIELDS = ("baudrate", "bytesize", "parity", "stopbits", "xonxoff", "rtscts")
_SETTING_ERRORS = (serial.SerialException, OSError, ValueError, OverflowError, termios.error)


# Our parities and stop bits (config's letters and numbers) as pyserial's constants.
_PYSERIAL_PARITIES = {
    "N": serial.PARITY_NONE,
    "E": serial.PARITY_EVEN,
    "O": serial.PARITY_ODD,
    "M": serial.PARITY_MARK,
    "S": serial.PARITY_SPACE,
}
_PYSERIAL_STOPBITS = {1: serial.STOPBITS_ONE, 1.5: serial.STOPBITS_ONE_POINT_FIVE, 2: serial.STOPBITS_TWO}


def _pyserialValue(settings: SerialSettings, field: str) -> Any:
    if field == "parity":
        return _PYSERIAL_PARITIES[settings.parity]
    if field == "stopbits":
        return _PYSERIAL_STOPBITS[settings.stopbits]
    return getattr(settings, field)


def _configure(ser: serial.Serial, settings: SerialSettings) -> None:
    """Set every field on a closed pyserial port (open() applies them)."""
    for field in _FIELDS:
        setattr(ser, field, _pyserialValue(settings, field))


def _readBack(ser: serial.Serial) -> SerialSettings:
    """
    The settings in effect, as the kernel has them (termios), not as
    pyserial remembers them; a speed termios cannot name (BOTHER) is
    pyserial's.
    """
    return readTermios(ser.fd, int(ser.baudrate), ser.stopbits == 1.5)



class _KeepInputSerial(serial.Serial):
    """
    pyserial's port without the input flush (TCIFLUSH) its open() ends
    with: what the device sent before we opened it (a guest's boot
    messages, what came between an unplug and the reopen) is read like any
    other output.  Purges go through termios directly (L{TtyPort.purge}).
    """

    def _reset_input_buffer(self) -> None:
        pass


@implementer(IPort)
class TtyPort:
    """
    A serial device opened raw through pyserial: no echo, no line editing,
    no CR/LF mapping; data moves through the descriptor itself.
    """

    def __init__(self, path: str, settings: SerialSettings, lockDir: Optional[str] = None) -> None:
        self.name = path
        # The UUCP lock (see serialgw.devices.uucplock), taken before opening as cu
        # and minicom do; None: no lock.
        self.lock: Optional[str] = None
        if lockDir is not None:
            try:
                self.lock = uucplock.acquire(path, lockDir)
            except uucplock.LockHeld as e:
                raise DeviceLocked(str(e), e.pid) from None
            except uucplock.LockError as e:
                raise DeviceError(str(e)) from None
        try:
            self._open(path, settings)
        except BaseException:
            self._unlock()
            raise

    def _open(self, path: str, settings: SerialSettings) -> None:
        ser = _KeepInputSerial()
        ser.port = path
        _configure(ser, settings)
        try:
            ser.open()
        except termios.error as e:
            raise DeviceError(
                f"cannot set {settings.describe()} on device {path!r}: {_reason(e)}"
            ) from None
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceError(f"cannot open device {path!r}: {_reason(e)}") from None
        self._serial = ser
        self._fd: int = ser.fd
        fdesc.setNonBlocking(self._fd)
        # pyserial keeps two pipes to interrupt its own blocking read and
        # write, which we never call: four descriptors a line, given back.
        for name in ("pipe_abort_read_r", "pipe_abort_read_w", "pipe_abort_write_r", "pipe_abort_write_w"):
            fd = getattr(ser, name, None)
            if fd is not None:
                os.close(fd)
                setattr(ser, name, None)
        self._marks: Optional[ErrorMarks] = None
        if self.detectsLineErrors:
            # pyserial leaves BRKINT as it finds it (stty sane sets it): a
            # break from the device would flush unread input.  Cleared here,
            # watched or not.
            self._mark(False)
        self.settings = _readBack(ser)
        if self.settings != settings:
            log.warn(
                "{device}: asked for {wanted}, the device has {settings}",
                device=path,
                wanted=settings.describe(),
                settings=self.settings.describe(),
            )

    def fileno(self) -> int:
        return self._fd

    # Breaks and parity/framing errors are detected from PARMRK marks.
    detectsLineErrors = True

    def watchLineErrors(self, on: bool) -> None:
        if not self.detectsLineErrors or on == (self._marks is not None):
            return
        self._marks = ErrorMarks() if on else None
        self._mark(on)

    def _mark(self, on: bool = True) -> None:
        parity = self._serial.parity != serial.PARITY_NONE
        try:
            markErrors(self._serial.fd, parity, on)
        except termios.error as e:
            log.warn("{device}: cannot mark line errors: {reason}", device=self.name, reason=_reason(e))
        if self._marks is not None:
            self._marks.parityEnabled = parity

    def read(self) -> bytes:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return b""
        if not data:
            # Readable, yet nothing: the tty was hung up (unplugged).
            raise OSError(errno.EIO, "hung up")
        if self._marks is not None:
            return self._marks.decode(data)
        return data

    def takeLineState(self) -> int:
        return self._marks.take() if self._marks is not None else 0

    def write(self, data: bytes | bytearray) -> int:
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0

    def outputPending(self) -> int:
        try:
            return int(self._serial.out_waiting)
        except (OSError, serial.SerialException):
            return 0

    def setBreak(self, on: bool) -> None:
        self._serial.break_condition = on

    def apply(self, settings: SerialSettings) -> SerialSettings:
        """
        Set each field that changes; a field the device rejects is rolled
        back and logged.  Return what the kernel has now.
        """
        ser = self._serial
        for field in _FIELDS:
            wanted, old = _pyserialValue(settings, field), getattr(ser, field)
            if wanted == old:
                continue
            try:
                setattr(ser, field, wanted)
            except _SETTING_ERRORS as e:
                log.warn(
                    "{device}: {field} {value} rejected: {reason}",
                    device=self.name,
                    field=field,
                    value=wanted,
                    reason=_reason(e),
                )
                try:
                    setattr(ser, field, old)
                except _SETTING_ERRORS:
                    pass
        # pyserial rewrites iflag on every change.
        if self._marks is not None:
            self._mark()
        return _readBack(ser)

    def setModemLine(self, name: str, on: bool) -> None:
        if name == "dtr":
            self._serial.dtr = on
        elif name == "rts":
            self._serial.rts = on
        else:
            raise ValueError(f"no modem line {name!r}")

    def modemState(self) -> Optional[int]:
        return readModemState(self._fd)

    def purge(self, receive: bool, transmit: bool) -> None:
        if receive and transmit:
            termios.tcflush(self._fd, termios.TCIOFLUSH)
        elif receive:
            termios.tcflush(self._fd, termios.TCIFLUSH)
        elif transmit:
            termios.tcflush(self._fd, termios.TCOFLUSH)

    def close(self) -> None:
        # Not pyserial's close(): it would close the pipes given back above.
        ser = self._serial
        if ser.is_open and ser.fd is not None:
            fd, ser.fd, ser.is_open = ser.fd, None, False
            os.close(fd)
        self._unlock()

    def _unlock(self) -> None:
        if self.lock is None:
            return
        lock, self.lock = self.lock, None
        try:
            uucplock.release(lock)
        except OSError as e:
            log.warn("{device}: cannot remove lock {lock}: {reason}", device=self.name, lock=lock, reason=_reason(e))


@implementer(IPort)
class PtyPort(TtyPort):
    """
    A pseudo-terminal the gateway creates: a local program opens its slave
    side (through the symlink C{link}, if given) and plays the device.

    The gateway keeps the slave open itself, so the line survives the program
    closing and reopening it; the slave starts raw, with the line's settings
    (a pty keeps speed and stop bits; it forces 8 bits, no parity).
    """

    # The gateway reads the master side: no termios marks there.
    detectsLineErrors = False

    def __init__(self, link: str, settings: SerialSettings) -> None:
        master, slave = os.openpty()
        try:
            slaveName = os.ttyname(slave)
            tty.setraw(slave)
            TtyPort.__init__(self, slaveName, settings)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._slaveFd = self._fd
        self._fd = master
        fdesc.setNonBlocking(master)
        self.slaveName = slaveName
        self.link = link
        self.name = f"pty:{link}" if link else slaveName
        if link:
            try:
                replaceSymlink(slaveName, link)
            except OSError as e:
                self.close()
                raise DeviceError(f"cannot make symlink {link!r} to {slaveName}: {_reason(e)}") from None

    def outputPending(self) -> int:
        return 0

    def setBreak(self, on: bool) -> None:
        # A pty has no break: the kernel ignores TIOCSBRK on it.
        fcntlBreak(self._fd, on)

    def setModemLine(self, name: str, on: bool) -> None:
        raise OSError(errno.ENOTTY, "a pty has no modem lines")

    def modemState(self) -> Optional[int]:
        return None

    def close(self) -> None:
        removeSymlink(self.link, self.slaveName)
        os.close(self._fd)
        TtyPort.close(self)


def _reason(e: BaseException) -> str:
    if isinstance(e, termios.error) and len(e.args) == 2:
        return str(e.args[1])
    if isinstance(e, serial.SerialException) and isinstance(e.errno, int):
        return os.strerror(e.errno)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)
    # pyserial: "[Errno 2] could not open port /dev/x: [Errno 2] No such file..."
    if "] " in text:
        text = text.rsplit("] ", 1)[-1]
    return text


def openPort(spec: DeviceSpec, settings: SerialSettings, lockDir: Optional[str] = None) -> IPort:
    """
    Open the device a spec names; raise L{DeviceError} naming it on failure
    (L{DeviceLocked} when a live process holds its UUCP lock).  A tty takes
    its lock in C{lockDir} (None: none); a pty the gateway makes never does.
    """
    if spec.kind == "pty":
        return PtyPort(spec.path, settings)
    return TtyPort(spec.path, settings, lockDir)


@implementer(IPort)
class AbsentPort:
    """
    Stands for a device that is not open (not there yet at start): every
    call that would touch it fails as a vanished device does.
    """

    def __init__(self, name: str, settings: SerialSettings) -> None:
        self.name = name
        self.settings = settings

    def _gone(self) -> OSError:
        return OSError(errno.ENODEV, "not open")

    def fileno(self) -> int:
        return -1

    def read(self) -> bytes:
        raise self._gone()

    def write(self, data: bytes | bytearray) -> int:
        raise self._gone()

    def takeLineState(self) -> int:
        return 0

    def outputPending(self) -> int:
        return 0

    def watchLineErrors(self, on: bool) -> None:
        pass

    def setBreak(self, on: bool) -> None:
        raise self._gone()

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self.settings = settings
        return settings

    def setModemLine(self, name: str, on: bool) -> None:
        raise self._gone()

    def modemState(self) -> Optional[int]:
        raise self._gone()

    def purge(self, receive: bool, transmit: bool) -> None:
        raise self._gone()

    def close(self) -> None:
        pass


# Break states.
IDLE = "idle"
DRAINING = "draining"
BREAKING = "breaking"


@implementer(IDeviceSink)
class _NoSink:
    def deviceDataReceived(self, data: bytes) -> None:
        pass

    def deviceWritable(self, writable: bool) -> None:
        pass

    def deviceLost(self, reason: Failure) -> None:
        pass

    def deviceLineState(self, state: int) -> None:
        pass

    def deviceUp(self) -> None:
        pass


class SerialDevice:
    """
    One open device in the reactor.

    Writes go straight to the descriptor when nothing is queued, else to a
    queue drained as the device takes it.  A break first lets queued output
    drain (from our queue and from the driver's), then sets the break
    condition and clears it C{duration} seconds later; what is written
    meanwhile is held and written after the break.  A break asked for while
    one is under way is refused, not doubled.

    However the device goes (a read or write fails, an ioctl finds it gone,
    the reactor reports a hang-up through C{connectionLost}), it takes one
    path, L{_lost}: logged as "device lost", the sink told, C{up} false, and
    with an C{opener} it is opened again with backoff.  Only L{close} ends
    it for good.  A device that could not be opened at start is made with
    an L{AbsentPort} and C{downReason}: it starts down, on the same path.
    """

    # Every tty takes a break (a pty ignores it: see PtyPort.setBreak).
    noBreak = ""

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
        # How to open the device again after it vanished (None: never), and
        # how long to wait before the attempt number n (0, 1, ...).
        self.opener = opener
        self.reopenPolicy = reopenPolicy
        self.up = True
        # Why the device is down (None while it is up).
        self.downReason: Optional[str] = None
        self.dropped = 0
        self._attempts = 0
        self._reopenCall: Any = None
        self._wantReading = False
        self._paused = False
        self.lineErrorsWatched = False
        # Opening a tty raises DTR and RTS.
        self.modemLines = {"dtr": True, "rts": True}
        self.reactor = reactor
        self.breakDuration = breakDuration
        self.sink: Any = sink if sink is not None else _NoSink()
        self._out = bytearray()
        self._held: list[bytes] = []
        self._heldSize = 0
        self._writable = True
        self._breakState = IDLE
        self._breakCall: Any = None
        self._drainDeadline = 0.0
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
            else:
                self._scheduleReopen()

    def noteFailure(self, error: BaseException) -> None:
        """
        Why the device could not be opened (C{downReason}); a lock holder
        (C{lockedBy}, on the status page) is logged when it changes.
        """
        self.downReason = _reason(error)
        if isinstance(error, DeviceLocked):
            if error.pid != self.lockedBy:
                log.warn("{device}: {reason}; the line stays down and tries again", device=self.name,
                         reason=str(error), holder=error.pid)
            self.lockedBy = error.pid
        else:
            self.lockedBy = None
            log.debug("{device}: still gone: {reason}", device=self.name, reason=self.downReason)

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
        return None

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
            if self._breakState == DRAINING:
                self._drained()
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
        if not self._reading and self.usable and not self._paused:
            self._reading = True
            self.reactor.addReader(self)

    @property
    def usable(self) -> bool:
        return self.up and not self.closed

    def pauseReading(self) -> None:
        """Stop reading until resumeReading (a lossless client is behind)."""
        self._paused = True
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False

    def resumeReading(self) -> None:
        self._paused = False
        if self._wantReading:
            self.start()

    def write(self, data: bytes) -> None:
        """
        Queue bytes for the device, after any break under way; dropped (and
        counted) while the device is down.
        """
        if not data:
            return
        if self._out or self._breakState != IDLE or not self.up or self.closed or self._paced:
            self._queue(data)
            if self._paced and self._paceCall is None and not self._writing and self._out:
                self._pump()
            return
        # Nothing queued: straight to the descriptor.
        try:
            n = self.port.write(data)
        except OSError as e:
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
            self.dropped += len(data)
            return
        if self._breakState != IDLE:
            self._held.append(data)
            self._heldSize += len(data)
        else:
            self._out += data
        self._checkWatermark()

    def sendBreak(self, duration: Optional[float] = None) -> bool:
        """
        Send a break of C{duration} seconds (the device's default if
        C{None}) after the output queued so far.  Return C{False}, sending
        nothing, if a break is already under way.
        """
        if not self.usable or self._breakState != IDLE:
            return False
        self.breaks += 1
        self._breakDuration = self.breakDuration if duration is None else duration
        self._breakState = DRAINING
        self._drainDeadline = self.reactor.seconds() + DRAIN_LIMIT
        if not self._out:
            self._drained()
        return True

    def stopBreak(self) -> None:
        """
        End a break now (RFC 2217 BREAK-OFF); a break still waiting for the
        output to drain is called off.
        """
        if self._breakState == IDLE:
            return
        if self._breakCall is not None and self._breakCall.active():
            self._breakCall.cancel()
        self._endBreak(clear=self._breakState == BREAKING)

    @property
    def breaking(self) -> bool:
        return self._breakState != IDLE

    def apply(self, settings: SerialSettings) -> SerialSettings:
        """
        Apply settings; return (and remember) those now in effect.  While
        the device is down they are remembered and applied when it is back.
        A device found gone here (termios fails with EIO: it hung up while
        nobody read it) takes the loss path, the settings kept.
        """
        if self.usable:
            try:
                self.settings = self.port.apply(settings)
                return self.settings
            except (OSError, termios.error) as e:
                if not self._gone(e):
                    raise
        if not self.closed:
            self.settings = settings
        return self.settings

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
                    reason=_reason(e),
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
            log.warn("{device}: cannot read modem lines: {reason}", device=self.name, reason=_reason(e))
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
        try:
            self.port.purge(receive, transmit)
        except (OSError, termios.error) as e:
            if self._gone(e):
                return
            log.warn("{device}: cannot purge: {reason}", device=self.name, reason=_reason(e))
        if transmit:
            del self._out[:]
            self._held, self._heldSize = [], 0
            self._stopWriting()
            self._cancelPace()
            if self._breakState == DRAINING and self._breakCall is None:
                self._drained()
            self._checkWatermark()

    def queuedBytes(self) -> int:
        return len(self._out) + self._heldSize

    def close(self) -> None:
        """Close for good: no reopening."""
        if self.closed:
            return
        if self._reopenCall is not None and self._reopenCall.active():
            self._reopenCall.cancel()
        self._reopenCall = None
        if self.up:
            self._shutdownPort()
        self.closed = True

    def _shutdownPort(self) -> None:
        self._cancelBreak()
        self._cancelPace()
        if self._reading:
            self.reactor.removeReader(self)
            self._reading = False
        self._stopWriting()
        self.dropped += len(self._out) + self._heldSize
        del self._out[:]
        self._held, self._heldSize = [], 0
        self._checkWatermark()
        self._fileno = -1
        try:
            self.port.close()
        except OSError as e:
            log.warn("{device}: error on close: {reason}", device=self.name, reason=_reason(e))

    # Internals

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
        self.bytesWritten += n
        gap = max(self.pace, self.paceLine) if last == 0x0D else self.pace
        self._nextWrite = now + gap
        if out:
            if gap:
                self._paceCall = self.reactor.callLater(gap, self._pump)
            else:
                self._startWriting()
        elif self._breakState == DRAINING:
            self._drained()
        self._checkWatermark()

    def _cancelPace(self) -> None:
        if self._paceCall is not None and self._paceCall.active():
            self._paceCall.cancel()
        self._paceCall = None

    def _startWriting(self) -> None:
        if not self._writing:
            self._writing = True
            self.reactor.addWriter(self)

    def _stopWriting(self) -> None:
        if self._writing:
            self._writing = False
            self.reactor.removeWriter(self)

    def _checkWatermark(self) -> None:
        queued = len(self._out) + self._heldSize
        if self._writable and queued > HIGH_WATER:
            self._writable = False
            self.sink.deviceWritable(False)
        elif not self._writable and queued < LOW_WATER:
            self._writable = True
            self.sink.deviceWritable(True)

    def _drained(self) -> None:
        """Our queue is empty; wait for the driver's, then break."""
        self._breakCall = None
        if self._breakState != DRAINING:
            return
        pending = self.port.outputPending()
        if pending > 0 and self.reactor.seconds() < self._drainDeadline:
            self._breakCall = self.reactor.callLater(DRAIN_POLL, self._drained)
            return
        try:
            self.port.setBreak(True)
        except OSError as e:
            if self._gone(e):
                return
            log.warn("{device}: cannot set break: {reason}", device=self.name, reason=_reason(e))
            self._endBreak(clear=False)
            return
        self._breakState = BREAKING
        self._breakCall = self.reactor.callLater(self._breakDuration, self._endBreak)

    def _endBreak(self, clear: bool = True) -> None:
        self._breakCall = None
        if clear:
            try:
                self.port.setBreak(False)
            except OSError as e:
                if self._gone(e):
                    return
                log.warn("{device}: cannot clear break: {reason}", device=self.name, reason=_reason(e))
        self._breakState = IDLE
        held, self._held, self._heldSize = self._held, [], 0
        if held:
            self.write(b"".join(held))
        else:
            self._checkWatermark()

    def _cancelBreak(self) -> None:
        if self._breakCall is not None and self._breakCall.active():
            self._breakCall.cancel()
        self._breakCall = None
        if self._breakState == BREAKING:
            try:
                self.port.setBreak(False)
            except OSError:
                pass
        self._breakState = IDLE

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
        """The one path for a device that went away, however it went."""
        if self.closed or not self.up:
            return
        self.downReason = _reason(error)
        reason = Failure(DeviceLost(self.downReason))
        self._shutdownPort()
        self.up = False
        log.error("{device}: device lost: {reason}", device=self.name, reason=self.downReason)
        if self.opener is None:
            self.closed = True
        else:
            self._attempts = 0
            self._scheduleReopen()
        try:
            self.sink.deviceLost(reason)
        except Exception:
            # Reopening is scheduled already: a bug above must not stop it.
            log.failure("{device}: handling the loss failed", device=self.name)

    def _scheduleReopen(self) -> None:
        delay = self.reopenPolicy(self._attempts)
        self._attempts += 1
        self._reopenCall = self.reactor.callLater(delay, self._reopen)

    def _reopen(self) -> None:
        self._reopenCall = None
        assert self.opener is not None
        pool = getattr(self.reactor, "getThreadPool", None)
        if pool is not None:
            # Opening can block on some adapters: not on the reactor thread.
            d = threads.deferToThreadPool(self.reactor, pool(), self.opener)
        else:
            d = defer.maybeDeferred(self.opener)
        d.addCallbacks(self._reopened, self._reopenFailed)

    def _reopenFailed(self, failure: Failure) -> None:
        if self.closed:
            return
        self.noteFailure(failure.value if failure.value is not None else Exception(failure.getErrorMessage()))
        self._scheduleReopen()

    def _reopened(self, port: IPort) -> None:
        if self.closed:
            port.close()
            return
        try:
            self._takeBack(port)
        except Exception as e:
            # Setting the reopened device up failed (a bug, an ioctl): it is
            # still gone for the line, and tried again.
            log.failure("{device}: setting up the reopened device failed", device=self.name)
            self.up = False
            if self._reading:
                self.reactor.removeReader(self)
                self._reading = False
            try:
                port.close()
            except Exception:
                pass
            self._fileno = -1
            self.downReason = f"could not be set up again: {_reason(e)}"
            self._scheduleReopen()
            return
        try:
            self.sink.deviceUp()
        except Exception:
            log.failure("{device}: handling the return failed", device=self.name)

    def _takeBack(self, port: IPort) -> None:
        """The device is back: settings, modem lines and watching as they were, then reading."""
        self.port = port
        self.name = port.name
        self._fileno = port.fileno()
        self.settings = port.apply(self.settings)
        for name, on in self.modemLines.items():
            if not on:
                try:
                    port.setModemLine(name, False)
                except OSError:
                    pass
        if self.lineErrorsWatched:
            port.watchLineErrors(True)
        self.up = True
        self.downReason = None
        self._attempts = 0
        self.lockedBy = None
        log.info("{device}: device back at {settings}", device=port.name, settings=self.settings.describe())
        if self._wantReading:
            self.start()
