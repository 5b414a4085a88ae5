"""
Tests for serialgw.devices.termio: PARMRK marks undone, speeds named,
modem lines read where a device has them.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import SerialSettings
from serialgw.devices.termio import (
    LINE_BREAK,
    LINE_FRAMING,
    LINE_PARITY,
    ErrorMarks,
    readModemState,
    readTermios,
    setOtherSpeed,
    termiosSpeed,
)


def markAtATime(marks: ErrorMarks, data: bytes) -> bytes:
    """
    The reference: PARMRK marks undone one at a time, left to right (what
    ErrorMarks did for every read with marks until it was all done in C).
    """
    if marks.pending:
        data, marks.pending = marks.pending + data, b""
    out: list[bytes] = []
    i, n = 0, len(data)
    while True:
        j = data.find(b"\xff", i)
        if j < 0:
            out.append(data[i:])
            break
        out.append(data[i:j])
        if j + 1 >= n or (data[j + 1] == 0 and j + 2 >= n):
            marks.pending = data[j:]
            break
        if data[j + 1] == 0:
            byte = data[j + 2]
            if byte == 0:
                marks.state |= LINE_BREAK
            else:
                marks.state |= LINE_PARITY if marks.parityEnabled else LINE_FRAMING
                out.append(data[j + 2 : j + 3])
            i = j + 3
        else:
            # \377 \377, or (not expected) \377 then a byte: data.
            out.append(b"\xff")
            i = j + 2 if data[j + 1] == 0xFF else j + 1
    return b"".join(out)


class ErrorMarksTests(SynchronousTestCase):
    STREAM = b"ab\xff\xffc\xff\x00\x00d\xff\x00\x07e"

    def test_decode(self) -> None:
        """Doubled 0xFF is data, 377 0 0 a break, 377 0 c an error on byte c (kept)."""
        marks = ErrorMarks()
        self.assertEqual(marks.decode(self.STREAM), b"ab\xffcd\x07e")
        self.assertEqual(marks.take(), LINE_BREAK | LINE_FRAMING)
        self.assertEqual(marks.take(), 0)
        marks.parityEnabled = True
        self.assertEqual(marks.decode(b"\xff\x00z"), b"z")
        self.assertEqual(marks.take(), LINE_PARITY)

    def test_anySplit(self) -> None:
        """Any split of the stream into two reads decodes the same."""
        for i in range(len(self.STREAM) + 1):
            marks = ErrorMarks()
            out = marks.decode(self.STREAM[:i]) + marks.decode(self.STREAM[i:])
            self.assertEqual((out, marks.take()), (b"ab\xffcd\x07e", LINE_BREAK | LINE_FRAMING), i)

    def test_doubledInC(self) -> None:
        """A read of doubled 0xFF data bytes only (binary data, 4 KiB) is undone without the mark-at-a-time loop; one with a mark takes it."""
        loops = []

        class Counting(ErrorMarks):
            def _marks(self, data: bytes) -> bytes:
                loops.append(len(data))
                return ErrorMarks._marks(self, data)

        marks = Counting()
        self.assertEqual(marks.decode(b"\xff\xff" * 2048), b"\xff" * 2048)
        self.assertEqual(marks.decode(b"a\xff\xffb\xff\xff\xff\xffc"), b"a\xffb\xff\xffc")
        self.assertEqual((loops, marks.take()), ([], 0))
        self.assertEqual(marks.decode(b"\xff\xff\xff\x00\x00"), b"\xff")
        self.assertEqual((loops, marks.take()), ([5], LINE_BREAK))

    def test_breakStormInC(self) -> None:
        """
        A read of break marks only, data between them (a break storm: 1365 marks in 4 KiB), is undone
        without the mark-at-a-time loop (386 us a read measured with it, 32 us without); one with another
        mark, or a mark cut at its end, takes the loop.
        """
        loops = []

        class Counting(ErrorMarks):
            def _marks(self, data: bytes) -> bytes:
                loops.append(len(data))
                return ErrorMarks._marks(self, data)

        marks = Counting()
        self.assertEqual(marks.decode(b"\xff\x00\x00" * 1365), b"")
        self.assertEqual((loops, marks.take()), ([], LINE_BREAK))
        self.assertEqual(marks.decode(b"a\xff\x00\x00\x00b\xff\x00\x00"), b"a\x00b")
        self.assertEqual((loops, marks.take()), ([], LINE_BREAK))
        self.assertEqual(marks.decode(b"\xff\x00\x00\xff\x00"), b"")
        self.assertEqual((loops, marks.pending, marks.take()), ([], b"\xff\x00", LINE_BREAK))
        self.assertEqual(marks.decode(b"\x00\xff\x00\x07"), b"\x07")
        self.assertEqual((loops, marks.take()), ([], LINE_BREAK | LINE_FRAMING))
        self.assertEqual(marks.decode(b"\xff\x00\x00\xff\xff"), b"\xff")
        self.assertEqual((loops, marks.take()), ([5], LINE_BREAK))

    def test_errorStreamInC(self) -> None:
        """
        A read of framing or parity error marks (a wrong speed or parity: 1365 marks in 4 KiB), breaks
        among them, data between them, is undone by replacing, without the general split: exact bytes,
        the kind of error told once; the general split only where a 0xFF is doubled or in error.
        """
        loops = []

        class Counting(ErrorMarks):
            def _marks(self, data: bytes) -> bytes:
                loops.append(len(data))
                return ErrorMarks._marks(self, data)

        bad = bytes(range(1, 255)) * 6  # every byte but 0 and 0xFF
        marks = Counting()
        stream = b"".join(b"\xff\x00" + bad[i : i + 1] for i in range(1365))
        self.assertEqual(marks.decode(stream), bad[:1365])
        self.assertEqual((loops, marks.take()), ([], LINE_FRAMING))
        marks.parityEnabled = True
        self.assertEqual(marks.decode(b"a\xff\x00b\xff\x00\x00c\xff\x00\x0a\x00"), b"abc\n\x00")
        self.assertEqual((loops, marks.take()), ([], LINE_PARITY | LINE_BREAK))
        # A 0xFF cut short at the end waits for the next read, still without the split.
        self.assertEqual(marks.decode(b"\xff\x00z\xff"), b"z")
        self.assertEqual((loops, marks.pending), ([], b"\xff"))
        self.assertEqual(marks.decode(b"\x00y"), b"y")
        self.assertEqual((loops, marks.pending, marks.take()), ([], b"", LINE_PARITY))
        # An error on a 0xFF byte (\377 \0 \377), a doubled 0xFF: the split.
        self.assertEqual(marks.decode(b"\xff\x00\xff\xff\x00z"), b"\xffz")
        self.assertEqual(marks.decode(b"\xff\xff\xff\x00z"), b"\xffz")
        self.assertEqual((loops, marks.take()), ([6, 5], LINE_PARITY))

    def test_mixedMarksExact(self) -> None:
        """
        Every kind of mark in one stream (doubled 0xFF, errors on 0xFF, on NUL-adjacent bytes and on
        others, breaks, a 0xFF before a plain byte), cut anywhere into two or three reads: exact bytes.
        """
        stream = (b"a\xff\xff\xff\x00\xff\xff\x00\x00\x00\xff\x00\x01\xff\xffq\xff\x00\xff\x00"
                  b"\xff\x00\x00\xffz\xff\xff\xff\x00b")
        expected = b"a\xff\xff\x00\x01\xffq\xff\x00\xffz\xffb"
        for i in range(len(stream) + 1):
            for j in range(i, len(stream) + 1):
                marks = ErrorMarks()
                out = marks.decode(stream[:i]) + marks.decode(stream[i:j]) + marks.decode(stream[j:])
                self.assertEqual((out, marks.pending, marks.take()),
                                 (expected, b"", LINE_BREAK | LINE_FRAMING), (i, j))

    # No deadline nor speed check: on a loaded machine (CI's two cores shared) input generation is slow.
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.sampled_from([b"\xff", b"\x00", b"a", b"\xff\xff", b"\xff\x00\x00", b"\xff\x00\x07",
                                     b"\xff\x00\xff", b"\xff\x00a"]), max_size=30),
           st.integers(0, 60), st.integers(0, 60), st.booleans())
    def test_asMarkAtATime(self, pieces: list[bytes], cut: int, cut2: int, parity: bool) -> None:
        """Any stream, cut anywhere into three reads, decodes as the mark-at-a-time reference does."""
        data = b"".join(pieces)
        cut, cut2 = sorted((cut, cut2))
        fast, slow = ErrorMarks(), ErrorMarks()
        fast.parityEnabled = slow.parityEnabled = parity
        decoded = b"".join(fast.decode(c) for c in (data[:cut], data[cut:cut2], data[cut2:]))
        looped = b"".join(markAtATime(slow, c) for c in (data[:cut], data[cut:cut2], data[cut2:]))
        self.assertEqual((decoded, fast.pending, fast.take()), (looped, slow.pending, slow.take()))

    def test_plainUntouched(self) -> None:
        """A chunk without 0xFF is returned as the same object."""
        data = b"plain text"
        self.assertIs(ErrorMarks().decode(data), data)


# picocom's (and pyserial's) way to a speed termios cannot name: Linux's
# termios2 ioctls with BOTHER, written here as they write it.
TERMIOS2 = struct.Struct("IIIIB19BII")


def setSpeedAsPicocom(fd: int, baud: int) -> None:
    """Set C{baud} as picocom does for a speed without a B constant."""
    fields = list(TERMIOS2.unpack(fcntl.ioctl(fd, 0x802C542A, bytes(TERMIOS2.size))))
    fields[2] = (fields[2] & ~0o010017) | 0o010000
    fields[-2] = fields[-1] = baud
    fcntl.ioctl(fd, 0x402C542B, TERMIOS2.pack(*fields))


def speedAsPicocomReadsIt(fd: int) -> tuple[int, int]:
    """The (input, output) speed termios2 reports."""
    fields = TERMIOS2.unpack(fcntl.ioctl(fd, 0x802C542A, bytes(TERMIOS2.size)))
    return fields[-2], fields[-1]


class TtyCallTests(SynchronousTestCase):
    def pty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        return master, slave

    def test_speedNames(self) -> None:
        """A speed termios names maps to its constant; one it cannot name (BOTHER) to None."""
        self.assertEqual((termiosSpeed(115200), termiosSpeed(9600)), (termios.B115200, termios.B9600))
        self.assertIsNone(termiosSpeed(12345))

    def test_readTermios(self) -> None:
        """readTermios gives what tcsetattr set: speed, 2 stop bits, XON/XOFF (a pty forces 8 bits, no parity)."""
        _, slave = self.pty()
        attrs = termios.tcgetattr(slave)
        attrs[0] |= termios.IXON
        attrs[2] |= termios.CSTOPB
        attrs[4] = attrs[5] = termios.B57600
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.assertEqual(readTermios(slave),
                         SerialSettings(57600, stopbits=2, xonxoff=True))

    def test_readTermiosOtherSpeed(self) -> None:
        """A speed termios cannot name, set as picocom sets 250000 (termios2, BOTHER), is read as that speed."""
        _, slave = self.pty()
        setSpeedAsPicocom(slave, 250000)
        self.assertEqual(readTermios(slave, 115200).baudrate, 250000)

    def test_setOtherSpeed(self) -> None:
        """setOtherSpeed puts 74880 (ESP8266 boot ROM speed) on a tty with termios2 and BOTHER, as the kernel then reports it."""
        _, slave = self.pty()
        self.assertTrue(setOtherSpeed(slave, 74880))
        self.assertEqual(speedAsPicocomReadsIt(slave), (74880, 74880))
        self.assertEqual(termios.tcgetattr(slave)[2] & termios.CSIZE, termios.CS8)

    def test_ptyHasNoModemLines(self) -> None:
        """TIOCMGET on a pty fails with ENOTTY: no modem lines (None), not an error."""
        _, slave = self.pty()
        self.assertIsNone(readModemState(slave))
