"""
Every optional setting's default path, for the TOML file and for the
command line: from a file (or option list) that sets everything, each key
is left out in turn (and then all of them), the value it falls back to is
the value object's own default, and the line really works with it: a
client's input reaches the device, the device's output reaches the client,
and the client is on the line's list (status page, C{w}).

A console log left at its defaults once failed this way: its defaults
were read from the attrs class (slot descriptors, not the values), so the
first client to attach got no output and was missing from the status page.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

import attrs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from serialgw.app import singleline, tap
from serialgw.app.service import GatewayService
from serialgw.app.status import lineStatus
from serialgw.config.file import loadConfig
from serialgw.config.linetable import LINE_KEYS
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import SHOWN, ConfigError, LineConfig, SerialSettings, quote
from tests.realio import TtyEnd, closeClients, connect, startedPty, testLockDir

LINE_DEFAULTS = {f.name: f.default for f in attrs.fields(LineConfig)}
LOG_DEFAULTS = {f.name: f.default for f in attrs.fields(LogSpec)}

# Every key a line may have, set away from its default (and valid on a pty).
# A key added to LINE_KEYS needs a value here, so its default path is tried.
LOG_FILE = "console.log"
FULL_TOML = {
    "serial": '"57600,8N1"',
    "baud": "38400",
    "bytesize": "7",
    "parity": '"E"',
    "stopbits": "2",
    "xonxoff": "true",
    "rtscts": "true",
    "break-duration": "500",
    "signature": '"rack 4 port 2"',
    "notices": "false",
    "restore": "false",
    "mode": '"exclusive"',
    "max-clients": "4",
    "backlog": "1024",
    "log": "LOG",
    "log-format": '"%H:%M "',
    "log-max-size": "100000",
    "log-daily": "false",
    "log-keep": "2",
    "log-events": '"conserver"',
    "log-mark": "15",
    "log-typed": '"hexdump"',
    "coalesce": '"1,5"',
    "write": '["*"]',
    "read": '["*"]',
    "admin": '["*"]',
    "open-string": '"open\\r"',
    "close-string": '"close\\r"',
    "dtr": '"off"',
    "rts": '"off"',
    "idle-dtr": '"off"',
    "idle-rts": '"off"',
    "pace": "1",
    "pace-line": "2",
    "lock": "false",
    "lock-dir": '"/tmp"',
    "on-demand": "true",
    "kick-old-user": "true",
    "banner": "'{line} at {settings}\\r\\n'",
    "on-demand-linger": "30",
    "idle-timeout": '"5m"',
    "idle-string": "'\\r'",
    "init-command": '"true"',
    "init-timeout": "10",
    "init-spin-max": "3",
    "init-spin-window": '"30s"',
    # (A pty carries no break: a sequence of keys alone.)
    "break-sequences": "{ 2 = '#.' }",
    "close-on": "'NO CARRIER'",
    "aliases": '["t-old", "rack4-t"]',
    # (Its default is true: false serves no line at all, tried in tests.config.test_enablekey.)
    "enable": "true",
    # Without --shard the key is checked and has no effect.
    "shard": "0",
}
REQUIRED_TOML = ("device", "listen")
# Left out with the key (option) each needs: alone it is refused (it would do nothing).
NEEDING = {"on-demand": ["on-demand-linger"], "idle-timeout": ["idle-string"],
           "init-command": ["init-timeout", "init-spin-max", "init-spin-window"]}
FULL_SETTINGS = SerialSettings(38400, 7, "E", 2, xonxoff=True, rtscts=True)


class SettingsChange(TypedDict, total=False):
    """Fields of SerialSettings that a test changes (the keyword arguments of evolve)."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    xonxoff: bool
    rtscts: bool


