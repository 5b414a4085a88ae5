"""
When a UUCP lock is stale: its PID reused by a process that started after
the lock was written, a zombie, an empty file still being written, and
things at the lock's name that are no lock; each taken over with a log line
naming the file, or refused naming it; a live holder's lock never taken.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.config.listenerspecs import ListenerSpec, Protocol
from serialgw.devices import uucplock
from tests.devices.test_uucplock import commOf, deadPid, liveHolder, writeLock
from tests.fakes import LogEvents
from tests.realio import PtyPair, ptyLine, startedPty, startGateway, until


def setBack(path: str, seconds: float) -> None:
    """The lock at C{path} as if written C{seconds} ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def everyonesDir() -> str:
    """
    A new directory in one every user may reach: the temporary directory if
    it is one, else /tmp (TMPDIR may be a user's own, 0700: pam_tmpdir's
    /tmp/user/0, a runner's), else /var/tmp.
    """
    def reachable(path: str) -> bool:
        path = os.path.realpath(path)
        while True:
            if not os.stat(path).st_mode & 0o001:
                return False
            if path == "/":
                return True
            path = os.path.dirname(path)

    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if os.path.isdir(base) and reachable(base):
            return tempfile.mkdtemp(dir=base)
    raise AssertionError("no temporary directory every user may reach (TMPDIR, /tmp, /var/tmp)")


def taken(events: LogEvents) -> list[str]:
    """The log's 'stale lock taken over' lines, as written."""
    return [formatEvent(e) for e in events.events if "taken over" in e.get("log_format", "")]


# A process with the device open whose first thread exits (SYS_exit: that thread
# only) while another goes on: it says so once /proc shows the first a zombie.
LEADER_GONE = """import ctypes, os, sys, threading
f = open(sys.argv[1], "rb", 0)
def rest():
    while open("/proc/self/stat", "rb").read().rsplit(b")", 1)[1].split()[0] != b"Z":
        os.sched_yield()
    print(1, flush=True)
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=rest).start()
ctypes.CDLL(None).syscall({"x86_64": 60, "aarch64": 93, "riscv64": 93}[os.uname().machine], 0)
"""


