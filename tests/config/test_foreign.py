"""
Coming from ser2net or conserver: what an operator pastes from ser2net.yaml
or conserver.cf is refused naming the file, its line and the value, and the
error says how serialgw writes it.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.file import loadConfig
from serialgw.config.listeners import parseListener
from serialgw.config.parsers import parseCompact
from serialgw.config.specs import ConfigError, Protocol, SerialSettings
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
            "kickolduser = true": "ser2net's kickolduser has no counterpart",
            "trace-write = '/var/log/x'": "ser2net's trace-write is log-typed here",
            "timestamp = '1hab'": "conserver's timestamp is log-mark",
            "logfile = '/var/log/x'": "conserver's logfile is log here",
        }
        for key, hint in cases.items():
            message = self.refused(f'[lines.con01]\ndevice = "/dev/ttyUSB0"\nlisten = "4001"\n{key}\n')
            name = key.split(" ")[0]
            self.assertTrue(message.startswith(f"FILE:4: unknown key '{name}' in [lines.con01]: {hint}"), message)
            self.assertIn("(known: backlog, ", message)
        message = self.refused('[defaults]\nmax-connections = 1\n[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\n')
        self.assertTrue(message.startswith("FILE:2: unknown key 'max-connections' in [defaults]: ser2net's"), message)
        message = self.refused('[lines.a]\ndevice = "/dev/ttyS0"\nlisten = "4001"\ncolour = 1\n')
        self.assertTrue(message.startswith("FILE:4: unknown key 'colour' in [lines.a] (known: "), message)
