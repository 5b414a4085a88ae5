"""
The gateway as users run it (`twistd -n serialgw` in a subprocess) with real
third-party peers: Debian's telnet client, netcat, strace watching the
device's ioctls.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import termios
from functools import partial

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IReadDescriptor
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from serialgw.clients.streams import TerminalClient
from serialgw.config.listeners import parseListener
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from tests.fakes import RecordingDevice
from tests.realio import (
    TWISTD,
    Processes,
    ProcessOutput,
    PtyPair,
    assertBreakThenKey,
    attachStrace,
    connect,
    gatewayArgv,
    listeningPort,
    need,
    socketPath,
    startedPty,
    testLockDir,
    until,
)


class TerminalTests(SynchronousTestCase):
    """The gateway's own terminal as a stdio client: raw only while the gateway runs, given back once."""

    def setUp(self) -> None:
        self.master, self.slave = os.openpty()
        self.addCleanup(os.close, self.master)
        self.addCleanup(os.close, self.slave)
        self.cooked = termios.tcgetattr(self.slave)
        self.reactor = MemoryReactor()

    def client(self, listener: str) -> TerminalClient:
        return TerminalClient(Line("con", RecordingDevice()), Role.WRITER, parseListener(listener), self.reactor,
                              "stdio", self.slave)

    def test_rawWhileRunning(self) -> None:
        """Untouched until the reactor runs (a start that fails leaves it so); raw then, ISIG kept without a menu."""
        client = self.client("stdio")
        verifyObject(IClient, client)
        self.assertEqual(termios.tcgetattr(self.slave), self.cooked)
        self.reactor.run()
        lflag = termios.tcgetattr(self.slave)[3]
        self.assertEqual((lflag & (termios.ECHO | termios.ICANON), lflag & termios.ISIG), (0, termios.ISIG))
        client.giveBack()
        self.assertEqual(termios.tcgetattr(self.slave), self.cooked)

    def test_monGivenBackOnce(self) -> None:
        """mon:stdio: Ctrl-C is data (no ISIG); the client leaving gives the terminal back, the shutdown trigger no more."""
        client = self.client("mon:stdio")
        self.reactor.run()
        self.assertEqual(termios.tcgetattr(self.slave)[3] & termios.ISIG, 0)
        client.connectionLost()
        self.assertEqual(termios.tcgetattr(self.slave), self.cooked)
        termios.tcsetattr(self.slave, termios.TCSANOW, self.cooked[:3] + [0] + self.cooked[4:])
        [(giveBack, _, _)] = self.reactor.triggers["after"]["shutdown"]
        giveBack()
        self.assertEqual(termios.tcgetattr(self.slave)[3], 0)


