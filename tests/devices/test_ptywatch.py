"""
A pty the gateway holds open never has a last close: exclusive mode a
program leaves on it (GNU screen's TIOCEXCL) is cleared once no other
process has it open, looked for at each close inotify reports.  Real ptys,
inotify and processes; the notifier is read by hand where the reactor would
read it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import termios
from typing import Any
from unittest import SkipTest

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from serialgw.clients.ptylink import PtyClient
from serialgw.clients.ptytermios import EXTPROC
from serialgw.config.specs import SerialSettings
from serialgw.devices import ptywatch
from serialgw.devices.device import SerialDevice
from serialgw.devices.ports import PtyPort
from serialgw.devices.ptywatch import SlaveWatch, isExclusive
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, RecordingPort, observeLog


class SlaveWatchTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        master, self.slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, self.slave)
        self.name = os.ttyname(self.slave)
        self.watch = SlaveWatch(reactor, self.name, self.slave, "pty:/tmp/ttyV0")
        self.addCleanup(self.watch.close)

    def program(self) -> int:
        """A program opens the slave (by its name, as through the link)."""
        return os.open(self.name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def elsewhere(self, fd: int) -> subprocess.Popen[bytes]:
        """The open file C{fd} is held by another process from now on (and no longer by this one)."""
        holder = subprocess.Popen(["sleep", "60"], pass_fds=(fd,))
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        os.close(fd)
        return holder

    async def closes(self) -> None:
        """What the reactor would do once the notifier is readable; then the look at the holders, done."""
        assert self.watch._notifier is not None
        self.watch._notifier.doRead()
        if self.watch.checking is not None:
            await self.watch.checking

    async def test_lastCloseClearsExclusive(self) -> None:
        """A program sets TIOCEXCL and exits: cleared after its close, logged once; the gateway's descriptor was never closed."""
        logged: list[dict[str, object]] = []
        observeLog(self, lambda e: logged.append(e) if "exclusive mode" in str(e.get("log_format")) else None)
        fd = self.program()
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        self.assertTrue(isExclusive(self.slave))
        await self.closes()
        self.assertFalse(isExclusive(self.slave))
        self.assertEqual([e["peer"] for e in logged], ["pty:/tmp/ttyV0"])

    async def test_notWhileAnotherHasIt(self) -> None:
        """Another process still has it open when the exclusive one closes: it stays so until that one has gone too."""
        first = self.program()
        holder = self.elsewhere(self.program())
        fcntl.ioctl(first, termios.TIOCEXCL)
        os.close(first)
        await self.closes()
        self.assertTrue(isExclusive(self.slave))
        holder.kill()
        holder.wait()
        await self.closes()
        self.assertFalse(isExclusive(self.slave))

    async def test_notExclusiveNothingLooked(self) -> None:
        """A close that leaves it not exclusive (stty, picocom) costs no look at the processes."""
        os.close(self.program())
        assert self.watch._notifier is not None
        self.watch._notifier.doRead()
        self.assertIsNone(self.watch.checking)

    async def test_clearingLogBounded(self) -> None:
        """A program that leaves the pty exclusive again and again (open, TIOCEXCL, close in a loop): the clearing is logged at most 20 times a minute for that pty, not once a close."""
        self.watch.peer = peer = "pty:/tmp/ttyV-loop"
        logged: list[dict[str, object]] = []
        observeLog(self, lambda e: logged.append(e) if e.get("peer") == peer else None)
        for _ in range(21):
            fd = self.program()
            fcntl.ioctl(fd, termios.TIOCEXCL)
            os.close(fd)
            await self.closes()
            self.assertFalse(isExclusive(self.slave))
        self.assertEqual(len(logged), 20)

    async def test_closedMeanwhileLooksNoMore(self) -> None:
        """A close seen while a look at the holders is under way, then the watch closed (its pty gone): no look at the descriptor number it had, another tty's by then."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        watch = SlaveWatch(reactor, os.ttyname(slave), slave, "pty:/tmp/ttyV2")
        first, second = self.programOn(os.ttyname(slave)), self.programOn(os.ttyname(slave))
        fcntl.ioctl(first, termios.TIOCEXCL)
        for fd in (first, second):
            os.close(fd)
            assert watch._notifier is not None
            watch._notifier.doRead()
        looking = watch.checking
        assert looking is not None and watch._again
        watch.close()
        otherMaster, otherSlave = os.openpty()
        self.addCleanup(os.close, otherMaster)
        fcntl.ioctl(otherSlave, termios.TIOCEXCL)
        os.dup2(otherSlave, slave)
        os.close(otherSlave)
        self.addCleanup(os.close, slave)
        await looking
        self.assertIsNone(watch.checking)

    def programOn(self, name: str) -> int:
        """A program opens the slave C{name}."""
        return os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)

    def test_oneNotifierLetGo(self) -> None:
        """Every watch shares one notifier; once the last watch is closed it is out of the reactor and closed."""
        missing = SlaveWatch(reactor, self.name + "-not-there", self.slave, "x")
        self.assertIsNone(missing._notifier)
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        other = SlaveWatch(reactor, os.ttyname(slave), slave, "y")
        notifier = self.watch._notifier
        self.assertIs(other._notifier, notifier)
        other.close()
        self.assertIn(notifier, reactor.getReaders())  # type: ignore[attr-defined]
        self.watch.close()
        self.assertNotIn(notifier, reactor.getReaders())  # type: ignore[attr-defined]
        self.assertEqual(ptywatch._notifiers, {})


class PtyClientExclusiveTests(TestCase):
    timeout = 30

    async def test_screenLeavesItExclusive(self) -> None:
        """
        pty: listener: a program sets TIOCEXCL and quits (as GNU screen
        does): the next program may open the link again (it got EBUSY unless
        root, until the gateway restarted).
        """
        line = Line("t", RecordingDevice(), clock=Clock())
        link = os.path.abspath(self.mktemp())
        client = PtyClient(line, link, reactor)
        self.addCleanup(client.close)
        self.assertIsNone(await client.whenLinked())  # (its link made by a thread of its own)
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        assert client._watch._notifier is not None
        client._watch._notifier.doRead()
        assert client._watch.checking is not None
        await client._watch.checking
        self.assertFalse(isExclusive(client._slave))


class PtyPortExclusiveTests(TestCase):
    timeout = 30

    async def test_screenAsTheDevice(self) -> None:
        """
        pty: device (twistd serialgw's default): the program playing the
        device sets TIOCEXCL and quits (screen /tmp/serialgw0): cleared, so
        the next one (socat, as README says) may open it.
        """
        link = os.path.abspath(self.mktemp())
        port = PtyPort(link, SerialSettings())
        self.addCleanup(port.close)
        port.startWatching(reactor)
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        watch = port._watch
        assert watch is not None and watch._notifier is not None
        watch._notifier.doRead()
        assert watch.checking is not None
        await watch.checking
        self.assertFalse(isExclusive(port._slaveFd))

    def test_deviceStartsWatching(self) -> None:
        """A device has its port start watching with its reactor when it is made up, and when a reopened port is taken back."""
        clock = Clock()
        first, second = RecordingPort(clock), RecordingPort(clock)
        device = SerialDevice(first, clock)
        self.assertIs(first.watching, clock)
        device.takeBack(second)
        self.assertIs(second.watching, clock)


class PtyClientHangupTests(TestCase):
    timeout = 30

    async def test_loginHangsItUp(self) -> None:
        """
        A getty and login on a pty: listener: login hangs the tty up
        (vhangup), killing the gateway's descriptor and resetting termios
        (EXTPROC off), then closes what it hung up: the gateway opens the
        slave again and sets EXTPROC, so a program's speed reaches the device
        again, and the line's changes reach the pty (they were lost, with a
        warning each).
        """
        TIOCVHANGUP = 0x5437
        device = RecordingDevice(SerialSettings(115200))
        line = Line("t", device, clock=Clock())
        link = os.path.abspath(self.mktemp())
        client = PtyClient(line, link, reactor)
        self.addCleanup(client.close)
        self.assertIsNone(await client.whenLinked())  # (its link made by a thread of its own)
        login = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.ioctl(login, TIOCVHANGUP)
        except PermissionError:
            os.close(login)
            raise SkipTest("hanging a tty up takes CAP_SYS_ADMIN") from None
        os.close(login)
        assert client._watch._notifier is not None
        client._watch._notifier.doRead()
        program = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, program)
        attributes = termios.tcgetattr(program)
        self.assertTrue(attributes[3] & EXTPROC)
        attributes[4] = attributes[5] = termios.B9600
        termios.tcsetattr(program, termios.TCSANOW, attributes)
        client.doRead()
        self.assertEqual([s for what, s in device.events if what == "apply"], [SerialSettings(9600)])
        client.lineSettingsChanged(SerialSettings(57600))
        self.assertEqual(termios.tcgetattr(program)[5], termios.B57600)


class SharedNotifierTests(TestCase):
    timeout = 30

    def test_ownerFailureStaysItsOwn(self) -> None:
        """
        An owner's hung-up callback that raises (the slave cannot be opened
        again) is logged: it does not escape into the reactor, which would
        have disconnected the notifier every pty shares (and closed its
        descriptor twice at the last watch's close).
        """
        TIOCVHANGUP = 0x5437
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        name = os.ttyname(slave)

        def cannot() -> None:
            raise PermissionError(13, "Permission denied", name)

        watch = SlaveWatch(reactor, name, slave, "pty:/tmp/ttyV1", hungUp=cannot)
        self.addCleanup(watch.close)
        failures: list[dict[str, object]] = []
        observeLog(self, lambda e: failures.append(e) if e.get("log_failure") is not None else None)
        login = os.open(name, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.ioctl(login, TIOCVHANGUP)
        except PermissionError:
            os.close(login)
            raise SkipTest("hanging a tty up takes CAP_SYS_ADMIN") from None
        os.close(login)
        notifier = watch._notifier
        assert notifier is not None
        notifier.doRead()
        self.assertEqual([e["peer"] for e in failures], ["pty:/tmp/ttyV1"])
        self.assertIn(notifier, reactor.getReaders())  # type: ignore[attr-defined]
        self.flushLoggedErrors(PermissionError)

    def test_lostNotifierNotClosedTwice(self) -> None:
        """
        A notifier the reactor disconnected (its descriptor closed, as
        after an error reading it) is not closed again when its last watch
        closes: that descriptor's number is another file's by then.  The
        next watch gets a notifier of its own that works.
        """
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        watch = SlaveWatch(reactor, os.ttyname(slave), slave, "x")
        notifier = watch._notifier
        assert notifier is not None
        reactor.removeReader(notifier)  # type: ignore[attr-defined]
        notifier.connectionLost(Failure(ConnectionDone()))
        reused = os.open("/dev/null", os.O_RDONLY)
        self.addCleanup(os.close, reused)
        self.assertEqual(reused, notifier.fileno())
        watch.close()
        os.fstat(reused)
        again = SlaveWatch(reactor, os.ttyname(slave), slave, "y")
        self.addCleanup(again.close)
        self.assertIsNot(again._notifier, notifier)
        self.assertIn(again._notifier, reactor.getReaders())  # type: ignore[attr-defined]

    async def test_lostNotifierLeavesTheNewOneAlone(self) -> None:
        """A watch of a lost notifier that closes once a new notifier has its descriptor number removes nothing there: the new one's watch of another pty goes on."""
        self.assertEqual(ptywatch._notifiers, {})
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        otherMaster, otherSlave = os.openpty()
        self.addCleanup(os.close, otherMaster)
        self.addCleanup(os.close, otherSlave)
        name = os.ttyname(otherSlave)
        old = SlaveWatch(reactor, os.ttyname(slave), slave, "x")
        lost = old._notifier
        assert lost is not None
        reactor.removeReader(lost)  # type: ignore[attr-defined]
        lost.connectionLost(Failure(ConnectionDone()))
        new = SlaveWatch(reactor, name, otherSlave, "y")
        self.addCleanup(new.close)
        assert new._notifier is not None
        self.assertEqual(new._notifier.fileno(), lost.fileno())
        old.close()
        # (What it may have queued: the removal of its watch, which it takes for a close.)
        new._notifier.doRead()
        if new.checking is not None:
            await new.checking
        fd = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        new._notifier.doRead()
        looking = new.checking
        self.assertIsNotNone(looking)
        assert looking is not None
        await looking
        self.assertFalse(isExclusive(otherSlave))

    def test_cannotOpenAgain(self) -> None:
        """A hung-up pty: listener whose slave cannot be opened again: said, and the line's change it was following goes on (nothing raised into the line)."""
        TIOCVHANGUP = 0x5437
        line = Line("t", RecordingDevice(SerialSettings(115200)), clock=Clock())
        client = PtyClient(line, "", reactor)
        self.addCleanup(client.close)
        program = os.open(client.slaveName, os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, program)
        try:
            fcntl.ioctl(program, TIOCVHANGUP)
        except PermissionError:
            raise SkipTest("hanging a tty up takes CAP_SYS_ADMIN") from None
        logged: list[dict[str, Any]] = []
        observeLog(self, lambda e: logged.append(e) if e.get("peer") == client.peer else None)
        client.slaveName = os.path.abspath(self.mktemp())  # as if it could no longer be opened
        client.lineSettingsChanged(SerialSettings(57600))
        self.assertEqual([e["log_level"] for e in logged if "cannot be opened again" in str(e["log_format"])],
                         [LogLevel.warn])
