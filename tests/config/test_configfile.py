"""
The configuration file: many lines in one process, errors that name the
file, the line and the key; the status page, field by field.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.logger import formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody

from serialgw.app import tap
from serialgw.app.service import GatewayService
from serialgw.config.file import loadConfig
from serialgw.config.listenerspecs import Protocol
from serialgw.config.reading import MAX_CONFIG_SIZE
from serialgw.config.specs import SHOWN, ConfigError, DeviceSpec, SerialSettings, quote
from tests.fakes import observeLog
from tests.realio import (
    Collector,
    FdReader,
    closeClients,
    connect,
    listenerPort,
    listeningSockets,
    socketPath,
    startedPty,
    startGateway,
    startProcess,
    testLockDir,
    until,
    writeTemp,
)
from tests.shortpaths import shortDirectory


class FileTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        return writeTemp(self, text)

    def test_lines(self) -> None:
        """Defaults, then a table a line; listen takes one string or a list."""
        path = self.write(
            '[defaults]\nserial = "9600,8N1"\nbreak-duration = 500\n\n'
            '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = ["4001", "raw,ro+4101"]\n\n'
            '[lines.vm100]\ndevice = "unix:/var/run/qemu-server/100.serial0"\nlisten = 4002\n'
        )
        web1, vm100 = loadConfig(path)
        self.assertEqual((web1.name, web1.device, web1.settings, web1.breakDuration),
                         ("web1", DeviceSpec("tty", "/dev/ttyUSB0"), SerialSettings(9600), 0.5))
        self.assertEqual([(s.endpoint, s.protocol, s.readOnly) for s in web1.listeners],
                         [("tcp:4001", Protocol.TELNET, False), ("tcp:4101", Protocol.RAW, True)])
        # ([defaults]' serial reaches it too, unused: a unix: socket carries none, and its own would be refused.)
        self.assertEqual((vm100.device.kind, vm100.settings.baudrate, vm100.listeners[0].endpoint),
                         ("unix", 9600, "tcp:4002"))

    def test_maxClients(self) -> None:
        """max-clients: 64 a line when not given, 0 for none, from [defaults] or the line; below 0 is refused quoting it (backlog too)."""
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n\n'
                          '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nmax-clients = 0\n')
        self.assertEqual([c.maxClients for c in loadConfig(path)], [64, 0])
        path = self.write('[defaults]\nmax-clients = 3\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        self.assertEqual([c.maxClients for c in loadConfig(path)], [3])
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nmax-clients = -1\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] max-clients: expected 0 (no limit) to 65536 clients, not -1")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbacklog = -5\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] backlog: expected 0 to 67108864 bytes, not -5")

    def test_breakDurationFromOneMillisecond(self) -> None:
        """break-duration below 1 ms (0.5: seconds meant) is refused, as its message says; 1 ms and 10 s are taken."""
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbreak-duration = 0.5\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] break-duration: expected 1 to 10000 milliseconds, not 0.5")
        for ms in (1, 10000):
            path = self.write(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbreak-duration = {ms}\n')
            self.assertEqual(loadConfig(path)[0].breakDuration, ms / 1000)

    def test_digitStringsPastIntLimit(self) -> None:
        """A string of more than 4300 digits where a number goes: the key's ConfigError quoting it, not int()'s ValueError."""
        big = "9" * 4301
        path = self.write(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nbaud = "{big}"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] baud: baud rate must be 1 to 2147483647, not '{big[:SHOWN]}'... (4301 characters)")

    def test_errorsNameFileLineKey(self) -> None:
        """Errors say file:line, the table and the key."""
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n\n'
                          '[lines.b]\ndevice = "/dev/ttyS1"\nparity = "Q"\nlisten = "4002"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(str(e), f"{path}:7: [lines.b] parity: parity must be one of N, E, O, M, S, not 'Q'")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\ncolour = "blue"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertTrue(str(e).startswith(f"{path}:4: unknown key 'colour' in [lines.a]"), str(e))
        path = self.write('[lines.a]\nlisten = "4001"\n')
        self.assertTrue(str(self.assertRaises(ConfigError, loadConfig, path)).startswith(f"{path}:1: [lines.a] device: missing"))
        path = self.write('[lines.a\n')
        self.assertTrue(str(self.assertRaises(ConfigError, loadConfig, path)).startswith(f"{path}:1: "))
        self.assertIn("no lines", str(self.assertRaises(ConfigError, loadConfig, self.write("[defaults]\n"))))
        self.assertIn("cannot read configuration", str(self.assertRaises(ConfigError, loadConfig, "/nonexistent.toml")))

    def test_nulInPathIsAConfigError(self) -> None:
        """A configuration path with a NUL (from an API caller, a --check or reload path from elsewhere) is a ConfigError naming it, not a ValueError."""
        from serialgw.config.file import loadFile

        e = self.assertRaises(ConfigError, loadFile, "/etc/serialgw\0.toml")
        self.assertEqual(str(e), "cannot read configuration '/etc/serialgw\\x00.toml': a path cannot hold a NUL character")


    def test_oneDeviceOrLogALine(self) -> None:
        """Two lines on one device (however the path is written) or one console log: refused naming file:line, the key and the other line."""
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n\n'
                          '[lines.b]\ndevice = "/dev/../dev/ttyS0"\nlisten = "4002"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:6: [lines.b] device: '/dev/../dev/ttyS0' is line 'a''s device too")
        path = self.write('[lines.a]\ndevice = "unix:/run/vm.serial0"\nlisten = "4001"\n'
                          '[lines.b]\ndevice = "unix:/run/vm.serial0"\nlisten = "4002"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:5: [lines.b] device: 'unix:/run/vm.serial0' is line 'a''s device too")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/same.log"\n'
                          '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nlog = "/var/log/./same.log"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:8: [lines.b] log: '/var/log/./same.log' is line 'a''s log too")
        # A log given in [defaults] is every line's: named where it is.
        path = self.write('[defaults]\nlog = "/var/log/all.log"\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                          '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [defaults] log: for line 'b', '/var/log/all.log' is line 'a''s log too (each "
                         "line its own: {line} is the line's name, e.g. '/var/log/{line}.log')")
        # Remote consoles, a pty each, distinct logs: every line its own.
        path = self.write('[lines.a]\ndevice = "telnet:vm:4444"\nlisten = "4001"\nlog = "/var/log/a.log"\n'
                          '[lines.b]\ndevice = "telnet:vm:4444"\nlisten = "4002"\nlog = "/var/log/b.log"\n'
                          '[lines.c]\ndevice = "pty:/tmp/c"\nlisten = "4003"\n[lines.d]\ndevice = "pty:/tmp/d"\nlisten = "4004"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a", "b", "c", "d"])

    def test_ptyLoopRefused(self) -> None:
        """
        A line whose device is its own pty: listener's link, or lines whose
        devices are each other's pty links: refused naming the file, the line
        and the ring (started, the line ran a byte typed on it round the loop
        for ever, a core a quarter busy); one line's device on another's pty
        link, with no way back, is a null modem and stays allowed.
        """
        path = self.write('[lines.a]\ndevice = "/tmp/x/a"\nlisten = ["4001", "pty:/tmp/x/./a"]\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: '/tmp/x/a' is the link of its own pty: listener: what is "
                         "written to it would come back to it for ever (a loop)")
        path = self.write('[lines.a]\ndevice = "/tmp/x/b"\nlisten = "pty:/tmp/x/a"\n'
                          '[lines.b]\ndevice = "/tmp/x/c"\nlisten = "pty:/tmp/x/b"\n'
                          '[lines.c]\ndevice = "/tmp/x/a"\nlisten = "pty:/tmp/x/c"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: '/tmp/x/b' is the link of line 'b''s pty: listener, line "
                         "'b''s device is line 'c''s, line 'c''s device is line 'a''s: what is written to it would "
                         "come back to it for ever (a loop)")
        path = self.write('[lines.a]\ndevice = "/tmp/x/b"\nlisten = "pty:/tmp/x/a"\n'
                          '[lines.b]\ndevice = "/dev/ttyS0"\nlisten = "pty:/tmp/x/b"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a", "b"])

    def test_ptyLoopThroughSymlinkRefused(self) -> None:
        """A device that is a symlink to its own pty: listener's link (not made yet, or left by a former run), or reached through a linked directory: refused as the loop it is (started, one byte went round for ever: bytes_to_device 84 KB in 4 s)."""
        base = shortDirectory(self)
        os.symlink("loop", os.path.join(base, "alias"))
        path = self.write(f'[lines.a]\ndevice = "{base}/alias"\nlisten = ["4001", "pty:{base}/loop"]\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: '{base}/alias' is the link of its own pty: listener: what is "
                         "written to it would come back to it for ever (a loop)")
        # The pty link a former run left (to its pty) is passed through, not followed past.
        os.symlink("/dev/pts/999999", os.path.join(base, "loop"))
        self.assertRaises(ConfigError, loadConfig, path)
        os.symlink(base, os.path.join(base, "dir"))
        path = self.write(f'[lines.a]\ndevice = "{base}/dir/loop"\nlisten = ["4001", "pty:{base}/loop"]\n')
        self.assertRaises(ConfigError, loadConfig, path)
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", f"{base}/alias", "--listen", f"pty:{base}/loop"])
        self.assertEqual(str(e), f"--device '{base}/alias' is the link of its own pty: listener: what is written to it "
                                 "would come back to it for ever (a loop)")
        # A symlink to another line's pty link with no way back stays a null modem.
        path = self.write(f'[lines.a]\ndevice = "{base}/alias"\nlisten = "4001"\n'
                          f'[lines.b]\ndevice = "/dev/ttyS0"\nlisten = ["4002", "pty:{base}/loop"]\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a", "b"])

    def test_ptyLoopThroughBindMountRefused(self) -> None:
        """A device reached through a bind mount of its pty: listener's directory (someone else's mount: no symlink, another path) is compared by what the directory is (stat), and refused as the loop it is."""
        base = shortDirectory(self)
        real, mounted = os.path.join(base, "run"), os.path.join(base, "mnt")
        os.makedirs(real)
        os.makedirs(mounted)
        try:
            done = subprocess.run(["mount", "--bind", real, mounted], capture_output=True)
        except OSError as e:
            raise SkipTest(f"mount: {e}") from None
        if done.returncode != 0:
            raise SkipTest(f"mount --bind: {done.stderr.decode(errors='replace').strip()}")
        self.addCleanup(subprocess.run, ["umount", mounted], capture_output=True)
        path = self.write(f'[lines.a]\ndevice = "{mounted}/a"\nlisten = ["4001", "pty:{real}/a"]\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: '{mounted}/a' is the link of its own pty: listener: what is "
                         "written to it would come back to it for ever (a loop)")
        # Another name in that directory is no loop.
        path = self.write(f'[lines.a]\ndevice = "{mounted}/b"\nlisten = ["4001", "pty:{real}/a"]\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a"])
        options = tap.Options()
        options.exitOnError = False
        self.assertRaises(UsageError, options.parseOptions, ["--device", f"{mounted}/a", "--listen", f"pty:{real}/a"])

    def test_logFormatStampBounded(self) -> None:
        """A log-format whose stamp is over 128 bytes (field widths: %1600c) or holds a line break (%n) is refused, quoted: it is written before every line of output; a long but sane one is taken."""
        for value, message in (('"' + "%1600c" * 10 + '"', "its stamp is 16000 bytes, more than 128"),
                               ('"%H:%M%n"', "its stamp holds a line break or another control character"),
                               ('"%H\\u001b[31m "', "its stamp holds a line break or another control character")):
            path = self.write(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog-format = {value}\n')
            fmt = value[1:-1].replace("\\u001b", "\x1b")
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                             f"{path}:4: [lines.a] log-format: log-format {quote(fmt)}: {message} (it is written before "
                             "every line)")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/a.log"\n'
                          'log-format = "%A %d %B %Y %H:%M:%S %Z\t"\n')
        self.assertEqual(loadConfig(path)[0].log.format, "%A %d %B %Y %H:%M:%S %Z\t")  # type: ignore[union-attr]

    def test_logKeysCheckedWithoutLog(self) -> None:
        """log-keep, log-max-size, log-format and log-daily on a line without log are checked all the same: a bad one is refused, not ignored."""
        for key, value, message in (("log-keep", "1001", "log-keep must be 0 to 1000, not 1001"),
                                    ("log-max-size", "-1", "log-max-size must be 0 (no limit) to 1099511627776 bytes (1 TiB), not -1"),
                                    ("log-format", "5", "expected a string (in quotes), not 5"),
                                    ("log-format", '"' + "%c" * 33 + '"', "log-format must be at most 64 characters, not 66"),
                                    ("log-daily", '"false"',
                                     "expected true or false, not 'false' (without quotes: log-daily = false)")):
            path = self.write(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n{key} = {value}\n')
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)), f"{path}:4: [lines.a] {key}: {message}")
        # Good ones in [defaults] for the lines that log: a line without log has none.
        path = self.write('[defaults]\nlog-keep = 30\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                          '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nlog = "/var/log/b.log"\n')
        a, b = loadConfig(path)
        self.assertEqual((a.log, b.log and b.log.keep), (None, 30))

    def test_logKeysNeedLog(self) -> None:
        """A line's own log-typed (any log-* key) without log on it is refused with FILE:LINE and the key: it would make no file; from [defaults] it stays silent."""
        for key, value in (("log-typed", '"text"'), ("log-events", '"conserver"'), ("log-mark", "15"),
                           ("log-format", '"%H:%M "'), ("log-keep", "3"), ("log-daily", "false"),
                           ("log-max-size", "1000")):
            path = self.write(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n{key} = {value}\n')
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                             f"{path}:4: [lines.a] {key}: needs log = PATH on this line (or in [defaults]): "
                             f"without a console log, {key} makes no file and does nothing")
        # The first one given is named; log in [defaults] is enough.
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog-mark = 5\nlog-typed = true\n')
        self.assertIn(f"{path}:4: [lines.a] log-mark: needs log", str(self.assertRaises(ConfigError, loadConfig, path)))
        path = self.write('[defaults]\nlog = "/var/log/all.log"\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                          'log-typed = true\n')
        self.assertEqual(loadConfig(path)[0].log.typed, "text")  # type: ignore[union-attr]

    def test_invalidUtf8Refused(self) -> None:
        """A byte that is not UTF-8 is refused with file:line and column, never read as U+FFFD into a path."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b'# caf\xc3\xa9 rack\n[lines.a]\ndevice = "/dev/tty\xe9"\nlisten = "4001"\n')
        e = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(str(e), f"{path}:3: not UTF-8 (byte e9 at column 19); a TOML file is UTF-8")

    def test_endlessFileRefused(self) -> None:
        """A file past MAX_CONFIG_SIZE as the configuration: one error at once, not read into memory."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.truncate(MAX_CONFIG_SIZE + 1)
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"configuration {path!r} is larger than 16 MiB")
        self.assertEqual(MAX_CONFIG_SIZE, 16 << 20)

    def test_controlCharactersInPaths(self) -> None:
        """A control character in a file name (a TOML escape: \\n of "logs\\new.log", \\t of "/dev\\ttyS0") is an error naming file:line and key, not a file made with it."""
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/srv/logs\\new.log"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] log: log '/srv/logs\\new.log': a file name with a control character "
                         "(\\n);"
                         " in a TOML string \"...\" a backslash starts an escape: write the path with '/' only, or in '...'")
        path = self.write('[lines.a]\ndevice = "/dev\\ttyS0"\nlisten = "4001"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: device '/dev\\ttyS0': a file name with a control character "
                         "(\\t);"
                         " in a TOML string \"...\" a backslash starts an escape: write the path with '/' only, or in '...'")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001", "file:/tmp/a\\u001bb", "pty:/tmp/p"]\n')
        self.assertIn(f"{path}:3: [lines.a] listen: file: '/tmp/a\\x1bb': a file name with a control character (\\x1b)",
                      str(self.assertRaises(ConfigError, loadConfig, path)))
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001", "pty:/tmp/a\\u007f"]\n')
        self.assertIn("a file name with a control character (\\x7f)", str(self.assertRaises(ConfigError, loadConfig, path)))
        # A literal string keeps its backslashes: a path with them is taken as it is.
        path = self.write("[lines.a]\ndevice = '/dev/ttyS0'\nlisten = '4001'\nlog = '/srv/logs\\new.log'\n")
        self.assertEqual(loadConfig(path)[0].log.path, "/srv/logs\\new.log")  # type: ignore[union-attr]

    def test_nulInPaths(self) -> None:
        """A NUL byte (\\u0000 in TOML) in a file name is an error naming file:line and key; an abstract unix name is not."""
        path = self.write('[lines.a]\ndevice = "/dev/tty\\u0000S0"\nlisten = "4001"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: device '/dev/tty\\x00S0': a file name cannot hold a NUL byte")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/a\\u0000"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:4: [lines.a] log: log '/var/log/a\\x00': a file name cannot hold a NUL byte")
        path = self.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001", "file:/tmp/a\\u0000b"]\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:3: [lines.a] listen: file: '/tmp/a\\x00b': a file name cannot hold a NUL byte")
        path = self.write('[lines.a]\ndevice = "unix:/run/x\\u0000y"\nlisten = "4001"\n')
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:2: [lines.a] device: device unix: '/run/x\\x00y': a file name cannot hold a NUL byte; "
                         f"an abstract unix socket name starts with it (\"\\u0000NAME\")")
        path = self.write('[lines.a]\ndevice = "unix:\\u0000vm100"\nlisten = ["unix:\\u0000rack4", "unix:\\u0000r4,server,nowait"]\n')
        (line,) = loadConfig(path)
        self.assertEqual((line.device, line.device.describe()), (DeviceSpec("unix", "\0vm100"), "unix:@vm100"))
        self.assertEqual([(s.endpoint, s.path) for s in line.listeners],
                         [("unix:\0rack4:mode=600:lockfile=0", "\0rack4"), ("unix:\0r4:mode=600:lockfile=0", "\0r4")])


