"""
Tests for serialgw.config: parsing settings, listeners and devices.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.config import (
    ConfigError,
    DeviceSpec,
    SerialSettings,
    parseCompact,
    parseDevice,
    parseParity,
    parseStopbits,
)


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

    def test_notYet(self) -> None:
        """Remote device forms are refused clearly until they exist."""
        e = self.assertRaises(ConfigError, parseDevice, "rfc2217://host:2217")
        self.assertIn("'rfc2217://host:2217' is not supported yet", str(e))
        self.assertRaises(ConfigError, parseDevice, "")
