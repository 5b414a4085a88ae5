"""
UUCP lock files for local ttys: the lock module, the port that takes one,
the gateway that waits for a live holder and takes over a stale lock, and
Debian's cu on the other side.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.app.service import GatewayService
from serialgw.app.status import lineStatus
from serialgw.config.file import loadConfig
from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.config.specs import ConfigError, DeviceSpec, SerialSettings
from serialgw.devices import uucplock
from serialgw.devices.errors import DeviceError, DeviceLocked
from serialgw.devices.ports import TtyPort, openPort
from tests.fakes import LogEvents
from tests.realio import (
    Collector,
    PtyPair,
    closeClients,
    connect,
    listenerPort,
    ptyLine,
    spawn,
    startedPty,
    startGateway,
    startProcess,
)
from tests.shortpaths import shortTemp


def deadPid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def commOf(pid: int) -> str:
    """What /proc says process C{pid} runs (python3.11, cu)."""
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def liveHolder(case: Any) -> int:
    """A live process that is not this one, ended when the test ends."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)

    def end() -> None:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()

    case.addCleanup(end)
    return child.pid


def writeLock(path: str, pid: int) -> None:
    with open(path, "w") as f:
        f.write(f"{pid:10d}\n")


class LockFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.device = "/dev/ttyS9"
        self.lock = os.path.join(self.dir, "LCK..ttyS9")

    def test_takenAndReleased(self) -> None:
        """The lock holds our PID as ten ASCII digits and a newline, mode 0644; release removes it and nothing else is left."""
        path = uucplock.acquire(self.device, self.dir)
        self.assertEqual(path, self.lock)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"%10d\n" % os.getpid())
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
        self.assertEqual(os.listdir(self.dir), ["LCK..ttyS9"])
        uucplock.release(path)
        self.assertEqual(os.listdir(self.dir), [])

    def test_names(self) -> None:
        """The name is the device node's, symlinks resolved; /dev/pts/3 is LCK..3 as cu names it."""
        link = os.path.join(self.dir, "by-id-usb-FTDI")
        os.symlink("/dev/ttyUSB7", link)
        self.assertEqual(uucplock.lockPath(link, "/var/lock"), "/var/lock/LCK..ttyUSB7")
        self.assertEqual(uucplock.lockPath("/dev/pts/3", "/run/lock"), "/run/lock/LCK..3")

    def test_heldByThisGateway(self) -> None:
        """A lock this process holds (another of its lines has the device, reached by another path) says so, not only a PID."""
        path = uucplock.acquire(self.device, self.dir)
        self.addCleanup(uucplock.release, path)
        e = self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)
        self.assertEqual(str(e), f"/dev/ttyS9 is open on another line of this gateway (pid {os.getpid()}, {self.lock})")

    def test_liveHolder(self) -> None:
        """A lock naming a live process is not taken: LockHeld names the PID and what it runs (whom to ask); the file is untouched."""
        holder = liveHolder(self)
        writeLock(self.lock, holder)
        e = self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)
        self.assertEqual((e.pid, e.path), (holder, self.lock))
        self.assertEqual(str(e), f"/dev/ttyS9 is locked by process {holder} ({commOf(holder)}) ({self.lock})")
        self.assertEqual(uucplock.readPid(self.lock), holder)
        self.assertEqual(os.listdir(self.dir), ["LCK..ttyS9"])

    def test_binaryPid(self) -> None:
        """The old 4-byte binary form is read too."""
        holder = liveHolder(self)
        with open(self.lock, "wb") as f:
            f.write(struct.pack("=i", holder))
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir).pid, holder)

    def test_staleTakenOver(self) -> None:
        """A lock naming a dead process, or nothing readable (empty for a minute), is taken over."""
        for content in (b"%10d\n" % deadPid(), b"garbage\n", b""):
            with open(self.lock, "wb") as f:
                f.write(content)
            os.utime(self.lock, (time.time() - 60, time.time() - 60))
            path = uucplock.acquire(self.device, self.dir)
            self.assertEqual(uucplock.readPid(path), os.getpid())
            uucplock.release(path)

    def test_staleRaceOneWinner(self) -> None:
        """Two takers find the same stale lock: the one who replaced it first keeps it; the other never removes its fresh lock."""
        dead, holder = deadPid(), liveHolder(self)
        writeLock(self.lock, dead)
        real = uucplock.alive

        def otherTakerFirst(pid: int) -> bool:
            # Between our reading the stale lock and removing it, another
            # taker removes it and links its own (what cu does).
            if pid == dead:
                os.unlink(self.lock)
                writeLock(self.lock, holder)
                return False
            return real(pid)

        self.patch(uucplock, "alive", otherTakerFirst)
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir).pid, holder)
        self.assertEqual(uucplock.readPid(self.lock), holder)
        self.assertEqual(os.listdir(self.dir), ["LCK..ttyS9"])

    def test_hostileLockFiles(self) -> None:
        """A FIFO, a symlink (to a file or to nothing) or an absurd PID at the lock's name is stale: removed, never read through nor waited on; the target is untouched."""
        target = os.path.join(self.dir, "target")
        with open(target, "w") as f:
            f.write(f"{os.getppid():10d}\n")
        for make in (lambda: os.mkfifo(self.lock), lambda: os.symlink(target, self.lock),
                     lambda: os.symlink("/nowhere", self.lock), lambda: writeLock(self.lock, 10**30)):
            make()
            path = uucplock.acquire(self.device, self.dir)
            self.assertFalse(os.path.islink(path))
            self.assertEqual(uucplock.readPid(path), os.getpid())
            uucplock.release(path)
        with open(target) as f:
            self.assertEqual(f.read(), f"{os.getppid():10d}\n")

    def test_plantedTemporaryFile(self) -> None:
        """A file or symlink planted at the temporary file's name is replaced, never written through."""
        target = os.path.join(self.dir, "target")
        with open(target, "w") as f:
            f.write("keep")
        os.symlink(target, os.path.join(self.dir, f"LTMP.{os.getpid()}.LCK..ttyS9"))
        path = uucplock.acquire(self.device, self.dir)
        self.assertEqual(uucplock.readPid(path), os.getpid())
        uucplock.release(path)
        with open(target) as f:
            self.assertEqual(f.read(), "keep")
        self.assertEqual(os.listdir(self.dir), ["target"])

    def test_ownPid(self) -> None:
        """A lock with our PID that we do not hold (an earlier run as PID 1) is taken; one we hold is held."""
        writeLock(self.lock, os.getpid())
        path = uucplock.acquire(self.device, self.dir)
        e = self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)
        self.assertEqual(e.pid, os.getpid())
        uucplock.release(path)
        self.assertFalse(os.path.exists(path))

    def test_ownLockLeftBehind(self) -> None:
        """A lock of ours that could not be removed at close (made as root before twistd's -u, in a sticky /run/lock) is taken again when the device is reopened: the line does not lock itself out."""
        path = uucplock.acquire(self.device, self.dir)
        realUnlink, realRename = os.unlink, os.rename

        def unlink(name: Any, *args: Any, **kwargs: Any) -> None:
            if name == self.lock:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            realUnlink(name, *args, **kwargs)

        def rename(source: Any, *args: Any, **kwargs: Any) -> None:
            if source == self.lock:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            realRename(source, *args, **kwargs)

        self.patch(os, "unlink", unlink)
        self.patch(os, "rename", rename)
        self.assertRaises(PermissionError, uucplock.release, path)
        self.assertEqual(uucplock.acquire(self.device, self.dir), path)
        self.assertEqual((uucplock.readPid(path), os.listdir(self.dir)), (os.getpid(), ["LCK..ttyS9"]))

    def test_releaseLeavesOthers(self) -> None:
        """Release does not remove a lock that now names another process."""
        path = uucplock.acquire(self.device, self.dir)
        holder = liveHolder(self)
        writeLock(path, holder)
        uucplock.release(path)
        self.assertEqual(uucplock.readPid(path), holder)

    def test_noLockDirectory(self) -> None:
        """A lock directory that does not exist is an error naming it and the ways out."""
        missing = os.path.join(self.dir, "none")
        e = self.assertRaises(uucplock.LockError, uucplock.acquire, self.device, missing)
        self.assertEqual(str(e), f"cannot lock /dev/ttyS9: {missing}/LTMP.{os.getpid()}.LCK..ttyS9: "
                                 "No such file or directory (set lock-dir, or lock = false)")


class PortLockTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.pty = PtyPair()
        self.addCleanup(self.pty.close)
        self.lock = os.path.join(self.dir, "LCK.." + os.path.basename(self.pty.slaveName))

    def test_ttyLockedWhileOpen(self) -> None:
        """A tty (a /dev/pts/N too) holds its lock from open to close."""
        port = openPort(DeviceSpec("tty", self.pty.slaveName), SerialSettings(), self.dir)
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        port.close()
        self.assertEqual(os.listdir(self.dir), [])

    def test_lockedPortNotOpened(self) -> None:
        """A live holder's lock: DeviceLocked with its PID, the device left alone."""
        holder = liveHolder(self)
        writeLock(self.lock, holder)
        e = self.assertRaises(DeviceLocked, TtyPort, self.pty.slaveName, SerialSettings(), self.dir)
        self.assertEqual(e.pid, holder)
        self.assertEqual(uucplock.readPid(self.lock), holder)

    def test_failedOpenUnlocks(self) -> None:
        """A device that cannot be opened leaves no lock behind."""
        self.assertRaises(DeviceError, TtyPort, os.path.join(self.dir, "ttyGone"), SerialSettings(), self.dir)
        self.assertEqual(os.listdir(self.dir), [])

    def test_ptyTakesNone(self) -> None:
        """A pty the gateway makes (pty:LINK) takes no lock."""
        port = openPort(DeviceSpec("pty", ""), SerialSettings(), self.dir)
        port.close()
        self.assertEqual(os.listdir(self.dir), [])