class TwistdTests(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.pty = startedPty(self)
        self.processes = Processes()

    async def tearDown(self) -> None:  # type: ignore[override]
        await self.processes.stop()

    async def gateway(self, *args: str) -> tuple[ProcessOutput, int]:
        proc = self.processes.spawn(gatewayArgv("--device", self.pty.slaveName, *args))
        port = await listeningPort(proc, "raw" if args and args[-1].startswith("raw+") else "telnet")
        return proc, port

    async def test_netcatRaw(self) -> None:
        """netcat on a raw listener: typed bytes reach the device, device output reaches nc."""
        nc = need("nc")
        gw, port = await self.gateway("--port", "raw+tcp:0:interface=127.0.0.1")
        client = self.processes.spawn([nc, "127.0.0.1", str(port)])
        client.write(b"hello device\n")
        self.assertEqual(await self.pty.received.length(13), b"hello device\n")
        self.pty.write(b"hello nc\r\n")
        self.assertEqual(await client.output.contains(b"hello nc\r\n"), b"hello nc\r\n")

    async def test_telnetSendBreak(self) -> None:
        """Debian telnet's `send brk` makes the gateway issue TIOCSBRK then TIOCCBRK on the device, 250 ms apart, before the next byte."""
        telnet = need("telnet")
        gw, port = await self.gateway("--port", "tcp:0:interface=127.0.0.1")
        trace, tracer, deviceFd = await self.attachStrace(gw)

        client = self.processes.spawn([telnet, "127.0.0.1", str(port)], usePTY=True)
        await client.output.contains(b"Escape character is '^]'.")
        client.write(b"x")
        await self.pty.received.contains(b"x")
        client.write(b"\x1d")
        await client.output.contains(b"telnet> ")
        client.write(b"send brk\r")
        client.write(b"h")
        self.assertEqual(await self.pty.received.length(2), b"xh")

        await gw.stop()
        await tracer.ended
        assertBreakThenKey(self, trace, deviceFd)

    async def test_telnetSendIpSynchAo(self) -> None:
        """Debian telnet's `send ip` reaches the device as ^C; `send synch` and `send ao` put nothing on it (no stray DM byte), the keys after each typed."""
        telnet = need("telnet")
        gw, port = await self.gateway("--port", "tcp:0:interface=127.0.0.1")
        client = self.processes.spawn([telnet, "127.0.0.1", str(port)], usePTY=True)
        await client.output.contains(b"Escape character is '^]'.")
        client.write(b"x")
        await self.pty.received.contains(b"x")
        expected = b"x"
        for command, key in ((b"send ip", b"i"), (b"send synch", b"s"), (b"send ao", b"a")):
            prompts = client.output.data.count(b"telnet> ")
            client.write(b"\x1d")
            await client.output.when(partial(_morePrompts, prompts))
            client.write(command + b"\r")
            client.write(key)
            expected += (b"\x03" if command == b"send ip" else b"") + key
            self.assertEqual(await self.pty.received.contains(key), expected)

    async def attachStrace(self, gw: ProcessOutput) -> tuple[str, ProcessOutput, int]:
        """strace the gateway's ioctls and writes; return the trace file, strace, and the device fd."""
        return await attachStrace(self, gw, self.pty.slaveName, self.processes.spawn)

    async def test_rfc2217SevenBitsReachDevice(self) -> None:
        """SET-DATASIZE 7 and SET-PARITY EVEN reach the device (TCSETS with CS7, with PARENB); the replies say 8 and NONE, as the pty has it."""
        gw, port = await self.gateway("--port", "tcp:0:interface=127.0.0.1")
        trace, tracer, deviceFd = await self.attachStrace(gw)
        client = await connect(port)
        client.transport.write(bytes([255, 251, 44]))  # type: ignore[union-attr]
        await client.received.contains(bytes([255, 250, 44, 107]))
        client.transport.write(bytes([255, 250, 44, 2, 7, 255, 240]))  # type: ignore[union-attr]
        await client.received.contains(bytes([255, 250, 44, 102]))
        client.transport.write(bytes([255, 250, 44, 3, 3, 255, 240]))  # type: ignore[union-attr]
        data = await client.received.contains(bytes([255, 250, 44, 103]))
        self.assertIn(bytes([255, 250, 44, 102, 8, 255, 240]), data)
        self.assertIn(bytes([255, 250, 44, 103, 1, 255, 240]), data)
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.closed
        await gw.stop()
        await tracer.ended
        with open(trace) as f:
            lines = f.readlines()
            # strace may print the request as "SNDCTL_TMR_START or TCSETS".
            sets = [line for line in lines if re.search(rf"ioctl\({deviceFd}, (\S+ or )?TCSETS", line)]
        self.assertTrue(any("CS7" in line for line in sets), sets)
        self.assertTrue(any("PARENB" in line and "PARODD" not in line for line in sets), sets)

    async def test_stdio(self) -> None:
        """--listen stdio under twistd -n: the gateway's stdin goes to the device, device output to its stdout."""
        log = os.path.abspath(self.mktemp())
        proc = self.processes.spawn(TWISTD + ["-n", "--pidfile=", f"--logfile={log}", "serialgw",
                                              "--lock-dir", testLockDir(),
                                              "--device", self.pty.slaveName, "--listen", "stdio"])
        proc.write(b"typed at the terminal")
        self.assertEqual(await self.pty.received.length(21), b"typed at the terminal")
        self.pty.write(b"console says hi")
        await proc.output.contains(b"console says hi")

    async def test_monStdioTerminal(self) -> None:
        """
        mon:stdio on a terminal, as QEMU has it: each key at once and not echoed (C-a h answers without Enter),
        Ctrl-C goes to the device; C-a x gives the terminal back as it was, where Ctrl-C stops the gateway.
        """
        log = os.path.abspath(self.mktemp())
        proc = self.processes.spawn(TWISTD + ["-n", "--pidfile=", f"--logfile={log}", "serialgw",
                                              "--lock-dir", testLockDir(),
                                              "--device", self.pty.slaveName, "--listen", "mon:stdio"], usePTY=True)
        self.pty.write(b"console up\r\n")
        await proc.output.contains(b"console up")
        proc.write(b"\x01h")
        await proc.output.contains(b"escape commands, as in QEMU")
        proc.write(b"ls\x03")
        self.assertEqual(await self.pty.received.length(3), b"ls\x03")
        proc.write(b"\x01x")
        await proc.output.contains(b"[serialgw: bye]")
        # The terminal is given back just after "bye" is written: wait for it (the test's timeout is the limit), then Ctrl-C.
        master = proc.transport.fileno()  # type: ignore[union-attr]
        await until(self, lambda: termios.tcgetattr(master)[3] & termios.ISIG, "the terminal given back (ISIG on again)")
        proc.write(b"\x03")
        await proc.ended
        with open(log, "rb") as f:
            self.assertIn(b"Received SIGINT, shutting down.", f.read())
        # Nothing typed was echoed; the terminal given back echoes Ctrl-C as ^C, and it stopped the gateway.
        self.assertTrue(proc.output.data.startswith(b"console up\r\r\n\r\r\n[serialgw: escape commands, as in QEMU"),
                        proc.output.data)
        self.assertTrue(proc.output.data.endswith(b"\r\r\n[serialgw: bye]\r\r\n^C"), proc.output.data)

    async def test_badCertificateExit(self) -> None:
        """A TLS listener whose certificate cannot be read: one line naming the file, exit 1."""
        proc = self.processes.spawn(gatewayArgv("--device", self.pty.slaveName, "--port", "tls:0:cert=/nonexistent.pem:key=/k.pem"))
        self.assertEqual(await proc.ended, 1)
        self.assertIn(b"cannot read certificate '/nonexistent.pem': No such file or directory", proc.output.data)
        self.assertNotIn(b"Traceback", proc.output.data)

    async def test_systemdNotify(self) -> None:
        """Under systemd (NOTIFY_SOCKET), the gateway sends READY=1 and a STATUS line once it serves."""
        import socket

        path = socketPath(self, "notify")  # (under mktemp() it was too long for AF_UNIX past a 32-byte checkout path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        self.addCleanup(sock.close)

        got: defer.Deferred[bytes] = defer.Deferred()

        @implementer(IReadDescriptor)
        class Reader:
            def fileno(self) -> int:
                return sock.fileno()

            def doRead(self) -> None:
                reactor.removeReader(self)  # type: ignore[attr-defined]
                got.callback(sock.recv(1000))

            def logPrefix(self) -> str:
                return "notify"

            def connectionLost(self, reason: object) -> None:
                pass

        reader = Reader()
        reactor.addReader(reader)  # type: ignore[attr-defined]
        self.addCleanup(lambda: reactor.removeReader(reader) if not got.called else None)  # type: ignore[attr-defined]
        self.processes.spawn(gatewayArgv("--device", self.pty.slaveName, "--port", "tcp:0:interface=127.0.0.1"),
                             env={"NOTIFY_SOCKET": path})
        message = await got
        self.assertEqual(message, b"READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s)")

    async def test_dropsPrivileges(self) -> None:
        """twistd -u/-g: the device and port are opened as root, then the gateway runs as nobody and still works."""
        if os.getuid() != 0:
            raise SkipTest("needs root to drop privileges")
        # Its UUCP lock in a directory of its own that anyone may write, as
        # /var/lock, and reach (in /tmp: the checkout's may not be nobody's).
        locks = tempfile.mkdtemp(prefix="serialgw-test-locks-")
        self.addCleanup(shutil.rmtree, locks, True)
        os.chmod(locks, 0o1777)
        proc = self.processes.spawn(TWISTD + ["-n", "--pidfile=", "-u", "65534", "-g", "65534", "serialgw",
                                              "--lock-dir", locks,
                                              "--device", self.pty.slaveName, "--port", "raw+tcp:0:interface=127.0.0.1"])
        port = await listeningPort(proc, "raw")
        client = await connect(port)
        client.transport.write(b"as nobody")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(9), b"as nobody")
        with open(f"/proc/{proc.transport.pid}/status") as f:  # type: ignore[union-attr]
            ids = {line.split(":")[0]: line.split()[1:] for line in f if line.startswith(("Uid", "Gid"))}
        self.assertEqual(ids["Uid"][:2], ["65534", "65534"])
        self.assertEqual(ids["Gid"][:2], ["65534", "65534"])
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.closed

    async def test_sighupReload(self) -> None:
        """SIGHUP re-reads --config: a new line starts listening; a broken file is refused and the running one stays."""
        other = startedPty(self)
        path = os.path.abspath(self.mktemp())
        line = ('[lines.{name}]\ndevice = "{device}"\nlock-dir = "' + testLockDir() + '"\n'
                'listen = "raw+tcp:0:interface=127.0.0.1"\n')
        with open(path, "w") as f:
            f.write(line.format(name="first", device=self.pty.slaveName))
        proc = self.processes.spawn(gatewayArgv("--config", path))
        await listeningPort(proc, "raw")
        with open(path, "w") as f:
            f.write("[lines.first\n")
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        await proc.output.contains(b"reload refused, the running configuration stays")
        with open(path, "w") as f:
            f.write(line.format(name="first", device=self.pty.slaveName))
            f.write(line.format(name="second", device=other.slaveName))
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        data = await proc.output.contains(b"reload: added ['second']")
        # Opened off the reactor thread: typed before it is up, bytes would be dropped.
        await proc.output.contains(b"line second: device ")
        port = int(re.findall(rb"line second: raw listener ready on 127\.0\.0\.1:(\d+)", data)[0])
        client = await connect(port)
        client.transport.write(b"hello second")  # type: ignore[union-attr]
        self.assertEqual(await other.received.length(12), b"hello second")
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.closed

    async def test_sigtermSendsCloseString(self) -> None:
        """SIGTERM with a person attached: the device gets the whole close-string (the data after its break too) before the gateway closes it and exits."""
        gw, port = await self.gateway("--open-string", r"login\r", "--close-string", r"exit\r\bq",
                                      "--port", "raw+tcp:0:interface=127.0.0.1")
        client = await connect(port)
        client.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(7), b"login\ra")
        await gw.stop()
        self.assertEqual(await self.pty.fence(b"!"), b"login\raexit\rq!")
        await client.closed
        self.assertNotIn(b"not sent", gw.output.data)

    async def test_secondSigtermHurries(self) -> None:
        """SIGTERM again while the stop waits for a close-string's breaks: the device is closed at once, the log says so naming the line, and no traceback (Twisted's handler stopped the stopping reactor again)."""
        gw, port = await self.gateway("--close-string", "exit\\r" + "\\b" * 12 + "q",
                                      "--port", "raw+tcp:0:interface=127.0.0.1")
        client = await connect(port)
        client.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        gw.transport.signalProcess("TERM")  # type: ignore[union-attr]
        await gw.output.contains(b"close-string sent")
        gw.transport.signalProcess("TERM")  # type: ignore[union-attr]
        await gw.ended
        self.assertEqual(await self.pty.fence(b"!"), b"aexit\r!")
        self.assertRegex(gw.output.data, rb"SIGTERM during the stop: closing 1 device\(s\) now.*\(pts-\d+\)")
        self.assertNotIn(b"Traceback", gw.output.data)
        await client.closed

    async def test_reloadRemovingLineSendsCloseString(self) -> None:
        """SIGHUP removing a line with a person on it: its device gets the whole close-string (the data after its break too) before it is closed."""
        other = startedPty(self)
        path = os.path.abspath(self.mktemp())
        line = ('[lines.{name}]\ndevice = "{device}"\nlock-dir = "' + testLockDir() + '"\n'
                'listen = "raw+tcp:0:interface=127.0.0.1"\nclose-string = "bye\\\\r\\\\bz"\n')
        with open(path, "w") as f:
            f.write(line.format(name="first", device=self.pty.slaveName))
            f.write(line.format(name="second", device=other.slaveName))
        proc = self.processes.spawn(gatewayArgv("--config", path))
        data = await proc.output.contains(b"line second: raw listener ready")
        port = int(re.findall(rb"line first: raw listener ready on 127\.0\.0\.1:(\d+)", data)[0])
        client = await connect(port)
        client.transport.write(b"a")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"a")
        with open(path, "w") as f:
            f.write(line.format(name="second", device=other.slaveName))
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        await proc.output.contains(b"reload: added none, changed none, removed ['first']")
        self.assertEqual(await self.pty.fence(b"!"), b"abye\rz!")
        await client.closed

    async def test_badOptionExit(self) -> None:
        """A bad option: one clear line quoting it, non-zero exit, nothing started."""
        proc = self.processes.spawn(gatewayArgv("--parity", "X"))
        code = await proc.ended
        self.assertEqual(code, 2)
        self.assertEqual(proc.output.data, b"serialgw: error: --parity: parity must be one of N, E, O, M, S, not 'X'\n")
        proc = self.processes.spawn(gatewayArgv("--listen", "tcp:4444:5555"))
        self.assertEqual(await proc.ended, 2)
        self.assertEqual(proc.output.data.count(b"\n"), 1)
        self.assertIn(b"reads two ways", proc.output.data)

    async def test_missingDeviceExit(self) -> None:
        """A device that cannot open: one line naming it, exit status 1."""
        proc = self.processes.spawn(gatewayArgv("--device", "/dev/nonexistent-tty", "--port", "tcp:0:interface=127.0.0.1"))
        code = await proc.ended
        self.assertEqual(code, 1)
        self.assertIn(
            b"serialgw: error: line 'nonexistent-tty': cannot open device '/dev/nonexistent-tty': No such file or directory",
            proc.output.data,
        )
        self.assertNotIn(b"Traceback", proc.output.data)

    async def test_portInUseExit(self) -> None:
        """A port that cannot bind: one line naming the listener, exit status 1."""
        gw, port = await self.gateway("--port", "tcp:0:interface=127.0.0.1")
        other = PtyPair()
        self.addCleanup(other.close)
        proc = self.processes.spawn(gatewayArgv("--device", other.slaveName, "--port", f"tcp:{port}:interface=127.0.0.1"))
        code = await proc.ended
        self.assertEqual(code, 1)
        self.assertIn(f"cannot listen on 'tcp:{port}:interface=127.0.0.1': ".encode(), proc.output.data)
        self.assertIn(b"Address already in use", proc.output.data)
        self.assertNotIn(b"Traceback", proc.output.data)


def _morePrompts(seen: int, data: bytes) -> bool:
    """Debian telnet's prompt shown more than C{seen} times."""
    return data.count(b"telnet> ") > seen
