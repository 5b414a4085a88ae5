"""
Tests for serialgw.config.specs and serialgw.config.parsers: parsing settings, listeners and devices.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app import tap
from serialgw.config.file import loadConfig
from serialgw.config.parsers import parseCoalesce, parseCompact, parseDevice, parseParity, parseStopbits
from serialgw.config.specs import SHOWN, ConfigError, DeviceSpec, SerialSettings, quote
from tests.realio import writeTemp


class CompactTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """The compact form sets baud, framing and flow control."""
        self.assertEqual(parseCompact("115200,8N1"), SerialSettings(115200, 8, "N", 1))
        self.assertEqual(parseCompact("9600,7e2"), SerialSettings(9600, 7, "E", 2))
        self.assertEqual(parseCompact("57600 8O1.5 rtscts"), SerialSettings(57600, 8, "O", 1.5, rtscts=True))
        self.assertEqual(parseCompact("19200,xonxoff"), SerialSettings(19200, xonxoff=True))
        self.assertEqual(parseCompact("9600 raw"), SerialSettings(9600))

    def test_keepsBase(self) -> None:
        """What is not given keeps the base value."""
        base = SerialSettings(9600, 7, "E", 2)
        self.assertEqual(parseCompact("5N1", base), SerialSettings(9600, 5, "N", 1))

    def test_describeRoundTrip(self) -> None:
        """describe() gives the compact form back."""
        for text in ("115200,8N1", "9600,7E2,rtscts", "300,5M1.5,xonxoff"):
            self.assertEqual(parseCompact(text).describe(), text)

    def test_errorsQuote(self) -> None:
        """A bad field is quoted with the whole text."""
        e = self.assertRaises(ConfigError, parseCompact, "9600,8X1")
        self.assertIn("'8X1'", str(e))
        self.assertIn("'9600,8X1'", str(e))
        self.assertRaises(ConfigError, parseCompact, "")
        self.assertRaises(ConfigError, parseCompact, "0,8N1")

    def test_emptyOrTwiceRefused(self) -> None:
        """An empty field (two commas together, one at an end) or a speed or framing given twice is refused naming the text (115200,,8N1 was taken; 9600,115200 set 115200); spaces around a comma are no field."""
        for text in ("115200,,8N1", "115200,8N1,", ",115200", "115200, ,8N1"):
            e = self.assertRaises(ConfigError, parseCompact, text)
            self.assertEqual(str(e), f"serial settings '{text}' have an empty field (two commas together, or one at an "
                                     "end): expected BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], e.g. 115200,8N1")
        for text, what, first, second in (("9600,115200", "speed", "9600", "115200"),
                                          ("9600 8N1 7e1", "framing", "8N1", "7e1")):
            e = self.assertRaises(ConfigError, parseCompact, text)
            self.assertEqual(str(e), f"serial settings '{text}' give the {what} twice ('{first}' and '{second}'): "
                                     "expected one")
        self.assertEqual(parseCompact("115200 , 8N1,\trtscts"), SerialSettings(115200, 8, "N", 1, rtscts=True))
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0", "--serial", "115200,,8N1"])
        self.assertTrue(str(e).startswith("--serial: serial settings '115200,,8N1' have an empty field"), str(e))

    def test_flowTwiceRefused(self) -> None:
        """Flow control given twice (rtscts,rtscts; rtscts,hw: one setting in two words), or noflow beside a flow, is refused naming the text (it was taken); rtscts,xonxoff sets both, as termios can, and raw or none, which say nothing, may repeat."""
        for text, what, first, second in (("115200,8N1,rtscts,rtscts", "hardware flow control", "rtscts", "rtscts"),
                                          ("9600 hw RTSCTS", "hardware flow control", "hw", "RTSCTS"),
                                          ("9600,xonxoff,sw", "software flow control", "xonxoff", "sw"),
                                          ("9600,noflow,noflow", "noflow", "noflow", "noflow")):
            e = self.assertRaises(ConfigError, parseCompact, text)
            self.assertEqual(str(e), f"serial settings '{text}' give {what} twice ('{first}' and '{second}'): "
                                     "expected one")
        for text, first, second in (("9600,rtscts,noflow", "rtscts", "noflow"),
                                    ("9600,noflow,xonxoff", "noflow", "xonxoff")):
            e = self.assertRaises(ConfigError, parseCompact, text)
            self.assertEqual(str(e), f"serial settings '{text}' give '{first}' and '{second}': noflow turns flow "
                                     "control off; give one of them")
        self.assertEqual(parseCompact("9600,rtscts,xonxoff"), SerialSettings(9600, rtscts=True, xonxoff=True))
        self.assertEqual(parseCompact("9600 raw raw none"), SerialSettings(9600))
        self.assertEqual(parseCompact("noflow", SerialSettings(9600, rtscts=True)), SerialSettings(9600))
        options = tap.Options()
        options.exitOnError = False
        e = self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0", "--serial",
                                                                 "115200,8N1,rtscts,rtscts"])
        self.assertEqual(str(e), "--serial: serial settings '115200,8N1,rtscts,rtscts' give hardware flow control "
                                 "twice ('rtscts' and 'rtscts'): expected one")

    def test_valueErrors(self) -> None:
        """Bad single values name themselves."""
        self.assertEqual(str(self.assertRaises(ConfigError, parseParity, "Q")), "parity must be one of N, E, O, M, S, not 'Q'")
        self.assertEqual(parseParity("even"), "E")
        self.assertEqual(str(self.assertRaises(ConfigError, parseStopbits, "3")), "stop bits must be 1, 1.5 or 2, not '3'")
        self.assertRaises(ConfigError, SerialSettings, baudrate=0)
        self.assertRaises(ConfigError, SerialSettings, bytesize=9)


class DeviceTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """Paths are ttys; pty:LINK makes a pty."""
        self.assertEqual(parseDevice("/dev/ttyS0"), DeviceSpec("tty", "/dev/ttyS0"))
        self.assertEqual(parseDevice("pty:/tmp/x"), DeviceSpec("pty", "/tmp/x"))
        self.assertEqual(parseDevice("pty:"), DeviceSpec("pty", ""))
        self.assertEqual(parseDevice("ttyUSB0"), DeviceSpec("tty", "ttyUSB0"))

    def test_remote(self) -> None:
        """Consoles elsewhere: telnet, rfc2217, tcp (raw), unix (raw)."""
        self.assertEqual(parseDevice("telnet:127.0.0.1:4321"), DeviceSpec("telnet", host="127.0.0.1", port=4321))
        self.assertEqual(parseDevice("rfc2217://lab:2217"), DeviceSpec("rfc2217", host="lab", port=2217))
        self.assertEqual(parseDevice("tcp:[::1]:7000"), DeviceSpec("tcp", host="::1", port=7000))
        self.assertEqual(parseDevice("unix:/var/run/qemu-server/100.serial0"),
                         DeviceSpec("unix", "/var/run/qemu-server/100.serial0"))
        for text in ("telnet:host", "rfc2217://host:0", "ftp://x:1", "unix:"):
            self.assertRaises(ConfigError, parseDevice, text)
        self.assertEqual(str(self.assertRaises(ConfigError, parseDevice, "telnet:host")),
                         "device 'telnet:host': expected telnet:HOST:PORT")
        self.assertRaises(ConfigError, parseDevice, "")


class CoalesceTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """MIN_MS,MAX_MS[,STRING]: seconds, and the string with its backslash escapes read; a character as its UTF-8; off or 0: none."""
        self.assertEqual(parseCoalesce("2,20"), (0.002, 0.02, b""))
        self.assertEqual(parseCoalesce("5,50,\\n"), (0.005, 0.05, b"\n"))
        self.assertEqual(parseCoalesce("5,50,\\r\\n"), (0.005, 0.05, b"\r\n"))
        self.assertEqual(parseCoalesce("5,50,\\xff"), (0.005, 0.05, b"\xff"))
        self.assertEqual(parseCoalesce("5,50,\u00e9"), (0.005, 0.05, "\u00e9".encode()))
        self.assertEqual(parseCoalesce("off"), (0.0, 0.0, b""))

    def test_badStringQuoted(self) -> None:
        """A STRING whose escape cannot be read, or that names a character past one byte: a ConfigError quoting it, not a traceback."""
        for text, why in (("5,50,\\x", "truncated \\xXX escape"), ("5,50,\\N{nothing}", "unknown Unicode character name"),
                          ("5,50,\\u1234", "a character past \\xff")):
            e = self.assertRaises(ConfigError, parseCoalesce, text)
            self.assertIn(f"coalesce '{text}': ", str(e))
            self.assertIn(why, str(e))
        self.assertEqual(str(self.assertRaises(ConfigError, parseCoalesce, "5,50,\\x")),
                         r"coalesce '5,50,\x': cannot read STRING '\x': truncated \xXX escape")
        self.assertEqual(str(self.assertRaises(ConfigError, parseCoalesce, "5,\\n")),
                         r"coalesce '5,\n': expected MIN_MS,MAX_MS[,STRING], e.g. 2,20 or 5,50,\n")

    def test_emptyRefused(self) -> None:
        """An empty coalesce (a shell variable left unset, coalesce = "") is refused, not taken as off; off and 0 are off."""
        message = "coalesce is empty: expected MIN_MS,MAX_MS[,STRING] (e.g. 2,20), or off"
        for text in ("", "  "):
            self.assertEqual(str(self.assertRaises(ConfigError, parseCoalesce, text)), message)
        options = tap.Options()
        options.exitOnError = False
        self.assertEqual(str(self.assertRaises(UsageError, options.parseOptions, ["--device", "/dev/ttyS0", "--coalesce", ""])),
                         "--coalesce: " + message)
        for text, where in (('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\ncoalesce = ""\n', "4: [lines.a]"),
                            ('[defaults]\ncoalesce = ""\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n', "2: [defaults]")):
            path = writeTemp(self, text)
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)), f"{path}:{where} coalesce: {message}")
        self.assertEqual([parseCoalesce(t) for t in ("off", "0", " OFF ")], [(0.0, 0.0, b"")] * 3)
        options = tap.Options()
        options.exitOnError = False
        options.parseOptions(["--device", "/dev/ttyS0"])
        self.assertEqual((options["line"].coalesceMin, options["line"].coalesceMax), (0.0, 0.0))


class QuoteTests(SynchronousTestCase):
    def test_asTyped(self) -> None:
        """A value in a message is in single quotes as typed: a backslash or quote as is, only what cannot be shown escaped."""
        self.assertEqual(quote("\\q"), "'\\q'")
        self.assertEqual(quote("it's"), "'it's'")
        self.assertEqual(quote("C:\\x y.toml"), "'C:\\x y.toml'")
        self.assertEqual(quote("\u00e9t\u00e9"), "'\u00e9t\u00e9'")
        self.assertEqual(quote("a\x1b[2J\nb\t\x00\u200b"), "'a\\x1b[2J\\nb\\t\\x00\\u200b'")
        self.assertEqual(quote(""), "''")
        # A file's name too, as everywhere a value is quoted.
        e = self.assertRaises(ConfigError, loadConfig, "/nonexistent/C:\\x.toml")
        self.assertEqual(str(e), "cannot read configuration '/nonexistent/C:\\x.toml': No such file or directory")
        # What is not text (a TOML number, list or table) reads as Python writes it.
        self.assertEqual([quote(5), quote(["a"]), quote(True)], ["5", "['a']", "True"])

    def test_longValuesCut(self) -> None:
        """A file's key, listener or serial of 1 MiB is quoted by its first SHOWN characters and its length, not whole (the error was 1-2 MiB)."""
        big = "k" * 2**20
        head = "k" * SHOWN
        said = {}
        for name, text in (("key", f"{big} = 1"), ("listen", f'listen = ["{big}"]'), ("serial", f'serial = "{big}"')):
            if name != "listen":
                text += '\nlisten = ["4001"]'
            path = writeTemp(self, f'[lines.a]\ndevice = "/dev/ttyS0"\n{text}\n')
            said[name] = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
        known = said["key"].index(" (known: ")
        self.assertEqual(said["key"][:known], f"FILE:3: unknown key '{head}'... (1048576 characters) in [lines.a]")
        self.assertLess(len(said["key"]), 1000)
        self.assertEqual(said["listen"], f"FILE:3: [lines.a] listen: cannot read listener '{head}'... (1048576 characters): "
                         "expected a port number, an endpoint string such as tcp:4444:interface=127.0.0.1, or a QEMU "
                         "chardev such as telnet::4444,server,nowait")
        self.assertEqual(said["serial"], f"FILE:3: [lines.a] serial: cannot read '{head}'... (1048576 characters) in "
                         f"serial settings '{head}'... (1048576 characters): expected BAUD[,DATABITS PARITY STOPBITS]"
                         "[,rtscts|xonxoff], e.g. 115200,8N1")
        # What cannot be shown is escaped in the part shown; a list's repr is cut alike.
        self.assertEqual(quote("\x00" * (SHOWN + 1)), "'" + "\\x00" * SHOWN + f"'... ({SHOWN + 1} characters)")
        self.assertEqual(quote(["a"] * 1000), repr(["a"] * 1000)[:SHOWN] + "... (5000 characters)")
        self.assertEqual(quote("k" * SHOWN), f"'{head}'")