def leaderGone(case: Any, device: str) -> int:
    """A live process (not this one) with C{device} open, whose first thread has exited; ended when the test ends."""
    child = subprocess.Popen([sys.executable, "-c", LEADER_GONE, device], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def end() -> None:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
        child.wait()

    case.addCleanup(end)
    assert child.stdout is not None
    child.stdout.readline()  # its first thread is a zombie now
    return child.pid


def holding(case: Any, device: str, then: str = "pass") -> int:
    """A live process (not this one) with C{device} open as C{f} (and C{then} run), ended when the test ends."""
    code = f"import sys; f = open(sys.argv[1], 'rb', 0); {then}; print(1, flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code, device], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def end() -> None:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
        child.wait()

    case.addCleanup(end)
    assert child.stdout is not None
    child.stdout.readline()  # it has the device open now
    return child.pid


class StaleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.mkdir(self.dir)
        self.device = "/dev/ttyS9"
        self.lock = os.path.join(self.dir, "LCK..ttyS9")
        self.events = LogEvents(self)

    def takeOver(self) -> str:
        """acquire() takes the lock; the one line it logs about it."""
        path = uucplock.acquire(self.device, self.dir)
        self.assertEqual((path, uucplock.readPid(path)), (self.lock, os.getpid()))
        uucplock.release(path)
        said = taken(self.events)
        self.assertEqual(len(said), 1, said)
        del self.events.events[:]
        return said[0]

    def test_reusedPid(self) -> None:
        """A lock naming a live process that started after the lock was written (its PID reused since), without the device open, is stale: taken over, the log naming the file, the process and why."""
        stranger = liveHolder(self)
        writeLock(self.lock, stranger)
        setBack(self.lock, 3600)
        said = self.takeOver()
        self.assertRegex(said, "^" + re.escape(f"/dev/ttyS9: stale lock {self.lock} taken over: process {stranger} "
                                               f"({commOf(stranger)}) started ") + r"\d+" + re.escape(
            " s after the lock was written and has not /dev/ttyS9 open: not its maker (its PID was reused)") + "$")
        self.assertAlmostEqual(int(said.split(" started ")[1].split()[0]), 3600, delta=30)

    def test_olderThanLockKept(self) -> None:
        """A live process that started before its lock was written (the maker, as far as can be told) keeps it, whether it has the device open or not."""
        holder = liveHolder(self)
        writeLock(self.lock, holder)
        setBack(self.lock, -1)  # written after it started, as every maker's lock is
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir).pid, holder)
        self.assertEqual((uucplock.readPid(self.lock), taken(self.events)), (holder, []))

    def test_youngerWithDeviceOpenKept(self) -> None:
        """A process younger than the lock that has the device open (the clock set forward while it held it) keeps the lock."""
        pty = PtyPair()
        self.addCleanup(pty.close)
        lock = os.path.join(self.dir, "LCK.." + os.path.basename(pty.slaveName))
        holder = holding(self, pty.slaveName)
        writeLock(lock, holder)
        setBack(lock, 3600)
        self.assertEqual(uucplock.hasOpen(holder, pty.slaveName), True)
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, pty.slaveName, self.dir).pid, holder)
        self.assertEqual(uucplock.readPid(lock), holder)

    def test_unseenDescriptorsKept(self) -> None:
        """Descriptors we may not see (another user's process, we not root): a live holder keeps its lock however much younger than it it looks (a clock set forward while it held it), the refusal saying why and how to clear it."""
        holder = liveHolder(self)
        self.patch(uucplock, "hasOpen", lambda pid, device: None)
        writeLock(self.lock, holder)
        setBack(self.lock, 3600)
        error = self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)
        self.assertEqual(error.pid, holder)
        self.assertRegex(str(error), "^" + re.escape(
            f"/dev/ttyS9 is locked by process {holder} ({commOf(holder)}) ({self.lock}), which is alive; it started ")
            + r"\d+" + re.escape(
            " s after the lock was written (its PID reused since, or the clock set forward while it held the lock), "
            f"but its open files could not be checked (/proc/{holder}/fd: another user's process, this gateway not "
            f"root), so the lock is kept; if process {holder} does not use /dev/ttyS9, remove {self.lock}") + "$")
        self.assertEqual((uucplock.readPid(self.lock), taken(self.events)), (holder, []))
        writeLock(self.lock, holder)  # written now: its maker, as far as can be told
        self.assertEqual(str(self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)),
                         f"/dev/ttyS9 is locked by process {holder} ({commOf(holder)}) ({self.lock})")

    def test_clockJumpNotRootKept(self) -> None:
        """Really not root: a gateway running as nobody, a root process holding the pty and its lock written an hour before (by the clock as set now): the lock is kept, the pty not taken."""
        pty = PtyPair()
        self.addCleanup(pty.close)
        # (A directory nobody may reach and write: the test's own are root's, 0700 above.)
        self.dir = everyonesDir()
        self.addCleanup(shutil.rmtree, self.dir)
        os.chmod(self.dir, 0o1777)
        lock = os.path.join(self.dir, "LCK.." + os.path.basename(pty.slaveName))
        holder = holding(self, pty.slaveName)
        writeLock(lock, holder)
        os.chown(lock, 65534, 65534)  # (removable by nobody in the sticky directory: only the rule keeps it)
        setBack(lock, 3600)
        self.assertTrue(uucplock.hasOpen(holder, pty.slaveName))
        code = ("import os, sys\nfrom serialgw.devices import uucplock\nos.setgid(65534)\nos.setuid(65534)\n"
                "print(uucplock.hasOpen(int(sys.argv[3]), sys.argv[1]))\n"
                "try:\n    uucplock.acquire(sys.argv[1], sys.argv[2])\nexcept uucplock.LockHeld as e:\n"
                "    print(e.pid)\nelse:\n    print('taken')\n")
        done = subprocess.run([sys.executable, "-c", code, pty.slaveName, self.dir, str(holder)], capture_output=True,
                              text=True, timeout=60, cwd=os.getcwd(),
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        self.assertEqual((done.stdout, done.stderr), (f"None\n{holder}\n", ""))
        self.assertEqual(uucplock.readPid(lock), holder)

    def test_startUnreadableKept(self) -> None:
        """A live process whose start cannot be read (/proc mounted hidepid) keeps the lock, however old it is."""
        stranger = liveHolder(self)
        self.patch(uucplock, "_startedAt", lambda pid: None)
        writeLock(self.lock, stranger)
        setBack(self.lock, 3600)
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir).pid, stranger)

    def test_zombie(self) -> None:
        """A lock whose process has exited but is not yet reaped (a zombie) is stale."""
        child = subprocess.Popen([sys.executable, "-c", ""])
        self.addCleanup(child.wait)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie
        writeLock(self.lock, child.pid)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: process {child.pid} has "
                                          "exited (a zombie not yet reaped)")

    def test_zombieLeaderWithLiveThreadsKept(self) -> None:
        """A process whose first thread has exited (/proc shows it a zombie) while another lives on with the device open keeps its lock."""
        pty = PtyPair()
        self.addCleanup(pty.close)
        lock = os.path.join(self.dir, "LCK.." + os.path.basename(pty.slaveName))
        holder = leaderGone(self, pty.slaveName)
        self.assertEqual(uucplock._startedAt(holder)[0], "Z")  # type: ignore[index]
        writeLock(lock, holder)
        self.assertEqual(self.assertRaises(uucplock.LockHeld, uucplock.acquire, pty.slaveName, self.dir).pid, holder)
        self.assertEqual((uucplock.readPid(lock), taken(self.events)), (holder, []))

    def test_deadAndNoPid(self) -> None:
        """A dead PID, PID 0, and garbage (binary, huge) are each taken over, the log saying which."""
        dead = deadPid()
        writeLock(self.lock, dead)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: process {dead} is gone")
        writeLock(self.lock, 0)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it names no process (0)")
        with open(self.lock, "wb") as f:
            f.write(b"\x00\xff\x13garbage\n")
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it holds no PID "
                                          "(b'\\x00\\xff\\x13garbage\\n')")
        with open(self.lock, "wb") as f:
            f.write(b"x" * (8 << 20))
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it holds no PID "
                                          "(b'xxxxxxxxxxxxxxxx'...)")

    def test_emptyBeingWritten(self) -> None:
        """An empty lock made just now is being written (picocom, minicom, ser2net: O_EXCL, then the PID): held, by a process not known yet (pid 0), the error naming it; an old one is stale."""
        open(self.lock, "w").close()
        e = self.assertRaises(uucplock.LockHeld, uucplock.acquire, self.device, self.dir)
        self.assertEqual(e.pid, 0)
        self.assertEqual(str(e), f"/dev/ttyS9 is being locked by another program: {self.lock} is empty, its maker "
                                 "writing its PID there (taken as stale if still empty 10 s after it was made)")
        self.assertEqual(os.listdir(self.dir), ["LCK..ttyS9"])
        setBack(self.lock, 60)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it is empty")

    def test_notFiles(self) -> None:
        """A FIFO (never waited on), a socket, a symlink: stale, each named in the log as what it is."""
        os.mkfifo(self.lock)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it is a FIFO, not a lock file")
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(self.lock)
        self.assertEqual(self.takeOver(), f"/dev/ttyS9: stale lock {self.lock} taken over: it is a socket, not a lock file")
        os.symlink("/etc/passwd", self.lock)
        self.assertEqual(self.takeOver(),
                         f"/dev/ttyS9: stale lock {self.lock} taken over: it is a symbolic link, not a lock file")

    def test_directoryRefused(self) -> None:
        """A directory at the lock's name is not removed nor moved: an error naming it, what is in it untouched."""
        os.mkdir(self.lock)
        with open(os.path.join(self.lock, "keep"), "w") as f:
            f.write("mine")
        e = self.assertRaises(uucplock.LockError, uucplock.acquire, self.device, self.dir)
        self.assertEqual(str(e), f"cannot lock /dev/ttyS9: {self.lock} is a directory, not a lock file: remove it, "
                                 "or set lock-dir, or lock = false")
        self.assertEqual((os.listdir(self.dir), os.listdir(self.lock)), (["LCK..ttyS9"], ["keep"]))

    def test_ownPidSaid(self) -> None:
        """A lock naming this process that no line of it holds is taken as it is, and the log says so."""
        writeLock(self.lock, os.getpid())
        path = uucplock.acquire(self.device, self.dir)
        self.addCleanup(uucplock.release, path)
        self.assertEqual([formatEvent(e) for e in self.events.events if "names this process" in e["log_format"]],
                         [f"/dev/ttyS9: lock {self.lock} names this process ({os.getpid()}), which held it for no "
                          "line: taken as it is (left by an earlier run with this PID, or not removable at its close)"])

    def test_othersStaleLockInStickyDir(self) -> None:
        """A stale lock another user made in the sticky lock directory (cu's, as user uucp), which the gateway's user may not remove: the error names the file, its owner and who may remove it; the file is left."""
        os.chmod(self.dir, 0o1777)
        dead = deadPid()
        writeLock(self.lock, dead)
        os.chown(self.lock, 4243, 4243)
        self.patch(os, "geteuid", lambda: 4242)
        realRename = os.rename

        def rename(source: Any, *args: Any, **kwargs: Any) -> None:
            if source == self.lock:
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
            realRename(source, *args, **kwargs)

        self.patch(os, "rename", rename)
        try:
            owner = pwd.getpwuid(4243).pw_name
        except KeyError:
            owner = "4243"
        e = self.assertRaises(uucplock.LockError, uucplock.acquire, self.device, self.dir)
        self.assertEqual(str(e), f"cannot remove stale lock {self.lock} (process {dead} is gone) for /dev/ttyS9: "
                                 f"Operation not permitted (it is user {owner}'s, in a sticky directory: only {owner} "
                                 "or root may remove it)")
        self.assertEqual((os.listdir(self.dir), uucplock.readPid(self.lock)), (["LCK..ttyS9"], dead))

    def test_lockDirNotWritable(self) -> None:
        """A lock directory we may not write in: an error naming the file it could not make and the ways out."""
        real = os.open

        def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
            if str(path).startswith(self.dir):
                raise PermissionError(13, "Permission denied")
            return real(path, *args, **kwargs)

        self.patch(os, "open", refuse)
        e = self.assertRaises(uucplock.LockError, uucplock.acquire, self.device, self.dir)
        self.assertEqual(str(e), f"cannot lock /dev/ttyS9: {self.dir}/LTMP.{os.getpid()}.LCK..ttyS9: Permission denied "
                                 "(set lock-dir, or lock = false)")


