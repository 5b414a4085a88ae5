"""
What a start or a reload finds on disk (a log's directory, a listener's
file, a lock directory) is said at the file's line of the key, as every
other error about the file is: C{farm.toml:12: line 'b': cannot open log ...}.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import applying
from serialgw.app.notify import Notifier
from serialgw.app.process import TwistdGatewayService
from serialgw.app.service import GatewayService
from serialgw.config.file import loadFile
from tests.app.test_notify import FakeSystemd
from tests.app.test_unixnames import LONG, PAST
from tests.fakes import LogEvents, RecordingPort
from tests.shortpaths import shortTemp

LINE_A = '[lines.a]\ndevice = "/dev/fake-a"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n'
FIRST = '[defaults]\nlock = false\n' + LINE_A


class PlacesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.path = os.path.abspath(self.mktemp())
        self.missing = shortTemp(self)
        self.systemd = FakeSystemd(self)
        self.log = LogEvents(self)

    def openPort(self, *args: Any) -> RecordingPort:
        port = RecordingPort(self.clock)
        port.modem = 0
        return port

    def write(self, text: str) -> None:
        with open(self.path, "w") as f:
            f.write(text)

    def gateway(self, text: str = FIRST) -> TwistdGatewayService:
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

    def test_reloadLogPlaced(self) -> None:
        """A reload refused for a log it cannot open names the file's line of that line's log key."""
        service = self.gateway()
        result = self.reload(service, FIRST + '[lines.b]\ndevice = "/dev/fake-b"\nlisten = "raw+tcp:0:interface=127.0.0.1"'
                                              f'\nlog = "{self.missing}/b.log"\n')
        self.assertEqual(result, {"refused": [f"{self.path}:9: line 'b': cannot open log "
                                              f"{self.missing + '/b.log'!r}: No such file or directory"]})

    def test_reloadListenerPlaced(self) -> None:
        """A reload refused for a file: listener it cannot open names the file's line of that line's listen key."""
        service = self.gateway()
        result = self.reload(service, FIRST + f'[lines.b]\ndevice = "/dev/fake-b"\n\nlisten = "file:{self.missing}/b.out"\n')
        self.assertEqual(result, {"refused": [f"{self.path}:9: line 'b': cannot open listener "
                                              f"'file:{self.missing}/b.out': No such file or directory"]})

    def test_reloadLockDirFromDefaultsPlaced(self) -> None:
        """A lock directory given in [defaults] that is not there is said at [defaults]' lock-dir."""
        service = self.gateway()
        result = self.reload(service, f'[defaults]\nlock = false\nlock-dir = "{self.missing}"\n' + LINE_A +
                             '[lines.b]\ndevice = "/dev/fake-b"\nlisten = "raw+tcp:0:interface=127.0.0.1"\nlock = true\n')
        self.assertEqual(len(result["refused"]), 1)
        self.assertTrue(result["refused"][0].startswith(f"{self.path}:3: line 'b': "), result)
        self.assertIn(self.missing, result["refused"][0])

    def test_reloadRetunedLogPlaced(self) -> None:
        """A running line's new log that cannot be opened (gone since the check) is logged at its log key."""
        service = self.gateway()
        bad = os.path.join(self.missing, "a.log")
        # As if it went between the reload's check and its open.
        self.patch(applying, "checkFiles", lambda *args: None)
        self.assertEqual(self.reload(service, FIRST + f'log = "{bad}"\n'),
                         {"added": [], "changed": ["a"], "removed": []})
        errors = [e["reason"] for e in self.log.events if "the line runs without it" in e.get("log_format", "")]
        self.assertEqual(errors, [f"{self.path}:6: line 'a': cannot open log {bad!r}: No such file or directory"])

    def test_startPlaced(self) -> None:
        """A start that cannot open a line's log says the file's line of its log key."""
        self.write(FIRST + f'\nlog = "{self.missing}/a.log"\n')
        service = TwistdGatewayService(loadFile(self.path).lines, reactor=self.clock, openPort=self.openPort)
        service.configPath = self.path
        service.source = loadFile(self.path)
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))
        error = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(str(error), f"serialgw: error: {self.path}:7: line 'a': cannot open log "
                                     f"{self.missing + '/a.log'!r}: No such file or directory")

    def test_dialOutRefusesTheReload(self) -> None:
        """A reload adding a unix dial-out whose path is too long is refused, naming the file's line of its listen key."""
        result = self.reload(self.gateway(), FIRST + f'[lines.b]\ndevice = "/dev/fake-b"\nlisten = "unix:{LONG},nowait"\n')
        self.assertEqual(result, {"refused": [f"{self.path}:8: line 'b': listener 'unix:{LONG},nowait': {PAST}"]})

    def test_deviceRefusesTheReload(self) -> None:
        """A reload adding a line on a unix: device whose path is too long is refused, naming the file's line of its device key."""
        result = self.reload(self.gateway(), FIRST + f'[lines.b]\ndevice = "unix:{LONG}"\n'
                             'listen = "raw+tcp:0:interface=127.0.0.1"\n')
        self.assertEqual(result, {"refused": [f"{self.path}:7: line 'b': device 'unix:{LONG}': {PAST}"]})

    def test_portClashRefusesTheReload(self) -> None:
        """A reload whose file has two lines on one port is refused as --check says it, naming both lines, both listeners and the port, at the second's listen key; the running lines stay (it bound the first, then said only that the port was the gateway's own). Two on one unix socket path, likewise; more clashes counted."""
        service = self.gateway()
        text = (FIRST + '[lines.b]\ndevice = "/dev/fake-b"\nlisten = "raw+tcp:4601"\n'
                '[lines.c]\ndevice = "/dev/fake-c"\nlisten = ["raw+tcp:4701:interface=127.0.0.1", '
                '"telnet+tcp:4601:interface=127.0.0.1"]\n')
        self.assertIsNone(self.reload(service, text))
        sock = shortTemp(self)
        self.assertIsNone(self.reload(service, text.replace("4601:interface", "4602:interface")
                                      + f'[lines.d]\ndevice = "/dev/fake-d"\nlisten = "unix:{sock}"\n'
                                      + f'[lines.e]\ndevice = "/dev/fake-e"\nlisten = "raw+unix:{sock}"\n'
                                      + '[lines.f]\ndevice = "/dev/fake-f"\nlisten = "raw+tcp:4602"\n'))
        self.assertEqual([formatEvent(e) for e in self.log.at(LogLevel.error)], [
            f"reload refused, the running configuration stays: {self.path}:11: line 'c': listener "
            "'telnet+tcp:4601:interface=127.0.0.1' takes TCP port 4601, as line 'b', listener 'raw+tcp:4601' already "
            "does",
            f"reload refused, the running configuration stays: {self.path}:17: line 'e': listener 'raw+unix:{sock}' "
            f"takes path '{sock}', as line 'd', listener 'unix:{sock}' already does (and 1 more such clash(es): "
            "--check names them)"])
        self.assertEqual(list(service.lines), ["a"])