# What the settings are with one key left out: the others still say the rest.
SETTINGS_WITHOUT: dict[str, SettingsChange] = {
    "serial": {},
    "baud": {"baudrate": 57600},
    "bytesize": {"bytesize": 8},
    "parity": {"parity": "N"},
    "stopbits": {"stopbits": 1},
    "xonxoff": {"xonxoff": False},
    "rtscts": {"rtscts": False},
}
# Keys whose default is one field of LineConfig (or of its LogSpec).
LINE_FIELD = {
    "break-duration": "breakDuration",
    "signature": "signature",
    "notices": "notices",
    "restore": "restoreSettings",
    "mode": "mode",
    "max-clients": "maxClients",
    "backlog": "backlog",
    "log": "log",
    "open-string": "openString",
    "close-string": "closeString",
    "dtr": "dtr",
    "rts": "rts",
    "idle-dtr": "idleDtr",
    "idle-rts": "idleRts",
    "pace": "pace",
    "pace-line": "paceLine",
    "lock": "lock",
    "lock-dir": "lockDir",
    "on-demand": "onDemand",
    "kick-old-user": "kickOldUser",
    "banner": "banner",
    "on-demand-linger": "onDemandLinger",
    "idle-timeout": "idleTimeout",
    "idle-string": "idleString",
    "init-command": "initCommand",
    "init-timeout": "initTimeout",
    "init-spin-max": "initSpinMost",
    "init-spin-window": "initSpinWindow",
    "break-sequences": "breakSequences",
    "close-on": "closeOn",
    "aliases": "aliases",
}
LOG_FIELD = {"log-format": "format", "log-max-size": "maxSize", "log-daily": "daily", "log-keep": "keep",
             "log-events": "events", "log-mark": "mark", "log-typed": "typed"}
COALESCE_FIELDS = ("coalesceMin", "coalesceMax", "coalesceOn")


def checkDefaults(case: Any, config: LineConfig, omitted: list[str]) -> None:
    """The value objects say, for each omitted key, their own default."""
    for key in omitted:
        if key in LINE_FIELD:
            case.assertEqual(getattr(config, LINE_FIELD[key]), LINE_DEFAULTS[LINE_FIELD[key]], key)
        elif key in LOG_FIELD and config.log is not None:
            case.assertEqual(getattr(config.log, LOG_FIELD[key]), LOG_DEFAULTS[LOG_FIELD[key]], key)
        elif key in ("write", "read", "admin"):
            case.assertEqual(getattr(config.rights, key), getattr(LINE_DEFAULTS["rights"], key), key)
        elif key == "coalesce":
            case.assertEqual([getattr(config, f) for f in COALESCE_FIELDS],
                             [LINE_DEFAULTS[f] for f in COALESCE_FIELDS])


async def carries(case: TestCase, service: GatewayService, far: Any, logPath: str = "") -> None:
    """
    A client of the service's first listener types and reads: both reach
    the other end; it is on the line's list while connected.
    """
    line = next(iter(service.lines.values()))
    config = next(iter(service.configs))
    # The line's first listener (others, --status or --watch-all, may come first).
    port = next(p for spec, p in service.ports if spec in config.listeners)
    client = await connect(port.getHost().port)
    try:
        client.transport.write(b"typed")  # type: ignore[union-attr]
        await far.received.contains(b"typed")
        far.write(b"output\r\n")
        await client.received.contains(b"output\r\n")
        local = client.transport.getHost().port  # type: ignore[union-attr]
        case.assertEqual([c["peer"] for c in lineStatus(line)["clients"] if c["peer"].startswith("127.")],
                         [f"127.0.0.1:{local}"])
    finally:
        await closeClients(client)
    if logPath:
        await line.logs[0].written()  # type: ignore[attr-defined]  # (written off the reactor's thread)
        with open(logPath, "rb") as f:
            text = f.read()
        case.assertIn(b"output\r\n", text)
        case.assertIn(f"127.0.0.1:{local} attached as writer".encode(), text)


