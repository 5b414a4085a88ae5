"""
Tests for serialgw.devices.ports: real ttys and ptys opened raw, PARMRK
marks set and undone, a pty's link, open errors naming the device.
"""

from __future__ import annotations

import errno
import fcntl
import os
import termios
from unittest import SkipTest

import serial
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.specs import DeviceSpec, SerialSettings
from serialgw.devices.absent import AbsentPort
from serialgw.devices.errors import DeviceError, errorReason
from serialgw.devices.ports import PtyPort, TtyPort, openPort


class TtyMarksTests(SynchronousTestCase):
    def test_termiosMarks(self) -> None:
        """Watched, a tty has PARMRK and no IGNBRK/BRKINT, also after a change; unwatched, no PARMRK."""
        import termios
        import tty

        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        self.addCleanup(port.close)
        self.assertFalse(termios.tcgetattr(slave)[0] & termios.PARMRK)
        port.watchLineErrors(True)
        for _ in range(2):
            iflag = termios.tcgetattr(slave)[0]
            self.assertTrue(iflag & termios.PARMRK)
            self.assertFalse(iflag & (termios.IGNBRK | termios.BRKINT | termios.IGNPAR))
            port.apply(SerialSettings(9600))
        os.write(master, b"\xff")
        self.assertEqual(port.read(), b"\xff")
        port.watchLineErrors(False)
        self.assertFalse(termios.tcgetattr(slave)[0] & termios.PARMRK)

    def test_brkintClearedUnwatched(self) -> None:
        """A tty left with BRKINT (stty sane) loses it at open, watched or not: a break never flushes input."""
        import termios
        import tty

        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[0] |= termios.BRKINT
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        self.addCleanup(port.close)
        iflag = termios.tcgetattr(slave)[0]
        self.assertEqual(iflag & (termios.BRKINT | termios.PARMRK), 0)


class TtyReadTests(SynchronousTestCase):
    def test_oneReadTakesOneSlice(self) -> None:
        """However much is pending, one read takes 4 KiB (a tty's line discipline buffer), in order: a flood's turn stays short."""
        import tty

        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        self.addCleanup(port.close)
        # A descriptor holding more than a line discipline buffer: a pipe
        # put where the tty was.
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        flood = os.urandom(3 * 4096 + 5)
        os.write(w, flood)
        os.set_blocking(r, False)  # as the tty was
        os.dup2(r, port.fileno())
        os.close(r)
        self.assertEqual([port.read() for _ in range(4)],
                         [flood[:4096], flood[4096:8192], flood[8192:12288], flood[12288:]])


    def test_hungUp(self) -> None:
        """A tty whose far end goes (a pty's master closed, as an unplug) polls as hung up; before, with input waiting too, not."""
        import tty

        master, slave = os.openpty()
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        port = TtyPort(os.ttyname(slave), SerialSettings())
        self.addCleanup(port.close)
        os.write(master, b"unread")
        self.assertFalse(port.hungUp())
        os.close(master)
        self.assertTrue(port.hungUp())

    def test_ptyPortNeverHangsUp(self) -> None:
        """A pty the gateway makes keeps its slave open: the program on it closing its side is no hang-up."""
        port = PtyPort("", SerialSettings())
        self.addCleanup(port.close)
        program = os.open(port.slaveName, os.O_RDWR | os.O_NOCTTY)
        os.close(program)
        self.assertEqual((port.hungUp(), AbsentPort("x", SerialSettings()).hungUp()), (False, False))


