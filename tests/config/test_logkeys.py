"""
log-events and log-mark in a configuration file: per line and in
[defaults], bad values refused with FILE:LINE and the key, by --check too.
"""

from __future__ import annotations

import os

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app.check import checkLines
from serialgw.app.service import GatewayService
from serialgw.clients.logwriter import written
from serialgw.config.file import loadConfig
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import ConfigError
from tests.config.test_check import checked, write
from tests.realio import TtyEnd, closeClients, connect, listenerPort, startGateway, writeTemp
from tests.shortpaths import shortTemp

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/a.log"\n'


class LogKeysTests(SynchronousTestCase):
    def test_values(self) -> None:
        """The forms each key takes, in [defaults] or a line's table (the line's wins); left out, their defaults."""
        (a,) = loadConfig(write(self, LINE))
        self.assertEqual((a.log and a.log.events, a.log and a.log.mark), ("serialgw", 0))
        for given, events in (('"serialgw"', "serialgw"), ('"conserver"', "conserver"), ('"off"', "off"),
                              ("true", "serialgw"), ("false", "off")):
            (a,) = loadConfig(write(self, f"{LINE}log-events = {given}\nlog-mark = 60\n"))
            self.assertEqual(a.log, LogSpec("/var/log/a.log", events=events, mark=60))
        path = write(self, '[defaults]\nlog-events = "conserver"\nlog-mark = 15\n'
                           f'{LINE}[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nlog = "/var/log/b.log"\n'
                           'log-events = "off"\nlog-mark = 0\n')
        a, b = loadConfig(path)
        self.assertEqual([(c.log.events, c.log.mark) for c in (a, b) if c.log], [("conserver", 15), ("off", 0)])

    def test_badValuesNameFileLineKey(self) -> None:
        """A bad value is refused with FILE:LINE, the table and the key, quoted as typed; in [defaults] too."""
        events = "log-events must be one of 'serialgw', 'conserver', 'off' (or true/false), not "
        for key, value, message in (("log-events", '"Conserver"', events + "'Conserver'"),
                                    ("log-events", "1", events + "1"),
                                    ("log-events", '"on\\u001b"', events + "'on\\x1b'"),
                                    ("log-mark", "-1", "log-mark must be 0 (no marks) to 10080 minutes (a week), not -1"),
                                    ("log-mark", "10081", "log-mark must be 0 (no marks) to 10080 minutes (a week), "
                                                          "not 10081"),
                                    ("log-mark", '"15m"', "expected a whole number, not '15m'"),
                                    ("log-mark", "1.5", "expected a whole number, not 1.5"),
                                    ("log-mark", "true", "expected a whole number, not true")):
            path = write(self, f"{LINE}{key} = {value}\n")
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)), f"{path}:5: [lines.a] {key}: {message}")
            path = write(self, f"[defaults]\n{key} = {value}\n{LINE}")
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)), f"{path}:2: [defaults] {key}: {message}")

    def test_check(self) -> None:
        """--check says the same, and passes a good file."""
        path = write(self, f"{LINE}log-mark = 99999\n")
        with self.assertRaises(usage.UsageError) as caught:
            checked("--config", path)
        self.assertEqual(str(caught.exception), f"{path}:5: [lines.a] log-mark: log-mark must be 0 (no marks) to "
                                                "10080 minutes (a week), not 99999")
        status, _, _ = checked("--config", write(self, f'{LINE}log-events = "conserver"\nlog-mark = 15\n'))
        self.assertEqual(status, 0)

    def test_checkTypedNotAFile(self) -> None:
        """--check: a directory at a log-typed file's path is an error, as at the log's (the start would refuse it)."""
        log = shortTemp(self)
        os.mkdir(log + ".typed")
        text = f'[lines.a]\ndevice = "pty:{log}.pty"\nlisten = "4001"\nlog = "{log}"\n'
        self.assertEqual(checkLines(loadConfig(write(self, text + "log-typed = true\n"))),
                         ([f"line 'a': log-typed file {log + '.typed'!r} is not a regular file: "
                           "it is a directory"], []))
        self.assertEqual(checkLines(loadConfig(write(self, text))), ([], []))


class ReloadLogKeysTests(TestCase):
    """A reload that changes log-events or log-mark reaches the running line: its log is reopened with them."""

    timeout = 30

    async def test_reloadTurnsThemOnAndOff(self) -> None:
        """Turned on, an arrival is written in conserver's form, a mark is due, typing is traced; turned off, none."""
        link, log = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())

        def config(extra: str) -> list:  # type: ignore[type-arg]
            return loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\nlisten = "raw+tcp:0:interface=127.0.0.1"'
                                              f'\nlog = "{log}"\nlog-format = ""\n{extra}'))

        service: GatewayService = startGateway(self, *config(""))
        line = service.lines["a"]
        far = TtyEnd(link)
        self.addCleanup(far.close)

        async def arrival(typed: bytes) -> str:
            client = await connect(listenerPort(service))
            client.transport.write(typed)  # type: ignore[union-attr]
            await far.received.contains(typed)
            peer = f"127.0.0.1:{client.transport.getHost().port}"  # type: ignore[union-attr]
            await closeClients(client)
            return peer

        first = await arrival(b"1")
        self.assertEqual(await service.reload(config('log-events = "conserver"\nlog-mark = 1\nlog-typed = "text"\n')),
                         {"added": [], "changed": ["a"], "removed": []})
        self.assertIs(service.lines["a"], line)
        self.assertEqual([(c.spec.events, c.spec.mark) for c in line.logs], [("conserver", 1)])
        self.assertIsNotNone(line.logs[0]._markTick)  # type: ignore[attr-defined]
        second = await arrival(b"2")
        self.assertEqual(await service.reload(config('log-events = "off"\n')),
                         {"added": [], "changed": ["a"], "removed": []})
        self.assertIsNone(line.logs[0]._markTick)  # type: ignore[attr-defined]
        third = await arrival(b"3")
        with open(log, "rb") as f:
            text = f.read().decode()
        self.assertIn(f"[serialgw: {first} attached as writer]\n", text)
        self.assertRegex(text, rf"\n\[-- {second} attached as writer -- \w\w\w \w\w\w [ \d]\d \d\d:\d\d:\d\d \d{{4}}\]\n")
        self.assertNotIn(third, text)
        with open(log + ".typed", "rb") as f:
            self.assertEqual(f.read(), f"{second}: 2\n".encode())

    async def test_reloadInsideALineOfOutput(self) -> None:
        """A reload that reopens the log (a log key changed) inside a line of output: the line goes on, no stamp inside it."""
        link, log = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())

        def config(extra: str) -> list:  # type: ignore[type-arg]
            return loadConfig(writeTemp(self, f'[lines.a]\ndevice = "pty:{link}"\nlisten = "raw+tcp:0:interface=127.0.0.1"'
                                              f'\nlog = "{log}"\nlog-format = "T "\nlog-events = "off"\n{extra}'))

        service: GatewayService = startGateway(self, *config(""))
        far = TtyEnd(link)
        self.addCleanup(far.close)
        client = await connect(listenerPort(service))
        far.write(b"login: ")
        await client.received.contains(b"login: ")
        self.assertEqual(await service.reload(config("log-mark = 60\n")), {"added": [], "changed": ["a"], "removed": []})
        far.write(b"root\r\n")
        await client.received.contains(b"root\r\n")
        await closeClients(client)
        await written()  # (the log's writer thread may not have written it yet)
        with open(log, "rb") as f:
            self.assertEqual(f.read(), b"T login: root\r\n")
