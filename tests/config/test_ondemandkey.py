"""
The on-demand key (a line's, or [defaults]') and --on-demand: read for a
local tty, refused naming the file's line on a device it means nothing
to (a pty the gateway makes, a console elsewhere), left to the ttys from
[defaults], and a value that is no boolean refused saying so.
"""

from __future__ import annotations

from twisted.python.usage import UsageError

from serialgw.config.file import loadConfig
from tests.app.test_tap import parse
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp


class OnDemandKeyTests(ConfigFileCase):
    def test_readForATty(self) -> None:
        """on-demand = true on a tty line, or from [defaults]: opensOnDemand; left out: always open."""
        (line,) = loadConfig(writeTemp(self, '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\non-demand = true\n'))
        self.assertEqual((line.onDemand, line.opensOnDemand), (True, True))
        text = ('[defaults]\non-demand = true\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
                '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\non-demand = false\n'
                '[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4003"\n')
        a, b, vm = loadConfig(writeTemp(self, text))
        self.assertEqual((a.opensOnDemand, b.opensOnDemand, vm.onDemand, vm.opensOnDemand), (True, False, True, False))
        (plain,) = loadConfig(writeTemp(self, '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'))
        self.assertEqual(plain.opensOnDemand, False)

    def test_notABoolean(self) -> None:
        """A value that is no boolean ("yes", 1) is refused, naming the file's line and the key."""
        said = self.refused('[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\non-demand = "yes"\n')
        self.assertEqual(said, "FILE:4: [lines.web1] on-demand: expected true or false, not 'yes'")
        said = self.refused('[defaults]\non-demand = 1\n[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n')
        self.assertEqual(said, "FILE:2: [defaults] on-demand: expected true or false, not 1")

    def test_conserversSpelling(self) -> None:
        """conserver's ondemand, pasted as a key, is refused saying serialgw's spelling."""
        said = self.refused('[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\nondemand = true\n')
        self.assertTrue(said.startswith("FILE:4: unknown key 'ondemand' in [lines.web1]: conserver's options ondemand is "
                                        "on-demand = true here (a local tty: opened at the first connection, closed "
                                        "after the last) (known: "), said)

    def test_refusedWhereItMeansNothing(self) -> None:
        """A line's own on-demand on a console elsewhere or a pty the gateway makes is refused, saying why."""
        said = self.refused('[lines.vm]\ndevice = "rfc2217://kvm1:7007"\nlisten = "4001"\non-demand = true\n')
        self.assertEqual(said, "FILE:4: [lines.vm] on-demand: means nothing on device 'rfc2217://kvm1:7007': only a "
                               "local tty is opened on demand (a console elsewhere is dialed from the start): take it out")
        said = self.refused('[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4001"\non-demand = true\n')
        self.assertEqual(said, "FILE:4: [lines.vm] on-demand: means nothing on device 'pty:/run/vm0': only a local tty "
                               "is opened on demand (a pty the gateway makes is its own, no other program's to open): "
                               "take it out")

    def test_commandLine(self) -> None:
        """--on-demand for the single line; refused on a console elsewhere, and with --config."""
        self.assertEqual(parse("--device", "/dev/ttyUSB0", "--on-demand")["lines"][0].opensOnDemand, True)
        self.assertEqual(parse("--device", "/dev/ttyUSB0")["lines"][0].opensOnDemand, False)
        error = self.assertRaises(UsageError, parse, "--device", "tcp:10.0.0.5:7000", "--on-demand")
        self.assertEqual(str(error), "--on-demand: means nothing on device 'tcp:10.0.0.5:7000': only a local tty is "
                                     "opened on demand (a console elsewhere is dialed from the start): take it out")
        path = writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        error = self.assertRaises(UsageError, parse, "--config", path, "--on-demand")
        self.assertEqual(str(error), "--config and --on-demand do not go together: put the line in the file")