class PtyPortTests(SynchronousTestCase):
    def test_ptyWithLink(self) -> None:
        """pty:LINK makes a pty, points LINK at its slave, removes it at close."""
        link = self.mktemp()
        port = openPort(DeviceSpec("pty", link), SerialSettings(baudrate=9600))
        self.assertIsInstance(port, PtyPort)
        assert isinstance(port, PtyPort)
        self.assertEqual(os.readlink(link), port.slaveName)
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"from program\r\n")
            self.assertEqual(port.read(), b"from program\r\n")
            port.write(b"\x00\xff\n")
            self.assertEqual(os.read(fd, 100), b"\x00\xff\n")
        finally:
            os.close(fd)
        port.close()
        self.assertFalse(os.path.lexists(link))

    def test_programReopens(self) -> None:
        """The program on the pty may close and reopen it: the gateway's side keeps working."""
        link = self.mktemp()
        port = openPort(DeviceSpec("pty", link), SerialSettings())
        self.addCleanup(port.close)
        for text in (b"first open", b"second open"):
            fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
            os.write(fd, text)
            os.close(fd)
            self.assertEqual(port.read(), text)

    def test_staleLinkReplaced(self) -> None:
        """A stale symlink is replaced; a regular file in the way is an error."""
        link = self.mktemp()
        os.symlink("/nonexistent", link)
        port = openPort(DeviceSpec("pty", link), SerialSettings())
        assert isinstance(port, PtyPort)
        self.assertEqual(os.readlink(link), port.slaveName)
        port.close()
        with open(link, "w") as f:
            f.write("keep me")
        e = self.assertRaises(DeviceError, openPort, DeviceSpec("pty", link), SerialSettings())
        self.assertIn(repr(link), str(e))
        with open(link) as f:
            self.assertEqual(f.read(), "keep me")

    def test_ttyOpenError(self) -> None:
        """A device that cannot open gives a DeviceError naming it."""
        e = self.assertRaises(DeviceError, TtyPort, "/dev/nonexistent-tty", SerialSettings())
        self.assertEqual(str(e), "cannot open device '/dev/nonexistent-tty': No such file or directory")

    def test_notADeviceSaysWhat(self) -> None:
        """
        A path that is no tty (a file, a FIFO, a directory, a unix socket,
        /dev/null) is refused saying what it is, not with pyserial's
        "Could not configure port: (25, 'Inappropriate ioctl for device')".
        """
        import socket

        directory = self.mktemp()
        os.mkdir(directory)
        paths = {name: os.path.join(directory, name) for name in ("file", "fifo", "sock")}
        with open(paths["file"], "w") as f:
            f.write("hello")
        os.mkfifo(paths["fifo"])
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(paths["sock"])
        for path, what in ((paths["file"], "it is a regular file, not a serial device"),
                           (paths["fifo"], "it is a FIFO, not a serial device"),
                           (directory, "it is a directory, not a serial device"),
                           (paths["sock"], "it is a unix socket, not a serial device"),
                           ("/dev/null", "it is not a tty (Inappropriate ioctl for device)")):
            e = self.assertRaises(DeviceError, TtyPort, path, SerialSettings())
            self.assertEqual(str(e), f"cannot open device {path!r}: {what}")

    def test_ptyMultiplexerRefused(self) -> None:
        """
        /dev/ptmx (or a link to it) is refused, saying what it is: opening it makes a new pty that no
        program can reach, and the line was up on it for ever, what clients typed swallowed.
        """
        link = self.mktemp()
        os.symlink("/dev/ptmx", link)
        for path in ("/dev/ptmx", link):
            e = self.assertRaises(DeviceError, TtyPort, path, SerialSettings())
            self.assertEqual(str(e), f"cannot open device {path!r}: it is the pty multiplexer (/dev/ptmx): "
                                     "opening it makes a new pty that no program is on; for a pty a program "
                                     "plays the device on, use pty:LINK")

    def test_settingsApplied(self) -> None:
        """Settings reach the slave's termios: speed and stop bits."""
        import termios

        port = openPort(DeviceSpec("pty", ""), SerialSettings(baudrate=57600, stopbits=2))
        assert isinstance(port, PtyPort)
        try:
            fd = os.open(port.slaveName, os.O_RDWR | os.O_NOCTTY)
            try:
                iflag, oflag, cflag, lflag, ispeed, ospeed, cc = termios.tcgetattr(fd)
                self.assertEqual(ospeed, termios.B57600)
                self.assertTrue(cflag & termios.CSTOPB)
                self.assertFalse(lflag & termios.ECHO)
                self.assertFalse(lflag & termios.ICANON)
                self.assertFalse(oflag & termios.OPOST)
                self.assertFalse(iflag & termios.ICRNL)
            finally:
                os.close(fd)
            effective = port.apply(SerialSettings(baudrate=9600))
            self.assertEqual(effective.baudrate, 9600)
            self.assertEqual(effective.stopbits, 1)
        finally:
            port.close()


