"""
Tests for a line's device reopened at a pty slave's path: the number of a
pty that went is given to the next pty made, another program's, which the
reopen must not take (serialgw.devices.ptyslave); real ptys, a MemoryReactorClock.
"""

from __future__ import annotations

import os
from unittest import SkipTest

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lines import makeDevice
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.device import SerialDevice
from serialgw.devices.ports import openPort

# The most ptys made (and closed at once) looking for one given a number.
TRIES = 20000


class PtyReuseTests(SynchronousTestCase):
    """A reopen takes the line's pty (or one its link was made for), never another program's given its number."""

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()

    def line(self, path: str) -> SerialDevice:
        device = makeDevice(LineConfig("vm1", DeviceSpec("tty", path), lock=False), self.clock, openPort,
                            lambda n: 1.0, lambda n: 1.0, True)
        self.addCleanup(device.close)
        self.assertTrue(device.up)
        return device

    def pty(self, closed: bool = True) -> tuple[int, int, str]:
        """A pty pair, closed at the end unless C{closed} is False (the test closes it)."""
        master, slave = os.openpty()
        if closed:
            self.addCleanup(os.close, master)
            self.addCleanup(os.close, slave)
        return master, slave, os.ttyname(slave)

    def programEnds(self, device: SerialDevice, master: int, slave: int) -> None:
        """The program holding the pty's master (QEMU, socat) ends; the line sees the hang-up."""
        os.close(slave)
        os.close(master)
        device.doRead()
        self.assertFalse(device.up)

    def numberGiven(self, name: str, born: int) -> tuple[int, int]:
        """
        A pty of this process (a test's openpty(): both ends held here) given
        the number of C{name}, made at another time than C{born} (devpts'
        clock moves by ticks: ptys are made and closed until one is).
        """
        for _ in range(TRIES):
            master, slave = os.openpty()
            if os.ttyname(slave) == name and os.fstat(slave).st_ctime_ns != born:
                self.addCleanup(os.close, master)
                self.addCleanup(os.close, slave)
                os.set_blocking(master, False)
                return master, slave
            os.close(master)
            os.close(slave)
        raise SkipTest(f"no pty made here was given {name} again in {TRIES} tries")

    def test_newPtyAtTheNumberRefused(self) -> None:
        """
        A line on QEMU's /dev/pts/N whose QEMU ended: the next pty given N
        (another program's) is not opened, the line stays down saying why, and
        nothing written to the line reaches that pty.
        """
        master, slave, name = self.pty(closed=False)
        born = os.fstat(slave).st_ctime_ns
        device = self.line(name)
        self.programEnds(device, master, slave)
        other, _ = self.numberGiven(name, born)
        reason = (f"cannot open device {name!r}: it is a new pty, made after the line's went (a pty's number goes to "
                  "the next pty made when its program ends: another program's); not opened: point the line at a link "
                  "its program makes with each pty (QEMU's -chardev pty,path=LINK, socat's PTY,link=LINK), or restart "
                  "the gateway to take this one")
        with capturedLogs() as events:
            self.clock.advance(1.0)
            self.assertEqual((device.up, device.downReason), (False, reason))
            device.write(b"typed by a client\r")
            for _ in range(5):
                self.clock.advance(1.0)
        self.assertFalse(device.up)
        self.assertRaises(BlockingIOError, os.read, other, 100)
        self.assertEqual([formatEvent(e) for e in events if e["log_level"] >= LogLevel.info],
                         [f"line vm1: {name}: still down: {reason}; trying again with backoff"])

    def test_samePtyOpenedAgain(self) -> None:
        """A line on /dev/pts/N whose pty is still there (its program still on it) opens it again."""
        master, slave, name = self.pty()
        device = self.line(name)
        port = device.reopener.opener()  # type: ignore[misc]
        self.addCleanup(port.close)
        self.assertEqual(os.ttyname(port.fileno()), name)

    def test_staleLinkRefusedRenewedFollowed(self) -> None:
        """
        A line on a link (socat's PTY,link=): a link older than the pty it
        points at (left by a socat killed -9, the number given to another
        program's pty) is not followed; made again by the program, it is.
        """
        master, slave, name = self.pty(closed=False)
        link = os.path.abspath(self.mktemp())
        os.symlink(name, link)
        device = self.line(link)
        self.programEnds(device, master, slave)
        second, slave2, name2 = self.pty()
        os.unlink(link)
        os.symlink(name2, link)
        born = os.fstat(slave2).st_ctime_ns
        os.utime(link, ns=(born - 10**9, born - 10**9), follow_symlinks=False)  # made a second before that pty
        self.clock.advance(1.0)
        self.assertEqual((device.up, device.downReason), (False, (
            f"cannot open device {link!r}: it is a link older than the pty it points at, {name2} (a link its program "
            "left when it ended: the number went to the next pty made, another program's); not opened")))
        os.unlink(link)
        os.symlink(name2, link)  # socat's new link
        self.clock.advance(2.0)
        self.assertTrue(device.up)
        device.write(b"x")
        self.assertEqual(os.read(second, 1), b"x")
