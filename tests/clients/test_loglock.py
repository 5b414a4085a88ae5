"""
A console log is one gateway's (serialgw.clients.loglock): a file another
process holds is refused, naming that process; this process's own opens of
one file (a reload, SIGUSR1) share its lock; a rotation's new file is held.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.reload import checkFiles
from serialgw.clients import loglock
from serialgw.clients.consolelog import ConsoleLog
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import LogEvents, RecordingDevice

# Another process holding a file's lock until its standard input closes.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
"""


class LogLockTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.line = Line("web1", RecordingDevice(), clock=self.clock)
        directory = self.mktemp()
        os.mkdir(directory)
        self.path = os.path.join(directory, "web1.log")
        self.log = LogEvents(self)

    def holder(self, path: str) -> subprocess.Popen[bytes]:
        """Another process holding C{path}'s lock (as another gateway writing that log would)."""
        process = subprocess.Popen([sys.executable, "-c", _HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        def stop() -> None:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            process.wait()
            process.stdout.close()

        self.addCleanup(stop)
        assert process.stdout is not None
        self.assertEqual(process.stdout.readline(), b"held\n")
        return process

    def lockedByOthers(self, path: str) -> bool:
        """Whether a process other than this one's logs would find C{path} locked (a new open file description tries)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def key(self, path: str) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino

    def consoleLog(self, **spec: object) -> ConsoleLog:
        log = ConsoleLog(self.line, LogSpec(self.path, format="", **spec), self.clock)  # type: ignore[arg-type]

        def close() -> None:
            if log in self.line.logs:
                log.close()

        self.addCleanup(close)
        return log

    def test_anotherProcessRefused(self) -> None:
        """A log another process holds is refused at open, naming that process; nothing is written to it."""
        other = self.holder(self.path)
        error = self.assertRaises(OSError, ConsoleLog, self.line, LogSpec(self.path), self.clock)
        self.assertTrue(error.strerror.startswith(f"it is locked by process {other.pid} ({sys.executable} -c import fcntl, "),
                        error.strerror)
        self.assertTrue(error.strerror.endswith("...), which writes it (another gateway?): two writers would interleave "
                                                "in one file"), error.strerror)
        self.assertEqual(self.line.logs, [])
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"")

    def test_reloadRefusedByAnotherProcess(self) -> None:
        """A reload's check refuses a log another process holds, naming it."""
        other = self.holder(self.path)
        problem = checkFiles([], [("web1", LogSpec(self.path))])
        assert problem is not None
        self.assertTrue(problem.startswith(f"line 'web1': cannot open log {self.path!r}: it is locked by process {other.pid} ("),
                        problem)

    def test_heldWhileOpen(self) -> None:
        """An open console log holds its file; closed, it lets it go."""
        log = self.consoleLog()
        self.assertTrue(self.lockedByOthers(self.path))
        key = self.key(self.path)
        self.assertIn(key, loglock._held)
        log.close()
        self.assertFalse(self.lockedByOthers(self.path))
        self.assertNotIn(key, loglock._held)

    def test_sameProcessTwice(self) -> None:
        """This process opening its own log again (a reload opens the new before closing the old) shares the lock; the lock goes with the last."""
        first = self.consoleLog()
        second = ConsoleLog(Line("web2", RecordingDevice(), clock=self.clock), LogSpec(self.path, format=""), self.clock)
        self.assertIsNone(checkFiles([], [("web1", LogSpec(self.path))]))
        first.close()
        self.assertTrue(self.lockedByOthers(self.path))
        self.line.deviceDataReceived(b"not logged: first is closed\n")
        second.line.deviceDataReceived(b"x\n")
        key = self.key(self.path)
        second.close()
        self.assertFalse(self.lockedByOthers(self.path))
        self.assertNotIn(key, loglock._held)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"x\n")

    def test_reopenSameFileKeepsLock(self) -> None:
        """SIGUSR1 with nothing moved: the file stays held (the old descriptor's close takes no lock away)."""
        log = self.consoleLog()
        self.assertTrue(self.successResultOf(log.reopen()))
        self.assertTrue(self.lockedByOthers(self.path))
        log.close()
        self.assertFalse(self.lockedByOthers(self.path))

    def test_reopenMovedHoldsNewFile(self) -> None:
        """SIGUSR1 after logrotate renamed the file: the new file at the path is held, the renamed one let go."""
        log = self.consoleLog()
        os.rename(self.path, self.path + ".1")
        self.assertTrue(self.successResultOf(log.reopen()))
        self.assertTrue(self.lockedByOthers(self.path))
        self.assertFalse(self.lockedByOthers(self.path + ".1"))

    def test_reopenFindsAnotherProcess(self) -> None:
        """SIGUSR1 finding the path held by another process: one error naming it, output goes on to the file in hand."""
        log = self.consoleLog()
        os.rename(self.path, self.path + ".1")
        other = self.holder(self.path)
        self.assertFalse(self.successResultOf(log.reopen()))
        self.line.deviceDataReceived(b"kept\n")
        with open(self.path + ".1", "rb") as f:
            self.assertEqual(f.read(), b"kept\n")
        [error] = [e for e in self.log.events if "cannot reopen log" in e.get("log_format", "")]
        self.assertIn(f"it is locked by process {other.pid} (", error["reason"])

    def test_rotationHoldsNewFile(self) -> None:
        """A rotation by size holds the new file and lets the old one go."""
        self.consoleLog(maxSize=10, daily=False, keep=1)
        self.line.deviceDataReceived(b"0123456789")
        self.line.deviceDataReceived(b"abc\n")
        self.assertTrue(self.lockedByOthers(self.path))
        self.assertFalse(self.lockedByOthers(self.path + ".1"))
        self.assertIn(self.key(self.path), loglock._held)
        self.assertNotIn(self.key(self.path + ".1"), loglock._held)

    def test_reloadRefusedOnNFS(self) -> None:
        """
        On NFS an exclusive flock needs a descriptor open for writing (flock(2): it is a
        POSIX lock there; read-only: EBADF): a reload's check still finds another process's lock.
        """
        other = self.holder(self.path)
        flock = fcntl.flock

        def nfsFlock(fd: int, operation: int) -> None:
            if operation & fcntl.LOCK_EX and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            flock(fd, operation)

        self.patch(fcntl, "flock", nfsFlock)
        problem = checkFiles([], [("web1", LogSpec(self.path))])
        assert problem is not None
        self.assertTrue(problem.startswith(f"line 'web1': cannot open log {self.path!r}: it is locked by process {other.pid} ("),
                        problem)


    def test_nfsLockKeptWhenAnotherDescriptorCloses(self) -> None:
        """
        On NFS a flock is a POSIX lock, which a process loses when it closes
        any descriptor of the file: this process's second log on a file (a
        reload's) closed, or a reload's check of a file it holds, took the
        lock away while the first still wrote; it is taken again.
        """
        locked: set[int] = set()
        flock, close = fcntl.flock, os.close

        def posixFlock(fd: int, operation: int) -> None:
            inode = os.fstat(fd).st_ino
            if operation & fcntl.LOCK_UN:
                locked.discard(inode)
            else:
                flock(fd, operation)
                locked.add(inode)

        def posixClose(fd: int) -> None:
            try:
                # (Not an O_PATH descriptor's: the kernel's close of one takes no POSIX lock away.)
                if not fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_PATH", 0):
                    locked.discard(os.fstat(fd).st_ino)
            except OSError:
                pass
            close(fd)

        self.patch(fcntl, "flock", posixFlock)
        self.patch(os, "close", posixClose)
        first = self.consoleLog()
        inode = os.stat(self.path).st_ino
        second = ConsoleLog(Line("web2", RecordingDevice(), clock=self.clock), LogSpec(self.path, format=""), self.clock)
        second.close()
        self.assertIn(inode, locked)
        self.assertIsNone(checkFiles([], [("web1", LogSpec(self.path))]))
        self.assertIn(inode, locked)
        self.assertTrue(self.successResultOf(first.reopen()))
        self.assertIn(inode, locked)
        first.close()
        self.assertNotIn(inode, locked)


class ProbeRaceTests(SynchronousTestCase):
    def test_probeNeverRefusesOurWriter(self) -> None:
        """A reload's look (lockedElsewhere, in a thread of its own) takes its probing flock under the table's lock: a writer's take() of the same file, which may run whenever that lock is free, never finds the probe's flock and refuses our own log as 'held by' this process."""
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "web1.log")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o640))
        real = fcntl.flock
        writer: list[object] = []

        class Interleaving:
            """fcntl as loglock sees it: right after the probe's flock, a writer takes the file if it may run then."""

            def __getattr__(self, name: str) -> object:
                return getattr(fcntl, name)

            def flock(self, fd: int, operation: int) -> None:
                real(fd, operation)
                if writer or loglock._heldLock.locked():
                    return  # (the writer's own flock; or the probe holds the table: no writer runs now)
                mine = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    writer.append(loglock.take(mine))
                except OSError as e:
                    writer.append(e)
                    os.close(mine)
                else:
                    self.mine = mine

        fake = Interleaving()
        self.patch(loglock, "fcntl", fake)
        self.assertIsNone(loglock.lockedElsewhere(path))
        if writer:
            self.assertEqual(writer, [(os.stat(path).st_dev, os.stat(path).st_ino)])
            loglock.release(fake.mine, writer[0])  # type: ignore[arg-type]
        self.patch(loglock, "fcntl", fcntl)
        key = loglock.take(held := os.open(path, os.O_WRONLY | os.O_APPEND))
        self.assertIsNotNone(key)
        loglock.release(held, key)