class TomlDefaultsTests(TestCase):
    timeout = 120

    def test_everyKeyHasAFullValue(self) -> None:
        """Each key a line may have is tried here (a new key needs a value in FULL_TOML)."""
        self.assertEqual(sorted(LINE_KEYS), sorted(set(FULL_TOML) | set(REQUIRED_TOML)))

    def write(self, devicePath: str, keys: dict[str, str], log: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f'[lines.t]\ndevice = "{devicePath}"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n')
            for key, value in keys.items():
                f.write(f'{key} = {value.replace("LOG", repr(log).replace(chr(39), chr(34)))}\n')
        return path

    async def startWithout(self, omitted: list[str]) -> None:
        pty = startedPty(self)
        log = os.path.abspath(self.mktemp())
        keys = {k: v for k, v in FULL_TOML.items() if k not in omitted}
        (config,) = loadConfig(self.write(pty.slaveName, keys, log))
        checkDefaults(self, config, omitted)
        if len(omitted) == 1 and omitted[0] in SETTINGS_WITHOUT:
            self.assertEqual(config.settings, attrs.evolve(FULL_SETTINGS, **SETTINGS_WITHOUT[omitted[0]]))
        # (Its value checked above: the lock taken in this run's own directory,
        # not the machine's /var/lock, nor /tmp, the value given, where a lock
        # left by a test stopped midway would stay for every run.)
        config = attrs.evolve(config, lockDir=testLockDir())
        service = GatewayService([config])
        service.startService()
        try:
            await carries(self, service, pty, log if config.log is not None else "")
        finally:
            await service.stopService()

    async def test_eachKeyLeftOut(self) -> None:
        """Every optional key left out in turn: its default is the value object's, and data flows both ways."""
        for key in FULL_TOML:
            # (Without log, a line's own log-* keys are refused: they go too.)
            # (So do on-demand-linger without on-demand, idle-string without idle-timeout.)
            await self.startWithout([key] + ([k for k in FULL_TOML if k.startswith("log-")] if key == "log" else [])
                                    + NEEDING.get(key, []))

    async def test_everythingLeftOut(self) -> None:
        """Only device and listen: every default at once, data flows both ways."""
        await self.startWithout(list(FULL_TOML))
        (config,) = loadConfig(self.write("/dev/ttyS0", {}, ""))
        self.assertEqual(attrs.evolve(config, listeners=()), LineConfig("t", config.device))

    async def test_logAloneKeepsItsDefaults(self) -> None:
        """log = PATH and no other log key: the log stamps with its default format and the client is attached."""
        await self.startWithout([k for k in FULL_TOML if k.startswith("log-")])

    def test_requiredKeysNamed(self) -> None:
        """device or listen left out: the error names the key."""
        for key in REQUIRED_TOML:
            path = self.mktemp()
            with open(path, "w") as f:
                f.write("[lines.t]\n" + ('listen = "4001"\n' if key == "device" else 'device = "/dev/ttyS0"\n'))
            self.assertIn(f"[lines.t] {key}:", str(self.assertRaises(ConfigError, loadConfig, path)))