class FarmTests(TestCase):
    timeout = 60

    async def test_sixteenLinesAndStatus(self) -> None:
        """16 lines from one file on ptys: each carries its own bytes; the status page lists them all."""
        ptys = [startedPty(self) for _ in range(16)]
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(f'[defaults]\nserial = "57600,8N1"\nlock-dir = "{testLockDir()}"\n')
            for i, pty in enumerate(ptys):
                f.write(f'\n[lines.rack-{i:02}]\ndevice = "{pty.slaveName}"\nlisten = "raw+tcp:0:interface=127.0.0.1"\n')
        service = startGateway(self, *loadConfig(path), status="tcp:0:interface=127.0.0.1")
        clients = []
        for i, (_spec, port) in enumerate(service.ports):
            client = await connect(port.getHost().port)
            clients.append(client)
            client.transport.write(b"to line %02d" % i)  # type: ignore[union-attr]
        for i, pty in enumerate(ptys):
            self.assertEqual(await pty.received.length(10), b"to line %02d" % i)
            pty.write(b"from %02d" % i)
        for i, client in enumerate(clients):
            self.assertEqual(await client.received.length(7), b"from %02d" % i)

        url = f"http://127.0.0.1:{service.statusPort.getHost().port}/".encode()
        response = await Agent(reactor).request(b"GET", url)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        status = json.loads(await readBody(response))
        self.assertEqual(len(status["lines"]), 16)
        first = status["lines"][0]
        self.assertEqual(first["name"], "rack-00")
        self.assertEqual(first["device"], ptys[0].slaveName)
        self.assertEqual(first["up"], True)
        self.assertEqual(first["settings"], {"baudrate": 57600, "bytesize": 8, "parity": "N", "stopbits": 1,
                                             "xonxoff": False, "rtscts": False, "text": "57600,8N1"})
        self.assertEqual(first["modem_lines"], {"dtr": True, "rts": True})
        self.assertEqual(len(first["clients"]), 1)
        self.assertEqual(first["clients"][0]["role"], "writer")
        self.assertEqual(first["clients"][0]["protocol"], "raw")
        self.assertEqual(first["clients"][0]["rfc2217"], False)
        self.assertTrue(first["clients"][0]["peer"].startswith("127.0.0.1:"))
        self.assertEqual((first["bytes_to_device"], first["bytes_from_device"]), (10, 7))
        self.assertEqual((first["breaks"], first["dropped_while_down"], first["refused_bytes"]), (0, 0, 0))
        await closeClients(*clients)



