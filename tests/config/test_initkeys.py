"""
The keys init-command and init-timeout (conserver's initcmd): read, left
out, refused naming the file's line when empty, too long, holding a NUL,
or unbounded; init-timeout alone in a line's own table refused; conserver's
names pointed here.  Single-line mode's --init-command and --init-timeout
alike.
"""

from __future__ import annotations

from twisted.python.usage import UsageError

from serialgw.app import tap
from tests.config.filecase import ConfigFileCase
from tests.realio import writeTemp

LINE = '[lines.web1]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n'
RANGE = ('expected seconds, 1 to 86400 (a day), as 60, "90s", "5m" or "1h" (an init-command is always bounded: 60 '
         'when left out), not ')


class InitKeysTests(ConfigFileCase):
    def test_readAndLeftOut(self) -> None:
        """The command as written, init-timeout in seconds or 5m; left out: none, 60 s; [defaults]' init-timeout for the lines with a command."""
        (line,) = self.load(LINE + "init-command = '/usr/local/bin/login-board \"$SERIALGW_LINE\"'\n"
                                   'init-timeout = "5m"\n')
        self.assertEqual((line.initCommand, line.initTimeout), ('/usr/local/bin/login-board "$SERIALGW_LINE"', 300.0))
        (line,) = self.load(LINE)
        self.assertEqual((line.initCommand, line.initTimeout), ("", 60.0))
        a, b = self.load('[defaults]\ninit-timeout = 10\n' + LINE + 'init-command = "true"\n'
                         '[lines.b]\ndevice = "/dev/ttyS1"\nlisten = "4002"\n')
        self.assertEqual((a.initCommand, a.initTimeout, b.initCommand), ("true", 10.0, ""))

    def test_refused(self) -> None:
        """Empty, past 4096 characters, a NUL, init-timeout 0 / past a day / below a second / true, init-timeout alone: refused saying why."""
        self.assertEqual(self.refused(LINE + "init-command = ' '\n"),
                         "FILE:4: [lines.web1] init-command: empty: nothing to run; leave init-command out for none")
        self.assertEqual(self.refused(LINE + f"init-command = '{'x' * 4097}'\n"),
                         'FILE:4: [lines.web1] init-command: 4097 characters: at most 4096 (a longer one goes in a '
                         'script, init-command = "/path/to/script")')
        self.assertEqual(self.refused(LINE + 'init-command = "a\\u0000b"\n'),
                         "FILE:4: [lines.web1] init-command: a NUL (\\0) in it: a command line cannot hold one")
        for given, shown in (("0", "0"), ("86401", "86401"), ("0.5", "0.5"), ("true", "true"), ('"soon"', "'soon'")):
            self.assertEqual(self.refused(LINE + f"init-command = 'true'\ninit-timeout = {given}\n"),
                             f"FILE:5: [lines.web1] init-timeout: {RANGE}{shown}", given)
        self.assertEqual(self.refused(LINE + "init-timeout = 5\n"),
                         "FILE:4: [lines.web1] init-timeout: needs init-command on this line (or in [defaults]): "
                         "without it, init-timeout does nothing")

    def test_spinKeys(self) -> None:
        """init-spin-max (runs, 1 to 1000) and init-spin-window (seconds, 1 to a day) bound the starts (5 within 10 s left out; from [defaults] too); refused naming the file's line when out of range, of the wrong kind, or without init-command."""
        (line,) = self.load(LINE + 'init-command = "true"\ninit-spin-max = 2\ninit-spin-window = "1m"\n')
        self.assertEqual((line.initSpinMost, line.initSpinWindow), (2, 60.0))
        (line,) = self.load(LINE + 'init-command = "true"\n')
        self.assertEqual((line.initSpinMost, line.initSpinWindow), (5, 10.0))
        (line,) = self.load('[defaults]\ninit-spin-max = 9\n' + LINE + 'init-command = "true"\n')
        self.assertEqual(line.initSpinMost, 9)
        for given, shown in (("0", "0"), ("1001", "1001"), ("2.5", "2.5"), ("true", "true"), ('"5"', "'5'")):
            self.assertEqual(self.refused(LINE + f"init-command = 'true'\ninit-spin-max = {given}\n"),
                             "FILE:5: [lines.web1] init-spin-max: expected runs, 1 to 1000 (at most that many "
                             f"init-command starts within init-spin-window), not {shown}", given)
        for given, shown in (("0", "0"), ("86401", "86401"), ("0.5", "0.5"), ("false", "false")):
            self.assertEqual(self.refused(LINE + f"init-command = 'true'\ninit-spin-window = {given}\n"),
                             "FILE:5: [lines.web1] init-spin-window: expected seconds, 1 to 86400 (a day), as 10, "
                             f"\"90s\", \"5m\" or \"1h\" (the starts are always bounded: 10 when left out), not {shown}",
                             given)
        for key in ("init-spin-max", "init-spin-window"):
            self.assertEqual(self.refused(LINE + f"{key} = 5\n"),
                             f"FILE:4: [lines.web1] {key}: needs init-command on this line (or in [defaults]): "
                             f"without it, {key} does nothing")

    def test_conserversNames(self) -> None:
        """conserver's initcmd and initsubst, pasted as keys, point at init-command and its environment."""
        self.assertIn("unknown key 'initcmd' in [lines.web1]: conserver's initcmd is init-command here (run by /bin/sh "
                      "-ec each time the device comes up", self.refused(LINE + "initcmd = 'x'\n"))
        self.assertIn("SERIALGW_LINE and SERIALGW_DEVICE", self.refused(LINE + "initsubst = 'x'\n"))
        self.assertIn("unknown key 'initspinmax' in [lines.web1]: conserver's initspinmax is init-spin-max here",
                      self.refused(LINE + "initspinmax = 3\n"))
        self.assertIn("unknown key 'initspintimer' in [lines.web1]: conserver's initspintimer is init-spin-window here",
                      self.refused(LINE + "initspintimer = 3\n"))

    def test_singleLineOptions(self) -> None:
        """--init-command and --init-timeout give the single line its command and bound (60 s left out); refused as the keys are, naming the option."""

        def parsed(*args: str) -> tap.Options:
            options = tap.Options()
            options.exitOnError = False
            options.parseOptions(["--device", "/dev/ttyS0", *args])
            return options

        def refused(*args: str) -> str:
            return str(self.assertRaises(UsageError, parsed, *args))

        line = parsed("--init-command", 'login-board "$SERIALGW_LINE"', "--init-timeout", "5m")["line"]
        self.assertEqual((line.initCommand, line.initTimeout), ('login-board "$SERIALGW_LINE"', 300.0))
        line = parsed("--init-command", "true")["line"]
        self.assertEqual((line.initCommand, line.initTimeout), ("true", 60.0))
        line = parsed()["line"]
        self.assertEqual((line.initCommand, line.initTimeout), ("", 60.0))
        self.assertEqual(refused("--init-command", " "),
                         "--init-command: empty: nothing to run; leave --init-command out for none")
        self.assertEqual(refused("--init-command", "x" * 4097),
                         '--init-command: 4097 characters: at most 4096 (a longer one goes in a script, init-command = '
                         '"/path/to/script")')
        for given in ("0", "86401", "0.5", "soon", ""):
            self.assertEqual(refused("--init-command", "true", "--init-timeout", given),
                             f"--init-timeout: {RANGE}'{given}'", given)
        self.assertEqual(refused("--init-timeout", "5"), "--init-timeout means nothing without --init-command")
        options = tap.Options()
        options.exitOnError = False
        self.assertEqual(str(self.assertRaises(UsageError, options.parseOptions,
                                               ["--config", writeTemp(self, LINE), "--init-command", "true"])),
                         "--config and --init-command do not go together: put the line in the file")
