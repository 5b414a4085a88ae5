"""
Every kind of listener with real peers: netcat over UDP, socat over unix
sockets, TLS clients with and without certificates, a dial-out that
reconnects, files, FIFOs, IPv6, and QEMU's wait-for-the-first-client.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import (
    TCP6ClientEndpoint,
    UNIXServerEndpoint,
    wrapClientTLS,
)
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.logger import formatEvent
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from serialgw.app.binding import StartupError, removeStaleSocket
from serialgw.clients.local import FileClient
from serialgw.config.listeners import parseListener
from serialgw.config.specs import DeviceSpec, LineConfig
from serialgw.devices.uucplock import processName
from tests.certs import Authority
from tests.fakes import LogEvents
from tests.realio import (
    Clients,
    Collector,
    Processes,
    connect,
    connectUnix,
    heldTCPPort,
    heldUdpPort,
    listenerPort,
    listenOnHeld,
    need,
    netconsolePort,
    ptyLine,
    ptysLinked,
    socketPath,
    startedPty,
    startGateway,
    testLockDir,
    until,
)


class ListenerTests(TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.pty = startedPty(self)
        self.clients = Clients()
        self.processes = Processes()

    async def tearDown(self) -> None:  # type: ignore[override]
        await self.clients.close()
        await self.processes.stop()

    async def test_udpNetcat(self) -> None:
        """udp:127.0.0.1:R@127.0.0.1:S: nc -u -l sees the console; nc -u types into it."""
        nc = need("nc")
        # nc binds a port of the kernel's choice and says which once bound:
        # the console's output (one datagram) is sent there only then (sent
        # before nc had started, on a loaded machine, it was lost), and no
        # other program can have taken the port meanwhile.
        listener = self.processes.spawn([nc, "-n", "-v", "-u", "-l", "127.0.0.1", "0"])
        bound = re.compile(rb"Bound on 127\.0\.0\.1 (\d+)")
        said = await listener.output.when(lambda data: bound.search(data) is not None, "say it is bound")
        remote = int(bound.search(said).group(1))  # type: ignore[union-attr]
        service = startGateway(self, ptyLine(self.pty, f"udp:127.0.0.1:{remote}@127.0.0.1:0"))
        typist = self.processes.spawn([nc, "-u", "127.0.0.1", str(netconsolePort(service))])
        typist.write(b"uname\n")
        self.assertEqual(await self.pty.received.length(6), b"uname\n")
        # nc -u -l answers nobody until a datagram arrives; the console's output is one.
        self.pty.write(b"Linux\r\n")
        heard = await listener.output.contains(b"Linux\r\n")
        # (Less what -v says on stderr: bound, and the first datagram's source.)
        self.assertEqual(re.sub(rb"(Bound on|Connection received on) [^\n]*\n", b"", heard), b"Linux\r\n")

    async def test_udpLargeDatagram(self) -> None:
        """A 60000-byte datagram reaches the device whole (Twisted's default read size, 8192, cut it short)."""
        service = startGateway(self, ptyLine(self.pty, f"udp:127.0.0.1:{heldUdpPort(self)}@127.0.0.1:0"))
        source = netconsolePort(service)
        data = bytes(i % 251 for i in range(60000))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(data, ("127.0.0.1", source))
            sender.sendto(b"END", ("127.0.0.1", source))
        self.assertEqual(await self.pty.received.contains(b"END"), data + b"END")

    async def test_unixSocat(self) -> None:
        """A unix listener is 0600, replaces a stale socket, talks to socat, and is removed at stop."""
        socat = need("socat")
        path = socketPath(self)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        service = startGateway(self, ptyLine(self.pty, f"raw+unix:{path}"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        peer = self.processes.spawn([socat, "-", f"UNIX-CONNECT:{path}"])
        peer.write(b"over unix\n")
        self.assertEqual(await self.pty.received.length(10), b"over unix\n")
        self.pty.write(b"back\n")
        await peer.output.contains(b"back\n")
        await peer.stop()
        self.processes.remove(peer)
        await service.stopService()
        self.assertFalse(os.path.exists(path))

    async def test_unixKeywordForm(self) -> None:
        """unix:address=PATH:mode=660 with an escaped colon in PATH: the stale socket there is replaced, the socket made is PATH, mode 0660, removed at stop."""
        path = socketPath(self, "s:b")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        escaped = path.replace(":", "\\:")
        service = startGateway(self, ptyLine(self.pty, f"raw+unix:address={escaped}:mode=660"))
        self.assertEqual((service.ports[0][1].getHost().name, stat.S_IMODE(os.stat(path).st_mode)),
                         (path.encode(), 0o660))
        client = await connectUnix(path)
        self.clients.append(client)
        assert client.transport is not None
        client.transport.write(b"keyword form\n")
        self.assertEqual(await self.pty.received.length(13), b"keyword form\n")
        await self.clients.close()
        await service.stopService()
        self.assertEqual(os.listdir(os.path.dirname(path)), [])

    async def test_abstractUnixNames(self) -> None:
        """twistd with "\\u0000NAME" in its TOML: abstract listeners and an abstract unix: device work end to end with socat."""
        socat = need("socat")
        name = f"serialgw-test-{os.getpid()}-{os.path.basename(os.path.dirname(self.mktemp()))}"
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(f'[lines.a]\ndevice = "{self.pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
                    f'listen = "raw+unix:\\u0000{name}-a"\n'
                    f'[lines.b]\ndevice = "unix:\\u0000{name}-a"\nlisten = "raw+unix:\\u0000{name}-b"\n')
        from tests.realio import gatewayArgv

        gateway = self.processes.spawn(gatewayArgv("--config", path))
        await gateway.output.contains(f"line b: raw listener ready on unix:@{name}-b".encode())
        await gateway.output.contains(f"unix:@{name}-a: connected".encode())
        peer = self.processes.spawn([socat, "-", f"ABSTRACT-CONNECT:{name}-b"])
        peer.write(b"through two abstract sockets\n")
        self.assertEqual(await self.pty.received.length(29), b"through two abstract sockets\n")
        self.pty.write(b"back\n")
        await peer.output.contains(b"back\n")
        output = gateway.output.data
        self.assertIn(f"connect with: socat -,raw,echo=0 ABSTRACT-CONNECT:{name}-a".encode(), output)
        self.assertIn(f"unix:@{name}-a is an abstract unix socket: it has no file mode".encode(), output)
        self.assertNotIn(b"Traceback", output)
        self.assertFalse(os.path.exists(f"@{name}-a") or os.path.exists(f"{name}-a"))

    async def test_unixDialOut(self) -> None:
        """unix:PATH,nowait (no server) dials out to a unix socket, as to a QEMU/Proxmox console."""
        path = socketPath(self)
        accepted: defer.Deferred[Collector] = defer.Deferred()

        class Far(Collector):
            def connectionMade(self) -> None:
                accepted.callback(self)

        port = await UNIXServerEndpoint(reactor, path).listen(protocol.Factory.forProtocol(Far))
        self.addCleanup(port.stopListening)
        startGateway(self, ptyLine(self.pty, f"raw+unix:{path},nowait"))
        far = await accepted
        self.clients.append(far)
        self.pty.write(b"to the far end")
        self.assertEqual(await far.received.length(14), b"to the far end")

    async def test_dialOutReconnects(self) -> None:
        """A dial-out reconnects when its listener goes away and comes back."""
        connections: list[defer.Deferred[Collector]] = [defer.Deferred(), defer.Deferred()]

        class Far(Collector):
            def connectionMade(self) -> None:
                next(d for d in connections if not d.called).callback(self)

        factory = protocol.Factory.forProtocol(Far)
        # The port held all along, not let go while the listener is away.
        number = heldTCPPort(self)
        port = listenOnHeld(number, factory)
        startGateway(self, ptyLine(self.pty, f"tcp:127.0.0.1:{number}"), retryPolicy=lambda attempt: 0.05)
        first = await connections[0]
        self.pty.write(b"one")
        self.assertEqual(await first.received.length(3), b"one")
        await port.stopListening()
        first.transport.loseConnection()  # type: ignore[union-attr]
        await first.closed
        port = listenOnHeld(number, factory)
        self.addCleanup(port.stopListening)
        second = await connections[1]
        self.clients.append(second)
        second.transport.write(b"two")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(3), b"two")

    async def test_tls(self) -> None:
        """TLS with client certificates: accepted with a good one, refused without or with another subject."""
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        alice = ca.issue("alice")
        mallory = ca.issue("mallory")
        service = startGateway(self, ptyLine(self.pty, f"raw+tls:0:interface=127.0.0.1:cert={cert}:key={key}"
                                                  f":ca={ca.path}:subjects=alice"))
        number = listenerPort(service)

        async def dial(client: tuple[str, str] | None) -> Collector:
            with open(ca.path, "rb") as f:
                trust = Certificate.loadPEM(f.read())
            mine = None
            if client is not None:
                with open(client[0], "rb") as f1, open(client[1], "rb") as f2:
                    mine = PrivateCertificate.loadPEM(f1.read() + f2.read())
            options = optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=mine)
            from twisted.internet.endpoints import TCP4ClientEndpoint

            endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", number))
            dialled = await endpoint.connect(protocol.Factory.forProtocol(Collector))
            assert isinstance(dialled, Collector)
            return dialled

        good = await dial(alice)
        self.clients.append(good)
        good.transport.write(b"hello over tls")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(14), b"hello over tls")
        for refused in (None, mallory):
            client = await dial(refused)
            client.transport.write(b"sneaky")  # type: ignore[union-attr]
            await client.closed
        self.pty.write(b"!")
        await good.received.length(1)
        self.assertEqual(self.pty.received.data, b"hello over tls")

    async def test_tlsReadOnlyCertificate(self) -> None:
        """readonly=CN: a client with that certificate reads the console but cannot write; others can."""
        ca = Authority(os.path.abspath(self.mktemp()))
        cert, key = ca.issue("gateway", dns="localhost")
        alice, carol = ca.issue("alice"), ca.issue("carol")
        service = startGateway(self, ptyLine(self.pty, f"raw+tls:0:interface=127.0.0.1:cert={cert}:key={key}"
                                                  f":ca={ca.path}:subjects=alice:readonly=carol"))
        number = listenerPort(service)
        with open(ca.path, "rb") as f:
            trust = Certificate.loadPEM(f.read())

        async def dial(pair: tuple[str, str]) -> Collector:
            with open(pair[0], "rb") as f1, open(pair[1], "rb") as f2:
                mine = PrivateCertificate.loadPEM(f1.read() + f2.read())
            from twisted.internet.endpoints import TCP4ClientEndpoint

            endpoint = wrapClientTLS(optionsForClientTLS("localhost", trustRoot=trust, clientCertificate=mine),
                                     TCP4ClientEndpoint(reactor, "127.0.0.1", number))
            client = await endpoint.connect(protocol.Factory.forProtocol(Collector))
            assert isinstance(client, Collector)
            self.clients.append(client)
            return client

        watcher = await dial(carol)
        writer = await dial(alice)
        watcher.transport.write(b"carol types")  # type: ignore[union-attr]
        writer.transport.write(b"alice types")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(11), b"alice types")
        # The watcher is attached once its handshake is done, which the
        # writer's typing may overtake: the output after both are there.
        await until(self, lambda: len(service.lines["t"].clients) == 2, "watcher and writer attached")
        self.pty.write(b"both read")
        await watcher.received.contains(b"both read")
        await writer.received.contains(b"both read")
        self.assertEqual(self.pty.received.data, b"alice types")

    async def test_fileAppends(self) -> None:
        """file:PATH appends device output to the file."""
        path = os.path.abspath(self.mktemp())
        with open(path, "wb") as f:
            f.write(b"old\n")
        service = startGateway(self, ptyLine(self.pty, f"file:{path}", "raw+tcp:0:interface=127.0.0.1"))
        watcher = await connect(listenerPort(service))
        self.clients.append(watcher)
        watcher.transport.write(b"x")  # type: ignore[union-attr]
        await self.pty.received.length(1)
        self.pty.write(b"boot log\n")
        await watcher.received.length(9)
        (output,) = [c for c in service.lines["t"].clients if isinstance(c, FileClient)]
        await output.written()  # (a regular file is written off the reactor's thread)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"old\nboot log\n")

    async def test_pipe(self) -> None:
        """pipe:PATH reads PATH.in into the device and writes its output to PATH.out."""
        path = os.path.abspath(self.mktemp())
        os.mkfifo(path + ".in")
        os.mkfifo(path + ".out")
        startGateway(self, ptyLine(self.pty, f"pipe:{path}"))
        fdIn = os.open(path + ".in", os.O_WRONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, fdIn)
        fdOut = os.open(path + ".out", os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, fdOut)
        os.write(fdIn, b"in the pipe")
        self.assertEqual(await self.pty.received.length(11), b"in the pipe")
        got = b""
        self.pty.write(b"out")
        while len(got) < 3:
            d: defer.Deferred[None] = defer.Deferred()
            reactor.callLater(0.01, d.callback, None)  # type: ignore[attr-defined]
            await d
            try:
                got += os.read(fdOut, 100)
            except BlockingIOError:
                pass
        self.assertEqual(got, b"out")

    def test_pipeMissingNamed(self) -> None:
        """pipe:PATH with neither PATH.in and PATH.out nor PATH there: the start and a reload say which paths they looked for."""
        from serialgw.app.reload import checkFiles
        from serialgw.clients.streams import fifoPair

        path = os.path.abspath(self.mktemp())
        os.mkfifo(path + ".in")  # half a pair is no pair
        why = f"neither {path}.in and {path}.out nor {path} is there (QEMU's pipe: FIFOs, made with mkfifo)"
        self.assertEqual(self.assertRaises(FileNotFoundError, fifoPair, path).strerror, why)
        self.assertEqual(checkFiles([("t", parseListener(f"pipe:{path}"))], []),
                         f"line 't': cannot open listener 'pipe:{path}': {why}")

    async def test_waitForFirstClient(self) -> None:
        """tcp:..,server without nowait: output from before the first client reaches it."""
        service = startGateway(self, ptyLine(self.pty, "tcp:127.0.0.1:0,server"))
        self.assertTrue(service.lines["t"].waitForClient)
        self.pty.write(b"early boot\r\n")
        client = await connect(listenerPort(service))
        self.clients.append(client)
        self.assertEqual(await client.received.length(12), b"early boot\r\n")

    async def test_ipv6(self) -> None:
        """telnet:[::1]:0,server,nowait listens on IPv6 loopback."""
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            raise SkipTest("no IPv6 loopback here") from None
        service = startGateway(self, ptyLine(self.pty, "raw+telnet:[::1]:0,server,nowait"))
        number = listenerPort(service)
        client = await TCP6ClientEndpoint(reactor, "::1", number).connect(protocol.Factory.forProtocol(Collector))
        self.clients.append(client)
        client.transport.write(b"v6")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(2), b"v6")

    async def test_noDelay(self) -> None:
        """
        TCP_NODELAY is set on a client's socket when the listener asks for
        it (QEMU's nodelay, or the nodelay flag); by default Nagle's
        algorithm stays on, so bulk output leaves in full segments.
        """
        service = startGateway(self, ptyLine(self.pty, "raw,nodelay+tcp:0:interface=127.0.0.1",
                                             "tcp:127.0.0.1:0,server,nowait,nodelay", "raw+tcp:0:interface=127.0.0.1"))
        flags = []
        for _, port in service.ports:
            client = await connect(port.getHost().port)
            self.clients.append(client)
            client.transport.write(b"k")  # type: ignore[union-attr]
            self.assertEqual(await self.pty.received.length(1), b"k")
            handle = service.lines["t"].clients[-1].transport.getHandle()  # type: ignore[attr-defined]
            flags.append(handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        self.assertEqual(flags, [1, 1, 0])

    async def test_telnetSynch(self) -> None:
        """
        Telnet's Synch (IAC DM, the DM sent as TCP urgent data) is read in
        the stream (Linux took the DM out of it, and the IAC ate the next
        byte): the data before the DM is discarded, an IAC IP before it
        still reaches the device as ^C, the bytes after it are typed.
        """
        service = startGateway(self, ptyLine(self.pty, "telnet+tcp:0:interface=127.0.0.1"))
        client = await connect(listenerPort(service))
        self.clients.append(client)
        client.transport.write(b"0")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(1), b"0")
        client.transport.getHandle().send(b"1\xff\xf4\xff\xf2", socket.MSG_OOB)  # type: ignore[union-attr]
        client.transport.write(b"2345")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.contains(b"5"), b"0\x032345")

    async def test_ptyListenerCarriesOutput(self) -> None:
        """
        A program on a pty: listener reads the device's output and types
        into it; while nobody reads the pty, what waits is bounded and the
        rest counted as dropped.
        """
        import tty

        link = os.path.abspath(self.mktemp())
        service = startGateway(self, ptyLine(self.pty, f"pty:{link}"))
        await ptysLinked(service)
        client = service.lines["t"].clients[0]
        slave = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.addCleanup(os.close, slave)
        tty.setraw(slave)
        self.pty.write(b"boot\r\n")
        received = bytearray()

        def readSome() -> bool:
            try:
                received.extend(os.read(slave, 100))
            except BlockingIOError:
                pass
            return len(received) >= 6

        await until(self, readSome, "6 bytes on the pty: listener's tty")
        self.assertEqual(received, b"boot\r\n")
        os.write(slave, b"typed")
        self.assertEqual(await self.pty.received.length(5), b"typed")
        # Nobody reads now: at most its outbuf (and the chunk that passed it)
        # waits in the gateway, and its newest outbuf; the rest is dropped.
        chunk = b"x" * 65536
        for _ in range(12):
            client.deliver(chunk)
        guard = client.guard
        self.assertLessEqual(len(client.dataBuffer) + client._tempDataLen, guard.bound + 65536)  # type: ignore[attr-defined]
        self.assertEqual(guard.heldBytes, guard.bound)
        self.assertGreater(guard.dropped, 0)


