"""
An operator's mistakes with the file itself: a configuration path that is
a socket or a dangling symlink, a table reopened by a dotted key or an
inline table, [[lines]], values of the wrong TOML type: each refused with
FILE:LINE (where there is a line) and words of TOML's, not Python's.
"""

from __future__ import annotations

import os
import socket

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.parsers import parseDevice
from serialgw.config.specs import ConfigError
from tests.config.filecase import ConfigFileCase
from tests.realio import socketPath

LINE = '[lines.a]\ndevice = "pty:/run/a"\nlisten = "0"\n'


class FileMistakeTests(ConfigFileCase):
    def test_socketAtThePath(self) -> None:
        """A unix socket at the configuration's path is said to be one (its open's ENXIO read 'No such device or address')."""
        path = socketPath(self, "farm.toml")
        server = socket.socket(socket.AF_UNIX)
        self.addCleanup(server.close)
        server.bind(path)
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"configuration '{path}' is not a regular file (a socket)")

    def test_danglingSymlink(self) -> None:
        """A symlink to nothing is said to be one, naming where it points; a link to a file is read (relative paths from the link's directory)."""
        directory = os.path.dirname(socketPath(self))
        link = os.path.join(directory, "farm.toml")
        os.symlink(os.path.join(directory, "gone.toml"), link)
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, link)),
                         f"cannot read configuration '{link}': it is a symbolic link to "
                         f"'{directory}/gone.toml', which is not there")
        with open(os.path.join(directory, "gone.toml"), "w") as f:
            f.write(LINE + 'log = "a.log"\n')
        config = loadConfig(link)[0]
        assert config.log is not None
        self.assertEqual(config.log.path, f"{directory}/a.log")

    def test_tableReopened(self) -> None:
        """A dotted key into a table written above, or into an inline table, names the table (tomllib said 'Cannot redefine namespace')."""
        self.assertEqual(self.refused(LINE + '[lines]\na.mode = "shared"\n'),
                         "FILE:5: [lines.a] is a table written in full elsewhere: put this key in it (TOML: a table "
                         "is written in one place; column 18)")
        self.assertEqual(self.refused('lines.a = { device = "pty:/run/a", listen = "0" }\nlines.a.mode = "shared"\n'),
                         "FILE:2: [lines.a] is an inline table { ... }, which is whole where it is written: put this "
                         "key in it (TOML: a table is written in one place; column 24)")

    def test_arrayOfTables(self) -> None:
        """[[lines]] (lines without names) names its line and says [lines.NAME]."""
        self.assertEqual(self.refused('# farm\n[[lines]]\ndevice = "/dev/ttyS0"\nlisten = "0"\n'),
                         "FILE:2: [[lines]] is an array of tables, the lines without names: write one table a line, "
                         "[lines.NAME], with device = ... and listen = ...")

    def test_typesInTOMLWords(self) -> None:
        """A value of the wrong type is said in TOML's words (a whole number, true or false, a string), the value as TOML writes it."""
        cases = {
            "max-clients = true": "max-clients: expected a whole number, not true",
            "max-clients = 2.0": "max-clients: expected a whole number, not 2.0",
            'lock = "no"': "lock: expected true or false, not 'no'",
            "lock = 0": "lock: expected true or false, not 0",
            "signature = false": "signature: expected a string (in quotes), not false",
            'break-duration = "250"': "break-duration: expected a number, not '250' (without quotes: break-duration = 250)",
        }
        for line, said in cases.items():
            self.assertEqual(self.refused(LINE + line + "\n"), f"FILE:4: [lines.a] {said}")


