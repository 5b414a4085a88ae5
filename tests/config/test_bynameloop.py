"""
A line whose remote device dials this gateway's own [by-name] listener,
which may give that line (or a line whose device leads back to it):
the line's name typed on it reaches the prompt as the device's input, the
device's connection becomes the line's own client, and what is written to
it comes back to it for ever.  Seen live (probe29): by-name on
raw+tcp:7421, line a's device tcp:127.0.0.1:7421, 'a' then one byte typed
on a's own listener: the gateway at a whole core (622339 one-byte
segments in 20 s), --check said '1 line(s), 1 listener(s): OK'.  Refused
when the file is read (start, reload, --check), as the other loops are.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig, loadFile
from serialgw.config.specs import ConfigError
from tests.realio import writeTemp

LOOP = "what is written to it would come back to it for ever (a loop)"
BY_NAME = '[by-name]\nlisten = "raw+tcp:7421:interface=127.0.0.1"\n'


class ByNameLoopTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        return str(self.assertRaises(ConfigError, loadFile, path)).replace(path, "FILE")

    def loads(self, text: str) -> list[str]:
        return [line.name for line in loadConfig(writeTemp(self, text))]

    def test_ownLine(self) -> None:
        """The line's device dials the by-name listener that gives it: refused at its device key, naming the listener."""
        self.assertEqual(self.refused(BY_NAME + '[lines.a]\ndevice = "tcp:127.0.0.1:7421"\nlisten = "raw+7422"\n'),
                         "FILE:4: [lines.a] device: 'tcp:127.0.0.1:7421' is the [by-name] listener "
                         f"'raw+tcp:7421:interface=127.0.0.1', which gives line 'a': once 'a' is typed there, {LOOP}")

    def test_ringThroughAnotherLine(self) -> None:
        """a's device dials by-name, which gives b, whose device dials a's listener: refused naming the ring."""
        said = self.refused('[by-name]\nlisten = "telnet+unix:/run/x/by.sock"\nlines = ["b"]\n'
                            '[lines.a]\ndevice = "unix:/run/x/./by.sock"\nlisten = "raw+7402"\n'
                            '[lines.b]\ndevice = "telnet:localhost:7402"\nlisten = "raw+7403"\n')
        self.assertEqual(said, "FILE:5: [lines.a] device: 'unix:/run/x/./by.sock' is the [by-name] listener "
                               "'telnet+unix:/run/x/by.sock', which gives line 'b', line 'b''s device is line 'a''s "
                               f"listener 'raw+7402': once 'b' is typed there, {LOOP}")

    def test_noWayBackAllowed(self) -> None:
        """A by-name listener giving only lines with no way back (not the line, a tty's line), or a TLS one (no handshake), or another port: allowed."""
        self.assertEqual(self.loads(BY_NAME + 'lines = ["b*"]\n'
                                    '[lines.a]\ndevice = "tcp:127.0.0.1:7421"\nlisten = "raw+7422"\n'
                                    '[lines.b]\ndevice = "/dev/ttyS0"\nlisten = "raw+7423"\n'), ["a", "b"])
        self.assertEqual(self.loads('[by-name]\nlisten = "tls:7421:cert=/x.pem:key=/x.key"\n'
                                    '[lines.a]\ndevice = "tcp:127.0.0.1:7421"\nlisten = "raw+7422"\n'), ["a"])
        self.assertEqual(self.loads(BY_NAME + '[lines.a]\ndevice = "tcp:127.0.0.1:7420"\nlisten = "raw+7422"\n'), ["a"])