class OptionDefaultsTests(TestCase):
    timeout = 120

    def fullOptions(self, device: str) -> dict[str, list[str]]:
        """Every option of a single line, set away from its default."""
        return {
            "device": ["--device", device],
            "port": ["--port", "raw+tcp:0:interface=127.0.0.1"],
            "listen": ["--listen", "raw+tcp:0:interface=127.0.0.1"],
            "name": ["--name", "rack4"],
            "serial": ["--serial", "57600,8N1"],
            "baud": ["--baud", "38400"],
            "bytesize": ["--bytesize", "7"],
            "parity": ["--parity", "E"],
            "stopbits": ["--stopbits", "2"],
            "xonxoff": ["--xonxoff"],
            "rtscts": ["--rtscts"],
            "break-duration": ["--break-duration", "500"],
            "signature": ["--signature", "rack 4 port 2"],
            "coalesce": ["--coalesce", "1,5"],
            "status": ["--status", "tcp:0:interface=127.0.0.1"],
            "max-clients": ["--max-clients", "4"],
            "watch-all": ["--watch-all", "raw+tcp:0:interface=127.0.0.1"],
            "open-string": ["--open-string", "open\\r"],
            "close-string": ["--close-string", "close\\r"],
            "dtr": ["--dtr", "off"],
            "rts": ["--rts", "off"],
            "idle-dtr": ["--idle-dtr", "off"],
            "idle-rts": ["--idle-rts", "off"],
            "pace": ["--pace", "1"],
            "pace-line": ["--pace-line", "2"],
            "no-lock": ["--no-lock"],
            "lock-dir": ["--lock-dir", "/tmp"],
            "no-notices": ["--no-notices"],
            "no-restore": ["--no-restore"],
            "on-demand": ["--on-demand"],
            "kick-old-user": ["--kick-old-user"],
            "on-demand-linger": ["--on-demand-linger", "30"],
            "idle-timeout": ["--idle-timeout", "5m"],
            "idle-string": ["--idle-string", "\\r"],
            "init-command": ["--init-command", "true"],
            "init-timeout": ["--init-timeout", "10"],
            "banner": ["--banner", "{line} at {settings}\\r\\n"],
            "wait-for-device": ["--wait-for-device"],
            "busy-poll": ["--busy-poll", "20"],
        }

    def test_everyOptionHasAFullValue(self) -> None:
        """
        Each option is tried here (a new option needs a value in
        fullOptions); --config and --shard (which needs it) are the file's
        tests (tests/app/test_shard.py for --shard), --check, --help and
        --version do something else than serve; the SSH options make the
        SSH face (they go together, and test_ssh tries them).
        """
        options = tap.Options()
        names = ({p[0] for p in options.optParameters} | {f[0] for f in options.optFlags}
                 | {n[len("opt_"):].replace("_", "-") for n in dir(options) if n.startswith("opt_")})
        self.assertEqual(sorted(names - {"config", "shard", "check", "help", "version"} - set(singleline.SSH_OPTIONS)), sorted(self.fullOptions("")))

    async def startWithout(self, omitted: list[str]) -> None:
        pty = startedPty(self)
        far: Any = pty
        if "device" in omitted:
            # The default device is a pty made by the gateway (at a path of
            # this test's own, not the real default's /tmp/serialgw0).
            link = os.path.abspath(self.mktemp())
            self.patch(singleline, "DEFAULT_DEVICE", f"pty:{link}")
            # And without the options that mean nothing on a pty (refused with one: test_remotekeys).
            omitted = [*omitted, *(name for name in ("no-lock", "lock-dir", "dtr", "rts", "idle-dtr", "idle-rts",
                                                                 "rtscts", "break-duration", "on-demand",
                                                                 "on-demand-linger")
                                   if name not in omitted)]
        if "port" in omitted and "listen" in omitted:
            self.patch(singleline, "DEFAULT_PORT", "tcp:0:interface=127.0.0.1")
        args = [a for name, more in self.fullOptions(pty.slaveName).items() if name not in omitted for a in more]
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(args)
        config = options["line"]
        translated = {"no-notices": "notices", "no-restore": "restore", "no-lock": "lock"}
        checkDefaults(self, config, [translated.get(k, k) for k in omitted])
        if len(omitted) == 1 and omitted[0] in SETTINGS_WITHOUT:
            self.assertEqual(config.settings, attrs.evolve(FULL_SETTINGS, **SETTINGS_WITHOUT[omitted[0]]))
        if "name" in omitted:
            self.assertEqual(config.name, os.path.basename(link) if "device" in omitted else pty.slaveName[5:].replace("/", "-"))
        status = parseListener(options["status"]).endpoint if options["status"] else None
        self.assertEqual(status is None, "status" in omitted)
        self.assertEqual(options["watchAllSpec"] is None, "watch-all" in omitted)
        # (Its lock in this run's own directory, not /tmp, the value given: see TomlDefaultsTests.startWithout.)
        lines = [attrs.evolve(line, lockDir=testLockDir()) for line in options["lines"]]
        service = GatewayService(lines, status=status, watchAll=options["watchAllSpec"])
        service.startService()
        try:
            if "device" in omitted:
                far = TtyEnd(link)
                self.addCleanup(far.close)
            await carries(self, service, far)
        finally:
            await service.stopService()

    async def test_eachOptionLeftOut(self) -> None:
        """Every option left out in turn: its default is the value object's, and data flows both ways."""
        for name in self.fullOptions(""):
            await self.startWithout([name] + NEEDING.get(name, []))

    async def test_noOptions(self) -> None:
        """No option at all (twistd -n serialgw): a pty device, a telnet listener, data flows both ways."""
        await self.startWithout(list(self.fullOptions("")))


