"""
The key break-sequences (conserver's break N blocks and breaklist): read
as a table by the key after the escape menu's l, the open-string's escapes
and conserver's (\\z, ^B, \\ooo), left out conserver's first three, from
[defaults] or a line's own; anything else refused naming the file's line,
the key, the sequence and what is wrong; conserver's name pointed here.
"""

from __future__ import annotations

from serialgw.config.breakseqs import SEQUENCE_MOST, parseSequence, shownSequence
from serialgw.config.specs import DEFAULT_BREAK_SEQUENCES
from tests.config.filecase import ConfigFileCase

LINE = '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'
PREFIX = "FILE:4: [lines.web1] break-sequences: "


class BreakSequenceKeyTests(ConfigFileCase):
    def test_readInKeyOrder(self) -> None:
        """A table by key, read in 1-9 a-z order: the escapes, conserver's ^B, \\z and octal, a break between keys."""
        (line,) = self.load(LINE + "break-sequences = { z = '\\x1b^[', 2 = '\\r~^B', a = 'x\\zy', 9 = '\\177\\0\\^' }\n")
        self.assertEqual(line.breakSequences, (("2", (b"\r~\x02",)), ("9", (b"\x7f\x00^",)), ("a", (b"x", b"y")),
                                               ("z", (b"\x1b\x1b",))))
        (line,) = self.load(LINE + "[lines.web1.break-sequences]\n1 = '\\b'\n")
        self.assertEqual(line.breakSequences, (("1", (b"", b"")),))
        self.assertEqual([shownSequence(parts) for _, parts in DEFAULT_BREAK_SEQUENCES], ["\\b", "\\r~^B", "#."])
        self.assertEqual(shownSequence(parseSequence("\\x80\\\\^?\\^\\n")), "\\x80\\\\^?\\^\\n")

    def test_leftOutDefaultsAndNone(self) -> None:
        """Left out: conserver's first three (1 a break, 2 Sun's alternate break, 3 #.); {} none; [defaults]' for every line, a line's own whole instead."""
        (line,) = self.load(LINE)
        self.assertEqual(line.breakSequences, (("1", (b"", b"")), ("2", (b"\r~\x02",)), ("3", (b"#.",))))
        (line,) = self.load(LINE + "break-sequences = {}\n")
        self.assertEqual(line.breakSequences, ())
        a, b = self.load("[defaults]\nbreak-sequences = { 4 = 'reset\\r' }\n" + LINE +
                         '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\nbreak-sequences = { 5 = "x" }\n')
        self.assertEqual((a.breakSequences, b.breakSequences), ((("4", (b"reset\r",)),), (("5", (b"x",)),)))

    def test_refusedNamingWhat(self) -> None:
        """Not a table, a name not 1-9 a-z, no string, TOML's backspace, empty, two breaks, conserver's \\d, an unknown escape, a lone ^, past the bound: refused, FILE:LINE and the sequence named."""
        for value, said in (
            ("'\\r~^B'", "expected a table of sequences by the key after l, as { 2 = '\\r~^B', 3 = '#.' } (single "
                         "quotes: literal strings), not '\\r~^B'"),
            ("9223372036854775808", "expected a table of sequences by the key after l, as { 2 = '\\r~^B', 3 = '#.' } "
                                    "(single quotes: literal strings), not 9223372036854775808"),
            ("{ A = 'x' }", "'A': a sequence's name is one key, 1 to 9 or a to z (the key after l)"),
            ("{ 10 = 'x' }", "'10': a sequence's name is one key, 1 to 9 or a to z (the key after l)"),
            ("{ 2 = 5 }", "2: expected a string (in single quotes: '\\r~^B'), not 5"),
            ('{ 2 = "\\r\\b" }', "2: a backspace (\\x08) in '\\r\\x08': in a TOML string \"...\" \\b is a backspace, "
                                 "not a break: write it in single quotes ('\\b', '\\r~^B'); a backspace is \\x08"),
            ("{ 2 = '' }", "2: '': empty: nothing to send (leave its key out for none)"),
            ("{ 2 = '\\b\\z' }", "2: '\\b\\z': a second break (\\z) at character 3: at most one break a sequence (a "
                                 "break lasts break-duration; keys go around it)"),
            ("{ 4 = '\\r\\d~\\d^b' }", "4: '\\r\\d~\\d^b': \\d at character 3: conserver's pause has no counterpart "
                                       "here: a sequence is sent at once"),
            ("{ 2 = 'a\\q' }", "2: 'a\\q': unknown escape '\\q' at character 2: expected \\r \\n \\t \\e \\a \\f \\v "
                               "\\0 \\\\ \\^ \\xNN \\ooo, ^X (a control key), or \\b or \\z (a break)"),
            ("{ 2 = '\\777' }", "2: '\\777': \\777 at character 1: an octal byte is \\0 to \\377"),
            ("{ 2 = 'a^1' }", "2: 'a^1': a lone '^' at character 2: ^ and a letter is that control key (^B), ^? DEL; "
                              "write \\^ for a caret"),
            (f"{{ 2 = '{'x' * (SEQUENCE_MOST + 1)}' }}", f"{SEQUENCE_MOST + 1} bytes, at most {SEQUENCE_MOST}"),
        ):
            said_ = self.refused(LINE + f"break-sequences = {value}\n")
            self.assertTrue(said_.startswith(PREFIX), said_)
            self.assertIn(said, said_)
        self.assertEqual(len(self.load(LINE + f"break-sequences = {{ 2 = '{'x' * SEQUENCE_MOST}' }}\n")), 1)

    def test_breakWhereNoneCanGo(self) -> None:
        """A line's own sequence with a break on a device that carries none is refused naming it; from [defaults] (conserver's 1 too) it is for the lines that carry one."""
        said = self.refused('[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\n'
                            "break-sequences = { 2 = '#.', 5 = 'x\\by' }\n")
        self.assertEqual(said, "FILE:4: [lines.vm] break-sequences: 5: its \\b (a break) means nothing on device "
                               "'tcp:10.0.0.5:7000': a raw socket cannot carry a break: take it out")
        (vm,) = self.load("[defaults]\nbreak-sequences = { 5 = 'x\\by' }\n"
                          '[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\n')
        self.assertEqual(vm.breakSequences, (("5", (b"x", b"y")),))

    def test_conserversNamePointsHere(self) -> None:
        """conserver's breaklist pasted as a key says what it is here."""
        said = self.refused(LINE + 'breaklist = "1,2"\n')
        self.assertIn("unknown key 'breaklist' in [lines.web1]: conserver's break sequences (its break N blocks, "
                      "breaklist) are break-sequences here, a table by the key after the escape menu's l: "
                      "{ 2 = '\\r~^B', 3 = '#.' } (1, 2 and 3 unless given)", said)
