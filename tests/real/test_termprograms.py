"""
Real terminal programs on a C{pty:} listener, the device a pty pair: the
speed they set reaches the device's termios, and what they put back when
they leave is the line's.  Skipped where the program is not installed.
"""

from __future__ import annotations

import fcntl
import os
import struct

from twisted.trial.unittest import TestCase

from serialgw.config.specs import SerialSettings
from tests.realio import EventCounter, need, ptyLine, ptysLinked, startedPty, startGateway, startProcess

# Linux's termios2 (TCGETS2): what the kernel has as the device's speed, a
# speed without a B constant included.
TERMIOS2 = struct.Struct("IIIIB19BII")
TCGETS2 = 0x802C542A


def speed(fd: int) -> int:
    """The output speed of the tty whose master (or slave) is C{fd}, as termios2 reports it."""
    return int(TERMIOS2.unpack(fcntl.ioctl(fd, TCGETS2, bytes(TERMIOS2.size)))[-1])


class PicocomTests(TestCase):
    timeout = 30

    async def test_picocomOtherSpeeds(self) -> None:
        """
        picocom -b 250000 on the pty of a line at 74880 (neither has a B
        constant): the device goes to 250000, and back to 74880 when
        picocom leaves (it puts back what it found).  Before, the device
        stayed at 74880, and picocom found and put back 38400.
        """
        picocom = need("picocom")
        pty = startedPty(self)
        link = os.path.abspath(self.mktemp())
        asked = EventCounter(self, "the program on {peer} set")
        service = startGateway(self, ptyLine(pty, f"pty:{link}", settings=SerialSettings(74880)))
        await ptysLinked(service)
        self.assertEqual(speed(pty.master), 74880)
        proc = startProcess(self, [picocom, "-b", "250000", link], usePTY=True)
        await proc.output.contains(b"Terminal ready")
        await asked.nth(1)
        self.assertEqual(speed(pty.master), 250000)
        self.assertEqual(service.lines["t"].settings.baudrate, 250000)
        proc.write(b"\x01\x18")  # C-a C-x: exit
        await asked.nth(2)
        self.assertEqual(speed(pty.master), 74880)
        self.assertEqual([event["changed"] for event in asked.events],
                         [{"baudrate": 250000}, {"baudrate": 74880}])
