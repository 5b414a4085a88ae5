"""
Termios and tty ioctls on a descriptor: speeds, the settings a tty has,
line-error marks (PARMRK), modem lines (TIOCMGET), the break condition
(TIOCSBRK/TIOCCBRK).  Plain functions on a file descriptor; no pyserial,
no reactor.

Named C{termio} (System V's name for the same interface) rather than
C{termios} or C{tty}: those are the standard library modules this one and
L{serialgw.devices.ports} import, and a sibling of the same name would read
as the standard one in imports and tracebacks.
"""

from __future__ import annotations

import errno
import fcntl
import struct
import termios
from typing import Optional

from serialgw.config.specs import SerialSettings


def termiosConstant(name: str, linux: int) -> int:
    """
    A termios constant, or Linux's value where this Python's termios module
    lacks it (the one place one is looked up by name).
    """
    return int(getattr(termios, name, linux))


_SPEEDS = {
    value: int(name[1:])
    for name, value in vars(termios).items()
    if name.startswith("B") and name[1:].isdigit() and int(name[1:]) > 0
}
_SPEED_NAMES = {baud: constant for constant, baud in _SPEEDS.items()}
_SIZES = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}
CMSPAR = termiosConstant("CMSPAR", 0o10000000000)


def termiosSpeed(baud: int) -> Optional[int]:
    """The termios constant for a speed (B115200), or None if termios has none."""
    return _SPEED_NAMES.get(baud)


# Linux's termios2 (asm-generic/termbits.h): what a speed without a B
# constant (74880, 250000) is set and read with, as pyserial and picocom do:
# BOTHER in c_cflag's speed bits, the speeds in c_ispeed and c_ospeed.
_TERMIOS2 = struct.Struct("IIIIB19BII")
TCGETS2 = termiosConstant("TCGETS2", 0x802C542A)
TCSETS2 = termiosConstant("TCSETS2", 0x402C542B)
BOTHER = termiosConstant("BOTHER", 0o010000)
CBAUD = termiosConstant("CBAUD", 0o010017)
CIBAUD = termiosConstant("CIBAUD", 0o02003600000)


def otherSpeed(fd: int) -> Optional[int]:
    """The output speed termios2 reports (C{None} where there is no termios2)."""
    try:
        fields = _TERMIOS2.unpack(fcntl.ioctl(fd, TCGETS2, bytes(_TERMIOS2.size)))
    except OSError:
        return None
    return int(fields[-1])


def setOtherSpeed(fd: int, baud: int) -> bool:
    """
    Set a speed termios cannot name (74880) with termios2 and BOTHER, both
    directions; False where there is no termios2 (the speed unchanged).
    """
    try:
        fields = list(_TERMIOS2.unpack(fcntl.ioctl(fd, TCGETS2, bytes(_TERMIOS2.size))))
        fields[2] = (fields[2] & ~(CBAUD | CIBAUD)) | BOTHER
        fields[-2] = fields[-1] = baud
        fcntl.ioctl(fd, TCSETS2, _TERMIOS2.pack(*fields))
    except OSError:
        return False
    return True


def readTermios(fd: int, otherBaud: int = 115200, oneAndHalf: bool = False) -> SerialSettings:
    """
    A tty's settings from termios; a speed termios cannot name (BOTHER:
    picocom's 250000) is read with termios2, C{otherBaud} standing for it
    only where there is none; C{oneAndHalf}: 2 stop bits with 5 data bits
    are 1.5.
    """
    iflag, _oflag, cflag, _lflag, _ispeed, ospeed, _cc = termios.tcgetattr(fd)
    baudrate = _SPEEDS.get(ospeed)
    if baudrate is None:
        baudrate = (otherSpeed(fd) if cflag & CBAUD == BOTHER else None) or otherBaud
    bytesize = _SIZES[cflag & termios.CSIZE]
    if not cflag & termios.PARENB:
        parity = "N"
    elif cflag & CMSPAR:
        parity = "M" if cflag & termios.PARODD else "S"
    else:
        parity = "O" if cflag & termios.PARODD else "E"
    stopbits: float = 1
    if cflag & termios.CSTOPB:
        stopbits = 1.5 if bytesize == 5 and oneAndHalf else 2
    return SerialSettings(
        baudrate=baudrate,
        bytesize=bytesize,
        parity=parity,
        stopbits=stopbits,
        xonxoff=bool(iflag & termios.IXON),
        rtscts=bool(cflag & termios.CRTSCTS),
    )


LINE_BREAK = 0x10
LINE_FRAMING = 0x08
LINE_PARITY = 0x04
LINE_OVERRUN = 0x02