class ReloadTests(TestCase):
    timeout = 30

    async def test_reloadKeepsUnchangedLines(self) -> None:
        """A reload adds a line and removes one; the unchanged line keeps its device and its session."""
        ptys = [startedPty(self) for _ in range(3)]

        def config(names: list[int]) -> list:  # type: ignore[type-arg]
            path = self.mktemp()
            with open(path, "w") as f:
                for i in names:
                    f.write(f'[lines.l{i}]\ndevice = "{ptys[i].slaveName}"\nlock-dir = "{testLockDir()}"\n'
                            'listen = "raw+tcp:0:interface=127.0.0.1"\n')
            return loadConfig(path)

        service = startGateway(self, *config([0, 1]))
        kept = service.lines["l0"]
        client = await connect(listenerPort(service))
        client.transport.write(b"before")  # type: ignore[union-attr]
        self.assertEqual(await ptys[0].received.length(6), b"before")

        result = await service.reload(config([0, 2]))
        self.assertEqual(result, {"added": ["l2"], "changed": [], "removed": ["l1"]})
        self.assertIs(service.lines["l0"], kept)
        self.assertEqual(sorted(service.lines), ["l0", "l2"])
        self.assertEqual(len(service.ports), 2)
        client.transport.write(b" after")  # type: ignore[union-attr]
        self.assertEqual(await ptys[0].received.length(12), b"before after")
        # The added line's device is opened off the reactor thread: typed before it is up, bytes are dropped.
        await until(self, lambda: service.lines["l2"].device.up, "the added line l2's device to be up")
        other = await connect(listenerPort(service, 1))
        other.transport.write(b"new line")  # type: ignore[union-attr]
        self.assertEqual(await ptys[2].received.length(8), b"new line")
        await closeClients(client, other)

    async def test_reloadChangedLineKeepsItsPort(self) -> None:
        """A line whose settings change on the same fixed port is reopened there (the old port is closed first)."""
        pty = startedPty(self)

        def config(baud: int, port: int) -> list:  # type: ignore[type-arg]
            path = self.mktemp()
            with open(path, "w") as f:
                f.write(f'[lines.a]\ndevice = "{pty.slaveName}"\nserial = "{baud}"\nlock-dir = "{testLockDir()}"\n'
                        f'listen = "raw+tcp:{port}:interface=127.0.0.1"\n')
            return loadConfig(path)

        # The port the gateway got, then named: a port found free and let go
        # before the gateway bound it could be taken by another process.
        service = startGateway(self, *config(115200, 0))
        port = listenerPort(service)
        self.assertEqual(await service.reload(config(115200, port)), {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(listenerPort(service), port)
        result = await service.reload(config(9600, port))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(service.lines["a"].settings.baudrate, 9600)
        self.assertEqual([p.getHost().port for _, p in service.ports], [port])
        client = await connect(port)
        client.transport.write(b"same port")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(9), b"same port")
        await closeClients(client)


class ReloadInPlaceTests(TestCase):
    """
    A reload changes what it can on the running line (its device and its
    sessions stay), and binds nothing unless it can bind everything.
    """

    timeout = 30

    def setUp(self) -> None:
        self.pty = startedPty(self)

    def config(self, *lines: str) -> list:  # type: ignore[type-arg]
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("\n".join(lines))
        return loadConfig(path)

    def line(self, name: str, listen: str, serial: str = "115200", device: str = "") -> str:
        return (f'[lines.{name}]\ndevice = "{device or self.pty.slaveName}"\nserial = "{serial}"\n'
                f'lock-dir = "{testLockDir()}"\nlisten = {listen}\n')

    async def start(self, *lines: str) -> GatewayService:
        service = startGateway(self, *self.config(*lines))
        return service

    async def session(self, port: int, far: FdReader) -> Collector:
        client = await connect(port)
        client.transport.write(b"ping")  # type: ignore[union-attr]
        await far.received.contains(b"ping")
        return client

    async def test_busyPortRefusesTheWholeReload(self) -> None:
        """
        A reload whose new listener's port is held by another socket is
        refused as a whole: nothing closed, nothing opened (not even the
        parts that could), the session on the running line goes on.
        """
        import socket

        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = held.getsockname()[1]
        other = startedPty(self)
        service = await self.start(self.line("a", '"raw+tcp:0:interface=127.0.0.1"'))
        kept, ports = service.lines["a"], list(service.ports)
        client = await self.session(listenerPort(service), self.pty)
        from twisted.logger import capturedLogs, formatEvent

        listening = listeningSockets()
        with capturedLogs() as events:
            result = await service.reload(self.config(
                self.line("a", f'["raw+tcp:0:interface=127.0.0.1", "raw+tcp:{busy}:interface=127.0.0.1"]'),
                self.line("b", '"raw+tcp:0:interface=127.0.0.1"', device=other.slaveName)))
        self.assertEqual(list(result), ["refused"])
        self.assertIn(f"line 'a': cannot listen on 'raw+tcp:{busy}:interface=127.0.0.1': ", result["refused"][0])
        self.assertIn("Address already in use", result["refused"][0])
        texts = [formatEvent(e) for e in events]
        self.assertEqual([t for t in texts if "reload" in t],
                         [f"reload refused, the running configuration stays: {result['refused'][0]}"])
        self.assertEqual((list(service.lines), service.ports), (["a"], ports))
        self.assertIs(service.lines["a"], kept)
        self.assertEqual([c.name for c in service.configs], ["a"])
        # Nothing was left listening by the attempt (b's listener, a's new one).
        self.assertEqual(listeningSockets(), listening)
        client.transport.write(b" still")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(10), b"ping still")
        await closeClients(client)

    async def test_fullUnixBacklogRefusedAtOnce(self) -> None:
        """
        A reload onto a unix socket path whose live listener has a full
        backlog (it does not accept) is refused as in use at once: the
        probe's connect does not wait on the reactor (without the fix it
        waited until the listener went, here closed once the test's timeout
        is past: a connect waiting on the reactor fails it, timed out).
        """
        import socket
        import threading

        path = socketPath(self)
        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(held.close)
        held.bind(path)
        held.listen(0)
        waiting = []
        while True:
            pending = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            self.addCleanup(pending.close)
            try:
                pending.connect(path)
            except BlockingIOError:
                break
            waiting.append(pending)
        # (Not sooner: a loaded machine's start and reload may take longer than any fixed bound short of that.)
        gone = threading.Timer(self.timeout + 30, held.close)
        gone.daemon = True
        gone.start()
        self.addCleanup(gone.cancel)
        service = await self.start(self.line("a", '"raw+tcp:0:interface=127.0.0.1"'))
        result = await service.reload(self.config(
            self.line("a", f'["raw+tcp:0:interface=127.0.0.1", "raw+unix:{path}"]')))
        self.assertEqual(result, {"refused": [f"line 'a': {path!r} is in use by another process"]})
        self.assertTrue(gone.is_alive())
        self.assertEqual([spec.kind.value for spec, _ in service.ports], ["listen"])

    async def test_ptyLinkPathTakenRefusesTheReload(self) -> None:
        """
        A client pty listener whose link path is a regular file refuses the
        reload as a whole: on a line kept (it ran on without the listener)
        and on a line whose device changes (it was closed, then left out:
        gone, its session cut).  The session goes on.
        """
        import os

        occupied = os.path.abspath(self.mktemp())
        with open(occupied, "w") as f:
            f.write("someone's file")
        other = startedPty(self)
        listen = '"raw+tcp:0:interface=127.0.0.1"'
        withPty = f'["raw+tcp:0:interface=127.0.0.1", "pty:{occupied}"]'
        service = await self.start(self.line("a", listen))
        kept = service.lines["a"]
        client = await self.session(listenerPort(service), self.pty)
        refusal = {"refused": [f"line 'a': cannot open listener 'pty:{occupied}': exists and is not a symlink"]}
        self.assertEqual(await service.reload(self.config(self.line("a", withPty))), refusal)
        self.assertEqual(await service.reload(self.config(self.line("a", withPty, device=other.slaveName))), refusal)
        self.assertIs(service.lines["a"], kept)
        self.assertEqual(len(service.configs[0].listeners), 1)
        client.transport.write(b" on")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(7), b"ping on")
        with open(occupied) as f:
            self.assertEqual(f.read(), "someone's file")
        await closeClients(client)

    async def test_tlsDialOutFilesRefuseTheReload(self) -> None:
        """
        A new TLS dial-out whose CA file cannot be read refuses the reload as
        a whole (a line whose device changes was closed, then left out).
        """
        import os

        missing = os.path.abspath(self.mktemp())
        other = startedPty(self)
        service = await self.start(self.line("a", '"raw+tcp:0:interface=127.0.0.1"'))
        kept = service.lines["a"]
        dialOut = f'["raw+tcp:0:interface=127.0.0.1", "tls:localhost:4443:ca={missing}"]'
        for device in ("", other.slaveName):
            result = await service.reload(self.config(self.line("a", dialOut, device=device)))
            self.assertEqual(list(result), ["refused"])
            self.assertTrue(result["refused"][0].startswith(f"line 'a': listener 'tls:localhost:4443:ca={missing}': "),
                            result)
        self.assertIs(service.lines["a"], kept)
        self.assertEqual((len(service.configs[0].listeners), service._dialers), (1, []))

    async def test_listenersOnlyKeepTheSession(self) -> None:
        """
        A line whose only changes are listeners, mode and notices keeps its
        device and its sessions: a client connected before types and reads
        on; a listener added works; one removed stops listening, and the
        client that came through it stays.
        """
        # Ports the listeners got (port 0), not ones found free before: another
        # process could take such a port before the gateway binds it.
        service = await self.start(self.line("a", '"raw+tcp:0:interface=127.0.0.1"'))
        first = listenerPort(service)
        kept, device = service.lines["a"], service.lines["a"].device
        client = await self.session(first, self.pty)
        result = await service.reload(self.config(
            self.line("a", '"raw+tcp:0:interface=127.0.0.1:backlog=20"') + 'mode = "exclusive"\nnotices = false\n'))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertIs(service.lines["a"], kept)
        self.assertIs(kept.device, device)
        self.assertEqual((kept.mode, kept.notices, device.closed), ("exclusive", False, False))  # type: ignore[attr-defined]
        second = listenerPort(service)
        self.assertNotEqual(second, first)
        self.assertEqual([p.getHost().port for _, p in service.ports], [second])
        self.pty.write(b"both ways")
        await client.received.contains(b"both ways")  # type: ignore[attr-defined]
        client.transport.write(b" on")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(7), b"ping on")
        newcomer = await connect(second)
        self.assertEqual(len(kept.clients), 2)
        from twisted.internet.error import ConnectError

        with self.assertRaises(ConnectError):
            await connect(first)
        await closeClients(client, newcomer)  # type: ignore[arg-type]

    async def test_madeExclusiveWithTwoWriters(self) -> None:
        """
        A reload from shared to exclusive with two writers attached leaves
        one: the first keeps writing, the second only watches (its typing
        no longer reaches the device); both stay connected.
        """
        from serialgw.line.role import Role

        listen = '"raw+tcp:0:interface=127.0.0.1"'  # the same listener before and after: kept
        service = await self.start(self.line("a", listen))
        port = listenerPort(service)
        first = await self.session(port, self.pty)
        second = await connect(port)
        line = service.lines["a"]
        await until(self, lambda: len(line.clients) >= 2, "line a to have both clients")
        result = await service.reload(self.config(self.line("a", listen) + 'mode = "exclusive"\n'))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual([c.role for c in line.clients], [Role.WRITER, Role.WATCHER])
        second.transport.write(b"second")  # type: ignore[union-attr]
        first.transport.write(b" first")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(10), b"ping first")
        await closeClients(first, second)  # type: ignore[arg-type]

    async def test_baudChangeKeepsTheClient(self) -> None:
        """
        A reload that changes the baud rate applies it to the open device
        (the pty's termios says 9600 after it) and the client stays.
        """
        import os
        import termios

        service = await self.start(self.line("a", '"raw+tcp:0:interface=127.0.0.1"'))
        kept = service.lines["a"]
        client = await self.session(listenerPort(service), self.pty)
        result = await service.reload(self.config(self.line("a", '"raw+tcp:0:interface=127.0.0.1"', serial="9600")))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertIs(service.lines["a"], kept)
        self.assertEqual((kept.settings.baudrate, kept.configured.baudrate), (9600, 9600))
        fd = os.open(self.pty.slaveName, os.O_RDWR | os.O_NOCTTY)
        try:
            speeds = termios.tcgetattr(fd)[4:6]
        finally:
            os.close(fd)
        self.assertEqual(speeds, [termios.B9600, termios.B9600])
        client.transport.write(b" at 9600")  # type: ignore[union-attr]
        self.assertEqual(await self.pty.received.length(12), b"ping at 9600")
        await closeClients(client)

    async def test_deviceChangeReopens(self) -> None:
        """A new device for a line is a new line: the old one is closed (its clients told why, exactly) and the new one opened."""
        other = startedPty(self)
        service = await self.start(self.line("a", '"raw,notices+tcp:0:interface=127.0.0.1"'))
        old = service.lines["a"]
        before = await self.session(listenerPort(service), self.pty)
        result = await service.reload(self.config(self.line("a", '"raw+tcp:0:interface=127.0.0.1"',
                                                            device=other.slaveName)))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertIsNot(service.lines["a"], old)
        self.assertTrue(old.device.closed)  # type: ignore[attr-defined]
        await before.closed  # type: ignore[attr-defined]
        self.assertEqual(before.received.data,  # type: ignore[attr-defined]
                         b"\r\n[serialgw: a: device changed by a reload; reconnect]\r\n")
        client = await connect(listenerPort(service))
        client.transport.write(b"new device")  # type: ignore[union-attr]
        self.assertEqual(await other.received.length(10), b"new device")
        await closeClients(client)

    async def test_deviceChangeReopensOnDemandAlike(self) -> None:
        """An on-demand line's new device ends its sessions as any line's does (told why, exactly, as test_deviceChangeReopens): the old device closed, the new one closed on demand until the next client opens it, and closed again when it leaves."""
        other = startedPty(self)
        onDemand = "on-demand = true\n"
        service = await self.start(self.line("a", '"raw,notices+tcp:0:interface=127.0.0.1"') + onDemand)
        old = service.lines["a"]
        before = await self.session(listenerPort(service), self.pty)
        self.assertTrue(old.device.up)
        result = await service.reload(self.config(self.line("a", '"raw+tcp:0:interface=127.0.0.1"',
                                                            device=other.slaveName) + onDemand))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        line = service.lines["a"]
        self.assertIsNot(line, old)
        self.assertTrue(old.device.closed)  # type: ignore[attr-defined]
        await before.closed  # type: ignore[attr-defined]
        self.assertEqual(before.received.data,  # type: ignore[attr-defined]
                         b"\r\n[serialgw: a: device changed by a reload; reconnect]\r\n")
        await until(self, lambda: line.closedOnDemand, "the new device closed on demand")
        client = await connect(listenerPort(service))
        client.transport.write(b"new device")  # type: ignore[union-attr]
        self.assertEqual(await other.received.length(10), b"new device")
        await closeClients(client)
        await until(self, lambda: line.closedOnDemand, "the new device closed again")

    async def test_lockChangeReopensAndSaysSo(self) -> None:
        """A reload that changes only a line's lock setting reopens it; its sessions are told that, not that the line was removed."""
        service = await self.start(self.line("a", '"raw,notices+tcp:0:interface=127.0.0.1"'))
        before = await self.session(listenerPort(service), self.pty)
        result = await service.reload(self.config(self.line("a", '"raw,notices+tcp:0:interface=127.0.0.1"') + "lock = false\n"))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        await before.closed  # type: ignore[attr-defined]
        self.assertEqual(before.received.data,  # type: ignore[attr-defined]
                         b"\r\n[serialgw: a: lock setting changed by a reload; reconnect]\r\n")