class ConfigTests(SynchronousTestCase):
    def test_fileAndOptions(self) -> None:
        """lock and lock-dir in the file, --no-lock and --lock-dir on the command line; on in /var/lock by default."""
        from serialgw.app import tap
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                    '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nlock = false\nlock-dir = "/run/x"\n')
        a, b = loadConfig(path)
        self.assertEqual([(a.lock, a.lockDir), (b.lock, b.lockDir)], [(True, "/var/lock"), (False, "/run/x")])
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlock = "no"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] lock: expected true or false, not 'no'")
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(["--device", "/dev/ttyS0", "--no-lock", "--lock-dir", "/tmp/locks"])
        self.assertEqual((options["line"].lock, options["line"].lockDir), (False, "/tmp/locks"))


class GatewayLockTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.pty = startedPty(self)
        self.lock = os.path.join(self.dir, "LCK.." + os.path.basename(self.pty.slaveName))

    def gateway(self, lockDir: str, **kw: Any) -> GatewayService:
        return startGateway(self, ptyLine(self.pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                          lockDir=lockDir, **kw), reopenPolicy=lambda attempt: 0.05)

    async def test_liveHolderKeepsLineDown(self) -> None:
        """A live holder: the line starts down, its PID in the log and on the status page; when it lets go the gateway takes the lock and the line comes up."""
        holder = liveHolder(self)
        writeLock(self.lock, holder)
        events = LogEvents(self)
        service = self.gateway(self.dir)
        line = service.lines["t"]
        self.assertFalse(line.device.up)
        status = json.loads(json.dumps(lineStatus(line)))
        self.assertEqual((status["up"], status["locked_by"]), (False, holder))
        warned = [e for e in events.events if e.get("holder") == holder]
        self.assertEqual(len(warned), 1)
        self.assertEqual(warned[0]["reason"],
                         f"{self.pty.slaveName} is locked by process {holder} ({commOf(holder)}) ({self.lock})")
        client: Collector = await connect(listenerPort(service))
        await client.received.contains(b"\xff\xfd\x2c")
        os.unlink(self.lock)
        await client.received.contains(b"[serialgw: t is back]")
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        self.assertEqual(lineStatus(line)["locked_by"], None)
        self.pty.write(b"hello")
        await client.received.contains(b"hello")
        await closeClients(client)
        await service.stopService()
        self.assertFalse(os.path.exists(self.lock))

    async def test_staleLockTakenOver(self) -> None:
        """A stale lock (a dead PID) is taken over at start: the line is up; the lock goes at stop."""
        writeLock(self.lock, deadPid())
        service = self.gateway(self.dir)
        self.assertTrue(service.lines["t"].device.up)
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        await service.stopService()
        self.assertEqual(os.listdir(self.dir), [])

    async def test_lockOff(self) -> None:
        """lock = false: no lock file, and a lock in place does not matter."""
        writeLock(self.lock, liveHolder(self))
        service = self.gateway(self.dir, lock=False)
        self.assertTrue(service.lines["t"].device.up)
        await service.stopService()
        self.assertEqual(os.listdir(self.dir), ["LCK.." + os.path.basename(self.pty.slaveName)])


