"""
A reload that moves a listener: to another address, the new one is opened
before the old one closes (a line never goes without it, and keeps the old
one if the new cannot be opened); on the same address the old one closes
first, and a new one that cannot be opened puts the old one back if it can,
said in an error naming the line and the listener.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.notify import Notifier
from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.config.file import loadFile
from tests.app.test_notify import FakeSystemd
from tests.fakes import LogEvents, RecordingPort

HEAD = '[defaults]\nlock = false\n[lines.a]\ndevice = "/dev/fake-a"\n'


class Port:
    """A listening port of L{Ports}: closed by stopListening."""

    def __init__(self, reactor: Ports, port: int, interface: str) -> None:
        self.reactor, self.port, self.interface = reactor, port, interface

    def stopListening(self) -> None:
        self.reactor.events.append(("close", self.port))
        self.reactor.listening.remove(self.port)

    def getHost(self) -> Any:
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", self.interface or "0.0.0.0", self.port)

    def startListening(self) -> None:
        pass


class Ports(MemoryReactorClock):
    """A reactor whose TCP ports are bound once at a time (EADDRINUSE else), and can be taken by someone else."""

    def __init__(self) -> None:
        super().__init__()
        self.listening: list[int] = []
        self.events: list[tuple[str, int]] = []
        # Binds of a port that fail (as if another process took it), counted down.
        self.taken: dict[int, int] = {}
        # Serving, as a reload's reactor is: a port in use is not looked for in /proc (what the machine runs).
        self.running = True

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:  # type: ignore[override]
        if port in self.listening or self.taken.get(port, 0):
            if self.taken.get(port, 0):
                self.taken[port] -= 1
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        self.listening.append(port)
        self.events.append(("open", port))
        return Port(self, port, interface)


def inUse(port: int) -> str:
    """What a reload adds to a port in use: how to find who holds it (it does not look: the reactor serves)."""
    return (f": another program holds port {port} (ss -tanp 'sport = :{port}' names one that listens or is connected "
            "from it; one bound and not listening is listed nowhere): stop it, or give the listener another port")


class ReloadOrderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Ports()
        self.path = os.path.abspath(self.mktemp())
        self.systemd = FakeSystemd(self)
        self.log = LogEvents(self)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        return port

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def gateway(self, text: str) -> TwistdGatewayService:
        self.write(text)
        service = TwistdGatewayService(loadFile(self.path).lines, reactor=self.clock, openPort=self.openPort)
        service.configPath = self.path
        service.source = loadFile(self.path)
        service.notifier = Notifier(self.clock, service.statusText, environ=self.systemd.environ, monotonic=lambda: 42)
        GatewayService.startService(service)
        self.addCleanup(lambda: self.successResultOf(service.stopService()))
        return service

    def reload(self, service: TwistdGatewayService, text: str) -> Any:
        self.write(text)
        return self.successResultOf(service.reloadFile())

    def errors(self) -> list[str]:
        return [formatEvent(e) for e in self.log.at(LogLevel.error)]

    def test_movedOpensFirst(self) -> None:
        """A listener moved to another port: the new one listens before the old one closes (after the reload's probe of it)."""
        service = self.gateway(HEAD + 'listen = "raw+tcp:4101"\n')
        self.clock.events.clear()
        result = self.reload(service, HEAD + 'listen = "raw+tcp:4102"\n')
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        # (The probe of 4102 first, then the new one, and only then the old one closed.)
        self.assertEqual(self.clock.events, [("open", 4102), ("close", 4102), ("open", 4102), ("close", 4101)])
        self.assertEqual(self.clock.listening, [4102])

    def test_movedNewFailsOldKept(self) -> None:
        """A moved listener whose new port cannot be bound after the check (taken meanwhile): the line keeps the old one, said naming the line and both listeners; the next reload tries the move again."""
        service = self.gateway(HEAD + 'listen = "raw+tcp:4101"\n')
        original = self.clock.listenTCP

        def taking(port: int, *args: Any, **kwargs: Any) -> Any:
            listened = original(port, *args, **kwargs)
            if port == 4102 and ("close", 4102) not in self.clock.events:
                self.clock.taken[4102] = 1  # taken by another process once the probe lets go of it
            return listened

        self.clock.listenTCP = taking  # type: ignore[method-assign]
        self.clock.events.clear()
        result = self.reload(service, HEAD + 'listen = "raw+tcp:4102"\n')
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(self.clock.listening, [4101])
        self.assertEqual(self.errors(), [
            f"reload: {self.path}:5: line 'a': cannot listen on 'raw+tcp:4102': Couldn't listen on any:4102: "
            f"[Errno 98] Address already in use{inUse(4102)}; the line keeps listener 'raw+tcp:4101' as it was"])
        self.assertEqual([spec.text for spec in service.configs[0].listeners], ["raw+tcp:4101"])
        # Tried again by the next reload of the same file: now it moves.
        self.assertEqual(self.reload(service, HEAD + 'listen = "raw+tcp:4102"\n'),
                         {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(self.clock.listening, [4102])

    def test_samePortFailsOldPutBack(self) -> None:
        """A listener changed on the same port closes first; if the new one cannot be opened, the old one is put back, said naming the line and the listener."""
        service = self.gateway(HEAD + 'listen = "raw+tcp:4101"\n')
        self.clock.events.clear()
        self.clock.taken[4101] = 1
        result = self.reload(service, HEAD + 'listen = "telnet+tcp:4101"\n')
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(self.clock.events, [("close", 4101), ("open", 4101)])
        self.assertEqual(self.errors(), [
            f"reload: {self.path}:5: line 'a': cannot listen on 'telnet+tcp:4101': Couldn't listen on any:4101: "
            f"[Errno 98] Address already in use{inUse(4101)}; the line keeps listener 'raw+tcp:4101' as it was"])
        self.assertEqual([spec.text for spec in service.configs[0].listeners], ["raw+tcp:4101"])

    def test_samePortFailsNoneLeft(self) -> None:
        """A listener changed on the same port whose new and old settings both cannot be opened: the error says the line now has neither."""
        service = self.gateway(HEAD + 'listen = "raw+tcp:4101"\n')
        self.clock.taken[4101] = 2
        self.reload(service, HEAD + 'listen = "telnet+tcp:4101"\n')
        self.assertEqual(self.clock.listening, [])
        self.assertEqual(self.errors(), [
            f"reload: {self.path}:5: line 'a': cannot listen on 'telnet+tcp:4101': Couldn't listen on any:4101: "
            f"[Errno 98] Address already in use{inUse(4101)}; line 'a' is now WITHOUT that listener, nor its old one "
            f"(line 'a': cannot listen on 'raw+tcp:4101': Couldn't listen on any:4101: [Errno 98] Address already in "
            f"use{inUse(4101)})"])

    def test_removedClosedAtOnce(self) -> None:
        """A listener a reload removes (nothing new on its line) is closed, not left for new ones that never come."""
        service = self.gateway(HEAD + 'listen = ["raw+tcp:4101", "raw+tcp:4102"]\n')
        self.assertEqual(self.reload(service, HEAD + 'listen = "raw+tcp:4101"\n'),
                         {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(self.clock.listening, [4101])

    def test_portTakenOverClosedFirst(self) -> None:
        """A listener whose port a line the reload adds takes over is closed first (as before), so the added line gets it."""
        service = self.gateway(HEAD + 'listen = "raw+tcp:4101"\n')
        other = '[lines.b]\ndevice = "/dev/fake-b"\nlisten = "raw+tcp:4101"\n'
        self.assertEqual(self.reload(service, HEAD + 'listen = "raw+tcp:4102"\n' + other),
                         {"added": ["b"], "changed": ["a"], "removed": []})
        self.assertEqual(sorted(self.clock.listening), [4101, 4102])
        self.assertEqual(self.errors(), [])


class RealSocketTests(TestCase):
    async def test_movedOnLoopback(self) -> None:
        """On real sockets (a pty as the device): a client connected through the old listener stays across the move, the new listener takes clients, the old port is closed once the reload is done."""
        from twisted.internet import reactor

        from tests.realio import closeClients, connect, listenerPort, ptyLine, startedPty, startGateway

        pty = startedPty(self)
        service = startGateway(self, ptyLine(pty, "raw+tcp:0:interface=127.0.0.1", name="a"), reactor=reactor)
        oldPort = listenerPort(service)
        before = await connect(oldPort)
        result = await service.reload([ptyLine(pty, "raw,outbuf=8192+tcp:0:interface=127.0.0.1", name="a")])
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        newPort = listenerPort(service)
        self.assertNotEqual(newPort, oldPort)
        after = await connect(newPort)
        try:
            self.assertEqual(len(service.lines["a"].clients), 2)
            with self.assertRaises(ConnectionRefusedError):
                with socket.create_connection(("127.0.0.1", oldPort), timeout=5):
                    pass
        finally:
            await closeClients(before, after)
