"""
The key aliases (conserver's aliases): a line's other names, one string or
a list, each a line's name would be, at most 16; left out none; refused
naming the file's line, the key and the value where an alias is another
line's name or alias, the line's own, given twice, or in [defaults].
"""

from __future__ import annotations

from serialgw.config.linetable import ALIASES_MOST
from tests.config.filecase import ConfigFileCase

LINE = '[lines.m1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'
OTHER = '[lines.m2]\ndevice = "/dev/ttyUSB1"\nlisten = "4002"\n'


class AliasesKeyTests(ConfigFileCase):
    def test_readAndLeftOut(self) -> None:
        """Left out: none; one string; a list in its order; 16 taken; every line's own."""
        (line,) = self.load(LINE)
        self.assertEqual(line.aliases, ())
        (line,) = self.load(LINE + 'aliases = "rack4-m1"\n')
        self.assertEqual(line.aliases, ("rack4-m1",))
        one, two = self.load(LINE + 'aliases = ["b", "a.1", "10.0.4.11"]\n' + OTHER + 'aliases = ["c"]\n')
        self.assertEqual((one.aliases, two.aliases), (("b", "a.1", "10.0.4.11"), ("c",)))
        (line,) = self.load(LINE + f"aliases = {[f'a{n}' for n in range(ALIASES_MOST)]}\n")
        self.assertEqual(len(line.aliases), ALIASES_MOST)
        (line,) = self.load(LINE + "aliases = []\n")
        self.assertEqual(line.aliases, ())

    def test_refusedNamingWhat(self) -> None:
        """Not a string or list, a name no line could have, the line's own name, twice, past 16: refused, FILE:LINE and the key named."""
        for value, said in (
            ("9223372036854775808", "expected a line's other names (a string or a list of them), not "
                                    "9223372036854775808"),
            ('["a", 1]', "expected a line's other names (a string or a list of them), not ['a', 1]"),
            ("{ a = 1 }", "expected a line's other names (a string or a list of them), not {'a': 1}"),
            ('"a b"', "alias name 'a b': letters, digits, '.', '_' and '-' only"),
            ('"-a"', "alias name '-a': starts with '-'"),
            ('""', "alias name '': letters, digits"),
            (f'"{"x" * 129}"', "at most 128 characters"),
            ('"m1"', "'m1' is this line's own name: an alias is another name"),
            ('["a", "b", "a"]', "'a' is given twice"),
            (f"{[f'a{n}' for n in range(ALIASES_MOST + 1)]}", f"{ALIASES_MOST + 1} aliases, at most {ALIASES_MOST}"),
        ):
            got = self.refused(LINE + f"aliases = {value}\n")
            self.assertTrue(got.startswith("FILE:4: [lines.m1] aliases: "), got)
            self.assertIn(said, got)

    def test_oneLineAnAlias(self) -> None:
        """An alias that is another line's name (one turned off too) or another line's alias is refused at the line that gives it, naming the other line."""
        self.assertEqual(self.refused(LINE + 'aliases = ["x", "m2"]\n' + OTHER),
                         "FILE:4: [lines.m1] aliases: 'm2' is the name of [lines.m2]: an alias names one line only")
        self.assertEqual(self.refused(LINE + 'aliases = "m2"\n' + OTHER + "enable = false\n"),
                         "FILE:4: [lines.m1] aliases: 'm2' is the name of [lines.m2]: an alias names one line only")
        self.assertEqual(self.refused(LINE + 'aliases = ["x"]\n' + OTHER + 'aliases = ["y", "x"]\n'),
                         "FILE:8: [lines.m2] aliases: 'x' is an alias of [lines.m1] already: an alias names one line "
                         "only")

    def test_defaultsRefused(self) -> None:
        """aliases in [defaults] (every line the same name) is refused saying it is a line's own key; 'alias' is asked about."""
        self.assertEqual(self.refused('[defaults]\naliases = ["x"]\n' + LINE),
                         "FILE:2: [defaults] aliases: a line's own key (in [lines.NAME]): other names of that line, "
                         "each naming one line only")
        self.assertIn("unknown key 'alias' in [lines.m1]: did you mean 'aliases'?", self.refused(LINE + 'alias = "x"\n'))