class AbsentPortTests(SynchronousTestCase):
    def test_everyCallFailsAsGone(self) -> None:
        """An absent device fails every I/O call with ENODEV (the loss path's errno); settings are kept for later."""
        port = AbsentPort("/dev/ttyUSB7", SerialSettings(9600))
        calls = [port.read, lambda: port.write(b"x"), lambda: port.setBreak(True),
                 lambda: port.setModemLine("dtr", True), port.modemState, lambda: port.purge(True, True)]
        self.assertEqual([self.assertRaises(OSError, call).errno for call in calls], [errno.ENODEV] * 6)
        self.assertEqual((port.fileno(), port.outputPending(), port.takeLineState()), (-1, 0, 0))
        self.assertEqual(port.apply(SerialSettings(1200)), SerialSettings(1200))
        self.assertEqual(port.settings, SerialSettings(1200))


class ErrorReasonTests(SynchronousTestCase):
    def test_reasons(self) -> None:
        """termios, OS and pyserial errors become the few words people read (no errno prefixes)."""
        self.assertEqual(errorReason(termios.error(errno.EIO, "Input/output error")), "Input/output error")
        self.assertEqual(errorReason(OSError(errno.ENOENT, "No such file or directory")), "No such file or directory")
        self.assertEqual(errorReason(serial.SerialException(errno.EBUSY, "busy")), os.strerror(errno.EBUSY))
        self.assertEqual(errorReason(serial.SerialException("[Errno 2] could not open port /dev/x: [Errno 2] gone")),
                         "gone")


class MissingDeviceTests(SynchronousTestCase):
    def test_relativeNameOfADevice(self) -> None:
        """A tty not there whose name is one in /dev (ttyS0 given for /dev/ttyS0, as Taylor cu takes it, read from the start directory): the reason asks whether /dev/NAME was meant; another name, or one under /dev, says only what the kernel said."""
        from serialgw.devices import errors

        dev = os.path.abspath(self.mktemp())
        os.mkdir(dev)
        open(os.path.join(dev, "ttyS0"), "w").close()
        self.patch(errors, "DEV", dev)
        gone = OSError(errno.ENOENT, "No such file or directory")
        self.assertEqual(errors.whyNotOpened("/srv/gw/ttyS0", gone),
                         f"No such file or directory (did you mean {dev}/ttyS0? a relative device path is read from "
                         "the directory the gateway started in, or the configuration file's)")
        self.assertEqual(errors.whyNotOpened("/srv/gw/ttyS9", gone), "No such file or directory")
        self.assertEqual(errors.whyNotOpened(f"{dev}/ttyUSB0", gone), "No such file or directory")

    def test_startSaysWaitForDevice(self) -> None:
        """A single line whose tty under /dev is not there fails its start naming it, and says --wait-for-device (a USB adapter not plugged in yet)."""
        from twisted.internet.testing import MemoryReactorClock

        from serialgw.app.lines import makeDevice
        from serialgw.config.specs import LineConfig

        config = LineConfig("a", DeviceSpec("tty", "/dev/serial/by-id/usb-serialgw-test-not-plugged-if00-port0"),
                            lock=False)  # (no lock file made in /var/lock by a test)
        e = self.assertRaises(DeviceError, makeDevice, config, MemoryReactorClock(), openPort, lambda n: 1.0,
                              lambda n: 1.0, waitForDevices=False)
        self.assertEqual(str(e), f"cannot open device {config.device.path!r}: No such file or directory (not there now: "
                                 "--wait-for-device starts the line down and opens it once it is there)")


