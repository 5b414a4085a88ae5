"""
Tests for what a command line that serialgw cannot take is told: a word
that is no option, an option given twice with two values, an option
twistd or getopt does not know; each one line naming what was given.
"""

from __future__ import annotations

import io
import sys

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from tests.app.test_tap import parse


def underTwistd(*args: str) -> tuple[object, str]:
    """Parse as twistd does (errors end the process): the exit code and what stderr got."""
    options = tap.Options()
    err = io.StringIO()
    original, sys.stderr = sys.stderr, err
    try:
        try:
            options.parseOptions(list(args))
        except SystemExit as e:
            return e.code, err.getvalue()
    finally:
        sys.stderr = original
    return None, err.getvalue()


class StrayArgumentTests(SynchronousTestCase):
    def test_devicePathAsAWord(self) -> None:
        """A device path given without --device (as cu -l or picocom take it) is refused naming it and --device (it was twistd's 'Wrong number of arguments.' after a page of help)."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "/dev/ttyUSB0")),
                         "unexpected argument '/dev/ttyUSB0': serialgw takes options only (a device is "
                         "--device /dev/ttyUSB0)")

    def test_portAsAWord(self) -> None:
        """A bare port number as a word is refused naming it and --port."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--device", "/dev/ttyS0", "4444")),
                         "unexpected argument '4444': serialgw takes options only (a listener is --port 4444)")

    def test_fileAsAWord(self) -> None:
        """A TOML file as a word is refused naming it and --config."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "farm.toml")),
                         "unexpected argument 'farm.toml': serialgw takes options only (a configuration file is "
                         "--config farm.toml)")

    def test_otherWords(self) -> None:
        """Any other words are refused, each named, quoted for the shell as written."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "start", "a b")),
                         "unexpected arguments 'start' 'a b': serialgw takes options only (see --help)")

    def test_underTwistdOneLine(self) -> None:
        """Under twistd the refusal is one line and exit status 2, not twistd's page of usage."""
        code, err = underTwistd("/dev/ttyUSB0")
        self.assertEqual((code, err), (2, "serialgw: error: unexpected argument '/dev/ttyUSB0': serialgw takes "
                                          "options only (a device is --device /dev/ttyUSB0)\n"))


class GivenTwiceTests(SynchronousTestCase):
    def test_portTwice(self) -> None:
        """--port given twice is refused naming both values and --listen (the last was taken silently: --port 4444 --port raw+4445 served 4445 alone)."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--port", "4444", "-p", "raw+4445")),
                         "--port given twice ('4444', then 'raw+4445'): one --port; more listeners are --listen "
                         "(repeatable)")

    def test_deviceTwice(self) -> None:
        """--device given twice is refused naming both values and --config (the last was taken silently, one line served)."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "-d", "/dev/ttyS0", "--device=/dev/ttyS1")),
                         "--device given twice ('/dev/ttyS0', then '/dev/ttyS1'): the options make one line; "
                         "several lines are a --config file's [lines.NAME] tables")

    def test_otherTwice(self) -> None:
        """Any other option given twice with two values is refused naming both."""
        self.assertEqual(str(self.assertRaises(UsageError, parse, "--baud", "9600", "--baud", "115200")),
                         "--baud given twice ('9600', then '115200'): give it once")

    def test_sameValueTwice(self) -> None:
        """The same value given twice is taken: it says nothing else."""
        self.assertEqual(parse("--baud", "9600", "--baud", "9600")["line"].settings.baudrate, 9600)

    def test_listenRepeats(self) -> None:
        """--listen and --watch-all stay repeatable."""
        options = parse("--listen", "raw+tcp:0:interface=127.0.0.1", "--listen", "tcp:0:interface=127.0.0.1")
        self.assertEqual(len(options["line"].listeners), 2)


class UnknownOptionTests(SynchronousTestCase):
    def test_twistdOptionAfterSerialgw(self) -> None:
        """twistd's own -n after serialgw: one line naming it and where it goes, exit status 2 (it was a page of usage, the option named last)."""
        code, err = underTwistd("--device", "/dev/ttyS0", "-n")
        self.assertEqual((code, err), (2, "serialgw: error: option -n not recognized (twistd's own options, such as "
                                          "-n and --pidfile=, go before serialgw; see twistd serialgw --help)\n"))

    def test_unknownLongOption(self) -> None:
        """An unknown long option: one line naming it, exit status 2."""
        code, err = underTwistd("--devcie", "/dev/ttyS0")
        self.assertEqual((code, err), (2, "serialgw: error: option --devcie not recognized (twistd's own options, such "
                                          "as -n and --pidfile=, go before serialgw; see twistd serialgw --help)\n"))

    def test_missingValue(self) -> None:
        """An option without its value: one line naming it, exit status 2."""
        code, err = underTwistd("--device")
        self.assertEqual((code, err), (2, "serialgw: error: option --device requires argument (see twistd serialgw "
                                          "--help)\n"))


class OptionNamedTests(SynchronousTestCase):
    def test_sshListenerNamesTheOption(self) -> None:
        """A --ssh listener that cannot be read is refused naming --ssh, as --status and --port are (it said only 'cannot read listener ...'), before its key files are read."""
        e = self.assertRaises(UsageError, parse, "--ssh", "127.0.0.1:2222", "--authorized-keys", "/nonexistent/keys")
        self.assertEqual(str(e), "--ssh: cannot read listener '127.0.0.1:2222': an address and a port; serialgw "
                                 "writes it 'tcp:2222:interface=127.0.0.1'")