class SighupBusyPortTests(TestCase):
    timeout = 60

    async def test_sighupOntoBusyPort(self) -> None:
        """
        twistd: SIGHUP onto a port another socket holds is refused ("the
        running configuration stays") and the session goes on; once the port
        is free, the same SIGHUP adds the listener and the session still
        goes on (its line was changed in place, not reopened).
        """
        import os
        import socket

        from tests.realio import gatewayArgv, listeningPort

        pty = startedPty(self)
        held = socket.socket()
        self.addCleanup(held.close)
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        busy = held.getsockname()[1]
        path = os.path.abspath(self.mktemp())
        # Locks of its own: a live process's lock in /var/lock for this
        # pty's number (another gateway on the machine retrying a
        # /dev/pts/N that went takes N when a new pty gets it) kept the line
        # down (retried with backoff up to a minute): "before" never reached the pty.
        locks = os.path.abspath(self.mktemp())
        os.mkdir(locks)
        line = '[lines.first]\ndevice = "{device}"\nlock-dir = "' + locks + '"\nlisten = {listen}\n'
        with open(path, "w") as f:
            f.write(line.format(device=pty.slaveName, listen='"raw+tcp:0:interface=127.0.0.1"'))
        proc = startProcess(self, gatewayArgv("--config", path))
        client = await connect(await listeningPort(proc, "raw"))
        client.transport.write(b"before")  # type: ignore[union-attr]
        await pty.received.contains(b"before")
        with open(path, "w") as f:
            f.write(line.format(device=pty.slaveName,
                                listen=f'["raw+tcp:0:interface=127.0.0.1", "raw+tcp:{busy}:interface=127.0.0.1"]'))
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        data = await proc.output.contains(b"reload refused, the running configuration stays: ")
        refusal = data[data.index(b"reload refused"):].split(b"\n")[0]
        self.assertIn(f"line 'first': cannot listen on 'raw+tcp:{busy}:interface=127.0.0.1'".encode(), refusal)
        self.assertIn(b"Address already in use", refusal)
        client.transport.write(b" during")  # type: ignore[union-attr]
        await pty.received.contains(b"before during")

        held.close()
        proc.transport.signalProcess("HUP")  # type: ignore[union-attr]
        await proc.output.contains(b"reload: added none, changed ['first'], removed none, 0 unchanged")
        added = await connect(busy)
        added.transport.write(b" added")  # type: ignore[union-attr]
        client.transport.write(b" after")  # type: ignore[union-attr]
        await pty.received.when(lambda d: b" added" in d and b" after" in d)
        self.assertTrue(pty.received.data.startswith(b"before during"))
        self.assertNotIn(b"left out", proc.output.data)
        self.assertNotIn(b"Traceback", proc.output.data)
        await closeClients(client, added)


