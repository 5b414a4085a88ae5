"""
The [by-name] table: its listeners (server endpoints, TLS too, with a
line listener's options) and its lines patterns, each optional key left
out, and what is refused, naming the file's line and the key.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadFile
from serialgw.config.listenerspecs import Protocol
from serialgw.config.specs import ConfigError
from tests.app.test_tap import parse
from tests.realio import writeTemp

LINE = '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'


class ByNameKeyTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        path = writeTemp(self, LINE + text)
        return str(self.assertRaises(ConfigError, loadFile, path)).replace(path, "FILE")

    def test_listenAlone(self) -> None:
        """listen alone (a string, a number or a list): every line, the listeners with their options."""
        spec = loadFile(writeTemp(self, LINE + '[by-name]\nlisten = "raw,ro,allow=10.0.0.0/8+4000"\n')).byName
        assert spec is not None
        self.assertEqual(spec.lines, ("*",))
        (listener,) = spec.listeners
        self.assertEqual((listener.port, listener.protocol, listener.readOnly, listener.allow),
                         (4000, Protocol.RAW, True, ("10.0.0.0/8",)))
        spec = loadFile(writeTemp(self, LINE + '[by-name]\nlisten = 4000\n')).byName
        assert spec is not None
        self.assertEqual([(s.port, s.protocol) for s in spec.listeners], [(4000, Protocol.TELNET)])
        spec = loadFile(writeTemp(self, LINE + '[by-name]\nlisten = ["4000", "unix:/run/c.sock"]\n'
                                  'lines = ["rack4-*"]\n')).byName
        assert spec is not None
        self.assertEqual(([s.port for s in spec.listeners], spec.listeners[1].path, spec.lines),
                         ([4000, 0], "/run/c.sock", ("rack4-*",)))

    def test_noTable(self) -> None:
        """Without the table: no by-name listener."""
        self.assertIsNone(loadFile(writeTemp(self, LINE)).byName)

    def test_refused(self) -> None:
        """A missing listen, an empty lines, an unknown key, a value of the wrong kind, a dial-out or a file are refused, said with the file's line."""
        self.assertEqual(self.refused('[by-name]\nlines = ["a*"]\n'),
                         'FILE:4: [by-name] listen: missing: an endpoint such as "4000"')
        self.assertEqual(self.refused('[by-name]\nlisten = "4000"\nlines = []\n'),
                         "FILE:6: [by-name] lines: empty: give shell patterns of line names, or leave the key out for "
                         "every line")
        self.assertTrue(self.refused('[by-name]\nlisten = "4000"\nprompt = "x"\n').startswith(
            "FILE:6: unknown key 'prompt' in [by-name]"))
        self.assertEqual(self.refused('[by-name]\nlisten = true\n'),
                         "FILE:5: [by-name] listen: expected a string or a list of them, not True")
        path = writeTemp(self, 'by-name = "4000"\n' + LINE)
        self.assertEqual(str(self.assertRaises(ConfigError, loadFile, path)).replace(path, "FILE"),
                         "FILE:1: [by-name] must be a table")
        for text in ("tcp:10.0.0.5:7000", "file:/tmp/x.log", "pty:/tmp/p", "udp::4555@4556"):
            self.assertEqual(self.refused(f'[by-name]\nlisten = "{text}"\n'),
                             f"FILE:5: [by-name] listen: by-name listener '{text}': expected a server endpoint such as "
                             "4000, tls:4000:cert=...:key=... or unix:/run/serialgw/consoles.sock (no dial-out, file, "
                             "pipe, pty, netconsole or stdio: a client there names the console it wants)")
        self.assertEqual(self.refused('[by-name]\nlisten = "4000"\nlines = ["a\\u0007"]\n'),
                         "FILE:6: [by-name] lines: pattern 'a\\x07' holds a control character: it can match no line "
                         "name (letters, digits, '.', '_' and '-')")
        said = self.refused('[by-name]\nlisten = "unix:/run/{line}.sock"\n')
        self.assertTrue(said.startswith("FILE:5: [by-name] listen:"), said)
        self.assertIn("[by-name] serves every line (a client names the one it wants)", said)

    def test_unknownTopLevelNamesIt(self) -> None:
        """A misspelt table is refused, the list of tables naming [by-name]."""
        said = self.refused('[byname]\nlisten = "4000"\n')
        self.assertTrue(said.endswith("(expected [defaults], [lines.NAME], [ssh], [tls], [users.NAME], [watch-all] "
                                      "and [by-name])"), said)

    def test_notWithShard(self) -> None:
        """--shard refuses a file with [by-name]: each process knows only its own lines."""
        path = writeTemp(self, LINE + '[by-name]\nlisten = "4000"\n')
        said = str(self.assertRaises(UsageError, parse, "--config", path, "--shard", "0/2"))
        self.assertEqual(said, "--shard 0/2 and a [by-name] table do not go together: each process knows only its own "
                               "lines, and one port cannot be every process's")

    def test_clashSaidByCheck(self) -> None:
        """--check names a by-name listener on a line's port."""
        from serialgw.app.check import checkLines

        loaded = loadFile(writeTemp(self, LINE + '[by-name]\nlisten = "4001"\n'))
        assert loaded.byName is not None
        errors, _ = checkLines(loaded.lines, byName=loaded.byName.listeners)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("by-name", errors[0])
        self.assertIn("web1", errors[0])
