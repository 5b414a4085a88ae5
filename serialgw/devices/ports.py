"""
The OS side of a local device: a tty opened raw through pyserial
(L{TtyPort}), a pty the gateway makes (L{PtyPort}), each an L{IPort};
L{openPort} picks one for a spec.  Their errors are in
L{serialgw.devices.errors}, pyserial's names for our settings in
L{serialgw.devices.pyserialport}, the stand-in for a device not open in
L{serialgw.devices.absent}.

pyserial is used for settings only; reads and writes go to the file
descriptor directly (pyserial's own C{read}/C{write} use C{select()}).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import termios
import tty
from typing import Any, Optional

import attrs
import serial
from twisted.internet import fdesc
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices import uucplock
from serialgw.devices.errors import DeviceError, DeviceLocked, errorReason, whyNotOpened
from serialgw.devices.links import (
    givePty,
    isMultiplexer,
    removeSymlink,
    replaceSymlink,
    restoreSymlink,
)
from serialgw.devices.ptyslave import ptyNode, terminalProblem
from serialgw.devices.ptywatch import SlaveWatch
from serialgw.devices.pyserialport import (
    FIELDS,
    SETTING_ERRORS,
    KeepInputSerial,
    configure,
    pyserialCurrent,
    pyserialValues,
    readBack,
)
from serialgw.devices.termio import ErrorMarks, fcntlBreak, markErrors, readModemState
from serialgw.interfaces import IPort

log = Logger()

# The most one read takes from the descriptor: one line discipline buffer
# (N_TTY_BUF_SIZE).  A larger read of a tty whose writer keeps writing does
# not stop there: it refills from the driver and goes on (measured on a pty
# flood: 14 KiB in 80 us instead of 4 KiB in 15), and every other line of
# the reactor waits meanwhile (issue 15).
READ_SIZE = 4096

# The most distinct refusals of a setting (a field and a value) logged for
# one open port: a client asking for 7 bits on a pty a thousand times a
# second made a warning each (1 MB of log every 2 s).
REJECTIONS_LOGGED = 16


@implementer(IPort)
class TtyPort:
    """
    A serial device opened raw through pyserial: no echo, no line editing,
    no CR/LF mapping; data moves through the descriptor itself.
    """

    # Why a break cannot reach the far end (empty: a tty takes one), and why it has no DTR and RTS.
    noBreak = ""
    noModemLines = ""

    def __init__(self, path: str, settings: SerialSettings, lockDir: Optional[str] = None) -> None:
        self.name = path
        if isMultiplexer(path):
            raise DeviceError(f"cannot open device {path!r}: it is the pty multiplexer (/dev/ptmx): opening it makes "
                              "a new pty that no program is on; for a pty a program plays the device on, use pty:LINK")
        # Locked and opened by the node the path leads to now: a symlink
        # pointed elsewhere between the two (udev at a replug) had one
        # device locked and another opened.
        node = os.path.realpath(path)
        # The UUCP lock (see serialgw.devices.uucplock), taken before opening as cu
        # and minicom do; None: no lock.
        self.lock: Optional[str] = None
        if lockDir is not None:
            try:
                self.lock = uucplock.acquire(node, lockDir)
            except uucplock.LockHeld as e:
                raise DeviceLocked(str(e), e.pid) from None
            except uucplock.LockError as e:
                raise DeviceError(str(e)) from None
        try:
            self._open(path, settings, lockDir is not None, node)
        except BaseException:
            self._unlock()
            raise

    def _open(self, path: str, settings: SerialSettings, exclusive: bool, node: str) -> None:
        ser = KeepInputSerial()
        ser.port = node
        configure(ser, settings)
        if exclusive:
            # An flock too, taken before anything is set: picocom and
            # pyserial's exclusive ports lock a tty so, with no lock file.
            ser.exclusive = True
            ser.honoursExclusive = True
        try:
            ser.open()
        except serial.SerialException as e:
            if e.errno == errno.EBUSY:
                raise DeviceError(f"cannot open device {path!r}: another program holds it exclusively (TIOCEXCL: "
                                  f"{os.strerror(errno.EBUSY)})") from None
            if not (exclusive and e.errno == errno.EWOULDBLOCK and "exclusively lock" in str(e)):  # (pyserial's words)
                raise DeviceError(f"cannot open device {path!r}: {whyNotOpened(path, e)}") from None
            holder = uucplock.flockHolder(path)
            who = f"process {holder}{uucplock.processName(holder)}" if holder else "another program"
            message = f"{path} is locked by {who} (flock, as picocom takes it)"
            raise (DeviceLocked(message, holder) if holder else DeviceError(message)) from None
        except termios.error as e:
            raise DeviceError(
                f"cannot set {settings.describe()} on device {path!r}: {errorReason(e)}"
            ) from None
        except (OSError, ValueError) as e:
            raise DeviceError(f"cannot open device {path!r}: {whyNotOpened(path, e)}") from None
        self._serial = ser
        self._fd: int = ser.fd
        # The pty slave it is (None: not one), for its reopen (see serialgw.devices.ptyslave).
        self.node = ptyNode(self._fd)
        # The settings and values refused by the device and logged (_rejected).
        self._rejectionsLogged: set[tuple[str, Any]] = set()
        fdesc.setNonBlocking(self._fd)
        # pyserial keeps two pipes to interrupt its own blocking read and
        # write, which we never call: four descriptors a line, given back.
        for name in ("pipe_abort_read_r", "pipe_abort_read_w", "pipe_abort_write_r", "pipe_abort_write_w"):
            fd = getattr(ser, name, None)  # pyserial's own; not in every version
            if fd is not None:
                os.close(fd)
                setattr(ser, name, None)
        self._marks: Optional[ErrorMarks] = None
        if self.detectsLineErrors:
            # pyserial leaves BRKINT as it finds it (stty sane sets it): a
            # break from the device would flush unread input.  Cleared here,
            # watched or not.
            self._mark(False)
        self.settings = readBack(ser)
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
            log.warn("{device}: cannot mark line errors: {reason}", device=self.name, reason=errorReason(e))
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
        return self.decode(data)

    def decode(self, data: bytes) -> bytes:
        """Bytes as read (by a mover: L{serialgw.devices.floodread}) with the line errors' marks taken out."""
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

    def hungUp(self) -> bool:
        # A hung-up tty polls as POLLHUP (its file operations are then the
        # kernel's hung_up_tty_fops); a pty's master, while the gateway
        # holds the slave, never does.
        poller = select.poll()
        poller.register(self._fd, select.POLLHUP)
        return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))

    def setBreak(self, on: bool) -> None:
        self._serial.break_condition = on

    def apply(self, settings: SerialSettings) -> SerialSettings:
        """
        Set each field that changes; a field the device rejects is rolled
        back and logged.  Return what the kernel has now.
        """
        ser = self._serial
        values, current = pyserialValues(settings), pyserialCurrent(ser)
        for field in FIELDS:
            wanted, old = values[field], current[field]
            if wanted == old:
                continue
            try:
                setattr(ser, field, wanted)
            except SETTING_ERRORS as e:
                self._rejected(field, wanted, errorReason(e))
                try:
                    setattr(ser, field, old)
                except SETTING_ERRORS:
                    pass
        # pyserial rewrites iflag on every change.
        if self._marks is not None:
            self._mark()
        return readBack(ser)

    def _rejected(self, field: str, value: Any, reason: str) -> None:
        """
        A setting the device refused: logged once for each setting and
        value while the port is open (at most REJECTIONS_LOGGED of them).  A
        client may ask again and again (a pty refuses 7 bits every time): its
        own requests are logged under its budget (logflood), with what is in
        effect.
        """
        told = self._rejectionsLogged
        if (field, value) in told or len(told) >= REJECTIONS_LOGGED:
            return
        told.add((field, value))
        log.warn("{device}: {field} {value} rejected: {reason}", device=self.name, field=field, value=value,
                 reason=reason)

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

    def startWatching(self, reactor: Any) -> None:
        pass

    def close(self) -> None:
        # Not pyserial's close(): it would close the pipes given back above.
        ser = self._serial
        if ser.is_open and ser.fd is not None:
            fd, ser.fd, ser.is_open = ser.fd, None, False
            if ser.exclusive:
                # The flock is the open file's, shared by every dup: a
                # mover's (serialgw.devices.floodread) outlives this close
                # by a moment, and held it against the line's next open.
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                except OSError:
                    pass
            os.close(fd)
        self._unlock()

    def _unlock(self) -> None:
        if self.lock is None:
            return
        lock, self.lock = self.lock, None
        try:
            uucplock.release(lock)
        except OSError as e:
            log.warn("{device}: cannot remove lock {lock}: {reason}", device=self.name, lock=lock, reason=errorReason(e))


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
    noModemLines = "a pty has no modem lines"

    def __init__(self, link: str, settings: SerialSettings) -> None:
        master, slave = os.openpty()
        try:
            slaveName = os.ttyname(slave)
            tty.setraw(slave)
            # (Not said here: a line's own rtscts on a pty: device is refused in its config.)
            TtyPort.__init__(self, slaveName, attrs.evolve(settings, rtscts=False))
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
        self._watch: Optional[SlaveWatch] = None
        # Set before its link is removed (a reload's look, on its thread, reads it).
        self.closed = False
        if link:
            try:
                replaceSymlink(slaveName, link)
            except OSError as e:
                self.close()
                raise DeviceError(f"cannot make symlink {link!r} to {slaveName}: {errorReason(e)}") from None

    def outputPending(self) -> int:
        return 0

    @property
    def noBreak(self) -> str:  # type: ignore[override]
        # The kernel takes TIOCSBRK on a pty and does nothing: the program is never told.
        return f"{self.name} is a pty: it cannot carry a break (the program on it is never told of one)"

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self._renewSlave()
        if settings.rtscts:
            # The kernel keeps CRTSCTS in a pty's termios and ignores it: set, it was answered as in effect.
            self._rejected("rtscts", True, "a pty has no RTS/CTS lines (hardware flow control is a serial port's)")
            settings = attrs.evolve(settings, rtscts=False)
        return TtyPort.apply(self, settings)

    def giveTo(self, uid: int, gid: int) -> None:
        """The pty (and its link) to the user and group twistd runs as once privileges drop (see L{givePty})."""
        givePty(self._slaveFd, self.link, uid, gid)

    def restoreLink(self) -> Optional[str]:
        """
        A reload: its link made again if someone removed it (see
        L{restoreSymlink}): what was done, or None; nothing once it is
        closed.  (Off the reactor's thread: see
        L{serialgw.app.retuning.restoreLinks}.)
        """
        if self.closed:
            return None
        try:
            done = restoreSymlink(self.slaveName, self.link)
        except OSError as e:
            return f"is gone and cannot be made again: {errorReason(e)}"
        if done is not None and self.closed:
            # Closed meanwhile (a later reload): its close may have looked before this was made.
            removeSymlink(self.link, self.slaveName)
            return None
        return done

    def _renewSlave(self) -> None:
        """
        A hang-up of the slave (vhangup(): login(1) does it on its tty, getty
        and login playing the device) kills every descriptor of it, the
        gateway's too, while the pty goes on (its master is ours): settings
        then raised EIO, the device was taken for lost and a new pty made
        behind the link, the login session on the old one cut off.  The
        slave is opened again by name: the same pty.
        """
        try:
            termios.tcgetattr(self._slaveFd)
            return
        except termios.error as e:
            if e.args[0] != errno.EIO:
                return
        fd = os.open(self.slaveName, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        old, self._slaveFd = self._slaveFd, fd
        self._serial.fd = fd
        os.close(old)
        if self._watch is not None:
            self._watch.fd = fd
        log.info("{device}: its slave was hung up (vhangup, as login does); opened again", device=self.name)

    def setBreak(self, on: bool) -> None:
        # A pty has no break: the kernel ignores TIOCSBRK on it.
        fcntlBreak(self._fd, on)

    def setModemLine(self, name: str, on: bool) -> None:
        raise OSError(errno.ENOTTY, "a pty has no modem lines")

    def modemState(self) -> Optional[int]:
        return None

    def startWatching(self, reactor: Any) -> None:
        # Exclusive mode a program leaves (screen's TIOCEXCL) goes at its last close.
        if self._watch is None:
            self._watch = SlaveWatch(reactor, self.slaveName, self._slaveFd, self.name, hungUp=self._renewSlave)

    def close(self) -> None:
        self.closed = True
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        removeSymlink(self.link, self.slaveName)
        os.close(self._fd)
        TtyPort.close(self)


def openPort(spec: DeviceSpec, settings: SerialSettings, lockDir: Optional[str] = None, again: bool = False) -> IPort:
    """
    Open the device a spec names; raise L{DeviceError} naming it on failure
    (L{DeviceLocked} when a live process holds its UUCP lock).  A tty takes
    its lock in C{lockDir} (None: none); a pty the gateway makes never does.
    C{again}: opened by the reopener (the device went, or was not there at
    start), when a pty slave at the path may be another program's terminal
    (see L{terminalProblem}).
    """
    if spec.kind == "pty":
        return PtyPort(spec.path, settings)
    problem = terminalProblem(spec.path) if again else None
    if problem is not None:
        if lockDir is not None:
            # Held under a live process's UUCP lock (cu -l on QEMU's pty,
            # another gateway): locked, as the first open says, the holder
            # on the status page, not someone's session.  (The lock is taken
            # and let go at once when nobody holds it.)
            try:
                uucplock.release(uucplock.acquire(spec.path, lockDir))
            except uucplock.LockHeld as e:
                raise DeviceLocked(str(e), e.pid) from None
            except (uucplock.LockError, OSError):
                pass
        raise DeviceError(problem)
    return TtyPort(spec.path, settings, lockDir)
