"""
A configuration file written by someone careless or hostile: names with
a newline, numbers past a float, a FIFO, a directory or a byte order
mark where the file should be.  Each is a ConfigError naming the file
(its line and key where there is one), at once: never another exception
(a traceback at start, a reload that never finishes at SIGHUP) and never
a wait.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.file import loadConfig, loadFile
from serialgw.config.specs import ConfigError
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp
from tests.shortpaths import shortTemp


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.exitOnError = False
    options.parseOptions(list(args))
    return options


LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'


class KeyValueTests(ConfigFileCase):
    def test_namesEndingInANewline(self) -> None:
        """A line or user name with a trailing newline (a quoted TOML key) is refused, as any other character."""
        self.assertEqual(self.refused('[lines."a\\n"]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'),
                         "FILE:1: line name 'a\\n': letters, digits, '.', '_' and '-' only")
        self.assertEqual(self.refused(LINE + '[users."bob\\n"]\nkeys = []\n'),
                         "FILE:4: user name 'bob\\n': letters, digits, '.', '_' and '-' only")

    def test_firstCharacterSaid(self) -> None:
        """A name of allowed characters that starts with '-', '.' or '_' ('..', '-a') is refused saying why: the first must be a letter or digit (it said 'letters, digits, ... only', which '..' is)."""
        for name in ("-a", "..", "_x"):
            self.assertEqual(self.refused(f'[lines."{name}"]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'),
                             f"FILE:1: line name '{name}': starts with {name[0]!r}: the first character is a letter "
                             "or a digit (then letters, digits, '.', '_' and '-')")
        self.assertEqual(self.refused(LINE + '[users."-bob"]\nkeys = []\n'),
                         "FILE:4: user name '-bob': starts with '-': the first character is a letter or a digit "
                         "(then letters, digits, '.', '_' and '-')")

    def test_longNamesRefused(self) -> None:
        """A line or user name longer than 128 characters (it is in every log line, notice and status entry) is refused at FILE:LINE, the name cut in the message; 128 are taken."""
        long = "a" * 100000
        self.assertEqual(self.refused(f'[lines.{long}]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'),
                         f"FILE:1: line name '{'a' * 64}'... (100000 characters): at most 128 characters")
        self.assertEqual(self.refused(f"lines.{long} = 1\n"),
                         f"FILE:1: line name '{'a' * 64}'... (100000 characters): at most 128 characters")
        self.assertEqual(self.refused(LINE + f'[users.{"b" * 129}]\nkeys = []\n'),
                         f"FILE:4: user name '{'b' * 64}'... (129 characters): at most 128 characters")
        path = writeTemp(self, f'[lines.{"a" * 128}]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a" * 128])

    def test_quotedTablesAndKeysHaveTheirLine(self) -> None:
        """A table or key written quoted ([lines."a.b"], [lines."/etc/x"], [lines.""], "parity" =) is found: FILE:LINE, not FILE alone."""
        self.assertEqual(self.refused(LINE + '[lines."/etc/x"]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n'),
                         "FILE:4: line name '/etc/x': letters, digits, '.', '_' and '-' only")
        self.assertEqual(self.refused(LINE + '[lines.""]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n'),
                         "FILE:4: line name '': letters, digits, '.', '_' and '-' only")
        self.assertEqual(self.refused(LINE + "[lines.'a.b']\ndevice = '/dev/ttyS1'\nlisten = '4002'\n"
                                      '"parity" = "Q"\n'),
                         "FILE:7: [lines.a.b] parity: parity must be one of N, E, O, M, S, not 'Q'")
        self.assertTrue(self.refused(LINE + '[lines.a.sub]\nx = 1\n').startswith("FILE:4: unknown key 'sub' in [lines.a]"))

    def test_tomlErrorsHaveTheirLine(self) -> None:
        """tomllib's errors say FILE:LINE first; a key or a table given twice is named with its table."""
        self.assertEqual(self.refused(LINE + 'device = "/dev/ttyS1"\n'),
                         "FILE:4: [lines.a] device: given twice (TOML: a key has one value; remove one of them)")
        self.assertEqual(self.refused(LINE + '[lines.a]\nparity = "E"\n'),
                         "FILE:4: [lines.a] declared twice (TOML: one table a name; merge them)")
        self.assertEqual(self.refused(LINE + 'log = [\n'), "FILE:4: Invalid value (at the end of the file)")
        self.assertEqual(self.refused('[lines.a\n'),
                         "FILE:1: Expected ']' at the end of a table declaration (column 9)")

    def test_settingsOfAnotherType(self) -> None:
        """baud = 9600.0 or true: refused as the wrong type, not as a rate out of range ('9600.0'); a listen left out is missing, not []."""
        self.assertEqual(self.refused(LINE + "baud = 9600.0\n"),
                         'FILE:4: [lines.a] baud: expected a whole number (9600 or "9600"), not 9600.0')
        self.assertEqual(self.refused(LINE + "bytesize = true\n"),
                         'FILE:4: [lines.a] bytesize: expected a whole number (8 or "8"), not true')
        self.assertEqual(self.refused(LINE + "stopbits = false\n"),
                         "FILE:4: [lines.a] stopbits: expected a number or a string, not false")
        self.assertEqual(loadConfig(writeTemp(self, LINE + 'stopbits = 1.5\nbaud = "9600"\n'))[0].settings.stopbits, 1.5)
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\n'),
                         "FILE:1: [lines.a] listen: missing: a listener (4001, tcp:4001:interface=127.0.0.1, ...) or a "
                         "list of them")

    def test_linesNotTables(self) -> None:
        """lines = 5, [[lines]] or a line that is no table: said so, with the line, not 'no lines'."""
        self.assertEqual(self.refused('lines = 5\n'), "FILE:1: lines: expected tables [lines.NAME] (one a line, "
                                                         "with device = ... and listen = ...), not 5")
        self.assertEqual(self.refused('[[lines]]\ndevice = "/dev/ttyS0"\n'),
                         "FILE:1: [[lines]] is an array of tables, the lines without names: write one table a line, "
                         "[lines.NAME], with device = ... and listen = ...")
        self.assertEqual(self.refused('[lines]\na = 5\n'), "FILE:2: lines.a must be a table, not 5")

    def test_integersPastAFloat(self) -> None:
        """A TOML integer too large for a float where milliseconds go: the key's error quoting it, not OverflowError."""
        huge = "1" + "0" * 400
        for key in ("break-duration", "pace", "pace-line"):
            self.assertEqual(self.refused(f"{LINE}{key} = {huge}\n"), f"FILE:4: [lines.a] {key}: out of range: {huge}")
        self.assertEqual(self.refused(f"[defaults]\npace = {huge}\n{LINE}"),
                         f"FILE:2: [defaults] pace: out of range: {huge}")

    def test_lockDirRelativeOrEmpty(self) -> None:
        """An empty or relative lock-dir (the working directory: / under systemd) is refused, in the file and as --lock-dir."""
        for value in ("", "locks", "./locks"):
            self.assertEqual(self.refused(f'{LINE}lock-dir = "{value}"\n'), f"FILE:4: [lines.a] lock-dir: lock-dir "
                                                                           f"{value!r}: expected an absolute path, e.g. "
                                                                           "/var/lock or /run/lock")
            e = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--lock-dir", value)
            self.assertEqual(str(e), f"--lock-dir {value!r}: expected an absolute path, e.g. /var/lock or /run/lock")

    def test_lockDirMissingStopsTheStart(self) -> None:
        """A tty line's lock-dir that is not a directory stops the start with --config too (the line stayed down for good), the file's line of its table first."""
        missing = os.path.join(shortTemp(self), "locks")
        path = writeTemp(self, f'{LINE}lock-dir = "{missing}"\n[lines.b]\ndevice = "pty:"\nlisten = "4002"\n')
        message = (f"line 'a': lock-dir {missing!r} is not a directory: the UUCP lock for '/dev/ttyS0' cannot be made "
                   "(set lock-dir, or lock = false)")
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--config", path)), f"{path}:1: {message}")
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--name", "a",
                                               "--lock-dir", missing)), message)
        # Not for a line that takes no lock (lock = false; a pty: line, given lock-dir by [defaults]).
        parse("--config", writeTemp(self, f'{LINE}lock = false\nlock-dir = "{missing}"\n'))
        parse("--config", writeTemp(self, f'[defaults]\nlock-dir = "{missing}"\n[lines.b]\ndevice = "pty:"\n'
                                          'listen = "4002"\n'))
        parse("--device", "/dev/ttyS0", "--no-lock", "--lock-dir", missing)

    def test_twoLinesOnOnePortStopTheStart(self) -> None:
        """Two lines on one TCP port (or one line's two listeners) stop the start before anything is bound, as --check and a reload say it: both lines, both listeners, the port, at the second's listen key (the second's bind said only 'one of this gateway's own listeners already'); --check still lists every error."""
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "raw+tcp:4601:interface=127.0.0.1"\n'
                               'lock = false\n[lines.b]\ndevice = "/dev/ttyS1"\nlock = false\n'
                               'listen = ["raw+tcp:4701", "telnet+tcp:4601"]\n'
                               '[lines.c]\ndevice = "/dev/ttyS2"\nlock = false\nlisten = "4701"\n')
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--config", path)),
                         f"{path}:8: line 'b': listener 'telnet+tcp:4601' takes TCP port 4601, as line 'a', listener "
                         "'raw+tcp:4601:interface=127.0.0.1' already does (and 1 more such clash(es): --check names them)")
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--no-lock", "--listen",
                                               "raw+tcp:4601", "--listen", "telnet+tcp:4601")),
                         "line 'ttyS0': listener 'telnet+tcp:4601' takes TCP port 4601, as line 'ttyS0', listener "
                         "'raw+tcp:4601' already does")
        parse("--check", "--config", path)

    def test_ownListenerOnALinesPortStopsTheStart(self) -> None:
        """The status endpoint (or watch-all) on a line's port, or watch-all on the status endpoint's, stops the start before anything is bound, as --check says it (the status endpoint's bind said only 'one of this gateway's own listeners already')."""
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "raw+tcp:4601:interface=127.0.0.1"\n'
                               'lock = false\n')
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--config", path, "--status",
                                               "tcp:4601:interface=127.0.0.1")),
                         "the status endpoint: listener 'tcp:4601:interface=127.0.0.1' takes TCP port 4601, as line "
                         "'a', listener 'raw+tcp:4601:interface=127.0.0.1' already does")
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--config", path, "--status", "tcp:4602",
                                               "--watch-all", "raw+tcp:4602:interface=127.0.0.1")),
                         "watch-all: listener 'raw+tcp:4602:interface=127.0.0.1' takes TCP port 4602, as the status "
                         "endpoint, listener 'tcp:4602' already does")
        parse("--config", path, "--status", "tcp:4602", "--watch-all", "raw+tcp:4603")
        parse("--check", "--config", path, "--status", "tcp:4601")

    def test_oneTerminal(self) -> None:
        """stdio (mon:stdio too) on two lines, twice on one, or from [defaults] for two: refused; the gateway has one terminal."""
        two = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "stdio"\n[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "mon:stdio"\n'
        self.assertEqual(self.refused(two), "FILE:6: [lines.b] listen: stdio is line 'a''s already: the gateway has one "
                                            "terminal")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["stdio", "4001", "stdio"]\n'),
                         "FILE:3: [lines.a] listen: stdio is line 'a''s already: the gateway has one terminal")
        self.assertEqual(self.refused('[defaults]\nlisten = "stdio"\n[lines.a]\ndevice = "/dev/ttyS0"\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\n'),
                         "FILE:2: [defaults] listen: stdio is line 'a''s already: the gateway has one terminal")
        e = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--port", "stdio", "--listen", "mon:stdio")
        self.assertEqual(str(e), "stdio is given twice: the gateway has one terminal")
        (line,) = loadConfig(writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["stdio", "4001"]\n'))
        self.assertEqual(len(line.listeners), 2)

    def test_onePipeOrLinkALine(self) -> None:
        """One pipe: pair, one pty link (a pty: device's or listener's) for one line: a second is refused, naming both."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "pipe:/run/gp"\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = ["4001", "pipe:/run//gp"]\n'),
                         "FILE:6: [lines.b] listen: 'pipe:/run//gp' makes '/run//gp', which line 'a' makes with "
                         "'pipe:/run/gp'")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["pty:/run/t", "pty:/run/t"]\n'),
                         "FILE:3: [lines.a] listen: 'pty:/run/t' makes '/run/t', which line 'a' makes with 'pty:/run/t'")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001", "pty:/run/t"]\n'
                                      '[lines.b]\ndevice = "pty:/run/t"\nlisten = "4002"\n'),
                         "FILE:5: [lines.b] device: 'pty:/run/t' makes '/run/t', which line 'a' makes with 'pty:/run/t'")
        # A pty made without a link takes no path.
        loadConfig(writeTemp(self, '[defaults]\ndevice = "pty:"\n[lines.a]\nlisten = ["4001", "pty:"]\n'
                                   '[lines.b]\nlisten = ["4002", "pty:"]\n'))

    def test_errorsInDottedKeysAndInlineTables(self) -> None:
        """A line written with dotted keys or as an inline table: its errors name the file's line too, not the file alone."""
        self.assertEqual(self.refused('lines.b.device = "/dev/ttyS1"\nlines.b.listen = "4002"\n'
                                      'lines.a.listen = "4001"\nlines.a.parity = "Q"\nlines.a.device = "/dev/ttyS0"\n'),
                         "FILE:4: [lines.a] parity: parity must be one of N, E, O, M, S, not 'Q'")
        self.assertEqual(self.refused('lines.b.device = "/dev/ttyS1"\nlines.b.listen = "4002"\nlines.a.listen = "4001"\n'),
                         "FILE:3: [lines.a] device: missing: a tty path, pty:LINK, telnet:HOST:PORT, "
                         "rfc2217://HOST:PORT, ...")
        self.assertEqual(self.refused('[lines]\nb = { device = "/dev/ttyS1", listen = "4002" }\n'
                                      'a = { device = "/dev/ttyS0", listen = "4001", parity = "Q" }\n'),
                         "FILE:3: [lines.a] parity: parity must be one of N, E, O, M, S, not 'Q'")

    def test_oneDialOutAPeerALine(self) -> None:
        """
        One line dialling one peer twice (its listen naming the dial-out
        twice) is refused: two connections to the far end, each sent every
        byte of the device, each typing (live: w showed 127.0.0.1:7399 twice);
        two lines may dial one peer (two connections the far end tells apart).
        """
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\n'
                                      'listen = ["raw+tcp:127.0.0.1:7399", "telnet+tcp:127.0.0.1:7399"]\n'),
                         "FILE:3: [lines.a] listen: 'telnet+tcp:127.0.0.1:7399' dials 127.0.0.1:7399, as line 'a''s "
                         "listener 'raw+tcp:127.0.0.1:7399' does: the far end would get every byte twice, and both "
                         "would type")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\n'
                                      'listen = ["raw+tcp:127.0.0.1:7399", "raw+tcp:127.0.0.1:7399"]\n'),
                         "FILE:3: [lines.a] listen: 'raw+tcp:127.0.0.1:7399' dials 127.0.0.1:7399, as line 'a''s "
                         "listener 'raw+tcp:127.0.0.1:7399' does: the far end would get every byte twice, and both "
                         "would type")
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "raw+tcp:127.0.0.1:7399"\n'
                               '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "raw+tcp:127.0.0.1:7399"\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a", "b"])
        # On the command line, the single line's --listen (and --port) alike.
        e = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--port", "raw+tcp:127.0.0.1:7399",
                              "--listen", "telnet+tcp:127.0.0.1:7399")
        self.assertEqual(str(e), "listener 'telnet+tcp:127.0.0.1:7399' dials 127.0.0.1:7399, as listener "
                                 "'raw+tcp:127.0.0.1:7399' does: the far end would get every byte twice, and both "
                                 "would type")
        parse("--device", "/dev/ttyS0", "--listen", "raw+tcp:127.0.0.1:7399", "--listen", "raw+tcp:127.0.0.1:7400")

    def test_oneDialOutPeerSpeltTwoWays(self) -> None:
        """One peer spelt two ways (127.1, 0x7f000001, ::ffff:127.0.0.1; LOCALHOST and localhost.): refused as one; they were compared as written (live, probe29: --check OK)."""
        for first, second, peer in (("127.0.0.1", "127.1", "127.1"), ("127.0.0.1", "0x7f000001", "0x7f000001"),
                                    ("127.0.0.1", "[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]"),
                                    ("LOCALHOST", "localhost.", "localhost.")):
            self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\n'
                                          f'listen = ["raw+tcp:{first}:7399", "raw+tcp:{second}:7399"]\n'),
                             f"FILE:3: [lines.a] listen: 'raw+tcp:{second}:7399' dials {peer}:7399, as line 'a''s "
                             f"listener 'raw+tcp:{first}:7399' does: the far end would get every byte twice, and both "
                             "would type")
        # (localhost and 127.0.0.1 may be two: the resolver may give the name ::1 first.)
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\n'
                               'listen = ["raw+tcp:127.0.0.1:7399", "raw+tcp:localhost:7399", "raw+tcp:127.0.0.2:7399"]\n')
        self.assertEqual([line.name for line in loadConfig(path)], ["a"])

    def test_oneWriterAFile(self) -> None:
        """A file: listener's path (however written) that another file: listener or a console log writes: refused naming both and the path."""
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001", "file:/var/log/x"]\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "file:/var/log/./x"\n'),
                         "FILE:6: [lines.b] listen: 'file:/var/log/./x' writes '/var/log/./x', as line 'a''s listener "
                         "'file:/var/log/x' does: two writers would interleave in one file")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["file:/tmp/x", "file:/tmp/x"]\n'),
                         "FILE:3: [lines.a] listen: 'file:/tmp/x' writes '/tmp/x', as line 'a''s listener "
                         "'file:/tmp/x' does: two writers would interleave in one file")
        # A console log and a file: listener, either order, either line.
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nlog = "/var/log/a.log"\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "file:/var/log/b/../a.log"\n'),
                         "FILE:7: [lines.b] listen: 'file:/var/log/b/../a.log' writes '/var/log/b/../a.log', as line "
                         "'a''s log does: two writers would interleave in one file")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "file:/var/log/a.log"\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nlog = "/var/log/a.log"\n'),
                         "FILE:7: [lines.b] log: '/var/log/a.log' is line 'a''s listener 'file:/var/log/a.log' too: "
                         "two writers would interleave in one file")
        self.assertEqual(self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlog = "/var/log/a.log"\n'
                                      'listen = "file:/var/log/a.log"\n'),
                         "FILE:4: [lines.a] listen: 'file:/var/log/a.log' writes '/var/log/a.log', as line 'a''s log "
                         "does: two writers would interleave in one file")
        # From [defaults], every line writes it: named where it is.
        self.assertEqual(self.refused('[defaults]\nlisten = "file:/var/log/all"\n[lines.a]\ndevice = "/dev/ttyS0"\n'
                                      '[lines.b]\ndevice = "/dev/ttyS1"\n'),
                         "FILE:2: [defaults] listen: for line 'b', 'file:/var/log/all' writes '/var/log/all', as line 'a''s listener "
                         "'file:/var/log/all' does: two writers would interleave in one file (each line its own: "
                         "{line} is the line's name)")
        # On the command line, twice on the one line.
        e = self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "--listen", "file:/tmp/x",
                              "--listen", "file:/tmp/./x")
        self.assertEqual(str(e), "listener 'file:/tmp/./x' writes '/tmp/./x', as listener 'file:/tmp/x' does: two "
                                 "writers would interleave in one file")
        # Distinct files are each their own.
        (a, b) = loadConfig(writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "file:/var/log/a"\n'
                                            'log = "/var/log/a.log"\n[lines.b]\ndevice = "/dev/ttyS1"\n'
                                            'listen = "file:/var/log/b"\nlog = "/var/log/b.log"\n'))
        self.assertEqual([s.path for s in a.listeners + b.listeners], ["/var/log/a", "/var/log/b"])
        parse("--device", "/dev/ttyS0", "--listen", "file:/tmp/x", "--listen", "file:/tmp/y")

    def test_watchAllLinesEmpty(self) -> None:
        """[watch-all] lines = [] is refused: it meant every line, as the key left out does, not none."""
        self.assertEqual(self.refused(f'{LINE}[watch-all]\nlisten = "tcp:4400"\nlines = []\n'),
                         "FILE:6: [watch-all] lines: empty: give shell patterns of line names, or leave the key out "
                         "for every line")


