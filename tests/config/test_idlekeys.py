"""
The keys idle-timeout, idle-string (conserver's idletimeout, idlestring)
and on-demand-linger: read in seconds or conserver's 90s / 5m / 1h, each
left out, absurd values refused naming the file's line, the key and the
range, a misspelling asked about, conserver's names pointed here, and each
of idle-string and on-demand-linger refused alone in a line's own table.
"""

from __future__ import annotations

from twisted.python.usage import UsageError

from tests.app.test_tap import parse
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp

LINE = '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'
RANGE = 'expected seconds, 0 (off) or 1 to 86400 (a day), as 300, "90s", "5m" or "1h", not '


class IdleKeysTests(ConfigFileCase):
    def test_readAndLeftOut(self) -> None:
        """Seconds as a number or conserver's 90s / 5m / 1.5m / 1h; left out: none (0), the idle-string conserver's \\n; [defaults]' idle-string for the lines with an idle-timeout."""
        for given, seconds in (("300", 300.0), ('"90s"', 90.0), ('"5m"', 300.0), ('"1.5m"', 90.0), ('"1h"', 3600.0),
                               ("0", 0.0), ("2.5", 2.5), ('"86400"', 86400.0)):
            (line,) = self.load(LINE + f"idle-timeout = {given}\n")
            self.assertEqual((line.idleTimeout, line.idleString), (seconds, (b"\n",)), given)
        (line,) = self.load(LINE)
        self.assertEqual((line.idleTimeout, line.idleString, line.onDemandLinger), (0.0, (b"\n",), 0.0))
        a, b = self.load("[defaults]\nidle-string = '\\r\\bX'\n" + LINE + 'idle-timeout = "5m"\n'
                         '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n')
        self.assertEqual((a.idleTimeout, a.idleString, b.idleTimeout), (300.0, (b"\r", b"X"), 0.0))
        (line,) = self.load(LINE + 'on-demand = true\non-demand-linger = "2m"\n')
        self.assertEqual((line.onDemandLinger, line.opensOnDemand), (120.0, True))
        (line,) = self.load(LINE + "on-demand = true\non-demand-linger = 0.5\n")
        self.assertEqual(line.onDemandLinger, 0.5)

    def test_absurdValuesRefused(self) -> None:
        """Negative, past a day, below a second (an idle-string a millisecond), NaN, infinite, true, words, other digits: refused with the range."""
        for given, shown in (("-1", "-1"), ("86401", "86401"), ("0.5", "0.5"), ("nan", "nan"), ("inf", "inf"),
                             ("true", "true"), ('"soon"', "'soon'"), ('"5d"', "'5d'"), ('"-5m"', "'-5m'"),
                             ('"\u0661\u0662"', "'\u0661\u0662'"), ("10000000000000000000000", "10000000000000000000000")):
            self.assertEqual(self.refused(LINE + f"idle-timeout = {given}\n"),
                             f"FILE:4: [lines.web1] idle-timeout: {RANGE}{shown}", given)
        self.assertEqual(self.refused(LINE + "on-demand = true\non-demand-linger = -3\n"),
                         'FILE:5: [lines.web1] on-demand-linger: expected seconds, 0 to 86400 (a day), as 300, "90s", '
                         '"5m" or "1h", not -3')
        self.assertEqual(self.refused(LINE + "idle-timeout = 60\nidle-string = ''\n"),
                         "FILE:5: [lines.web1] idle-string: empty: nothing to send; leave idle-timeout out (or 0) for "
                         "no idle-string")
        self.assertEqual(self.refused(LINE + "idle-timeout = 60\nidle-string = '\\q'\n"),
                         "FILE:5: [lines.web1] idle-string: idle-string '\\q': unknown escape '\\q': expected \\r \\n "
                         "\\t \\e \\0 \\\\ \\xNN or \\b (a break)")
        self.assertTrue(self.refused(LINE + 'idle-timeout = 60\nidle-string = "\\b"\n').startswith(
            "FILE:5: [lines.web1] idle-string: a backspace (\\x08) in it: in a TOML string"))

    def test_aloneRefused(self) -> None:
        """A line's own idle-string without idle-timeout, on-demand-linger without on-demand: refused (it would do nothing); from [defaults], silent."""
        self.assertEqual(self.refused(LINE + "idle-string = '\\r'\n"),
                         "FILE:4: [lines.web1] idle-string: needs idle-timeout on this line (or in [defaults]): "
                         "without it, idle-string does nothing")
        self.assertEqual(self.refused(LINE + "on-demand-linger = 30\n"),
                         "FILE:4: [lines.web1] on-demand-linger: needs on-demand = true on this line (or in "
                         "[defaults]): without it, on-demand-linger does nothing")
        (line,) = self.load("[defaults]\nidle-string = '\\r'\non-demand-linger = 30\n" + LINE)
        self.assertEqual((line.idleTimeout, line.onDemand, line.onDemandLinger), (0.0, False, 30.0))
        self.assertEqual(self.refused('[lines.vm]\ndevice = "pty:/run/vm0"\nlisten = "4001"\non-demand-linger = 30\n'),
                         "FILE:4: [lines.vm] on-demand-linger: means nothing on device 'pty:/run/vm0': only a local tty "
                         "is opened on demand (a pty the gateway makes is its own, no other program's to open): take "
                         "it out")
        self.assertTrue(self.refused('[lines.vm]\ndevice = "tcp:10.0.0.5:7000"\nlisten = "4001"\nidle-timeout = 60\n'
                                     "idle-string = '\\r\\b'\n").startswith("FILE:5: [lines.vm] idle-string: "))

    def test_misspeltAndConservers(self) -> None:
        """A slip is asked about; conserver's idletimeout and idlestring say serialgw's names (idletimeout was said to be the listener's idle=, a client's disconnect)."""
        self.assertTrue(self.refused(LINE + "idle-timout = 60\n").startswith(
            "FILE:4: unknown key 'idle-timout' in [lines.web1]: did you mean 'idle-timeout'? (known: "))
        self.assertTrue(self.refused(LINE + "on-demand-lingr = 60\n").startswith(
            "FILE:4: unknown key 'on-demand-lingr' in [lines.web1]: did you mean 'on-demand-linger'? (known: "))
        self.assertTrue(self.refused(LINE + 'idletimeout = "1h"\n').startswith(
            "FILE:4: unknown key 'idletimeout' in [lines.web1]: conserver's idletimeout is idle-timeout here (seconds, "
            "or \"5m\", \"1h\"; the idle-string, conserver's idlestring, \"\\n\" unless given, is written to a console "
            "quiet that long); a client's idle disconnect is the listener option idle=SECONDS (known: "))
        self.assertTrue(self.refused(LINE + 'idlestring = "x"\n').startswith(
            "FILE:4: unknown key 'idlestring' in [lines.web1]: conserver's idlestring is idle-string here (with "
            "idle-timeout, conserver's idletimeout) (known: "))

    def test_commandLine(self) -> None:
        """--on-demand-linger, --idle-timeout and --idle-string for the single line: read as the keys, each alone or absurd refused, and not with --config."""
        (line,) = parse("--device", "/dev/ttyUSB0", "--on-demand", "--on-demand-linger", "1m", "--idle-timeout", "90",
                        "--idle-string", "\\r\\bX")["lines"]
        self.assertEqual((line.onDemandLinger, line.idleTimeout, line.idleString), (60.0, 90.0, (b"\r", b"X")))
        (line,) = parse("--device", "/dev/ttyUSB0", "--idle-timeout", "5m")["lines"]
        self.assertEqual((line.onDemandLinger, line.idleTimeout, line.idleString), (0.0, 300.0, (b"\n",)))
        for args, said in (
                (("--on-demand-linger", "30"), "--on-demand-linger means nothing without --on-demand"),
                (("--idle-string", "x"), "--idle-string means nothing without --idle-timeout"),
                (("--idle-timeout", "0.1"), f"--idle-timeout: {RANGE}'0.1'"),
                (("--idle-timeout", "1d"), f"--idle-timeout: {RANGE}'1d'"),
                (("--on-demand", "--on-demand-linger", "-1"),
                 '--on-demand-linger: expected seconds, 0 to 86400 (a day), as 300, "90s", "5m" or "1h", not \'-1\''),
                (("--idle-timeout", "60", "--idle-string", ""),
                 "--idle-string is empty: nothing to send; leave --idle-timeout out for no idle-string")):
            self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/dev/ttyUSB0", *args)), said, args)
        error = self.assertRaises(UsageError, parse, "--device", "tcp:10.0.0.5:7000", "--idle-timeout", "5",
                                  "--idle-string", "a\\bb")
        self.assertEqual(str(error), "--idle-string: its \\b (a break) means nothing on device 'tcp:10.0.0.5:7000': a "
                                     "raw socket cannot carry a break: take it out")
        path = writeTemp(self, LINE)
        error = self.assertRaises(UsageError, parse, "--config", path, "--idle-timeout", "5")
        self.assertEqual(str(error), "--config and --idle-timeout do not go together: put the line in the file")
