"""
A local device that cannot be used, tried as an outsider would: a tty
another program holds exclusively (TIOCEXCL), a symlink pointed elsewhere
while it is opened, a pty slave that fails its open (EIO), and a farm of
such lines beside one that works.
"""

from __future__ import annotations

import errno
import fcntl
import grp
import os
import pwd
import socket
import stat
import termios
from typing import Any

from twisted.logger import formatEvent
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.config.specs import SerialSettings
from serialgw.devices import termio, uucplock
from serialgw.devices.errors import DeviceError
from serialgw.devices.ports import TtyPort
from tests.devices.test_uucpstale import holding
from tests.fakes import LogEvents
from tests.realio import PtyPair, closeClients, connect, listenerPort, ptyLine, startedPty, startGateway
from tests.shortpaths import shortDirectory

BUSY = "another program holds it exclusively (TIOCEXCL: Device or resource busy)"


def exclusive(case: Any, pty: PtyPair) -> int:
    """A live process holding the pty's slave in exclusive mode, as gpsd or ModemManager do; its PID."""
    if termio._TIOCGEXCL is None:
        raise SkipTest("TIOCGEXCL is not asked on this machine's architecture")
    return holding(case, pty.slaveName, "import fcntl, termios; fcntl.ioctl(f, termios.TIOCEXCL)")


class OpenFaultTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.pty = PtyPair()
        self.addCleanup(self.pty.close)

    def test_exclusiveRefused(self) -> None:
        """A tty another program holds exclusively (TIOCEXCL) is refused before anything is set, even as root (whom the kernel lets in); its lock is given back; once it lets go, it opens."""
        exclusive(self, self.pty)
        fd = os.open(self.pty.slaveName, os.O_RDWR | os.O_NOCTTY)  # (root: let in)
        self.addCleanup(os.close, fd)
        before = termios.tcgetattr(fd)
        e = self.assertRaises(DeviceError, TtyPort, self.pty.slaveName, SerialSettings(baudrate=1200), self.dir)
        self.assertEqual(str(e), f"cannot open device {self.pty.slaveName!r}: {BUSY}")
        self.assertEqual((termios.tcgetattr(fd), os.listdir(self.dir)), (before, []))
        fcntl.ioctl(fd, termios.TIOCNXCL)
        TtyPort(self.pty.slaveName, SerialSettings(), self.dir).close()

    def test_exclusiveLeftOnPtyCleared(self) -> None:
        """A pty slave's exclusive mode left by a program that has closed it (it outlives it while the master is open: QEMU's pty) holds nothing: cleared, logged, the tty opened; with lock = false it is not looked at."""
        if termio._TIOCGEXCL is None:
            raise SkipTest("TIOCGEXCL is not asked on this machine's architecture")
        events = LogEvents(self)
        fd = os.open(self.pty.slaveName, os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        port = TtyPort(self.pty.slaveName, SerialSettings(), self.dir)
        self.addCleanup(port.close)
        self.assertFalse(termio.exclusivelyHeld(port.fileno()))
        self.assertEqual([formatEvent(e) for e in events.events if "TIOCEXCL" in e.get("log_format", "")],
                         [f"{self.pty.slaveName}: exclusive mode (TIOCEXCL), left by a program that has closed it, cleared"])
        other = PtyPair()
        self.addCleanup(other.close)
        fd = os.open(other.slaveName, os.O_RDWR | os.O_NOCTTY)
        fcntl.ioctl(fd, termios.TIOCEXCL)
        os.close(fd)
        port = TtyPort(other.slaveName, SerialSettings())
        self.addCleanup(port.close)
        self.assertTrue(termio.exclusivelyHeld(port.fileno()))

    def test_busyOpenSaid(self) -> None:
        """An open the kernel refuses with EBUSY (TIOCEXCL, the gateway not root) says what that means, naming the path."""
        real = os.open

        def busy(path: Any, *args: Any, **kwargs: Any) -> int:
            if path == self.pty.slaveName:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            return real(path, *args, **kwargs)

        self.patch(os, "open", busy)
        e = self.assertRaises(DeviceError, TtyPort, self.pty.slaveName, SerialSettings(), self.dir)
        self.assertEqual(str(e), f"cannot open device {self.pty.slaveName!r}: {BUSY}")

    def test_permissionDeniedSaysWhy(self) -> None:
        """An open refused (EACCES) to a process outside the node's group names the node's mode, owner and group; in the group, the plain reason."""
        real = os.open

        def denied(path: Any, *args: Any, **kwargs: Any) -> int:
            if path == self.pty.slaveName:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return real(path, *args, **kwargs)

        self.patch(os, "open", denied)
        st = os.stat(self.pty.slaveName)
        self.patch(os, "geteuid", lambda: st.st_uid + 4242)
        self.patch(os, "getegid", lambda: st.st_gid + 4242)
        self.patch(os, "getgroups", lambda: [])
        e = self.assertRaises(DeviceError, TtyPort, self.pty.slaveName, SerialSettings())
        owner, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
        try:
            me = pwd.getpwuid(st.st_uid + 4242).pw_name
        except KeyError:
            me = str(st.st_uid + 4242)
        self.assertEqual(str(e), f"cannot open device {self.pty.slaveName!r}: Permission denied "
                                 f"({stat.filemode(st.st_mode)} {owner}:{group}; this process, user "
                                 f"{me}, is not in group {group})")
        self.patch(os, "getgroups", lambda: [st.st_gid])
        e = self.assertRaises(DeviceError, TtyPort, self.pty.slaveName, SerialSettings())
        self.assertEqual(str(e), f"cannot open device {self.pty.slaveName!r}: Permission denied")

    def test_eioOnOpen(self) -> None:
        """A tty whose open fails with EIO (a pty slave not unlocked yet) is an error naming it."""
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
        self.addCleanup(os.close, master)
        number = int.from_bytes(fcntl.ioctl(master, 0x80045430, b"\0" * 4), "little")  # TIOCGPTN
        slave = f"/dev/pts/{number}"
        e = self.assertRaises(DeviceError, TtyPort, slave, SerialSettings(), self.dir)
        self.assertEqual((str(e), os.listdir(self.dir)), (f"cannot open device {slave!r}: Input/output error", []))

    def test_symlinkRepointedDuringOpen(self) -> None:
        """A symlink pointed at another tty between the lock and the open: the tty opened is the one locked."""
        other = PtyPair()
        self.addCleanup(other.close)
        link = os.path.join(self.dir, "by-id")
        os.symlink(self.pty.slaveName, link)
        real = uucplock.acquire

        def repointed(device: str, lockDir: str) -> str:
            path = real(device, lockDir)
            os.unlink(link)
            os.symlink(other.slaveName, link)
            return path

        self.patch(uucplock, "acquire", repointed)
        port = TtyPort(link, SerialSettings(), self.dir)
        self.addCleanup(port.close)
        self.assertEqual(port.lock, uucplock.lockPath(self.pty.slaveName, self.dir))
        self.assertEqual(os.fstat(port.fileno()).st_rdev, os.stat(self.pty.slaveName).st_rdev)


class FarmTests(TestCase):
    timeout = 30

    async def test_badDevicesBesideAGoodLine(self) -> None:
        """Lines on a FIFO (no writer: its open must not wait), a file, a directory, a socket, /dev/null, a dangling link and an exclusively held tty start down, each saying why and naming its path; the line beside them carries data."""
        here = startedPty(self)
        held = startedPty(self)
        exclusive(self, held)
        directory = shortDirectory(self)  # short: a unix socket's path is at most 107 bytes
        paths = {name: os.path.join(directory, name) for name in ("fifo", "file", "sock", "dangling")}
        os.mkfifo(paths["fifo"])
        with open(paths["file"], "w") as f:
            f.write("hello")
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(paths["sock"])
        os.symlink("/nowhere", paths["dangling"])
        bad = {"fifo": (paths["fifo"], "it is a FIFO, not a serial device"),
               "file": (paths["file"], "it is a regular file, not a serial device"),
               "dir": (directory, "it is a directory, not a serial device"),
               "sock": (paths["sock"], "it is a unix socket, not a serial device"),
               "null": ("/dev/null", "it is not a tty (Inappropriate ioctl for device)"),
               "dangling": (paths["dangling"], "No such file or directory"),
               "held": (held.slaveName, BUSY)}
        lines = [ptyLine(path, "raw+tcp:0:interface=127.0.0.1", name=name, lockDir=directory)
                 for name, (path, _) in bad.items()]
        service = startGateway(self, ptyLine(here, "raw+tcp:0:interface=127.0.0.1", name="here", lockDir=directory),
                               *lines, waitForDevices=True, reopenPolicy=lambda attempt: 3600)
        self.assertEqual({name: service.lines[name].device.downReason for name in bad},
                         {name: f"cannot open device {path!r}: {why}" for name, (path, why) in bad.items()})
        self.assertTrue(service.lines["here"].up)
        client = await connect(listenerPort(service, 0))
        client.transport.write(b"typed")  # type: ignore[union-attr]
        self.assertEqual(await here.received.length(5), b"typed")
        here.write(b"said")
        await client.received.contains(b"said")
        await closeClients(client)
        self.assertEqual(sorted(os.listdir(directory)), ["LCK.." + os.path.basename(here.slaveName),
                                                         "dangling", "fifo", "file", "sock"])