class DialOutCloseTests(TestCase):
    """A dial-out whose peer accepts and never reads, with output queued for it."""

    timeout = 30

    async def start(self, dialOut: bool, logs: tuple[str, str] = ("", "")) -> tuple[GatewayService, list[Any]]:
        """
        A line dialing out to a peer that never reads, the dial-out's
        transport holding 32 MiB; and the configuration a reload gives it
        (with or without the dial-out; C{logs}: its console log before and after).
        """
        import socket

        self.pty = startedPty(self)
        peer = socket.socket()
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.listen(1)
        target = peer.getsockname()[1]

        def config(dial: bool, log: str) -> list:  # type: ignore[type-arg]
            path = self.mktemp()
            dialer = f', "tcp:127.0.0.1:{target}"' if dial else ""
            listen = f'["raw+tcp:0:interface=127.0.0.1"{dialer}]'
            with open(path, "w") as f:
                f.write(f'[lines.a]\ndevice = "{self.pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
                        f'listen = {listen}\n')
                if log:
                    f.write(f'log = "{log}"\n')
            return loadConfig(path)

        service = GatewayService(config(True, logs[0]))
        service.dialCloseGrace = 0.2
        service.startService()
        self.addCleanup(service.stopService)
        line = service.lines["a"]
        await until(self, lambda: [c for c in line.clients if c.person], "line a to have a client with a person")
        # More than the kernel takes: the rest waits in the transport.
        next(c for c in line.clients if c.person).transport.write(b"x" * (32 << 20))  # type: ignore[attr-defined]
        return service, config(dialOut, logs[1])

    async def test_stopHurriedCutsTheDialOut(self) -> None:
        """SIGTERM again during the stop cuts a dial-out still taking its queued output at once (it said 'nothing is waited for' and the stop waited out the dial-out's grace all the same)."""
        service, _ = await self.start(True)
        service.dialCloseGrace = 60.0
        events: list[dict[str, Any]] = []
        observeLog(self, events.append)
        stopped = service.stopService()
        self.assertFalse(stopped.called)
        service.hurry("SIGTERM")
        await stopped.addTimeout(10, reactor)
        said = [formatEvent(e) for e in events if "during the stop" in str(e.get("log_format", ""))]
        self.assertEqual(said, ["SIGTERM during the stop: cutting 1 dial-out(s) now, without waiting for their peers "
                                "to take what is queued (a)"])

    async def test_reloadDoesNotWaitForever(self) -> None:
        """A reload removing the dial-out goes through (the connection aborted after the grace)."""
        service, withoutDialOut = await self.start(False)
        result = await service.reload(withoutDialOut).addTimeout(20, reactor)
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual((service._dialers, [c for c in service.lines["a"].clients if c.person]), ([], []))

    async def test_newLogWhileTheReloadWaits(self) -> None:
        """
        A reload that moves the console log while it waits for a dial-out to
        close: output meanwhile is in the new log (the old one was closed
        at once and the new one opened only after the wait: lost).
        """
        import os

        from twisted.python.filepath import FilePath

        old, new = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        service, moved = await self.start(False, (old, new))
        self.pty.write(b"before\n")
        await until(self, lambda: b"before" in FilePath(old).getContent(), f"b'before' in {old}")
        reloading = service.reload(moved)
        # (Once its checks, made on a thread of their own, have passed: the new log is there, the old one closing.)
        line = service.lines["a"]
        await until(self, lambda: [log.spec.path for log in line.logs] == [new], f"line a's log to be {new}")  # type: ignore[attr-defined]
        self.assertFalse(reloading.called)
        self.pty.write(b"meanwhile\n")
        await reloading.addTimeout(20, reactor)
        self.pty.write(b"after\n")
        await until(self, lambda: b"after" in FilePath(new).getContent(), f"b'after' in {new}")
        self.assertEqual([b"meanwhile" in FilePath(old).getContent(), b"meanwhile" in FilePath(new).getContent()],
                         [False, True])

    async def test_stopDoesNotWaitForever(self) -> None:
        """Stopping the gateway ends (the connection aborted after the grace) instead of waiting for the peer."""
        service, _ = await self.start(True)
        await service.stopService().addTimeout(20, reactor)
        self.assertEqual(service._dialers, [])

    async def test_stopDuringReload(self) -> None:
        """
        The gateway stopped while a reload waits for the dial-out it closes:
        the reload ends refused, opening nothing (it raised KeyError on the
        stopped service's lines), and a reload asked after the stop too.
        """
        service, withoutDialOut = await self.start(False)
        reloading = service.reload(withoutDialOut)
        self.assertFalse(reloading.called)
        await service.stopService().addTimeout(20, reactor)
        self.assertEqual(await reloading.addTimeout(20, reactor),
                         {"refused": ["the gateway stopped before the reload was done"]})
        self.assertEqual(await service.reload(withoutDialOut), {"refused": ["the gateway is stopping"]})
        self.assertEqual((service.lines, service.ports), ({}, []))


