"""
{line} in a line's device, listen and log: one [defaults] value serves
every line (conserver's & in logfile, ser2net's \\N); every other brace is
refused unless doubled, and two lines that come to one path are refused
when the file is read (so by --check), naming the file's line.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.placeholders import expandLine
from serialgw.config.specs import ConfigError, LineConfig
from tests.config.test_check import checked
from tests.realio import socketPath


class PlaceholderTests(SynchronousTestCase):
    def setUp(self) -> None:
        # Short enough for unix socket names.
        self.dir = os.path.dirname(socketPath(self))

    def file(self, text: str) -> str:
        path = os.path.join(self.dir, "farm.toml")
        with open(path, "w") as f:
            f.write(text.replace("DIR", self.dir))
        return path

    def refused(self, text: str) -> str:
        path = self.file(text)
        e = self.assertRaises(ConfigError, loadConfig, path)
        return str(e).replace(path, "FILE").replace(self.dir, "DIR")

    def lines(self, text: str) -> dict[str, LineConfig]:
        return {c.name: c for c in loadConfig(self.file(text))}

    def test_defaultsServeEveryLine(self) -> None:
        """A [defaults] device, listen and log with {line} become each line's own paths, relative ones too."""
        lines = self.lines('[defaults]\nlog = "logs/{line}.log"\ndevice = "pty:DIR/{line}"\n'
                           'listen = ["unix:DIR/{line}.sock", "raw+file:DIR/{line}.out", "0"]\n'
                           '[lines.web1]\n[lines.vm-101]\n')
        self.assertEqual(sorted(lines), ["vm-101", "web1"])
        for name, config in lines.items():
            assert config.log is not None
            self.assertEqual(config.log.path, f"{self.dir}/logs/{name}.log")
            self.assertEqual(config.device.path, f"{self.dir}/{name}")
            self.assertEqual([spec.path for spec in config.listeners[:2]],
                             [f"{self.dir}/{name}.sock", f"{self.dir}/{name}.out"])
            self.assertEqual(config.listeners[0].text, f"unix:{self.dir}/{name}.sock")

    def test_ownTableToo(self) -> None:
        """{line} works in a line's own table, and {{ }} are a brace each (a path that holds braces)."""
        lines = self.lines('[lines.a]\ndevice = "pty:DIR/{line}-{{x}}"\nlisten = "0"\nlog = "DIR/{{{line}}}.log"\n')
        self.assertEqual(lines["a"].device.path, f"{self.dir}/a-{{x}}")
        assert lines["a"].log is not None
        self.assertEqual(lines["a"].log.path, f"{self.dir}/{{a}}.log")

    def test_otherBracesRefused(self) -> None:
        """An unknown {word} or a lone brace is refused naming FILE:LINE, the key and the value as typed."""
        tail = "the one placeholder is {line}, the line's name; a brace itself is written {{ or }}"
        line = '[lines.a]\ndevice = "pty:/run/a"\nlisten = "0"\n'
        cases = {
            f'[defaults]\nlog = "/var/log/{{name}}.log"\n{line}':
                "[defaults] log: log '/var/log/{name}.log': unknown placeholder '{name}'",
            f"[defaults]\nlog = '/var/log/{{}}.log'\n{line}":
                "[defaults] log: log '/var/log/{}.log': unknown placeholder '{}'",
            '[defaults]\ndevice = "pty:/run/a{b"\n[lines.a]\nlisten = "0"\n':
                "[defaults] device: device 'pty:/run/a{b': a lone '{'",
            '[defaults]\nlisten = ["0", "unix:/run/}.sock"]\n[lines.a]\ndevice = "pty:/run/a"\n':
                "[defaults] listen: listen 'unix:/run/}.sock': a lone '}'",
        }
        for text, said in cases.items():
            self.assertEqual(self.refused(text), f"FILE:2: {said}: {tail}")
        message = self.refused('[lines.a]\ndevice = "pty:/run/a"\nlisten = "0"\n\nlog = "/var/log/{LINE}.log"\n')
        self.assertEqual(message, f"FILE:5: [lines.a] log: log '/var/log/{{LINE}}.log': unknown placeholder "
                                  f"'{{LINE}}': {tail}")

    def test_failingForOneLineNamesIt(self) -> None:
        """A [defaults] value with {line} that fails for one line only says for which."""
        message = self.refused('[defaults]\nlisten = "x{line}"\n[lines.a]\ndevice = "pty:/run/a"\n')
        self.assertTrue(message.startswith("FILE:2: [defaults] listen: for line 'a', cannot read listener 'xa'"),
                        message)
        # Without {line} the value is the same for every line: no line named, as before.
        message = self.refused('[defaults]\nlisten = "xa"\n[lines.a]\ndevice = "pty:/run/a"\n')
        self.assertTrue(message.startswith("FILE:2: [defaults] listen: cannot read listener 'xa'"), message)

    def test_twoLinesOnOnePathRefused(self) -> None:
        """A line's own log where [defaults]' {line} puts another's is refused when the file is read."""
        message = self.refused('[defaults]\nlog = "DIR/{line}.log"\nlisten = "0"\n'
                               '[lines.a]\ndevice = "pty:DIR/a"\n'
                               '[lines.b]\ndevice = "pty:DIR/b"\nlog = "DIR/a.log"\n')
        self.assertEqual(message, "FILE:8: [lines.b] log: 'DIR/a.log' is line 'a''s log too")
        message = self.refused('[defaults]\nlog = "DIR/{line}.log"\nlisten = ["0", "file:DIR/{line}.log"]\n'
                               '[lines.a]\ndevice = "pty:DIR/a"\n')
        self.assertEqual(message, "FILE:3: [defaults] listen: for line 'a', 'file:DIR/a.log' writes 'DIR/a.log', as "
                                  "line 'a''s log does: two writers would interleave in one file")

    def test_sharedDefaultsSayLine(self) -> None:
        """A [defaults] log or device two lines would share is refused saying how {line} makes it each line's."""
        two = '[lines.a]\ndevice = "pty:DIR/a"\n[lines.b]\ndevice = "pty:DIR/b"\n'
        message = self.refused(f'[defaults]\nlisten = "0"\nlog = "DIR/all.log"\n{two}')
        self.assertEqual(message, "FILE:3: [defaults] log: for line 'b', 'DIR/all.log' is line 'a''s log too (each "
                                  "line its own: {line} is the line's name, e.g. 'DIR/{line}.log')")
        message = self.refused(f"[defaults]\nlisten = '0'\nlog = 'DIR/&'\n{two}")
        self.assertEqual(message, "FILE:3: [defaults] log: for line 'b', 'DIR/&' is line 'a''s log too (conserver's "
                                  "& is {line} here: 'DIR/{line}')")
        message = self.refused(f"[defaults]\nlisten = '0'\nlog = 'DIR/\\N.log'\n{two}")
        self.assertEqual(message, "FILE:3: [defaults] log: for line 'b', 'DIR/\\N.log' is line 'a''s log too (ser2net's "
                                  "\\N is {line} here: 'DIR/{line}.log')")
        message = self.refused('[defaults]\nlisten = "0"\ndevice = "pty:DIR/dev"\n[lines.a]\n[lines.b]\n')
        self.assertEqual(message, "FILE:3: [defaults] device: for line 'b', 'pty:DIR/dev' is line 'a''s device too "
                                  "(each line its own: {line} is the line's name)")

    def test_checkSaysFileLine(self) -> None:
        """--check refuses a placeholder it does not know, and passes a farm whose paths all come from [defaults]."""
        path = self.file('[defaults]\nlisten = "0"\nlog = "DIR/{nmae}.log"\n[lines.a]\ndevice = "pty:DIR/a"\n')
        e = self.assertRaises(usage.UsageError, checked, "--config", path)
        self.assertTrue(str(e).startswith(f"{path}:3: [defaults] log: log '{self.dir}/{{nmae}}.log': unknown "
                                          "placeholder '{nmae}'"), str(e))
        path = self.file('[defaults]\nlisten = "unix:DIR/{line}.sock"\nlog = "DIR/{line}.log"\n'
                         'device = "pty:DIR/{line}.pty"\n[lines.a]\n[lines.b]\n')
        status, out, err = checked("--config", path)
        self.assertEqual((status, err), (0, ""))
        self.assertIn("2 line(s), 2 listener(s): OK", out)

    def test_oldLogsNamesRefused(self) -> None:
        """A file at another log's old names (LOG.1 to LOG.KEEP, LOG.typed.N) is refused: a rotation would move it."""
        message = self.refused('[defaults]\nlog = "DIR/{line}"\nlisten = "0"\ndevice = "pty:DIR/{line}.pty"\n'
                               '[lines.web1]\n[lines."web1.1"]\n')
        self.assertEqual(message, "FILE:2: [defaults] log: for line 'web1.1', 'DIR/web1.1' is one of line 'web1''s "
                                  "old logs ('DIR/web1.1' to 'DIR/web1.7': log-keep = 7): its rotation would rename "
                                  "this file under its writer (a suffix after {line}, as '{line}.log', keeps the "
                                  "names apart)")
        message = self.refused('[lines.a]\ndevice = "pty:DIR/a"\nlisten = "0"\nlog = "DIR/a.log"\nlog-typed = true\n'
                               '[lines.b]\ndevice = "pty:DIR/b"\nlisten = ["0", "file:DIR/a.log.typed.3"]\n')
        self.assertEqual(message, "FILE:8: [lines.b] listen: 'DIR/a.log.typed.3' is one of line 'a''s old log-typed "
                                  "files ('DIR/a.log.typed.1' to 'DIR/a.log.typed.7': log-keep = 7): its rotation would "
                                  "rename this file under its writer")
        # Past log-keep, or with no rotation at all, those names are nobody's.
        self.lines('[lines.a]\ndevice = "pty:DIR/a"\nlisten = "0"\nlog = "DIR/a"\nlog-keep = 2\n'
                   '[lines.b]\ndevice = "pty:DIR/b"\nlisten = "0"\nlog = "DIR/a.3"\n'
                   '[lines.c]\ndevice = "pty:DIR/c"\nlisten = "0"\nlog = "DIR/c"\nlog-max-size = 0\nlog-daily = false\n'
                   '[lines.d]\ndevice = "pty:DIR/d"\nlisten = "0"\nlog = "DIR/c.1"\n')

    def test_checkWarnsOncePerDirectory(self) -> None:
        """--check of 50 lines whose [defaults] paths go in a missing directory: 3 warnings, then one line counting the others (not 150)."""
        missing = os.path.join(self.dir, "missing")
        lines = "".join(f"[lines.n{i}]\n" for i in range(50))
        path = self.file(f'[defaults]\ndevice = "pty:{missing}/{{line}}"\nlisten = "unix:{missing}/{{line}}.sock"\n'
                         f'log = "{missing}/{{line}}.log"\n{lines}')
        status, out, err = checked("--config", path)
        self.assertEqual(status, 0)
        self.assertEqual(err.replace(path, "FILE").replace(missing, "M").splitlines(), [
            "serialgw: warning: FILE:5: line 'n0': the directory of log 'M/n0.log' does not exist (now)",
            "serialgw: warning: FILE:5: line 'n0': device 'pty:M/n0': directory 'M' does not exist (now): the line "
            "would start down (tried again with backoff)",
            "serialgw: warning: FILE:5: line 'n0': listener 'unix:M/n0.sock': directory 'M' does not exist (now)",
            "serialgw: warning: FILE:6: line 'n1', and 48 more line(s) after it ('n2', 'n3', 'n4', 'n5', 'n6', ...): "
            "directory 'M' does not exist (now), where their logs, listeners or pty links go (147 warning(s) in one)",
        ])
        self.assertIn("50 line(s), 50 listener(s): OK, 4 warning(s)", out)


class BraceProperties(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="{}line/a.", max_size=20), st.sampled_from(["a", "rack4-web1", "x.y_z"]))
    def test_anyPathCanBeWritten(self, path: str, name: str) -> None:
        """Any path, its braces doubled, reads back as itself; with {line} put in, as the name there; nothing else raises but ConfigError."""
        escaped = path.replace("{", "{{").replace("}", "}}")
        self.assertEqual(expandLine(escaped, name, "log"), path)
        self.assertEqual(expandLine(escaped + "{line}" + escaped, name, "log"), path + name + path)
        try:
            expandLine(path, name, "log")
        except ConfigError as e:
            self.assertTrue(str(e).startswith("log '"), str(e))
