"""
The key close-on (ser2net's closeon): the open-string's escapes, no break,
1 to 256 bytes, left out none; anything else refused naming the file's
line, the key and the value; ser2net's closeon and sendon pointed here.
"""

from __future__ import annotations

from serialgw.config.linetable import CLOSE_ON_MOST
from tests.config.filecase import ConfigFileCase

LINE = '[lines.m1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'


class CloseOnKeyTests(ConfigFileCase):
    def test_readAndLeftOut(self) -> None:
        """Escapes read as open-string's; left out: none; from [defaults] for every line."""
        (line,) = self.load(LINE + "close-on = 'NO CARRIER\\r\\n'\n")
        self.assertEqual(line.closeOn, b"NO CARRIER\r\n")
        (line,) = self.load(LINE + 'close-on = "logout\\r\\n\\\\x1b"\n')
        self.assertEqual(line.closeOn, b"logout\r\n\x1b")
        (line,) = self.load(LINE)
        self.assertEqual(line.closeOn, b"")
        (line,) = self.load("[defaults]\nclose-on = 'bye'\n" + LINE)
        self.assertEqual(line.closeOn, b"bye")
        (line,) = self.load(LINE + f"close-on = '{'x' * CLOSE_ON_MOST}'\n")
        self.assertEqual(len(line.closeOn), CLOSE_ON_MOST)

    def test_refusedNamingWhat(self) -> None:
        """A break, empty, past the bound, TOML's backspace, an unknown escape, not a string: refused, FILE:LINE and the key named."""
        for value, said in (
            ("'x\\by'", "'x\\by': a break (\\b) is nothing a device sends: close-on is text it sends (\\r \\n \\t \\e "
                        "\\0 \\\\ \\xNN)"),
            ("''", "empty: it would match anything; leave close-on out for none"),
            (f"'{'x' * (CLOSE_ON_MOST + 1)}'", f"{CLOSE_ON_MOST + 1} bytes, at most {CLOSE_ON_MOST}"),
            ('"bye\\b"', "a backspace (\\x08) in it: in a TOML string \"...\" \\b is a backspace"),
            ("'a\\q'", "'a\\q': unknown escape '\\q'"),
            ("9223372036854775808", "expected a string (in quotes), not 9223372036854775808"),
        ):
            got = self.refused(LINE + f"close-on = {value}\n")
            self.assertTrue(got.startswith("FILE:4: [lines.m1] close-on: "), got)
            self.assertIn(said, got)

    def test_ser2netsNamesPointHere(self) -> None:
        """ser2net's closeon and sendon pasted as keys say what each is here."""
        self.assertIn("unknown key 'closeon' in [lines.m1]: ser2net's closeon is close-on here",
                      self.refused(LINE + "closeon = 'bye'\n"))
        self.assertIn("unknown key 'sendon' in [lines.m1]: ser2net's sendon is coalesce's STRING here: coalesce = "
                      "\"1,20,\\r\\n\"", self.refused(LINE + "sendon = '\\r\\n'\n"))