class ListenerValueTests(SynchronousTestCase):
    def test_backlogBounded(self) -> None:
        """Twisted's backlog= past an int was taken by --check and failed the start ('signed integer is greater than maximum'); a negative one was read as 0: both refused when read."""
        for backlog in ("99999999999", "-1", "65536"):
            text = f"tcp:4001:interface=127.0.0.1:backlog={backlog}"
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"backlog={backlog} in listener '{text}': expected 0 to 65535 (the kernel takes "
                                     "at most net.core.somaxconn)")
        self.assertEqual(parseListener("tcp:4001:backlog=0").port, 4001)
        self.assertEqual(parseListener("unix:/run/x.sock:backlog=65535").path, "/run/x.sock")

    def test_idleASCII(self) -> None:
        """idle= takes ASCII digits only (float() read Arabic-Indic '١٢' as 12)."""
        e = self.assertRaises(ConfigError, parseListener, "telnet,idle=١٢+4001")
        self.assertEqual(str(e), "idle='١٢' in listener 'telnet,idle=١٢+4001': expected 0 < seconds <= 31536000.0")
        self.assertEqual(parseListener("telnet,idle=12+4001").idle, 12.0)

    def test_twistedNumbersSigned(self) -> None:
        """A sign or a space in a number Twisted reads of a tcp:, tcp6: or unix: listener is refused naming it: Twisted's int() read 'tcp:+4001' and 'tcp: 4001' as port 4001 (and a device's tcp:HOST:+4001 was already refused)."""
        cases = {
            "tcp:+4001": "'+4001'",
            "tcp: 4001": "' 4001'",
            "raw+tcp6:+4001": "'+4001'",
            "tcp:port=+4001:interface=127.0.0.1": "port='+4001'",
            "tcp:4001:backlog=+5": "backlog='+5'",
            "tcp:4001:backlog= 5": "backlog=' 5'",
            "unix:/run/x.sock:mode=+600": "mode='+600'",
        }
        for text, what in cases.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"{what} in listener '{text}': expected a number in ASCII digits (0-9) only: no "
                             "sign, space or '_'")
        self.assertEqual(parseListener("tcp:4001").port, 4001)
        # Whatever the interface says: a port written as the interface is was skipped with it (seen: 'tcp:+4001:+4001' taken).
        for text in ("tcp:+4001:+4001", "tcp:+4001:interface=+4001", "tcp6:+4001:5:+4001", "tcp:4001:+5:+5"):
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertIn(f"in listener '{text}': expected a number in ASCII digits (0-9) only", str(e))
        for text, host in (("tcp:4001:127.0.0.1", "127.0.0.1"), ("tcp6:4001:5:\\:\\:1", "::1")):
            self.assertEqual((parseListener(text).port, parseListener(text).host), (4001, host))
        e = self.assertRaises(ConfigError, parseListener, "tcp:-1")
        self.assertEqual(str(e), "bad port '-1' in listener 'tcp:-1': expected a port number, 0 to 65535")
        for device in ("tcp:localhost:+4001", "tcp:localhost: 4001", "tcp:localhost:-1"):
            e = self.assertRaises(ConfigError, parseDevice, device)
            self.assertEqual(str(e), f"device '{device}': expected tcp:HOST:PORT")

    def test_twistedNumbersASCII(self) -> None:
        """The numbers Twisted reads of a tcp:, tcp6: or unix: listener (port, backlog=, mode=, lockfile=, named or positional) in Arabic-Indic digits or with '_' are refused naming them, as the gateway's own numbers are (Twisted's int() read 'backlog=١' as 1)."""
        cases = {
            "tcp:4001:backlog=١": "backlog='١'",
            "raw+tcp6:4001:backlog=1_0": "backlog='1_0'",
            "tcp:١٠٠١": "'١٠٠١'",
            "tcp:port=4_001:interface=127.0.0.1": "port='4_001'",
            "tcp:4001:127.0.0.1:٥": "'٥'",
            "unix:/run/x.sock:mode=٦٠٠": "mode='٦٠٠'",
            "unix:/run/x.sock:600:١": "'١'",
            "unix:address=/run/x.sock:lockfile=١": "lockfile='١'",
        }
        for text, what in cases.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"{what} in listener '{text}': expected a number in ASCII digits (0-9) only: no "
                             "sign, space or '_'")
        # A unix socket's mode is octal, 0 to 777: Twisted took '7777777' (as 7777, anyone may connect).
        for text, mode in {"unix:/run/x.sock:mode=7777777": "7777777", "unix:/run/x.sock:1000": "1000",
                           "raw+unix:address=/run/x.sock:mode=4755": "4755"}.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"mode={mode} in listener '{text}': expected an octal mode 0 to 777 (e.g. 660: "
                                     "its owner and group may connect)")
        # lockfile= is 0 or 1: Twisted's bool(int()) took 2, 01, 10 as 1 (a lock file asked for, said nowhere).
        for text, value in {"unix:/run/x.sock:lockfile=2": "2", "raw+unix:address=/run/x.sock:lockfile=01": "01",
                            "unix:/run/x.sock:600:5:10": "10", "unix:/run/x.sock:lockfile=-1": "-1"}.items():
            e = self.assertRaises(ConfigError, parseListener, text)
            self.assertEqual(str(e), f"lockfile='{value}' in listener '{text}': expected 0 (no lock file) or 1 (a lock "
                                     "file PATH.lock beside the socket)")
        # (Given twice, it is refused as such: tests.config.test_endpoints test_givenTwiceRefused.)
        e = self.assertRaises(ConfigError, parseListener, "unix:/run/x.sock:lockfile=1:lockfile=2")
        self.assertIn("lockfile= is given twice", str(e))
        self.assertEqual([parseListener(f"unix:/run/x.sock:lockfile={n}").endpoint for n in "01"],
                         ["unix:/run/x.sock:lockfile=0:mode=600", "unix:/run/x.sock:lockfile=1:mode=600"])
        self.assertEqual(parseListener("unix:/run/x.sock:600:5:1").endpoint, "unix:/run/x.sock:600:5:1")
        self.assertIn(":mode=777", parseListener("unix:/run/x.sock:mode=777").endpoint)
        self.assertIn(":mode=0", parseListener("unix:/run/x.sock:mode=0").endpoint)
        # A path or an interface is no number: any letters.
        self.assertEqual(parseListener("unix:/run/١_٢.sock:backlog=5").path, "/run/١_٢.sock")
        self.assertEqual(parseListener("unix:/run/١:mode=600").path, "/run/١")
        self.assertEqual(parseListener("tcp:4001:backlog=5:interface=127.0.0.1").port, 4001)

    def test_twistedNumbersUnreadableNamed(self) -> None:
        """A number Twisted reads that is no number (empty lockfile=, mode=9999 or 8 not octal, backlog=x, port=x; named or positional) is refused naming its key, its value and what is expected, as a number out of range is (it said only Python's "invalid literal for int() with base 8: '9999'")."""
        mode = "expected an octal mode 0 to 777 (e.g. 660: its owner and group may connect)"
        backlog = "expected a number, 0 to 65535 (the kernel takes at most net.core.somaxconn)"
        lockfile = "expected 0 (no lock file) or 1 (a lock file PATH.lock beside the socket)"
        cases = {
            "unix:/run/x.sock:lockfile=": f"lockfile='' in listener 'unix:/run/x.sock:lockfile=': {lockfile}",
            "unix:/run/x.sock:600:5:": f"lockfile='' in listener 'unix:/run/x.sock:600:5:': {lockfile}",
            "unix:/run/x.sock:mode=9999": f"mode='9999' in listener 'unix:/run/x.sock:mode=9999': {mode}",
            "raw+unix:/run/x.sock:mode=": f"mode='' in listener 'raw+unix:/run/x.sock:mode=': {mode}",
            "unix:/run/x.sock:8": f"mode='8' in listener 'unix:/run/x.sock:8': {mode}",
            "unix:/run/x.sock:600:x": f"backlog='x' in listener 'unix:/run/x.sock:600:x': {backlog}",
            "tcp:4001:interface=127.0.0.1:backlog=": ("backlog='' in listener 'tcp:4001:interface=127.0.0.1:backlog=': "
                                                      f"{backlog}"),
            "tcp:4001:127.0.0.1:x": f"backlog='x' in listener 'tcp:4001:127.0.0.1:x': {backlog}",
            "telnet+tcp6:4001:zz": f"backlog='zz' in listener 'telnet+tcp6:4001:zz': {backlog}",
            "tcp:port=x": "bad port 'x' in listener 'tcp:port=x': expected a port number, 0 to 65535",
        }
        for text, message in cases.items():
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)), message)
        e = self.assertRaises(ConfigError, parseListener, "unix:/run/x.sock:mode=600:mode=")
        self.assertIn("mode= is given twice", str(e))

    def test_bareColonsHintedBeforeNumbers(self) -> None:
        """An IPv6 interface= written with bare colons on tcp6: (its colons split it, an empty backlog made) is refused saying how a colon is written, as tcp: says it; it said only "backlog='' ...: expected a number"."""
        backlog = "expected a number, 0 to 65535 (the kernel takes at most net.core.somaxconn)"
        hint = "; a colon inside a value (an IPv6 address) is written \\: ('interface=\\:\\:1' in a shell)"
        for text in ("raw+tcp6:5000:interface=::1", "tcp6:5000:interface=::", "tcp6:5000:interface=fe80::1%eth0"):
            self.assertEqual(str(self.assertRaises(ConfigError, parseListener, text)),
                             f"backlog='' in listener {text!r}: {backlog}{hint}")
        self.assertEqual(str(self.assertRaises(ConfigError, parseListener, "tcp6:5000:zz")),
                         f"backlog='zz' in listener 'tcp6:5000:zz': {backlog}")