# A break in PARMRK's marking.
_BREAK_MARK = b"\xff\x00\x00"


class ErrorMarks:
    """
    Undo termios PARMRK marking: C{\\377 \\377} is a 0xFF data byte,
    C{\\377 \\0 \\0} a break, C{\\377 \\0 c} a byte c received with a
    parity or framing error (kept as data).  Chunks without 0xFF pass
    through untouched; a mark cut between two reads is completed by the next.
    """

    def __init__(self) -> None:
        self.pending = b""
        self.state = 0
        self.parityEnabled = False

    def decode(self, data: bytes) -> bytes:
        if self.pending:
            data, self.pending = self.pending + data, b""
        if b"\xff" not in data:
            return data
        # Only doubled 0xFF data bytes, no mark (binary data): undone in C,
        # split on the single byte (empty pieces at every odd place, an odd
        # count of them); the mark loop took 1.4 ms a 4 KiB read of them.
        pieces = data.split(b"\xff")
        if len(pieces) & 1 and not any(pieces[1::2]):
            return b"\xff".join(pieces[::2])
        # Break marks only, every 0xFF beginning one (a break storm: 1365
        # marks a 4 KiB read took the loop 386 us): taken out in C.
        if data.count(_BREAK_MARK) == len(pieces) - 1:
            self.state |= LINE_BREAK
            return data.replace(_BREAK_MARK, b"")
        return self._marks(data)

    def _marks(self, data: bytes) -> bytes:
        """C{data} with marks in it (or a 0xFF cut short): undone a mark at a time."""
        out: list[bytes] = []
        i, n = 0, len(data)
        while True:
            j = data.find(b"\xff", i)
            if j < 0:
                out.append(data[i:])
                break
            out.append(data[i:j])
            if j + 1 >= n or (data[j + 1] == 0 and j + 2 >= n):
                self.pending = data[j:]
                break
            if data[j + 1] == 0:
                byte = data[j + 2]
                if byte == 0:
                    self.state |= LINE_BREAK
                else:
                    self.state |= LINE_PARITY if self.parityEnabled else LINE_FRAMING
                    out.append(data[j + 2 : j + 3])
                i = j + 3
            else:
                # \377 \377, or (not expected) \377 then a byte: data.
                out.append(b"\xff")
                i = j + 2 if data[j + 1] == 0xFF else j + 1
        return b"".join(out)

    def take(self) -> int:
        state, self.state = self.state, 0
        return state


def markErrors(fd: int, parity: bool, on: bool = True) -> None:
    """
    Have the tty mark breaks and bad bytes in the data (PARMRK), rather than
    drop them or turn a break into a flush (BRKINT); C{on=False} undoes it.
    """
    attrs = termios.tcgetattr(fd)
    iflag = attrs[0]
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.IGNPAR | termios.ISTRIP)
    if on:
        iflag |= termios.PARMRK
    else:
        iflag &= ~termios.PARMRK
    if parity and on:
        iflag |= termios.INPCK
    else:
        iflag &= ~termios.INPCK
    if iflag != attrs[0]:
        attrs[0] = iflag
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


# Linux's values; Python's termios module lacks some of them.
TIOCSBRK = termiosConstant("TIOCSBRK", 0x5427)
TIOCCBRK = termiosConstant("TIOCCBRK", 0x5428)
TIOCMGET = termiosConstant("TIOCMGET", 0x5415)
_MODEM_BITS = (
    (termiosConstant("TIOCM_CTS", 0x020), 0x10),
    (termiosConstant("TIOCM_DSR", 0x100), 0x20),
    (termiosConstant("TIOCM_RNG", 0x080), 0x40),
    (termiosConstant("TIOCM_CAR", 0x040), 0x80),
)


def readModemState(fd: int) -> Optional[int]:
    """TIOCMGET as RFC 2217 bits; C{None} where the device has no modem lines."""
    try:
        raw = fcntl.ioctl(fd, TIOCMGET, struct.pack("I", 0))
    except OSError as e:
        if e.errno in (errno.ENOTTY, errno.EINVAL):
            return None
        raise
    bits = struct.unpack("I", raw)[0]
    state = 0
    for tiocm, rfc in _MODEM_BITS:
        if bits & tiocm:
            state |= rfc
    return state


def fcntlBreak(fd: int, on: bool) -> None:
    """Set or clear the break condition with an ioctl (TIOCSBRK, TIOCCBRK)."""
    fcntl.ioctl(fd, TIOCSBRK if on else TIOCCBRK)
