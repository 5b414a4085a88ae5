"""
escape= with a letter, a digit or a space: typed all the time, each would
open the escape menu in the middle of normal typing; refused, naming the
value (and FILE:LINE in a configuration file).  Punctuation stays allowed.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.parsers import parseEscape
from serialgw.config.specs import ConfigError, quote

WHY = ("typed all the time: each would start an escape command in the middle of normal typing; punctuation such as ~ "
       "or ` is allowed (^] is usual)")


class PrintableEscapeTests(SynchronousTestCase):
    def test_lettersDigitsSpaceRefused(self) -> None:
        """escape=5, escape=e, escape=T: refused, naming the value and why; a space too (a listener string's escape= ' ' reads as empty, refused as such)."""
        for key, what in (("5", "a digit"), ("e", "a letter"), ("T", "a letter")):
            text = f"telnet,escape={key}+4444"
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"escape={quote(key)} in {quote(text)}: it cannot be the escape key: it is {what}, {WHY}")
        self.assertEqual(str(self.assertRaises(ConfigError, parseEscape, " ", "x")),
                         f"escape=' ' in 'x': it cannot be the escape key: it is a space, {WHY}")
        self.assertIn("needs a value", str(self.assertRaises(ConfigError, parseListener, "telnet,escape= +4444")))

    def test_punctuationAndControlKeysTaken(self) -> None:
        """~ (ssh's), ` (a tmux prefix), ^] and ^E (conserver's) are taken."""
        self.assertEqual([parseListener(f"raw,escape={k}+4444").escape for k in ("~", "`", "^]", "^E")],
                         [ord("~"), ord("`"), 0x1D, 0x05])

    def test_configFileNamesFileAndLine(self) -> None:
        """In a configuration file (read by --check and at start): FILE:LINE and the value."""
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = ["4001",\n  "telnet,escape=5+4002"]\n')
        error = str(self.assertRaises(ConfigError, loadConfig, path))
        self.assertTrue(error.startswith(f"{path}:"), error)
        self.assertIn("escape='5' in 'telnet,escape=5+4002': it cannot be the escape key: it is a digit", error)