class RejectionLogTests(SynchronousTestCase):
    def test_refusalLoggedOnce(self) -> None:
        """A pty refusing 7 bits and parity E, asked 500 times each: two warnings, not 1000 (at most 16 distinct refusals a port)."""
        from twisted.logger import LogLevel

        from tests.fakes import LogEvents

        port = PtyPort("", SerialSettings())
        self.addCleanup(port.close)
        log = LogEvents(self)
        for _ in range(500):
            self.assertEqual(port.apply(SerialSettings(115200, 7, "E")), SerialSettings(115200))
            self.assertEqual(port.apply(SerialSettings(9600)), SerialSettings(9600))
        warned = [(e["field"], e["value"]) for e in log.at(LogLevel.warn)]
        self.assertEqual(warned, [("bytesize", 7), ("parity", "E")])
        for baud in range(1000, 1040):
            port._rejected("baudrate", baud, "Invalid argument")
        self.assertEqual(len(log.at(LogLevel.warn)), 16)


class PtyHangupTests(SynchronousTestCase):
    def test_settingsAfterLoginsHangup(self) -> None:
        """
        login(1) on the pty the gateway made (getty and login playing the
        device) hangs its tty up (vhangup), which kills every descriptor of
        the slave, the gateway's too: the next settings (an RFC 2217 client's
        9600) apply on a descriptor opened again by name, the same pty; they
        raised EIO, the device was taken for lost and a new pty made behind
        the link, the login session cut off.
        """
        TIOCVHANGUP = 0x5437
        link = os.path.abspath(self.mktemp())
        port = PtyPort(link, SerialSettings(115200))
        self.addCleanup(port.close)
        master = port.fileno()
        login = os.open(link, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, login)
        try:
            fcntl.ioctl(login, TIOCVHANGUP)
        except PermissionError:
            raise SkipTest("hanging a tty up takes CAP_SYS_ADMIN") from None
        self.assertEqual(port.apply(SerialSettings(9600)), SerialSettings(9600))
        program = os.open(link, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, program)
        self.assertEqual(termios.tcgetattr(program)[5], termios.B9600)
        self.assertEqual((port.fileno(), os.readlink(link)), (master, port.slaveName))