class SendStringInTomlTests(SynchronousTestCase):
    def test_tomlBackspaceIsNoBreak(self) -> None:
        """open-string = "\\r\\b" in the file (the README's own example): TOML reads \\b as a backspace, which went to the device in place of the break, silently; it is refused, saying how to write the break; '\\r\\b' (a literal string) and "\\\\r\\\\b" are the break."""
        for key in ("open-string", "close-string"):
            path = writeTemp(self, f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n{key} = "\\r\\b"\n')
            said = str(self.assertRaises(ConfigError, loadConfig, path)).replace(path, "FILE")
            self.assertEqual(said, f"FILE:4: [lines.a] {key}: a backspace (\\x08) in it: in a TOML string \"...\" \\b "
                                   "is a backspace, not serialgw's break: write the string in single quotes ('\\r\\b': "
                                   "a literal string keeps its backslashes), or \\\\b for the break; a backspace is \\\\x08")
        for text in ("'\\r\\b'", '"\\\\r\\\\b"'):
            (line,) = loadConfig(writeTemp(self, f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nopen-string = {text}\n'))
            self.assertEqual(line.openString, (b"\r", b""), text)

    def test_tomlNewlineKeptInCoalesce(self) -> None:
        """coalesce = "5,50,\\n" in the file: TOML makes \\n a newline, which the value's trimming took away, leaving no STRING (output held MIN/MAX only), silently; the newline is the STRING, as \\n is on the command line."""
        self.assertEqual(parseCoalesce("5,50,\n"), (0.005, 0.05, b"\n"))
        self.assertEqual(parseCoalesce("5,50,\r\n"), (0.005, 0.05, b"\r\n"))
        self.assertEqual(parseCoalesce(" 5,50,\\n "), (0.005, 0.05, b"\n"))
        (line,) = loadConfig(writeTemp(self, '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\ncoalesce = "5,50,\\n"\n'))
        self.assertEqual(line.coalesceOn, b"\n")