class GatewayReusedPidTests(TestCase):
    timeout = 30

    async def test_emptyLockLineWaits(self) -> None:
        """A single line started (no --wait-for-device) while another program is making its lock (empty, just made): the start does not fail; the line is down, saying so, locked_by null, and comes up once the lock goes."""
        lockDir = self.mktemp()
        os.mkdir(lockDir)
        pty = startedPty(self)
        lock = os.path.join(lockDir, "LCK.." + os.path.basename(pty.slaveName))
        open(lock, "w").close()
        events = LogEvents(self)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                             lockDir=lockDir), reopenPolicy=lambda attempt: 0.05)
        device = service.lines["t"].device
        why = (f"{pty.slaveName} is being locked by another program: {lock} is empty, its maker writing its PID there "
               "(taken as stale if still empty 10 s after it was made)")
        self.assertEqual((device.up, device.downReason, device.lockedBy), (False, why, None))
        self.assertEqual([formatEvent(e) for e in events.events if e.get("log_level") is not None
                          and e["log_level"].name == "warn"], [f"line t: {why}; the line stays down and tries again"])
        os.unlink(lock)
        await until(self, lambda: device.up, "the line up")
        self.assertEqual(uucplock.readPid(lock), os.getpid())
        await service.stopService()

    async def test_reusedPidLineUp(self) -> None:
        """A lock left by a process killed long ago whose PID a live process has now (it started after the lock): the line comes up at start, the log naming the file; it was down for ever."""
        lockDir = self.mktemp()
        os.mkdir(lockDir)
        pty = startedPty(self)
        lock = os.path.join(lockDir, "LCK.." + os.path.basename(pty.slaveName))
        stranger = liveHolder(self)
        writeLock(lock, stranger)
        setBack(lock, 7200)
        events = LogEvents(self)
        service = startGateway(self, ptyLine(pty, ListenerSpec("tcp:0:interface=127.0.0.1", Protocol.TELNET),
                                             lockDir=lockDir), reopenPolicy=lambda attempt: 0.05)
        self.assertTrue(service.lines["t"].device.up)
        self.assertEqual(uucplock.readPid(lock), os.getpid())
        said = taken(events)
        self.assertEqual(len(said), 1)
        self.assertTrue(said[0].startswith(f"{pty.slaveName}: stale lock {lock} taken over: process {stranger} "), said)
        await service.stopService()
        self.assertEqual(os.listdir(lockDir), [])
