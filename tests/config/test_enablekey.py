"""
The key enable (ser2net's enable: off): a line with enable = false is read
and checked but not served; [defaults]' value for every line, a line's own
over it; every line off refused; a value not true or false refused naming
the file's line.
"""

from __future__ import annotations

from serialgw.config.file import loadConfig, loadFile
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp

A = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
B = '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n'


class EnableKeyTests(ConfigFileCase):
    def names(self, text: str) -> list[str]:
        return [line.name for line in loadConfig(writeTemp(self, text))]

    def test_offNotServed(self) -> None:
        """enable = false leaves the line out; true or left out serves it; [defaults]' false with a line's own true serves that one only."""
        self.assertEqual(self.names(A + "enable = false\n" + B), ["b"])
        self.assertEqual(self.names(A + "enable = true\n" + B), ["a", "b"])
        self.assertEqual(self.names("[defaults]\nenable = false\n" + A + B + "enable = true\n"), ["b"])

    def test_offStillChecked(self) -> None:
        """A line off is still read whole: its mistakes are refused as a served line's (it is to be turned on later)."""
        self.assertEqual(self.refused(A + "enable = false\nbaud = -1\n" + B).split(": ", 1)[1][:25],
                         "[lines.a] baud: baud rate")

    def test_offTakesNothingShared(self) -> None:
        """A line off claims nothing: another line may use its device and port (one spare table for a port moved)."""
        self.assertEqual(self.names(A + "enable = false\n" + A.replace("lines.a", "lines.a2")), ["a2"])

    def test_offLosesItsShard(self) -> None:
        """A line off pinned to a --shard process is no process's line."""
        config = loadFile(writeTemp(self, A + "enable = false\nshard = 1\n" + B))
        self.assertEqual([line.name for line in config.lines], ["b"])

    def test_refused(self) -> None:
        """A value not true or false (in quotes, a word) is refused naming the file's line; every line off is refused."""
        self.assertEqual(self.refused(A + 'enable = "false"\n'),
                         "FILE:4: [lines.a] enable: expected true or false, not 'false' (without quotes: enable = false)")
        self.assertEqual(self.refused(A + "enable = 0\n"), "FILE:4: [lines.a] enable: expected true or false, not 0")
        self.assertEqual(self.refused("[defaults]\nenable = false\n" + A),
                         "FILE: every line has enable = false: nothing to serve (set enable = true on one, or leave "
                         "the key out)")