class LogSpecTests(SynchronousTestCase):
    def test_absurdLogValues(self) -> None:
        """A log's numbers and format are checked when read, each error naming the key."""
        for key, value, message in [
            ("log-keep", "-1", "log-keep must be 0 to 1000, not -1"),
            ("log-keep", "1000000000", "log-keep must be 0 to 1000, not 1000000000"),
            ("log-max-size", "-5", "log-max-size must be 0 (no limit) to 1099511627776 bytes (1 TiB), not -5"),
            ("log-format", '"%Y\\u0000"', "log-format '%Y\\x00': embedded null character"),
            ("log", '""', "log path is empty"),
        ]:
            path = self.mktemp()
            with open(path, "w") as f:
                log = "" if key == "log" else 'log = "/tmp/x.log"\n'
                f.write(f'[lines.t]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n{log}{key} = {value}\n')
            error = str(self.assertRaises(ConfigError, loadConfig, path))
            self.assertEqual(error, f"{path}:{4 if key == 'log' else 5}: [lines.t] {key}: {message}")


# The last: a TOML integer past any float (10**400).
ABSURD = ("-1", "0", "2147483648", "3000000000", "18446744073709551616", "nan", "inf", "-inf", "1e400", "²", "½", "1" + "0" * 400)


class AbsurdNumbersTests(SynchronousTestCase):
    """
    Every number a user gives (file, options, listener and device strings)
    with absurd values: taken, or refused with a ConfigError that quotes it;
    never another exception (a traceback at start or at a SIGHUP reload).
    """

    def check(self, parse: Any, text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as e:
            # (Quoted whole up to SHOWN characters; a longer text by its first ones and its length.)
            self.assertIn(text[:SHOWN] if len(text) <= SHOWN else f"{text[:SHOWN]}'... ({len(text)} characters)", str(e))
            return None

    def test_fileKeys(self) -> None:
        """Numeric TOML keys: refused with the key named, or within bounds."""
        for key in ("baud", "bytesize", "stopbits", "break-duration", "max-clients", "backlog", "log-max-size",
                    "log-keep", "serial", "coalesce", "pace", "pace-line"):
            for value in ABSURD + ("9223372036854775807", '"3000000000"', '"nan"'):
                if value in ("²", "½"):
                    value = f'"{value}"'
                path = self.mktemp()
                with open(path, "w") as f:
                    f.write(f'[lines.t]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/tmp/x.log"\n{key} = {value}\n')
                config = self.check(loadConfig, path)
                if config is None:
                    continue
                (line,) = config
                self.assertLessEqual(line.settings.baudrate, 2**31 - 1)
                self.assertLessEqual(line.backlog, 64 * 1024 * 1024)
                self.assertTrue(0 < line.breakDuration <= 10)
                self.assertTrue(0 <= line.coalesceMin <= line.coalesceMax <= 10)
                assert line.log is not None
                self.assertTrue(0 <= line.log.keep <= 1000 and line.log.maxSize >= 0, (key, value))

    def test_options(self) -> None:
        """Numeric options: a UsageError quoting the value, or within bounds."""
        from twisted.python.usage import UsageError

        for option in ("--baud", "--bytesize", "--stopbits", "--break-duration", "--max-clients", "--serial",
                       "--coalesce", "--port", "--pace", "--pace-line"):
            for value in ABSURD:
                options = tap.Options()
                options.exitOnError = False
                try:
                    options.parseOptions(["--device", "/dev/ttyS0", option, value])
                except UsageError as e:
                    self.assertIn(quote(value), str(e))
                    continue
                line = options["line"]
                self.assertLessEqual(line.settings.baudrate, 2**31 - 1)
                self.assertTrue(0 < line.breakDuration <= 10)

    def test_listenerAndDeviceStrings(self) -> None:
        """Ports, outbuf= and idle= in listener and device strings: ConfigError, or within bounds."""
        from serialgw.config.parsers import parseDevice

        for value in ABSURD:
            for text in (value, f"tcp::{value},server", f"telnet:host:{value}", f"udp::{value}",
                         f"udp::4555@{value}", f"raw,outbuf={value}+4444", f"raw,idle={value}+4444"):
                spec = self.check(parseListener, text)
                if spec is not None:
                    self.assertTrue(0 <= spec.port <= 65535 and 1024 <= spec.outbuf <= 1 << 30, text)
                    self.assertTrue(spec.idle == 0 or 0 < spec.idle <= 365 * 24 * 3600, text)
            for text in (f"tcp:host:{value}", f"rfc2217://host:{value}", f"telnet:[::1]:{value}"):
                device = self.check(parseDevice, text)
                if device is not None:
                    self.assertTrue(0 < device.port < 65536, text)
