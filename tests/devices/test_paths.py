"""
Paths the gateway did not make: a pty link is taken over only when stale,
a link or a unix socket is removed at stop only while it is still ours,
console logs do not follow symlinks.  Real ptys, files and sockets under
the test's temporary directory.
"""

from __future__ import annotations

import os
import socket
import stat

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.binding import StartupError
from serialgw.app.service import GatewayService
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.ptylink import PtyClient
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from serialgw.devices.errors import DeviceError
from serialgw.devices.links import replaceSymlink
from serialgw.devices.ports import PtyPort
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice
from tests.realio import socketPath, startedPty, testLockDir


class PtyLinkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.link = os.path.join(self.directory, "ttyGW")

    def livePty(self) -> str:
        """A pty whose slave this process holds open, as another gateway would."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        return os.ttyname(slave)

    def test_liveLinkRefused(self) -> None:
        """The live link of another gateway (its pty's slave held open) is not replaced; the error names the holder."""
        other = self.livePty()
        os.symlink(other, self.link)
        error = self.assertRaises(FileExistsError, replaceSymlink, "/dev/pts/999", self.link)
        self.assertIn(f"held open by pid {os.getpid()}", error.strerror)
        self.assertEqual(os.readlink(self.link), other)

    def test_ptyPortAndClientRefuseLiveLink(self) -> None:
        """pty:LINK as the device and as a client both refuse another gateway's live link, and leave it."""
        other = self.livePty()
        os.symlink(other, self.link)
        error = self.assertRaises(DeviceError, PtyPort, self.link, SerialSettings())
        self.assertIn("(another gateway?)", str(error))
        line = Line("t", RecordingDevice(), clock=Clock())
        self.assertRaises(FileExistsError, PtyClient, line, self.link, Clock())
        self.assertEqual((os.readlink(self.link), line.clients), (other, []))

    def test_staleLinksTakenOver(self) -> None:
        """A dangling link, and one to a pty whose slave nobody holds, are taken over."""
        os.symlink(os.path.join(self.directory, "gone"), self.link)
        port = PtyPort(self.link, SerialSettings())
        self.assertEqual(os.readlink(self.link), port.slaveName)
        port.close()
        self.assertFalse(os.path.lexists(self.link))
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        unheld = os.ttyname(slave)
        os.close(slave)
        os.symlink(unheld, self.link)
        port = PtyPort(self.link, SerialSettings())
        self.addCleanup(port.close)
        self.assertEqual(os.readlink(self.link), port.slaveName)

    def test_reusedNumberTakenOver(self) -> None:
        """
        A gateway killed -9 left its link; its pty's number went to another
        program's pty since (an ssh session's: the slave held, the master in
        another process): the link is stale and taken over; the start was
        refused ('is the live link to /dev/pts/N ... (another gateway?)').
        """
        import subprocess

        master, slave = os.openpty()
        self.addCleanup(os.close, slave)
        # The master in a process of its own, as sshd or tmux has it.
        holder = subprocess.Popen(["sleep", "60"], pass_fds=(master,))
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        os.close(master)
        os.symlink(os.ttyname(slave), self.link)
        port = PtyPort(self.link, SerialSettings())
        self.addCleanup(port.close)
        self.assertEqual(os.readlink(self.link), port.slaveName)

    def test_longestNameMade(self) -> None:
        """A link whose name has the 255 bytes a file name may have is made (LINK.PID.tmp, made first, was too long), and nothing else is left beside it."""
        link = os.path.join(self.directory, "x" * 255)
        port = PtyPort(link, SerialSettings())
        self.addCleanup(port.close)
        self.assertEqual((os.readlink(link), os.listdir(self.directory)), (port.slaveName, ["x" * 255]))

    def test_linkToSomethingElseRefused(self) -> None:
        """A link to a file (not a pty) and a regular file are never replaced."""
        target = os.path.join(self.directory, "precious")
        with open(target, "wb") as f:
            f.write(b"keep")
        os.symlink(target, self.link)
        error = self.assertRaises(FileExistsError, replaceSymlink, "/dev/pts/999", self.link)
        self.assertIn("not a pty", error.strerror)
        os.unlink(self.link)
        os.rename(target, self.link)
        self.assertRaises(FileExistsError, replaceSymlink, "/dev/pts/999", self.link)
        with open(self.link, "rb") as f:
            self.assertEqual(f.read(), b"keep")

    def test_closedDuringRestoreLeavesNoLink(self) -> None:
        """A pty (device or client) closed on the reactor's thread while a reload's look, on its own, makes its removed link again: the link made is taken back, nothing said; closed before, nothing is made."""
        from twisted.internet.testing import MemoryReactorClock

        from serialgw.devices import links

        line = Line("t", RecordingDevice(), clock=Clock())
        reactor = MemoryReactorClock()
        realReplace = links.replaceSymlink
        for make in (lambda: PtyPort(self.link, SerialSettings()), lambda: PtyClient(line, self.link, reactor)):
            pty = make()
            os.unlink(self.link)

            def replaceThenClosed(target: str, link: str, pty: object = pty) -> None:
                realReplace(target, link)
                pty.close()  # type: ignore[attr-defined]

            self.patch(links, "replaceSymlink", replaceThenClosed)
            self.assertIsNone(pty.restoreLink())
            self.assertFalse(os.path.lexists(self.link))
            self.patch(links, "replaceSymlink", realReplace)
            self.assertIsNone(pty.restoreLink())
            self.assertFalse(os.path.lexists(self.link))

    def test_replacedLinkLeftAtStop(self) -> None:
        """At stop a link is removed only if it still points at our pty: one replaced since is left."""
        port = PtyPort(self.link, SerialSettings())
        os.unlink(self.link)
        os.symlink("/dev/pts/elsewhere", self.link)
        port.close()
        self.assertEqual(os.readlink(self.link), "/dev/pts/elsewhere")


class ConsoleLogPathTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "console.log")
        self.target = os.path.join(self.directory, "precious")
        with open(self.target, "wb") as f:
            f.write(b"keep")
        self.clock = Clock()
        self.line = Line("t", RecordingDevice(), clock=self.clock)

    def test_symlinkNotFollowed(self) -> None:
        """A symlink at the log path is not followed: an error saying so; its target is untouched."""
        os.symlink(self.target, self.path)
        error = self.assertRaises(OSError, ConsoleLog, self.line, LogSpec(self.path, format=""), self.clock)
        self.assertEqual(error.strerror, "it is a symbolic link, not followed")
        with open(self.target, "rb") as f:
            self.assertEqual(f.read(), b"keep")

    def test_newLogIs0640(self) -> None:
        """A new console log is created mode 0640 (under umask 027 too)."""
        old = os.umask(0o027)
        self.addCleanup(os.umask, old)
        log = ConsoleLog(self.line, LogSpec(self.path, format=""), self.clock)
        self.addCleanup(log.close)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)

    def test_symlinkAtRotationNotFollowed(self) -> None:
        """A symlink put at the path is neither renamed by a rotation nor written through: output goes on to the file in hand."""
        log = ConsoleLog(self.line, LogSpec(self.path, format="", maxSize=10, daily=False), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"0123456789")
        os.rename(self.path, self.path + ".orig")
        os.symlink(self.target, self.path)
        self.line.deviceDataReceived(b"more\n")
        self.assertEqual((os.readlink(self.path), os.path.lexists(self.path + ".1")), (self.target, False))
        with open(self.path + ".orig", "rb") as f:
            self.assertEqual(f.read(), b"0123456789more\n")
        with open(self.target, "rb") as f:
            self.assertEqual(f.read(), b"keep")

    def test_newFileUnopenableAtRotation(self) -> None:
        """When the new file cannot be opened at a rotation, output goes on to the file in hand (never a closed descriptor)."""

        class Failing(ConsoleLog):
            fail = False

            def _open(self) -> None:
                if self.fail:
                    raise OSError(40, "it is a symbolic link, not followed")
                ConsoleLog._open(self)

        log = Failing(self.line, LogSpec(self.path, format="", maxSize=10, daily=False, keep=1), self.clock)
        self.addCleanup(log.close)
        self.line.deviceDataReceived(b"0123456789")
        log.fail = True
        self.line.deviceDataReceived(b"more\n")
        with open(self.path + ".1", "rb") as f:
            self.assertEqual(f.read(), b"0123456789more\n")
        self.assertEqual(len(self.flushLoggedErrors()), 0)


