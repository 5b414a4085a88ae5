"""
Log rotation by someone else, on a live gateway process (twistd serialgw
with --logfile and a console log): logrotate's copytruncate, then its
rename and SIGUSR1.  Waiting is on events (sd_notify READY=1, inotify
creations, bytes arriving), never on sleeps.
"""

from __future__ import annotations

import os
import re
import signal

from twisted.internet import defer, inotify, protocol, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent
from twisted.python.filepath import FilePath
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.logs import rotatedOnlyIfAFile
from serialgw.app.process import TwistdGatewayService
from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.config.logspec import LogSpec
from serialgw.line.hub import Line
from tests.fakes import RecordingDevice, observeLog
from tests.realio import TWISTD, Accumulator, closeClients, connect, startedPty, startProcess, testLockDir
from tests.shortpaths import shortDirectory


class NotifySocket(protocol.DatagramProtocol):
    """A NOTIFY_SOCKET read in the reactor: every datagram added to C{messages}."""

    def __init__(self) -> None:
        self.messages = Accumulator("sd_notify")

    def datagramReceived(self, data: bytes, addr: object) -> None:
        self.messages.add(data + b"\n")


class LogrotateTests(TestCase):
    timeout = 30

    def created(self, directory: str, *names: str) -> list[defer.Deferred[None]]:
        """Deferreds that fire when each name is created in the directory (inotify)."""
        waits: dict[str, defer.Deferred[None]] = {name: defer.Deferred() for name in names}
        notifier = inotify.INotify()
        notifier.startReading()
        self.addCleanup(notifier.loseConnection)

        def onEvent(_: object, path: FilePath[bytes], mask: int) -> None:
            wait = waits.get(path.basename().decode())  # inotify's paths are bytes
            if wait is not None and not wait.called:
                wait.callback(None)

        notifier.watch(FilePath(directory), mask=inotify.IN_CREATE, callbacks=[onEvent])
        return list(waits.values())

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    async def holds(self, path: str, needle: bytes) -> bytes:
        """The file's bytes once they contain C{needle} (a console log is written by a thread of its own: each write seen by inotify)."""
        changed: defer.Deferred[None] = defer.Deferred()
        notifier = inotify.INotify()
        notifier.startReading()
        try:
            notifier.watch(FilePath(os.path.dirname(path)), mask=inotify.IN_MODIFY | inotify.IN_CREATE,
                           callbacks=[lambda *_: None if changed.called else changed.callback(None)])
            while needle not in self.read(path):
                await changed
                changed = defer.Deferred()
        finally:
            notifier.loseConnection()
        return self.read(path)

    async def test_copytruncateThenRenameAndSigusr1(self) -> None:
        """
        copytruncate: twistd's log and the console log go on at offset 0 (no
        NULs).  Rename and SIGUSR1: console log, file: listener and twistd's
        log each start a new file at the original path; what came before is
        in the renamed files; the gateway still serves old and new clients.
        """
        pty = startedPty(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        console, twistdLog, fileOut = (os.path.join(directory, n) for n in ("console.log", "twistd.log", "file.out"))
        config = os.path.join(directory, "farm.toml")
        with open(config, "w") as f:
            f.write(f'[lines.t]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\nlog = "{console}"\n'
                    f'listen = ["raw+tcp:0:interface=127.0.0.1", "file:{fileOut}"]\n')
        notify = NotifySocket()
        # A short path: AF_UNIX takes 107 bytes at most.
        socketDirectory = shortDirectory(self, "serialgw-test-")
        socketPath = os.path.join(socketDirectory, "notify")
        port = reactor.listenUNIXDatagram(socketPath, notify)  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        proc = startProcess(self, TWISTD + ["-n", "--pidfile=", f"--logfile={twistdLog}", "serialgw", "--config", config],
                                  env={"NOTIFY_SOCKET": socketPath})
        await notify.messages.contains(b"READY=1")
        match = re.search(rb"raw listener ready on 127\.0\.0\.1:(\d+)", self.read(twistdLog))
        assert match is not None, self.read(twistdLog)
        first = await connect(int(match.group(1)))
        first.transport.write(b"one")  # type: ignore[union-attr]
        await pty.received.contains(b"one")
        pty.write(b"before\n")
        await first.received.contains(b"before\n")
        await self.holds(console, b"before\n")

        # copytruncate: copied elsewhere, truncated to 0 under the gateway.
        for path in (console, twistdLog):
            os.truncate(path, 0)
        pty.write(b"middle\n")
        await first.received.contains(b"middle\n")
        second = await connect(int(match.group(1)))
        second.transport.write(b"two")  # type: ignore[union-attr]
        await pty.received.contains(b"two")
        text = self.read(twistdLog)
        self.assertNotIn(b"\0", text)
        self.assertIn(b"attached as writer", text)
        self.assertRegex(text, rb"^\d{4}-\d\d-\d\dT\S+ \[serialgw")
        self.assertNotIn(b"\0", await self.holds(console, b"middle\n"))
        self.assertRegex(self.read(console), rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d middle\n")

        # Rename, then SIGUSR1.
        creations = self.created(directory, "console.log", "twistd.log", "file.out")
        for path in (console, twistdLog, fileOut):
            os.rename(path, path + ".1")
        proc.transport.signalProcess(signal.SIGUSR1)  # type: ignore[union-attr]
        await defer.gatherResults(creations)
        pty.write(b"after\n")
        await first.received.contains(b"after\n")
        after = await self.holds(fileOut, b"after\n")  # (written after what went to the moved file)
        self.assertEqual((self.read(fileOut + ".1"), after), (b"before\nmiddle\n", b"after\n"))
        self.assertRegex(await self.holds(console, b"after\n"), rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d after\n$")
        self.assertNotIn(b"after", self.read(console + ".1"))
        self.assertIn(b"middle\n", self.read(console + ".1"))
        # (Said once the console log's writer has reopened it, off the reactor's thread; in the new file.)
        self.assertIn(b"reopened 2 log file(s)", await self.holds(twistdLog, b"reopened 2 log file(s)"))
        self.assertIn(b"reopened " + twistdLog.encode(), self.read(twistdLog))
        self.assertIn(b"attached as writer", self.read(twistdLog + ".1"))
        self.assertNotIn(b"attached as writer", self.read(twistdLog))

        # Still serving: the old clients type and read, a new one attaches.
        second.transport.write(b"again")  # type: ignore[union-attr]
        await pty.received.contains(b"twoagain")
        third = await connect(int(match.group(1)))
        third.transport.write(b"three")  # type: ignore[union-attr]
        await pty.received.contains(b"three")
        pty.write(b"all\n")
        for client in (first, second, third):
            await client.received.contains(b"all\n")
        self.assertTrue(proc.running)
        await closeClients(first, second, third)
        await proc.stop()

    async def test_sigusr1WithLogOnStdout(self) -> None:
        """
        twistd -n logging to stdout (the systemd unit's way): SIGUSR1, which
        ended the farm by its default action, reopens the console log and
        the gateway serves on.
        """
        from tests.realio import gatewayArgv, listeningPort

        pty = startedPty(self)
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        console = os.path.join(directory, "console.log")
        config = os.path.join(directory, "farm.toml")
        with open(config, "w") as f:
            f.write(f'[lines.t]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\nlog = "{console}"\n'
                    'listen = "raw+tcp:0:interface=127.0.0.1"\n')
        proc = startProcess(self, gatewayArgv("--config", config))
        client = await connect(await listeningPort(proc, "raw"))
        pty.write(b"before\n")
        await client.received.contains(b"before\n")
        creations = self.created(directory, "console.log")
        os.rename(console, console + ".1")
        proc.transport.signalProcess(signal.SIGUSR1)  # type: ignore[union-attr]
        await defer.gatherResults(creations)
        await proc.output.contains(b"reopened 1 log file(s)")
        pty.write(b"after\n")
        await client.received.contains(b"after\n")
        client.transport.write(b"typed")  # type: ignore[union-attr]
        await pty.received.contains(b"typed")
        # (Its writer thread writes it: waited for, not read at once.)
        self.assertRegex(await self.holds(console, b"after\n"), rb"^\S+ \S+ after\n")
        self.assertNotIn(b"before", self.read(console))
        self.assertRegex(self.read(console + ".1"), rb"^\S+ \S+ before\n$")
        self.assertTrue(proc.running)
        await closeClients(client)


class TwistdLogReopenTests(SynchronousTestCase):
    def test_failedReopensNotCounted(self) -> None:
        """SIGUSR1 with a console log's and a file: listener's paths made directories: "reopened 0", not 2."""
        directory = self.mktemp()
        os.mkdir(directory)
        line = Line("web1", RecordingDevice(), clock=Clock())
        consoleLog = ConsoleLog(line, LogSpec(os.path.join(directory, "web1.log"), format=""), line.clock)
        self.addCleanup(consoleLog.close)
        fileClient = FileClient(line, os.path.join(directory, "web1.out"), writes="inline")  # (reopened on this thread)
        self.addCleanup(fileClient.close)
        service = TwistdGatewayService([])
        service.lines["web1"] = line
        self.assertEqual(self.successResultOf(service.reopenLogs()), 2)
        for path in (consoleLog.spec.path, fileClient.path):
            os.rename(path, path + ".1")
            os.mkdir(path)
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        self.assertEqual(self.successResultOf(service.reopenLogs()), 0)
        self.assertIn("reopened 0 log file(s)", [formatEvent(e) for e in events])

    def test_fifoAtTwistdLogPath(self) -> None:
        """twistd's log path replaced by a FIFO, then SIGUSR1: refused at once (not waited on), the file in hand kept."""
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "twistd.log")
        logFile = LogFile.fromFullPath(path)
        self.addCleanup(logFile.close)
        # (A reactor without threads: the path is opened on this thread, the test's.)
        service = TwistdGatewayService([], reactor=MemoryReactorClock())
        service.twistdLog = logFile
        os.rename(path, path + ".1")
        os.mkfifo(path)
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        self.assertEqual(self.successResultOf(service.reopenLogs()), 0)
        logFile.write("still here\n")
        logFile.flush()
        self.assertEqual(self.read(path + ".1"), b"still here\n")
        self.assertIn(f"cannot reopen {logFile.path}: it is not a regular file; writing on to the file it was",
                      [formatEvent(e) for e in events])

    def test_noFileNotRotated(self) -> None:
        """twistd's log on a device (--logfile=/dev/null; here a link to /dev/zero) is never rotated: its path was renamed past 1 MB, a regular file left in its place."""
        directory = self.mktemp()
        os.mkdir(directory)
        path = os.path.join(directory, "twistd.log")
        os.symlink("/dev/zero", path)
        logFile = LogFile.fromFullPath(path, rotateLength=100)
        self.addCleanup(logFile.close)
        rotatedOnlyIfAFile(logFile)
        for _ in range(3):
            logFile.write("x" * 99 + "\n")
        self.assertEqual((os.path.islink(path), sorted(os.listdir(directory))), (True, ["twistd.log"]))
        # A regular file is rotated as twistd would.
        regular = os.path.join(directory, "regular.log")
        logFile = LogFile.fromFullPath(regular, rotateLength=100)
        self.addCleanup(logFile.close)
        rotatedOnlyIfAFile(logFile)
        for _ in range(2):
            logFile.write("x" * 99 + "\n")
        self.assertEqual(sorted(os.listdir(directory)), ["regular.log", "regular.log.1", "twistd.log"])

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()