class CuTests(TestCase):
    """Debian's cu (Taylor UUCP) on the same pty, with the lock in /var/lock, both ways."""

    timeout = 30

    def setUp(self) -> None:
        self.cu = shutil.which("cu")
        if self.cu is None:
            raise SkipTest("cu is not installed (Debian package cu)")
        if not os.access(uucplock.DEFAULT_LOCK_DIR, os.W_OK):
            raise SkipTest(f"{uucplock.DEFAULT_LOCK_DIR} is not writable here")
        self.pty = startedPty(self)
        # cu runs as user uucp: it must be able to open the slave.
        os.chmod(self.pty.slaveName, 0o666)
        self.lock = uucplock.lockPath(self.pty.slaveName, uucplock.DEFAULT_LOCK_DIR)
        # A lock for this new pty's name whose process is gone is stale
        # (killed while it had an earlier pty of that number), and so is
        # one of this process's own (an earlier test's gateway): cu, as
        # user uucp, cannot remove root's file from the sticky lock
        # directory.  Another live process's is its own: left to it (the
        # test then fails, naming it).
        holder = uucplock.readPid(self.lock) if os.path.exists(self.lock) else None
        if os.path.exists(self.lock) and (holder in (None, os.getpid()) or not uucplock.alive(holder)):
            os.unlink(self.lock)

    def gateway(self) -> GatewayService:
        return startGateway(self, ptyLine(self.pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                          lockDir=uucplock.DEFAULT_LOCK_DIR), reopenPolicy=lambda attempt: 0.05,
                            sharedLocks=True)

    async def test_cuRefusedWhileGatewayHasLine(self) -> None:
        """The gateway holds the lock: cu -l on the same pty says the line is in use and exits 1."""
        service = self.gateway()
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        assert self.cu is not None
        cu = spawn([self.cu, "-l", self.pty.slaveName, "-s", "9600"])
        self.assertEqual(await cu.ended, 1)
        self.assertEqual(cu.output.data, f"{self.cu}: {self.pty.slaveName}: Line in use\n".encode())
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        await service.stopService()
        self.assertFalse(os.path.exists(self.lock))

    async def test_gatewayWaitsForCu(self) -> None:
        """cu has the line: the gateway's line is down with cu's PID; when cu hangs up (~.) the gateway takes the line."""
        assert self.cu is not None
        # On a terminal, so its "Connected." is not held in a pipe's buffer.
        cu = startProcess(self, [self.cu, "-l", self.pty.slaveName, "-s", "9600"], usePTY=True)
        await cu.output.contains(b"Connected.")
        cuPid = cu.transport.pid  # type: ignore[union-attr]
        self.assertEqual(uucplock.readPid(self.lock), cuPid)
        service = self.gateway()
        line = service.lines["t"]
        self.assertEqual((line.device.up, lineStatus(line)["locked_by"]), (False, cuPid))
        client: Collector = await connect(listenerPort(service))
        await client.received.contains(b"\xff\xfd\x2c")
        # cu says "Connected." before it makes its terminal raw, and forks
        # its reader of the line only after: "~." typed in between, under
        # load, reached it with the "\r" turned into "\n" (ICRNL), which
        # does not start a line for cu, so it went down the line as data and
        # cu never hung up. Bytes from the line on cu's terminal: it is raw.
        self.pty.write(b"cu has the line")
        await cu.output.contains(b"cu has the line")
        cu.write(b"\r~.\r")
        self.assertEqual(await cu.ended, 0)
        await client.received.contains(b"[serialgw: t is back]")
        self.assertEqual(uucplock.readPid(self.lock), os.getpid())
        self.pty.write(b"mine now")
        await client.received.contains(b"mine now")
        self.assertNotIn(b"cu has the line", client.received.data)
        await closeClients(client)
        await service.stopService()
        self.assertFalse(os.path.exists(self.lock))



class CheckTests(SynchronousTestCase):
    def test_lockDirMissing(self) -> None:
        """--check: a tty line whose lock directory is not there is an error; with lock = false, or a pty, it is not."""
        from serialgw.app.check import checkLines

        missing = os.path.join(shortTemp(self), "locks")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f'[defaults]\nlock-dir = "{missing}"\n'
                    '[lines.a]\ndevice = "/dev/null"\nlisten = "4001"\n'
                    '[lines.b]\ndevice = "/dev/zero"\nlisten = "4002"\nlock = false\n'
                    '[lines.c]\ndevice = "pty:"\nlisten = "4003"\n')
        self.assertEqual(checkLines(loadConfig(path)), ([
            f"line 'a': lock-dir {missing!r} is not a directory: the UUCP lock for '/dev/null' cannot be made "
            "(set lock-dir, or lock = false)"], []))
