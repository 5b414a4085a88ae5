"""
[tls] sessions-per-person: how many TLS sessions one person (a client
certificate's CN) may have at once on all lines together (32 by default,
1 to 1024), as [ssh] sessions-per-person for SSH; a value out of it, or
another key, refuses the file, naming its line.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadFile
from serialgw.config.specs import ConfigError
from tests.realio import writeTemp

LINE = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'


class TLSSessionsPerPersonTests(SynchronousTestCase):
    def test_default(self) -> None:
        """Without a [tls] table (the minimal file), 32; with an empty one, 32 too."""
        self.assertEqual(loadFile(writeTemp(self, LINE)).tlsSessionsPerPerson, 32)
        self.assertEqual(loadFile(writeTemp(self, "[tls]\n" + LINE)).tlsSessionsPerPerson, 32)

    def test_set(self) -> None:
        """sessions-per-person = 200 is taken; 1 and 1024 are its ends; no [ssh] or [users.NAME] needed."""
        for value in (200, 1, 1024):
            path = writeTemp(self, f"[tls]\nsessions-per-person = {value}\n" + LINE)
            self.assertEqual(loadFile(path).tlsSessionsPerPerson, value)

    def test_outOfBoundsRefused(self) -> None:
        """0, -1, 1025, 10**30, a string, a boolean, a float refuse the file, naming its line and the bounds."""
        for value, said in (("0", "0"), ("-1", "-1"), ("1025", "1025"), ("1" + "0" * 30, "1" + "0" * 30),
                            ('"64"', "'64'"), ("true", "True"), ("32.0", "32.0"), ("inf", "inf")):
            path = writeTemp(self, f"{LINE}[tls]\nsessions-per-person = {value}\n")
            e = self.assertRaises(ConfigError, loadFile, path)
            self.assertEqual(str(e), f"{path}:5: [tls] sessions-per-person: expected a number of sessions from 1 to "
                                     f"1024, not {said}")

    def test_otherKeysRefused(self) -> None:
        """A key [tls] does not know (the SSH one's listen, a typo) is refused, naming it and the known one."""
        for key in ("listen", "sessions_per_person"):
            path = writeTemp(self, f'[tls]\n{key} = "x"\n' + LINE)
            e = self.assertRaises(ConfigError, loadFile, path)
            hint = ": did you mean 'sessions-per-person'?" if key == "sessions_per_person" else ""
            self.assertEqual(str(e), f"{path}:2: unknown key {key!r} in [tls]{hint} (known: sessions-per-person)")

    def test_notATable(self) -> None:
        """tls = 3 is refused: [tls] is a table."""
        path = writeTemp(self, "tls = 3\n" + LINE)
        e = self.assertRaises(ConfigError, loadFile, path)
        self.assertEqual(str(e), f"{path}:1: [tls] must be a table")

    def test_unknownTopLevelNamesIt(self) -> None:
        """The error for an unknown top-level table lists [tls] among those expected."""
        path = writeTemp(self, "[tsl]\n" + LINE)
        e = self.assertRaises(ConfigError, loadFile, path)
        self.assertIn("[tls]", str(e))
