"""
Coming from ser2net or conserver: what an operator pastes from ser2net.yaml
or conserver.cf is refused naming the file, its line and the value, and the
error says how serialgw writes it.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.foreign import ser2netConf, ser2netConnector
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import Protocol
from serialgw.config.parsers import parseCompact
from serialgw.config.specs import ConfigError, SerialSettings, quote
from tests.app.test_tap import parse
from tests.realio import writeTemp


class ForeignFormTests(SynchronousTestCase):
    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        e = self.assertRaises(ConfigError, loadConfig, path)
        return str(e).replace(path, "FILE")

    def test_ser2netSerialForm(self) -> None:
        """ser2net's speed-parity-bits form (115200n81, 9600E71) is refused with its serialgw spelling."""
        for text, ours in [("115200n81", "115200,8N1"), ("9600E71", "9600,7E1"), ("19200o72", "19200,7O2"),
                           ("9600n8", "9600,8N1")]:
            e = self.assertRaises(ConfigError, parseCompact, text)
            self.assertEqual(str(e), f"cannot read '{text}' in serial settings '{text}': ser2net's form "
                                     f"(speed, parity, data bits, stop bits); serialgw writes it {ours}")
            self.assertEqual(parseCompact(ours).baudrate, int(ours.split(",")[0]))
        self.assertEqual(parseCompact("9600,7E1"), SerialSettings(9600, 7, "E", 1))
        message = self.refused('[lines.con01]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\nserial = "115200n81,rtscts"\n')
        self.assertTrue(message.startswith("FILE:4: [lines.con01] serial: cannot read '115200n81' in serial "
                                           "settings '115200n81,rtscts': ser2net's form"), message)
        e = self.assertRaises(ConfigError, parseCompact, "fast")
        self.assertIn("expected BAUD[,DATABITS PARITY STOPBITS]", str(e))

    def test_speedPastPythonsDigitLimit(self) -> None:
        """A number of more digits than Python's int() takes (4300) in ser2net's speed form, socat's device form, a ser2net connector, or a ser2net.conf line's timeout, speed or max-connections: a ConfigError naming it, not a ValueError traceback (twistd --check exited 1 with one)."""
        digits = "9" * 5000
        for device in (f"/dev/ttyS0,{digits}", f"/dev/ttyS0,{digits}n81", f"serialdev,/dev/ttyS0,{digits}n81"):
            message = self.refused(f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\n')
            self.assertTrue(message.startswith(f"FILE:2: [lines.a] device: cannot read device {quote(device)}: "), message[:200])
        for device in (f"2000:telnet:{digits}:/dev/ttyS0:9600", f"2000:telnet:600:/dev/ttyS0:{digits}",
                       f"2000:telnet:600:/dev/ttyS0:9600 max-connections={digits}"):
            message = self.refused(f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\n')
            self.assertTrue(message.startswith(f"FILE:2: [lines.a] device: cannot read device {quote(device)}: a ser2net.conf "
                                               "line"), message[:200])
        message = self.refused(f'[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\nserial = "{digits}n81"\n')
        self.assertTrue(message.startswith(f"FILE:4: [lines.a] serial: cannot read {quote(digits + 'n81')} in serial settings "),
                        message[:200])

    def test_ser2netConfNonASCIIDigits(self) -> None:
        """A ser2net.conf line's max-connections= or speed in other digits than ASCII ('²', Arabic-Indic): a ConfigError with our keys, the option not carried over (max-connections=² was a ValueError traceback)."""
        for option in ("max-connections=\u00b2", "\u0669\u0666\u0660\u0660"):
            device = f"2000:telnet:600:/dev/ttyS0:9600 {option}"
            message = self.refused(f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\n')
            self.assertTrue(message.startswith(f"FILE:2: [lines.a] device: cannot read device {quote(device)}: a ser2net.conf "
                                               "line"), message)
            self.assertIn(f'serial = "9600,8N1" (not carried over: {option})', message)

    def test_addressAndPort(self) -> None:
        """ADDRESS:PORT and ADDRESS,PORT (socat's, ser2net.conf's, most servers' spelling) are refused at once with the listener that does the same, which reads back; they passed as Twisted endpoints and failed at start with 'Unknown endpoint type: '127.0.0.1''."""
        cases = {
            "127.0.0.1:2000": "tcp:2000:interface=127.0.0.1",
            "192.0.2.1,2000": "tcp:2000:interface=192.0.2.1",
            "localhost:2000": "tcp:2000:interface=127.0.0.1",
            "localhost,2000": "tcp:2000:interface=127.0.0.1",
            "0.0.0.0:2000": "2000",
            ":2000": "2000",
            "*:2000": "2000",
            "[::1]:2000": "tcp6:2000:interface=\\:\\:1",
            "[::]:2000": "tcp6:2000",
            "raw+127.0.0.1:2000": "raw+tcp:2000:interface=127.0.0.1",
            "telnet,ro+[2001:db8::1]:2000": "telnet,ro+tcp6:2000:interface=2001\\:db8\\:\\:1",
        }
        for theirs, ours in cases.items():
            e = self.assertRaises(ConfigError, parseListener, theirs)
            self.assertEqual(str(e), f"cannot read listener '{theirs}': an address and a port; serialgw writes it "
                                     f"'{ours}'", theirs)
            parseListener(ours)
        # A Twisted endpoint of another kind is still Twisted's to read.
        self.assertEqual(parseListener("systemd:domain=INET6:index=0").endpoint, "systemd:domain=INET6:index=0")

    def test_ser2netAccepter(self) -> None:
        """ser2net's accepter strings are refused with the listener that does the same, which reads back."""
        cases = {
            "telnet(rfc2217),tcp,4001": "telnet+4001",
            "telnet(rfc2217,mode=server),tcp,4001": "telnet+4001",
            "telnet,tcp,4001": "telnet,no-rfc2217+4001",
            "tcp,4001": "raw+4001",
            "tcp,localhost,4002": "raw+tcp:4002:interface=127.0.0.1",
            "telnet(rfc2217),tcp,192.0.2.1,4003": "telnet+tcp:4003:interface=192.0.2.1",
        }
        for theirs, ours in cases.items():
            e = self.assertRaises(ConfigError, parseListener, theirs)
            self.assertEqual(str(e), f"cannot read listener '{theirs}': ser2net's accepter form; serialgw "
                                     f"writes it '{ours}'")
            spec = parseListener(ours)
            self.assertEqual(spec.protocol, Protocol.RAW if ours.startswith("raw") else Protocol.TELNET)
        self.assertFalse(parseListener("telnet,no-rfc2217+4001").rfc2217)
        message = self.refused('[lines.con01]\ndevice = "/dev/ttyUSB0"\n\nlisten = "telnet(rfc2217),tcp,4001"\n')
        self.assertTrue(message.startswith("FILE:4: [lines.con01] listen: cannot read listener "
                                           "'telnet(rfc2217),tcp,4001': ser2net's accepter form"), message)
        e = self.assertRaises(ConfigError, parseListener, "sctp,4001")
        self.assertIn("expected a port number", str(e))

    def test_foreignKeys(self) -> None:
        """A ser2net or conserver option as a key is refused with what serialgw has for it (or that it has none)."""
        cases = {
            "max-connections = 1": "ser2net's max-connections is max-clients here",
            "kickolduser = true": "ser2net's kickolduser is kick-old-user here",
            "trace-write = '/var/log/x'": "ser2net's trace-write is log-typed here",
            "timestamp = '1hab'": "conserver's timestamp is log-mark",
            "logfile = '/var/log/x'": "conserver's logfile is log here",
            "options = 'ondemand'": "conserver's options are keys of their own here: ondemand is on-demand = true (the "
                                    "others have no counterpart)",
        }
        for key, hint in cases.items():
            message = self.refused(f'[lines.con01]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n{key}\n')
            name = key.split(" ")[0]
            self.assertTrue(message.startswith(f"FILE:4: unknown key '{name}' in [lines.con01]: {hint}"), message)
            self.assertIn("(known: admin, aliases, backlog, ", message)
        message = self.refused('[defaults]\nmax-connections = 1\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        self.assertTrue(message.startswith("FILE:2: unknown key 'max-connections' in [defaults]: ser2net's"), message)
        message = self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\ncolour = 1\n')
        self.assertTrue(message.startswith("FILE:4: unknown key 'colour' in [lines.a] (known: "), message)


class PastedLineTests(SynchronousTestCase):
    """Lines of ser2net.yaml, ser2net.conf and conserver.cf pasted into the file, or as a value."""

    def refused(self, text: str) -> str:
        path = writeTemp(self, text)
        e = self.assertRaises(ConfigError, loadConfig, path)
        return str(e).replace(path, "FILE")

    def test_yamlLines(self) -> None:
        """ser2net.yaml's connection, accepter, connector and option lines name FILE:LINE, the line and our keys."""
        head = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
        toml = "(TOML: Expected '=' after a key in a key/value pair (column {}))"
        cases = {
            "connection: &con01": "'connection: &con01': ser2net's connection; serialgw writes it as a table, "
                                  "[lines.con01], with device = ... and listen = ... " + toml.format(11),
            "  accepter: telnet(rfc2217),tcp,2013": "'accepter: telnet(rfc2217),tcp,2013': ser2net's accepter; "
                                                    "serialgw writes it listen = \"telnet+2013\" " + toml.format(11),
            "    connector: serialdev,/dev/ttyUSB0,115200n81,local":
                "'connector: serialdev,/dev/ttyUSB0,115200n81,local': ser2net's connector; serialgw writes it "
                "device = \"/dev/ttyUSB0\", serial = \"115200,8N1\" " + toml.format(14),
            "connector: telnet(rfc2217),tcp,kvm1,7007":
                "'connector: telnet(rfc2217),tcp,kvm1,7007': ser2net's connector; serialgw writes it "
                "device = \"rfc2217://kvm1:7007\" " + toml.format(10),
            "      kickolduser: true": "'kickolduser: true': ser2net's kickolduser is kick-old-user here (with "
                                       "max-clients, ser2net's max-connections) (a YAML line: TOML writes NAME = "
                                       "VALUE) " + toml.format(18),
            "baud: 9600": "'baud: 9600': a YAML line: TOML writes baud = VALUE " + toml.format(5),
        }
        for pasted, said in cases.items():
            self.assertEqual(self.refused(f"{head}{pasted}\n"), f"FILE:4: {said}")
        # Another YAML-looking line, of nobody's: tomllib's error alone.
        self.assertEqual(self.refused(f"{head}colour: red\n"), "FILE:4: Expected '=' after a key in a key/value "
                                                               "pair (column 7)")

    def test_wholeYamlFile(self) -> None:
        """A ser2net.yaml given whole (--config /etc/ser2net/ser2net.yaml): its %YAML or --- first line says it is YAML, where the examples are; it said only 'Invalid statement'."""
        said = ("a YAML file (ser2net 4's ser2net.yaml?): serialgw reads TOML, a [lines.NAME] table a connection "
                "(examples/ser2net.yaml and examples/ser2net.toml, in share/doc/serialgw/ where pip installed serialgw: the same lines in both; README: Coming from "
                "ser2net or conserver)")
        self.assertEqual(self.refused("%YAML 1.1\n---\nconnection: &con01\n"),
                         f"FILE:1: '%YAML 1.1': {said} (TOML: Invalid statement (column 1))")
        self.assertEqual(self.refused("# ser2net\n---\nconnection: &con01\n"),
                         f"FILE:2: '---': {said} (TOML: Expected '=' after a key in a key/value pair (column 4))")

    def test_backslashInABasicString(self) -> None:
        """A Twisted escape in a TOML "..." string (tcp6's interface=\\:\\:1, as the README writes listeners): tomllib said only 'Unescaped '\\' in a string'; now the line is said again in single quotes, a literal string."""
        message = self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "raw+tcp6:4446:interface=\\:\\:1"\n')
        self.assertEqual(message, "FILE:3: 'listen = \"raw+tcp6:4446:interface=\\:\\:1\"': in a TOML string \"...\" a "
                                  "backslash starts an escape: write the value in single quotes, a literal string that "
                                  "keeps its backslashes (listen = 'raw+tcp6:4446:interface=\\:\\:1') (TOML: "
                                  "Unescaped '\\' in a string (column 37))")

    def test_ser2netEscapeInAString(self) -> None:
        """ser2net's \\N in a TOML basic string (tomllib: "Unescaped '\\'") says {line}, with the line rewritten."""
        message = self.refused('[defaults]\nlog = "/var/log/serialgw/\\N.log"\n[lines.a]\ndevice = "/dev/ttyS0"\n'
                               'listen = "4001"\n')
        self.assertEqual(message, "FILE:2: 'log = \"/var/log/serialgw/\\N.log\"': ser2net's escapes (\\N) are not "
                                  "read here, and in a TOML \"...\" string a backslash starts an escape: {line} is the "
                                  "line's name, as ser2net's \\N ('log = \"/var/log/serialgw/{line}.log\"') (TOML: "
                                  "Unescaped '\\' in a string (column 28))")

    def test_conserverLines(self) -> None:
        """conserver.cf's console block and settings pasted are refused with the table and key serialgw writes."""
        self.assertEqual(self.refused("console web1 { type device; device /dev/ttyS0; baud 115200; }\n"),
                         "FILE:1: 'console web1 { type device; device /dev/ttyS0; baud 115200; }': conserver's "
                         "console block; serialgw writes it as a table, [lines.web1], keys NAME = VALUE (TOML: "
                         "Expected '=' after a key in a key/value pair (column 9))")
        message = self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n    logfile /var/log/conserver/&;\n')
        self.assertEqual(message, "FILE:4: 'logfile /var/log/conserver/&;': conserver's logfile is log here (its & "
                                  "is {line}: log = \"/var/log/serialgw/{line}.log\") (a conserver.cf line: TOML "
                                  "writes NAME = VALUE) (TOML: Expected '=' after a key in a key/value pair (column 13))")

    def test_ser2netConfLine(self) -> None:
        """A ser2net.conf line, pasted as a line or as a listener, is the line table that does the same."""
        cases = {
            "2000:telnet:600:/dev/ttyS0:9600 8DATABITS NONE 1STOPBIT banner":
                '[lines.ttyS0] device = "/dev/ttyS0", listen = "telnet,no-rfc2217,idle=600+2000", serial = '
                '"9600,8N1" (not carried over: banner)',
            "localhost,2001:raw:0:/dev/ttyUSB1:115200":
                '[lines.ttyUSB1] device = "/dev/ttyUSB1", listen = "raw+tcp:2001:interface=127.0.0.1", serial = '
                '"115200,8N1"',
            "3001:telnet:0:/dev/ttyS1:19200,7DATABITS,EVEN,2STOPBITS,RTSCTS,remctl,max-connections=2,HANGUP_WHEN_DONE":
                '[lines.ttyS1] device = "/dev/ttyS1", listen = "telnet+3001", serial = "19200,7E2,rtscts", '
                'max-clients = 2, idle-dtr = "off", idle-rts = "off"',
        }
        for conf, ours in cases.items():
            e = self.assertRaises(ConfigError, parseListener, conf)
            self.assertEqual(str(e), f"cannot read listener '{conf}': a ser2net.conf line: serialgw writes it {ours}")
            listen = ours.split('listen = "')[1].split('"')[0]
            serial = ours.split('serial = "')[1].split('"')[0]
            self.assertEqual(parseListener(listen).text, listen)
            self.assertEqual(parseCompact(serial).describe().split(",")[0], serial.split(",")[0])
            message = self.refused(f"{conf}\n")
            self.assertTrue(message.startswith(f"FILE:1: '{conf}': a ser2net.conf line: serialgw writes it {ours} "
                                               "(TOML: "), message)
        self.assertEqual(self.refused("2002:off:0:/dev/ttyS2:\n"),
                         "FILE:1: '2002:off:0:/dev/ttyS2:': a ser2net.conf line: its port 2002 is off: serialgw has "
                         "no disabled line; leave the line's table out (or comment it out) (TOML: Expected '=' after "
                         "a key in a key/value pair (column 5))")

    def test_flowRepeatedWrittenOnce(self) -> None:
        """ser2net's flow words repeated, or undone by their -, are written as serial takes them: once, or not (serial = "115200,8N1,rtscts,rtscts" was written, then refused)."""
        self.assertEqual(ser2netConnector("serialdev,/dev/ttyUSB0,115200n81,rtscts,xonxoff,rtscts"),
                         'device = "/dev/ttyUSB0", serial = "115200,8N1,xonxoff,rtscts"')
        self.assertEqual(ser2netConnector("serialdev,/dev/ttyUSB0,115200n81,rtscts,-rtscts"),
                         'device = "/dev/ttyUSB0", serial = "115200,8N1"')
        said = ser2netConf("2000:raw:0:/dev/ttyS0:9600 RTSCTS rtscts XONXOFF -xonxoff")
        self.assertEqual(said, 'serialgw writes it [lines.ttyS0] device = "/dev/ttyS0", listen = "raw+2000", '
                               'serial = "9600,8N1,rtscts"')
        for text in (said, ser2netConnector("serialdev,/dev/ttyUSB0,115200n81,rtscts,xonxoff,rtscts")):
            parseCompact(str(text).split('serial = "')[1].split('"')[0])

    def test_connectorAsDevice(self) -> None:
        """A ser2net connector as a device is refused with our keys (it was taken for a relative tty path)."""
        message = self.refused('[lines.a]\ndevice = "serialdev,/dev/ttyUSB0,115200n81,local,rtscts,nobreak"\n'
                               'listen = "4001"\n')
        self.assertEqual(message, "FILE:2: [lines.a] device: cannot read device 'serialdev,/dev/ttyUSB0,115200n81,"
                                  "local,rtscts,nobreak': ser2net's connector form; serialgw writes it device = "
                                  "\"/dev/ttyUSB0\", serial = \"115200,8N1,rtscts\" (not carried over: nobreak)")
        for connector, device in [("telnet,tcp,kvm1,7007", "telnet:kvm1:7007"), ("tcp,kvm1,7008", "tcp:kvm1:7008")]:
            message = self.refused(f'[lines.a]\ndevice = "{connector}"\nlisten = "4001"\n')
            self.assertEqual(message, f"FILE:2: [lines.a] device: cannot read device '{connector}': ser2net's "
                                      f"connector form; serialgw writes it device = \"{device}\"")
        # A relative path with a comma that is no connector is still a path.
        self.assertEqual(loadConfig(writeTemp(self, '[lines.a]\ndevice = "tty,1"\nlisten = "4001"\n'))[0].device.kind,
                         "tty")

    def test_deviceWithItsSettings(self) -> None:
        """A tty with its settings after a comma, as socat and picocom's users write it (/dev/ttyUSB0,115200, /dev/ttyUSB0,b115200,raw,echo=0), is refused with our keys: it was a device 'not there now' (udev never makes a /dev name with a comma or a space)."""
        for device, ours in [("/dev/ttyUSB0,115200", 'device = "/dev/ttyUSB0", serial = "115200"'),
                             ("/dev/ttyS0,b9600,raw,echo=0",
                              'device = "/dev/ttyS0", serial = "9600" (not carried over: raw, echo=0)'),
                             ("/dev/ttyUSB1,115200n81", 'device = "/dev/ttyUSB1", serial = "115200,8N1"'),
                             ("/dev/ttyS0 9600", 'device = "/dev/ttyS0", serial = "9600"')]:
            message = self.refused(f'[lines.a]\ndevice = "{device}"\nlisten = "4001"\n')
            self.assertEqual(message, f"FILE:2: [lines.a] device: cannot read device '{device}': a device with its "
                                      f"settings (socat's form); serialgw writes it {ours}")
        # On the command line, said in options (review25: keys of a file were no help there).
        for device, ours in [("/dev/ttyUSB0,115200", "--device /dev/ttyUSB0 --serial 115200"),
                             ("/dev/ttyS0,b9600,raw,echo=0", "--device /dev/ttyS0 --serial 9600 (not carried over: raw, echo=0)"),
                             ("/dev/ttyUSB1,115200n81", "--device /dev/ttyUSB1 --serial 115200,8N1")]:
            e = self.assertRaises(UsageError, parse, "--device", device)
            self.assertEqual(str(e), f"--device: cannot read device '{device}': a device with its settings "
                                     f"(socat's form); serialgw takes it as {ours}")
        # What it says is taken: the options it names are a line at that speed.
        line = parse("--device", "/dev/ttyUSB1", "--serial", "115200,8N1")["lines"][0]
        self.assertEqual((line.device.path, line.settings.baudrate, line.settings.bytesize, line.settings.parity,
                          line.settings.stopbits), ("/dev/ttyUSB1", 115200, 8, "N", 1))
        # No baud rate after the comma: a path, as before.
        self.assertEqual(loadConfig(writeTemp(self, '[lines.a]\ndevice = "/dev/tty,x"\nlisten = "4001"\n'))[0]
                         .device.path, "/dev/tty,x")


    def test_lineSeparatorInAComment(self) -> None:
        """A comment holding U+2028 or U+0085 (TOML takes them; Python's splitlines breaks lines there): the pasted line, its FILE:LINE and another error's place are the file's own lines."""
        for odd in ("\u2028", "\x85"):
            head = f'# pasted from a web page:{odd} ser2net farm\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = 4001\n'
            self.assertEqual(self.refused(head + "2000:telnet:600:/dev/ttyS0:9600 8DATABITS NONE 1STOPBIT\n"),
                             "FILE:5: '2000:telnet:600:/dev/ttyS0:9600 8DATABITS NONE 1STOPBIT': a ser2net.conf line: "
                             "serialgw writes it [lines.ttyS0] device = \"/dev/ttyS0\", listen = "
                             "\"telnet,no-rfc2217,idle=600+2000\", serial = \"9600,8N1\" (TOML: Expected '=' after "
                             "a key in a key/value pair (column 5))")
            self.assertTrue(self.refused(head + "max-clients = -1\n").startswith("FILE:5: [lines.a] max-clients"))

class ForeignTableTests(SynchronousTestCase):
    def test_topLevelTables(self) -> None:
        """A top-level table named as ser2net or conserver name theirs ([default], [connection.x]) names FILE:LINE and ours; another, FILE:LINE alone (it named the file only)."""
        line = '[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n'
        expected = " (expected [defaults], [lines.NAME], [ssh], [tls], [users.NAME], [watch-all] and [by-name])"
        for table, hint in (("[default]", "ser2net's default and conserver's default * are the [defaults] table here"),
                            ("[connection.con01]", "ser2net's connection is a [lines.NAME] table here"),
                            ("[console.web1]", "conserver's console NAME is a [lines.NAME] table here")):
            path = writeTemp(self, f"{line}\n{table}\nmode = 'shared'\n")
            name = table.strip("[]").split(".")[0]
            self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                             f"{path}:5: unknown top-level key '{name}': {hint}{expected}")
        path = writeTemp(self, f"colour = 1\n{line}")
        self.assertEqual(str(self.assertRaises(ConfigError, loadConfig, path)),
                         f"{path}:1: unknown top-level key 'colour'{expected}")
