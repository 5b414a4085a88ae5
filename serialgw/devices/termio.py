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
import platform
import re
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


# A break in PARMRK's marking, and the start of any three-byte mark.
_BREAK_MARK = b"\xff\x00\x00"
_MARK_START = b"\xff\x00"

# Every kind of mark, for a read that mixes them: a break (nothing kept), an
# error on byte c (c kept: group 1), a doubled 0xFF, or a 0xFF before a byte
# that starts no mark (one 0xFF kept: group 2).  The regular expression
# finds each at the 0xFF that begins it, left to right, as the marks are
# read; split() hands back the data between them and the bytes kept, all in
# C (a mark or a 0xFF cut short at the end of a read matches nothing).
_MARKS = re.compile(rb"\xff\x00\x00|\xff\x00(.)|(\xff)(?:\xff|(?=[^\x00\xff]))", re.DOTALL)


class ErrorMarks:
    """
    Undo termios PARMRK marking: C{\\377 \\377} is a 0xFF data byte,
    C{\\377 \\0 \\0} a break, C{\\377 \\0 c} a byte c received with a
    parity or framing error (kept as data).  Chunks without 0xFF pass
    through untouched; a mark cut between two reads is completed by the next.
    Every read is undone with bytes methods or one regular expression, in C:
    never a mark at a time in Python (a read of 1365 marks took such a loop
    0.4-1.4 ms of the reactor).
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
        if _MARK_START not in data:
            # Only doubled 0xFF data bytes, no mark (binary data): undone in
            # C, split on the single byte (empty pieces at every odd place,
            # an odd count of them); a loop took 1.4 ms a 4 KiB read of them.
            pieces = data.split(b"\xff")
            if len(pieces) & 1 and not any(pieces[1::2]):
                return b"\xff".join(pieces[::2])
            return self._marks(data)
        marks = data.count(b"\xff")
        # Break marks only, every 0xFF beginning one (a break storm: 1365
        # marks a 4 KiB read took a loop 386 us): taken out in C.
        if data.count(_BREAK_MARK) == marks:
            self.state |= LINE_BREAK
            return data.replace(_BREAK_MARK, b"")
        # No doubled 0xFF, no error on a 0xFF byte: every 0xFF begins a mark
        # (a stream of framing or parity errors: a wrong speed or parity).
        if b"\xff\xff" not in data and b"\xff\x00\xff" not in data:
            return self._threeByteMarks(data, marks)
        return self._marks(data)

    def _threeByteMarks(self, data: bytes, marks: int) -> bytes:
        """
        C{data}, whose every 0xFF begins a mark C{\\377 \\0 c} (c not 0xFF) or
        is cut short at its end, undone by replacing: the marks cannot
        overlap, nor one be taken for another.
        """
        last = data.rfind(b"\xff")
        if last > len(data) - 3:
            if data[last + 1 : last + 2] not in (b"", b"\x00"):
                return self._marks(data)  # 0xFF then a byte that starts no mark
            data, self.pending = data[:last], data[last:]
            marks -= 1
        if data.count(_MARK_START) != marks:
            return self._marks(data)
        breaks = data.count(_BREAK_MARK)
        if breaks:
            self.state |= LINE_BREAK
            data = data.replace(_BREAK_MARK, b"")
        if marks > breaks:
            self.state |= LINE_PARITY if self.parityEnabled else LINE_FRAMING
            data = data.replace(_MARK_START, b"")
        return data

    def _marks(self, data: bytes) -> bytes:
        """C{data} with marks of any kind (or a 0xFF cut short at its end): one split by L{_MARKS}."""
        parts = _MARKS.split(data)
        # Data, then for each mark: its error byte and its kept 0xFF (None
        # where it has none), then data again.
        found = len(parts) // 3
        tail = parts[-1]
        cut = tail.find(b"\xff")
        if cut >= 0:
            parts[-1], self.pending = tail[:cut], tail[cut:]
        errors = found - parts[1::3].count(None)
        if errors:
            self.state |= LINE_PARITY if self.parityEnabled else LINE_FRAMING
        if found - errors - (found - parts[2::3].count(None)):
            self.state |= LINE_BREAK
        return b"".join(filter(None, parts))

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


# TIOCGEXCL (Linux 3.8), _IOR('T', 0x40, int) where ioctl numbers are
# asm-generic's; elsewhere (mips, powerpc, sparc...) not asked.
_TIOCGEXCL = 0x80045440 if platform.machine() in (
    "x86_64", "i386", "i686", "aarch64", "arm64", "armv6l", "armv7l", "armv8l", "riscv64", "s390x", "loongarch64") else None


def exclusivelyHeld(fd: int) -> bool:
    """Whether the tty open as C{fd} is in exclusive mode (TIOCEXCL), which the gateway never sets."""
    if _TIOCGEXCL is None:
        return False
    try:
        return bool(struct.unpack("i", fcntl.ioctl(fd, _TIOCGEXCL, b"\0" * 4))[0])
    except OSError:
        return False  # (ENOTTY, EINVAL: not a tty, an older kernel)