class FileTests(SynchronousTestCase):
    def refusedAtOnce(self, path: Any, error: type[Exception] = ConfigError) -> str:
        """
        loadFile's error for C{path} (or, for a callable, its C{error}); a
        wait (a FIFO opened for reading) fails the test after 10 s.
        """

        def blocked(signum: int, frame: Any) -> None:
            raise self.failureException(f"reading {path!r} waited")

        previous: Callable[..., Any] | int | None = signal.signal(signal.SIGALRM, blocked)
        signal.alarm(10)
        try:
            return str(self.assertRaises(error, path) if callable(path) else self.assertRaises(error, loadFile, path))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    def test_fifo(self) -> None:
        """A FIFO as the configuration (nobody writing) is refused at once, not waited on: a SIGHUP would hang the reactor."""
        path = shortTemp(self)
        os.mkfifo(path)
        self.assertEqual(self.refusedAtOnce(path), f"configuration {path!r} is not a regular file (a FIFO)")

    def test_directoryAndDevice(self) -> None:
        """A directory or a character device is not a configuration file: said so."""
        path = shortTemp(self)
        os.mkdir(path)
        self.assertEqual(self.refusedAtOnce(path), f"configuration {path!r} is not a regular file (a directory)")
        self.assertEqual(self.refusedAtOnce("/dev/zero"),
                         "configuration '/dev/zero' is not a regular file (a character device)")

    def test_tlsFilesNotWaitedOn(self) -> None:
        """A TLS cert, key or CA path that is a FIFO or /dev/zero: refused at once (a reload hung, or read until memory ran out)."""
        from serialgw.clients.tls import ServerContextFactory, clientOptions
        from serialgw.clients.tlsfiles import MAX_PEM_FILE, TLSError
        from serialgw.config.listenerspecs import TLSSpec

        fifo = os.path.abspath(self.mktemp())
        os.mkfifo(fifo)
        big = self.mktemp()
        with open(big, "wb") as f:
            f.truncate(MAX_PEM_FILE + 1)

        def tlsError(make: Any, spec: TLSSpec) -> str:
            return self.refusedAtOnce(lambda: make(spec), TLSError)

        self.assertEqual(tlsError(ServerContextFactory, TLSSpec(cert=fifo, key=fifo)),
                         f"certificate {fifo!r} is not a regular file")
        self.assertEqual(tlsError(ServerContextFactory, TLSSpec(cert="/dev/zero", key="/dev/zero")),
                         "certificate '/dev/zero' is not a regular file")
        self.assertEqual(tlsError(clientOptions, TLSSpec(ca=fifo, hostname="console.example")),
                         f"CA file {fifo!r} is not a regular file")
        self.assertEqual(tlsError(clientOptions, TLSSpec(ca=big, hostname="console.example")),
                         f"CA file {big!r} is larger than 4 MiB")

    def test_byteOrderMark(self) -> None:
        """A UTF-8 byte order mark (Notepad's) is named, not tomllib's 'Invalid statement (at line 1, column 1)'."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbf" + LINE.encode())
        self.assertEqual(self.refusedAtOnce(path), f"{path}:1: starts with a byte order mark (bytes ef bb bf): "
                                                   "a TOML file has none; save it as UTF-8 without one")