class TerminalAtPathTests(SynchronousTestCase):
    """
    A pty slave opened again (the device went, or was not there at start) is
    refused when it is someone's terminal now; real ptys held by real
    processes.
    """

    def pty(self) -> tuple[int, int, str]:
        master, slave = os.openpty()
        return master, slave, os.ttyname(slave)

    def elsewhere(self, *fds: int) -> int:
        """A process of its own holds these open files from now on (this one no longer does); its pid."""
        import subprocess

        holder = subprocess.Popen(["sleep", "60"], pass_fds=fds)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        for fd in fds:
            os.close(fd)
        return holder.pid

    def test_terminalRefused(self) -> None:
        """
        QEMU's /dev/pts/N went; the number is an ssh session's now (its shell
        holds the slave, sshd the master): not opened again, the reason names
        the holder (it was opened: the session's keystrokes went to the line).
        """
        master, slave, name = self.pty()
        self.addCleanup(os.close, master)
        shell = self.elsewhere(slave)
        error = self.assertRaises(DeviceError, openPort, DeviceSpec("tty", name), SerialSettings(), None, True)
        self.assertEqual(str(error), f"cannot open device {name!r}: it is {name}, a terminal now, held open by pid "
                         f"{shell} without its master (another session's: a pty's number goes to the next pty when "
                         "its program ends); not opened")

    def test_sessionTerminalRefused(self) -> None:
        """
        The number went to a script(1) session: script holds master and slave
        (as socat does), its shell has the slave as its controlling terminal:
        a session's terminal, not opened again; the reason names the shell.
        """
        import subprocess
        import sys

        master, slave, name = self.pty()
        shell = subprocess.Popen(
            [sys.executable, "-c", f"import fcntl, sys, termios, time; fcntl.ioctl({slave}, termios.TIOCSCTTY, 0); "
             "print('ready', flush=True); time.sleep(60)"],
            pass_fds=(slave,), start_new_session=True, stdout=subprocess.PIPE)
        self.addCleanup(shell.wait)
        self.addCleanup(shell.stdout.close)  # type: ignore[union-attr]
        self.addCleanup(shell.kill)
        self.assertEqual(shell.stdout.readline(), b"ready\n")  # type: ignore[union-attr]
        self.elsewhere(master, slave)  # script
        error = self.assertRaises(DeviceError, openPort, DeviceSpec("tty", name), SerialSettings(), None, True)
        self.assertEqual(str(error), f"cannot open device {name!r}: it is {name}, a terminal now, the controlling "
                         f"terminal of pid {shell.pid} (another session's: a pty's number goes to the next pty when "
                         "its program ends); not opened")

    def test_lockedTerminalSaysLock(self) -> None:
        """
        A pty slave held without its master by a process that holds its UUCP
        lock too (cu -l /dev/pts/N on QEMU's pty, another gateway) is refused
        as locked, naming the holder as the first open does (DeviceLocked:
        the status page's locked_by), not as another session's terminal.
        """
        from serialgw.devices.errors import DeviceLocked

        master, slave, name = self.pty()
        self.addCleanup(os.close, master)
        cu = self.elsewhere(slave)
        lockDir = self.mktemp()
        os.mkdir(lockDir)
        lock = os.path.join(lockDir, "LCK.." + os.path.basename(name))
        with open(lock, "w") as f:
            f.write(f"{cu:10d}\n")
        error = self.assertRaises(DeviceLocked, openPort, DeviceSpec("tty", name), SerialSettings(), lockDir, True)
        self.assertEqual((str(error), error.pid), (f"{name} is locked by process {cu} (sleep) ({lock})", cu))
        self.assertEqual(os.listdir(lockDir), [os.path.basename(lock)])
        # Its lock gone (stale, or no lock at all), the terminal is refused as one.
        os.unlink(lock)
        error = self.assertRaises(DeviceError, openPort, DeviceSpec("tty", name), SerialSettings(), lockDir, True)
        self.assertIn("a terminal now, held open by pid", str(error))
        self.assertEqual(os.listdir(lockDir), [])

    def test_holdersNamedBounded(self) -> None:
        """A terminal held by many processes is refused naming five of them and how many more (the reason is logged)."""
        master, slave, name = self.pty()
        self.addCleanup(os.close, master)
        holders = [self.elsewhere(os.dup(slave)) for _ in range(7)]
        os.close(slave)
        error = self.assertRaises(DeviceError, openPort, DeviceSpec("tty", name), SerialSettings(), None, True)
        self.assertIn(f"held open by pid {', '.join(map(str, sorted(holders)[:5]))} and 2 more without its master",
                      str(error))

    def test_serialStandInsOpened(self) -> None:
        """A pty nobody else holds (QEMU's), or one of whose holders has its master too (socat's PTY, a program on it besides), is opened again; at start any is."""
        master, slave, name = self.pty()
        self.addCleanup(os.close, master)
        os.close(slave)
        openPort(DeviceSpec("tty", name), SerialSettings(), None, True).close()
        master, slave, name = self.pty()
        program = os.open(name, os.O_RDWR | os.O_NOCTTY)
        self.elsewhere(master, slave)
        self.elsewhere(program)  # picocom on socat's pty
        openPort(DeviceSpec("tty", name), SerialSettings(), None, True).close()
        master, slave, name = self.pty()
        self.addCleanup(os.close, master)
        self.elsewhere(slave)
        openPort(DeviceSpec("tty", name), SerialSettings(), None).close()

    def test_reopenerAsksAgain(self) -> None:
        """A line's device is opened at start as given, by its reopener with again=True."""
        from twisted.internet.task import Clock

        from serialgw.app.lines import makeDevice
        from serialgw.config.specs import LineConfig
        from tests.fakes import RecordingPort

        calls: list[tuple[object, ...]] = []
        clock = Clock()

        def openPort(*args: object) -> RecordingPort:
            calls.append(args[3:])
            return RecordingPort(clock)

        device = makeDevice(LineConfig("t", DeviceSpec("tty", "/dev/pts/99"), lock=False), clock, openPort,
                            lambda n: 1.0, lambda n: 1.0, False)
        device.reopener.opener()
        self.assertEqual(calls, [(), (True,)])