class ReloadSamePortTests(TestCase):
    timeout = 30

    async def test_protocolChangeOnTheSamePort(self) -> None:
        """
        A listener changed from raw to telnet on the same fixed port is not
        refused (the port is the line's own, let go of by the reload): the
        new one answers with telnet, and the raw client connected before stays.
        """
        pty = startedPty(self)

        def config(protocol: str, port: int) -> list:  # type: ignore[type-arg]
            path = self.mktemp()
            with open(path, "w") as f:
                f.write(f'[lines.a]\ndevice = "{pty.slaveName}"\nlock-dir = "{testLockDir()}"\n'
                        f'listen = "{protocol}+tcp:{port}:interface=127.0.0.1"\n')
            return loadConfig(path)

        # The port the first listener got, named by the reload: a port found
        # free before the gateway bound it could be taken by another process.
        service = startGateway(self, *config("raw", 0))
        port = listenerPort(service)
        kept = service.lines["a"]
        self.assertEqual(await service.reload(config("raw", port)), {"added": [], "changed": ["a"], "removed": []})
        self.assertEqual(listenerPort(service), port)
        raw = await connect(port)
        result = await service.reload(config("telnet", port))
        self.assertEqual(result, {"added": [], "changed": ["a"], "removed": []})
        self.assertIs(service.lines["a"], kept)
        telnet = await connect(port)
        await telnet.received.contains(bytes([255, 251, 1]))  # IAC WILL ECHO: a telnet listener now
        raw.transport.write(b"raw still")  # type: ignore[union-attr]
        self.assertEqual(await pty.received.length(9), b"raw still")
        self.assertEqual(len(kept.clients), 2)
        await closeClients(raw, telnet)
