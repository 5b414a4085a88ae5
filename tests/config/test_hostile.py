"""
A configuration file written by someone careless or hostile: names with
a newline, numbers past a float, undecodable strings, keys of a log that
is not there, a FIFO, a directory or a byte order mark where the file
should be.  Each is a ConfigError naming the file (its line and key where
there is one), at once: never another exception (a traceback at start,
a reload that never finishes at SIGHUP) and never a wait.
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
from tests.realio import writeTemp

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'


class KeyValueTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        return str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")

    def test_namesEndingInANewline(self) -> None:
        """A line or user name with a trailing newline (a quoted TOML key) is refused, as any other character."""
        self.assertEqual(self.refused('[lines."a\\n"]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'),
                         "FILE: line name 'a\\n': letters, digits, '.', '_' and '-' only")
        self.assertEqual(self.refused(LINE + '[users."bob\\n"]\nkeys = []\n'),
                         "FILE: user name 'bob\\n': letters, digits, '.', '_' and '-' only")

    def test_integersPastAFloat(self) -> None:
        """A TOML integer too large for a float where milliseconds go: the key's error quoting it, not OverflowError."""
        huge = "1" + "0" * 400
        for key in ("break-duration", "pace", "pace-line"):
            self.assertEqual(self.refused(f"{LINE}{key} = {huge}\n"), f"FILE:4: [lines.a] {key}: out of range: {huge}")
        self.assertEqual(self.refused(f"[defaults]\npace = {huge}\n{LINE}"),
                         f"FILE:2: [defaults] pace: out of range: {huge}")

    def test_coalesceStringNotBytes(self) -> None:
        """A coalesce STRING that cannot be read as bytes (a cut \\x escape, \\u20ac) is refused, quoted, in the file and as an option."""
        self.assertEqual(self.refused(LINE + "coalesce = '5,50,\\x'\n"),
                         "FILE:4: [lines.a] coalesce: coalesce '5,50,\\\\x': cannot read STRING '\\\\x' (truncated "
                         "\\xXX escape): bytes, with escapes such as \\n, \\r, \\xNN")
        self.assertIn("cannot read STRING '\\\\u20ac'", self.refused(LINE + "coalesce = '5,50,\\u20ac'\n"))
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--coalesce", "5,50,\\x4"])
        self.assertEqual(str(e), "coalesce '5,50,\\\\x4': cannot read STRING '\\\\x4' (truncated \\xXX escape): "
                                 "bytes, with escapes such as \\n, \\r, \\xNN")

    def test_logKeysWithoutALog(self) -> None:
        """log-format, log-max-size, log-daily and log-keep are checked on a line without log = too."""
        self.assertEqual(self.refused(LINE + 'log-keep = "x"\n'), "FILE:4: [lines.a] log-keep: expected int, not 'x'")
        self.assertEqual(self.refused(LINE + "log-daily = 1\n"), "FILE:4: [lines.a] log-daily: expected bool, not 1")
        self.assertEqual(self.refused("[defaults]\nlog-keep = -1\n" + LINE),
                         "FILE:2: [defaults] log-keep: log-keep must be 0 to 1000, not -1")
        (line,) = loadConfig(writeTemp(self, "[defaults]\nlog-keep = 3\n" + LINE))
        self.assertIsNone(line.log)


class FileTests(SynchronousTestCase):
    def refusedAtOnce(self, path: str) -> str:
        """loadFile's error for C{path}; a wait (a FIFO opened for reading) fails the test after 10 s."""

        def blocked(signum: int, frame: Any) -> None:
            raise self.failureException(f"reading {path!r} waited")

        previous: Callable[..., Any] | int | None = signal.signal(signal.SIGALRM, blocked)
        signal.alarm(10)
        try:
            return str(self.assertRaises(ConfigError, loadFile, path))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    def test_fifo(self) -> None:
        """A FIFO as the configuration (nobody writing) is refused at once, not waited on: a SIGHUP would hang the reactor."""
        path = os.path.abspath(self.mktemp())
        os.mkfifo(path)
        self.assertEqual(self.refusedAtOnce(path), f"configuration {path!r} is not a regular file (a FIFO)")

    def test_directoryAndDevice(self) -> None:
        """A directory or a character device is not a configuration file: said so."""
        path = os.path.abspath(self.mktemp())
        os.mkdir(path)
        self.assertEqual(self.refusedAtOnce(path), f"configuration {path!r} is not a regular file (a directory)")
        self.assertEqual(self.refusedAtOnce("/dev/zero"),
                         "configuration '/dev/zero' is not a regular file (a character device)")

    def test_byteOrderMark(self) -> None:
        """A UTF-8 byte order mark (Notepad's) is named, not tomllib's 'Invalid statement (at line 1, column 1)'."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbf" + LINE.encode())
        self.assertEqual(self.refusedAtOnce(path), f"{path}:1: starts with a byte order mark (bytes ef bb bf): "
                                                   "a TOML file has none; save it as UTF-8 without one")
