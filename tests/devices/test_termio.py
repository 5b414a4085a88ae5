"""
Tests for serialgw.devices.termio: PARMRK marks undone, speeds named,
modem lines read where a device has them.
"""

from __future__ import annotations

import os
import termios

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import SerialSettings
from serialgw.devices.termio import (
    LINE_BREAK,
    LINE_FRAMING,
    LINE_PARITY,
    ErrorMarks,
    readModemState,
    readTermios,
    termiosSpeed,
)


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

    def test_plainUntouched(self) -> None:
        """A chunk without 0xFF is returned as the same object."""
        data = b"plain text"
        self.assertIs(ErrorMarks().decode(data), data)


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

    def test_ptyHasNoModemLines(self) -> None:
        """TIOCMGET on a pty fails with ENOTTY: no modem lines (None), not an error."""
        _, slave = self.pty()
        self.assertIsNone(readModemState(slave))