class UnixSocketAtStopTests(TestCase):
    timeout = 30

    def shortPath(self) -> str:
        """A socket path short enough for AF_UNIX (108 bytes)."""
        return socketPath(self)

    async def test_replacedSocketLeftAtStop(self) -> None:
        """At stop a unix listener removes its socket file only if the file there is still the one it made."""
        pty = startedPty(self)
        path = self.shortPath()
        config = LineConfig("t", DeviceSpec("tty", pty.slaveName), listeners=(parseListener(f"raw+unix:{path}"),),
                            lockDir=testLockDir())
        service = GatewayService([config])
        service.startService()
        os.unlink(path)
        stranger = socket.socket(socket.AF_UNIX)
        self.addCleanup(stranger.close)
        stranger.bind(path)
        identity = os.lstat(path).st_ino
        await service.stopService()
        self.assertEqual(os.lstat(path).st_ino, identity)

    async def test_ownSocketRemovedAtStop(self) -> None:
        """A socket still ours is removed at stop."""
        pty = startedPty(self)
        path = self.shortPath()
        config = LineConfig("t", DeviceSpec("tty", pty.slaveName), listeners=(parseListener(f"raw+unix:{path}"),),
                            lockDir=testLockDir())
        service = GatewayService([config])
        service.startService()
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
        await service.stopService()
        self.assertFalse(os.path.lexists(path))


class ConsoleLogStartTests(SynchronousTestCase):
    def test_startupErrorNamesSymlink(self) -> None:
        """A console log path that is a symlink stops the start with one error naming the path."""
        from tests.realio import PtyPair

        pty = PtyPair()
        self.addCleanup(pty.close)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "console.log")
        target = os.path.join(directory, "precious")
        with open(target, "wb") as f:
            f.write(b"keep")
        os.symlink(target, path)
        config = LineConfig("t", DeviceSpec("tty", pty.slaveName), log=LogSpec(path), lockDir=testLockDir())
        service = GatewayService([config])
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertIn(f"cannot open log {path!r}: it is a symbolic link, not followed", str(error))
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"keep")
