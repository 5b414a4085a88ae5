"""
sd_notify: what systemd hears over a gateway's life, read from a fake
NOTIFY_SOCKET (a unix datagram socket in a temporary directory).
"""

from __future__ import annotations

import os
import socket

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.notify import MIN_WATCHDOG_INTERVAL, Notifier
from serialgw.app.process import TwistdGatewayService
from serialgw.config.file import loadConfig
from tests.fakes import observeLog
from tests.realio import startedPty, testLockDir


class FakeSystemd:
    """A NOTIFY_SOCKET: the datagrams sent to it, one string each."""

    def __init__(self, test: SynchronousTestCase) -> None:
        directory = test.mktemp()
        os.mkdir(directory)
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        test.addCleanup(self.sock.close)
        self.environ = {"NOTIFY_SOCKET": self.path}

    def messages(self) -> list[str]:
        """What arrived since the last call."""
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return got


class NotifierTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.systemd = FakeSystemd(self)
        self.clock = Clock()
        self.text = "1 line(s), 1 up, 0 down; 0 client(s)"

    def notifier(self, **environ: str) -> Notifier:
        return Notifier(self.clock, lambda: self.text, environ={**self.systemd.environ, **environ},
                        monotonic=lambda: 123456789)

    def test_statusKeptCurrent(self) -> None:
        """READY=1 with the status at start; STATUS= again only when it changed, at most once a second."""
        notifier = self.notifier()
        notifier.ready()
        self.assertEqual(self.systemd.messages(), ["READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s)"])
        self.clock.advance(1)
        self.assertEqual(self.systemd.messages(), [])
        self.text = "1 line(s), 1 up, 0 down; 1 client(s)"
        self.clock.advance(0.5)
        self.text = "1 line(s), 0 up, 1 down (ttyS0); 1 client(s)"
        self.assertEqual(self.systemd.messages(), [])
        self.clock.advance(0.5)
        self.assertEqual(self.systemd.messages(), ["STATUS=1 line(s), 0 up, 1 down (ttyS0); 1 client(s)"])
        notifier.stopping()
        self.assertEqual(self.systemd.messages(), ["STOPPING=1\nSTATUS=stopping"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reload(self) -> None:
        """A reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 with the new status and the outcome."""
        notifier = self.notifier()
        notifier.ready()
        self.systemd.messages()
        notifier.reloading()
        self.text = "2 line(s), 2 up, 0 down; 0 client(s)"
        notifier.reloaded("reloaded: 1 added, 0 changed, 0 removed")
        self.assertEqual(self.systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=123456789\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=2 line(s), 2 up, 0 down; 0 client(s); reloaded: 1 added, 0 changed, 0 removed",
        ])
        self.clock.advance(1)
        self.assertEqual(self.systemd.messages(), [])
        notifier.stopping()

    def test_reloadEndingAfterStopping(self) -> None:
        """A reload that begins or ends once the stop has begun: systemd hears nothing after STOPPING=1 (no READY=1 nor a status that drops "stopping")."""
        notifier = self.notifier()
        notifier.ready()
        notifier.reloading()
        self.systemd.messages()
        notifier.stopping()
        notifier.reloaded("reload refused, see the log")
        notifier.reloading()
        notifier.reloaded("reloaded")
        self.assertEqual(self.systemd.messages(), ["STOPPING=1\nSTATUS=stopping"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sighupDuringStop(self) -> None:
        """SIGHUP while the gateway stops: the log says it reloads nothing, the file is not read, systemd hears nothing."""
        from twisted.internet.testing import MemoryReactorClock

        from tests.fakes import LogEvents

        log = LogEvents(self)
        service = TwistdGatewayService([], reactor=MemoryReactorClock())
        path = service.configPath = os.path.abspath(self.mktemp())  # no such file: reading it would be an error
        service.notifier = Notifier(self.clock, service.statusText, environ=self.systemd.environ, monotonic=lambda: 42)
        self.successResultOf(service.stopService())
        self.successResultOf(service.reloadFile())
        service.configPath = None
        service.reloadNothing()
        self.assertEqual(self.systemd.messages(), ["STOPPING=1\nSTATUS=stopping"])
        self.assertEqual([(e["log_format"], e.get("path")) for e in log.events if "SIGHUP" in e["log_format"]],
                         [("SIGHUP during the stop: {path} not reloaded", path), ("SIGHUP during the stop: nothing reloaded", None)])

    def test_watchdog(self) -> None:
        """WATCHDOG_USEC=2000000: WATCHDOG=1 at once and every second (half the timeout), until stopping."""
        notifier = self.notifier(WATCHDOG_USEC="2000000", WATCHDOG_PID=str(os.getpid()))
        notifier.ready()
        self.assertEqual(self.systemd.messages()[1:], ["WATCHDOG=1"])
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.systemd.messages(), ["WATCHDOG=1", "WATCHDOG=1"])
        notifier.stopping()
        self.clock.advance(5)
        self.assertEqual(self.systemd.messages(), ["STOPPING=1\nSTATUS=stopping"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_watchdogForAnotherProcess(self) -> None:
        """WATCHDOG_PID naming another process: no watchdog messages."""
        notifier = self.notifier(WATCHDOG_USEC="2000000", WATCHDOG_PID="1")
        notifier.ready()
        self.clock.advance(3)
        self.assertEqual(len(self.systemd.messages()), 1)
        notifier.stopping()

    def test_watchdogGarbage(self) -> None:
        """WATCHDOG_USEC that is no decimal number ('\u00b2', '-5', '0', '') means no watchdog, and no exception."""
        for usec in ("\u00b2", "\u0661", "-5", "0", "", "1e6"):
            notifier = self.notifier(WATCHDOG_USEC=usec)
            self.assertIsNone(notifier.watchdogInterval(), usec)
            notifier.ready()
            self.assertEqual(len(self.systemd.messages()), 1)
            notifier.stopping()
            self.systemd.messages()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_watchdogTiny(self) -> None:
        """WATCHDOG_USEC=1 does not make the reactor spin: WATCHDOG=1 at most every 10 ms."""
        notifier = self.notifier(WATCHDOG_USEC="1")
        self.assertEqual(notifier.watchdogInterval(), MIN_WATCHDOG_INTERVAL)
        self.assertEqual(MIN_WATCHDOG_INTERVAL, 0.01)
        notifier.stopping()

    def test_systemdNotReading(self) -> None:
        """A NOTIFY_SOCKET whose reader is stuck (its queue full) never blocks us: the message is dropped."""
        notifier = self.notifier()
        self.systemd.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        for _ in range(2000):
            notifier.send("STATUS=" + "x" * 1000)
        warnings = [e for e in events if e.get("log_namespace") == "serialgw.app.notify"]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["address"], self.systemd.path)

    def test_warnOnce(self) -> None:
        """A NOTIFY_SOCKET that is not there: one warning naming it as given (@name), not one a message."""
        events: list[dict[str, object]] = []
        observeLog(self, events.append)
        notifier = Notifier(self.clock, lambda: self.text,
                            environ={"NOTIFY_SOCKET": "@serialgw-test-nobody-" + str(os.getpid()),
                                     "WATCHDOG_USEC": "2000000"})
        notifier.ready()
        self.clock.advance(1)
        self.clock.advance(1)
        notifier.stopping()
        warnings = [e for e in events if e.get("log_namespace") == "serialgw.app.notify"]
        self.assertEqual([w["address"] for w in warnings], ["@serialgw-test-nobody-" + str(os.getpid())])

    def test_statusOneLine(self) -> None:
        """A line name with a newline (--device pty:/tmp/a$'\\n'MAINPID=1) cannot add an assignment to STATUS=."""
        self.text = "1 line(s), 0 up, 1 down (a\nMAINPID=1); 0 client(s)"
        notifier = self.notifier()
        notifier.ready()
        self.text = "1 line(s), 0 up, 1 down (a\nREADY=1); 0 client(s)"
        self.clock.advance(1)
        notifier.reloaded("reloaded: added ['b\nSTOPPING=1']")
        notifier.stopping()
        self.assertEqual(self.systemd.messages(), [
            "READY=1\nSTATUS=1 line(s), 0 up, 1 down (a MAINPID=1); 0 client(s)",
            "STATUS=1 line(s), 0 up, 1 down (a READY=1); 0 client(s)",
            "READY=1\nSTATUS=1 line(s), 0 up, 1 down (a READY=1); 0 client(s); reloaded: added ['b STOPPING=1']",
            "STOPPING=1\nSTATUS=stopping",
        ])

    def test_statusCountsNoConsoleLog(self) -> None:
        """STATUS='s clients are the line's clients but its console log: a farm of logged lines nobody is on said '3 client(s)'."""
        from twisted.internet.testing import StringTransport

        from serialgw.app.lines import linesStatus
        from serialgw.clients.consolelog import ConsoleLog
        from serialgw.clients.raw import RawClient
        from serialgw.config.listeners import parseListener
        from serialgw.config.logspec import LogSpec
        from serialgw.line.hub import Line
        from tests.fakes import RecordingDevice

        line = Line("a", RecordingDevice(), clock=self.clock)
        consoleLog = ConsoleLog(line, LogSpec(self.mktemp()), self.clock)
        self.addCleanup(consoleLog.close)
        self.assertEqual(linesStatus([line]), "1 line(s), 1 up, 0 down; 0 client(s)")
        RawClient(line, listener=parseListener("raw+4444")).makeConnection(StringTransport())
        self.assertEqual(linesStatus([line]), "1 line(s), 1 up, 0 down; 1 client(s)")

    def test_notUnderSystemd(self) -> None:
        """No NOTIFY_SOCKET: nothing is sent and no timer runs."""
        notifier = Notifier(self.clock, lambda: self.text, environ={"WATCHDOG_USEC": "2000000"})
        notifier.ready()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        notifier.reloading()
        notifier.reloaded()
        notifier.stopping()
        self.assertEqual(self.systemd.messages(), [])


class ServiceTests(TestCase):
    timeout = 30

    async def test_lifeOfAGateway(self) -> None:
        """Start, a status change, a reload that adds a line, a refused reload, stop: the exact messages."""
        systemd = FakeSystemd(self)
        clock = Clock()
        ptys = [startedPty(self) for _ in range(2)]
        path = self.mktemp()

        def write(count: int, extra: str = "") -> None:
            with open(path, "w") as f:
                for i in range(count):
                    f.write(f'[lines.l{i}]\ndevice = "{ptys[i].slaveName}"\nlock-dir = "{testLockDir()}"\n'
                            'listen = "raw+tcp:0:interface=127.0.0.1"\n')
                f.write(extra)

        write(1)
        service = TwistdGatewayService(loadConfig(path))
        service.configPath = path
        service.notifier = Notifier(clock, service.statusText, environ=systemd.environ, monotonic=lambda: 42)
        service.startService()
        self.assertEqual(systemd.messages(), ["READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s)"])

        service.lines["l0"].device.up = False
        clock.advance(1)
        self.assertEqual(systemd.messages(), ["STATUS=1 line(s), 0 up, 1 down (l0); 0 client(s)"])
        service.lines["l0"].device.up = True

        write(2)
        changes = await service.reloadFile()
        self.assertEqual(changes, {"added": ["l1"], "changed": [], "removed": []})
        self.assertEqual(systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=2 line(s), 2 up, 0 down; 0 client(s); reloaded: 1 added, 0 changed, 0 removed",
        ])

        write(2, "[lines.bad]\n")
        await service.reloadFile()
        self.assertEqual(systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=2 line(s), 2 up, 0 down; 0 client(s); reload refused, see the log",
        ])
        self.flushLoggedErrors()
        await service.stopService()
        self.assertEqual(systemd.messages(), ["STOPPING=1\nSTATUS=stopping"])
        self.assertEqual(clock.getDelayedCalls(), [])

    async def test_reloadThatRaises(self) -> None:
        """A reading of the file that raises what is no ConfigError (a bug): logged, the lines stay, systemd hears READY=1."""
        from serialgw.app import filereload

        systemd = FakeSystemd(self)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[lines.l0]\ndevice = "pty:"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n')
        service = TwistdGatewayService(loadConfig(path))
        service.configPath = path
        service.notifier = Notifier(Clock(), service.statusText, environ=systemd.environ, monotonic=lambda: 42)
        service.startService()
        self.addCleanup(service.stopService)
        line = service.lines["l0"]
        systemd.messages()

        def broken(path: str, shards: object = None, held: object = ()) -> None:
            raise OverflowError("a bug")

        self.patch(filereload, "loadFile", broken)
        self.assertIsNone(await service.reloadFile())
        self.assertEqual(len(self.flushLoggedErrors(OverflowError)), 1)
        self.assertEqual(systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s); reload refused, see the log",
        ])
        self.assertIs(service.lines["l0"], line)

    async def test_busyPortReloadRefused(self) -> None:
        """SIGHUP onto a port another socket holds: systemd hears the refusal, and the running line stays."""
        systemd = FakeSystemd(self)
        clock = Clock()
        pty = startedPty(self)
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        path = self.mktemp()

        def write(port: int) -> None:
            with open(path, "w") as f:
                f.write(f'[lines.l0]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
                        f'listen = "raw+tcp:{port}:interface=127.0.0.1"\n')

        write(0)
        service = TwistdGatewayService(loadConfig(path))
        service.configPath = path
        service.notifier = Notifier(clock, service.statusText, environ=systemd.environ, monotonic=lambda: 42)
        service.startService()
        self.addCleanup(service.stopService)
        line = service.lines["l0"]
        systemd.messages()
        write(held.getsockname()[1])
        changes = await service.reloadFile()
        self.assertEqual(list(changes), ["refused"])
        self.assertEqual(systemd.messages(), [
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading the configuration",
            "READY=1\nSTATUS=1 line(s), 1 up, 0 down; 0 client(s); reload refused, see the log",
        ])
        self.assertIs(service.lines["l0"], line)
        self.assertEqual(service.configs[0].listeners[0].endpoint, "tcp:0:interface=127.0.0.1")