class StaleSocketTests(SynchronousTestCase):
    """What is at a unix listener's path before it listens."""

    def test_lockedByLiveProcess(self) -> None:
        """A socket nobody answers on, whose lock names a live process, is left in place and the error names that process."""
        path = os.path.join(self.mktemp() + "d", "s.sock")
        os.makedirs(os.path.dirname(path))
        bound = socket.socket(socket.AF_UNIX)
        bound.bind(path)
        self.addCleanup(bound.close)
        os.symlink(str(os.getppid()), path + ".lock")
        with self.assertRaises(StartupError) as caught:
            removeStaleSocket(path, "a")
        self.assertEqual(str(caught.exception), f"line 'a': {path!r} is locked by process {os.getppid()} "
                                                f"({path + '.lock'!r}), which is still there")
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))

    def test_lockOfDeadProcess(self) -> None:
        """A lock naming no live process (nor one naming this one) does not keep a stale socket."""
        for holder in ("999999999", str(os.getpid()), "junk"):
            path = os.path.join(self.mktemp() + "d", "s.sock")
            os.makedirs(os.path.dirname(path))
            bound = socket.socket(socket.AF_UNIX)
            bound.bind(path)
            bound.close()
            os.symlink(holder, path + ".lock")
            removeStaleSocket(path, "a")
            self.assertFalse(os.path.lexists(path), holder)


    def strangerLock(self, path: str) -> int:
        """A lock at C{path}.lock naming a live process that started an hour after it was written (its PID reused)."""
        from tests.devices.test_uucplock import liveHolder
        stranger = liveHolder(self)
        os.symlink(str(stranger), path + ".lock")
        then = time.time() - 3600
        os.utime(path + ".lock", (then, then), follow_symlinks=False)
        return stranger

    def test_lockOfReusedPid(self) -> None:
        """A stale socket whose lock names a live process started long after the lock was written (its PID reused) is removed with the lock, said, and Twisted's lock can be taken."""
        from twisted.python.lockfile import FilesystemLock
        events = LogEvents(self)
        for present in (True, False):
            path = os.path.join(self.mktemp() + "d", "s.sock")
            os.makedirs(os.path.dirname(path))
            if present:
                bound = socket.socket(socket.AF_UNIX)
                bound.bind(path)
                bound.close()
            stranger = self.strangerLock(path)
            removeStaleSocket(path, "a")
            self.assertEqual((os.path.lexists(path), os.path.lexists(path + ".lock")), (False, False), present)
            said = [formatEvent(e) for e in events.events if "lock" in e.get("log_format", "")]
            self.assertEqual(len(said), 1, said)
            self.assertRegex(said[0], "^" + re.escape(f"line a: removed stale lock {path + '.lock'}: process {stranger} (")
                             + r".*\) started \d+ s after the lock was written and has not " + re.escape(
                                 f"{path} open: not its maker (its PID was reused)") + "$")
            del events.events[:]
            lock = FilesystemLock(path + ".lock")
            self.assertTrue(lock.lock())
            lock.unlock()

    def test_lockOfReusedPidOnALiveSocket(self) -> None:
        """A socket someone listens on keeps its lock, even one naming a reused PID: the error says it is in use."""
        path = os.path.join(self.mktemp() + "d", "s.sock")
        os.makedirs(os.path.dirname(path))
        listener = self.otherListener(path)
        stranger = self.strangerLock(path)
        with self.assertRaises(StartupError) as caught:
            removeStaleSocket(path, "a")
        self.assertEqual(str(caught.exception),
                         f"line 'a': {path!r} is in use by another process: {listener}{processName(listener)}")
        self.assertEqual(os.readlink(path + ".lock"), str(stranger))

    def test_ownSocketSaidOurs(self) -> None:
        """A socket this very process listens on (another of its listeners: watch-all's, a line's) is said to be the gateway's own, not another process's; watch-all is not called a line."""
        path = os.path.join(self.mktemp() + "d", "s.sock")
        os.makedirs(os.path.dirname(path))
        bound = socket.socket(socket.AF_UNIX)
        bound.bind(path)
        bound.listen(1)
        self.addCleanup(bound.close)
        with self.assertRaises(StartupError) as caught:
            removeStaleSocket(path, "b")
        self.assertEqual(str(caught.exception), f"line 'b': {path!r} is one of this gateway's own sockets already "
                                                "(another of its listeners: a line's, watch-all's, the status "
                                                "endpoint's or SSH's; --check names which)")
        with self.assertRaises(StartupError) as caught:
            removeStaleSocket(path, "watch-all", owner="watch-all")
        self.assertTrue(str(caught.exception).startswith(f"watch-all: {path!r} is one of this gateway's own"),
                        str(caught.exception))
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))

    def test_otherProcessNamed(self) -> None:
        """A socket another live process listens on is said with that process's PID and name."""
        path = os.path.join(self.mktemp() + "d", "s.sock")
        os.makedirs(os.path.dirname(path))
        other = self.otherListener(path)
        with self.assertRaises(StartupError) as caught:
            removeStaleSocket(path, "a")
        self.assertEqual(str(caught.exception),
                         f"line 'a': {path!r} is in use by another process: {other}{processName(other)}")

    def otherListener(self, path: str) -> int:
        """A child process listening on a unix socket at C{path} until the test ends: its PID."""
        other = subprocess.Popen([sys.executable, "-c", "import socket, sys; s = socket.socket(socket.AF_UNIX); "
                                  "s.bind(sys.argv[1]); s.listen(1); print(flush=True); sys.stdin.read()", path],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(other.stdout.close)  # type: ignore[union-attr]
        self.addCleanup(other.wait)
        self.addCleanup(other.stdin.close)  # type: ignore[union-attr]
        other.stdout.readline()  # type: ignore[union-attr]
        return other.pid


class DialOutBackoffTests(SynchronousTestCase):
    """A dial-out's reconnection backoff on the injected clock."""

    def setUp(self) -> None:
        from twisted.application.internet import backoffPolicy
        from twisted.internet.testing import MemoryReactorClock

        from tests.fakes import RecordingPort

        self.clock = MemoryReactorClock()
        config = LineConfig("vm", DeviceSpec("tty", "/dev/fake"),
                            listeners=(parseListener("unix:/run/qemu-server/100.serial0,nowait"),))
        # The gateway's policy (0.5 s doubling to 30 s), without jitter.
        policy = backoffPolicy(initialDelay=0.5, maxDelay=30.0, factor=2.0, jitter=lambda: 0)
        startGateway(self, config, reactor=self.clock, retryPolicy=policy,
                     openPort=lambda *args: RecordingPort(self.clock))

    def link(self, upFor: float) -> float:
        """The far end takes the pending dial, keeps it C{upFor} s, closes it; the seconds until the next dial."""
        from tests.fakes import flap

        return flap(self.clock, upFor)

    def test_flappingPeerBacksOff(self) -> None:
        """A peer that accepts and closes at once: the next dial waits 1, 2, 4, 8, 16, then 30 s (not 1 s each time)."""
        self.assertEqual([self.link(0.1) for _ in range(8)], [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])

    def test_stableLinkResetsBackoff(self) -> None:
        """A link that stayed up STABLE_LINK s starts the backoff again (1 s); one just short of it does not."""
        from serialgw.devices.backoff import STABLE_LINK

        self.assertEqual([self.link(0.1) for _ in range(4)], [1.0, 2.0, 4.0, 8.0])
        self.assertEqual(self.link(STABLE_LINK - 0.5), 16.0)
        self.assertEqual(self.link(STABLE_LINK), 1.0)
        self.assertEqual(self.link(0.1), 2.0)

    def test_retryCountCarried(self) -> None:
        """The log's 'retry N' counts the attempts since the dial-out last stayed up STABLE_LINK s, as the backoff does: a peer that accepts and closes at once is retry 1, 2, 3, ..., not retry 1 for ever."""
        from twisted.logger import formatEvent

        from serialgw.app.logs import tidy
        from serialgw.devices.backoff import STABLE_LINK
        from tests.fakes import observeLog

        said: list[str] = []
        # Tidied as it is logged, as the gateway's observer does.
        observeLog(self, lambda e: said.extend(formatEvent(t) for t in [tidy(e)] if t is not None)
                   if e.get("log_format", "").startswith("Scheduling retry") else None)
        waits = [self.link(0.1) for _ in range(3)] + [self.link(STABLE_LINK), self.link(0.1)]
        self.assertEqual(waits, [1.0, 2.0, 4.0, 1.0, 2.0])
        self.assertEqual(said, [
            f"line vm: /run/qemu-server/100.serial0: connection closed; retry {n} in {delay:.1f} s"
            for n, delay in [(1, 1.0), (2, 2.0), (3, 4.0), (1, 1.0), (2, 2.0)]
        ])
