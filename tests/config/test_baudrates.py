"""
Tests for serialgw.config.baudrates: a baud rate neither standard nor a
known odd one is warned of (never refused), naming the standard rate it is
most likely a slip of, by --check, the start's log and a reload's.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.app.lines import makeLine, retuneLine
from serialgw.config.baudrates import KNOWN_ODD, STANDARD, nearestStandard, unusualBaud
from serialgw.config.specs import DeviceSpec, LineConfig, SerialSettings
from tests.config.test_check import checked
from tests.fakes import LogEvents, RecordingDevice

WARNING = ("baud rate {rate} is neither a standard rate nor a known odd one (such as 74880 or 250000): did you mean "
           "{meant}? (set as given)")


class NearestTests(SynchronousTestCase):
    def test_slipsOfTheKeyboard(self) -> None:
        """A digit left out, added, changed or two swapped: the standard rate it slipped from (of several, the one beginning alike the longest); else the nearest by ratio."""
        cases = {11520: 115200, 1152: 1200, 96000: 9600, 9601: 9600, 19220: 19200, 19020: 19200, 56700: 56000,
                 38440: 38400, 2304000: 230400, 115000: 115200, 300000: 3000000, 270000: 256000, 7: 75,
                 2**31 - 1: 4000000}
        self.assertEqual({rate: nearestStandard(rate) for rate in cases}, cases)

    def test_standardAndKnownOddSayNothing(self) -> None:
        """Standard rates and the odd ones real devices use (ESP8266's 74880, DMX's 250000, MIDI's 31250) are no warning."""
        self.assertEqual([r for r in STANDARD + KNOWN_ODD if unusualBaud(r) is not None], [])
        self.assertIn(74880, KNOWN_ODD)
        self.assertIn(250000, KNOWN_ODD)
        self.assertEqual(unusualBaud(11520), WARNING.format(rate=11520, meant=115200))


class SaidTests(SynchronousTestCase):
    def test_checkWarns(self) -> None:
        """--check --baud 11520: OK with a warning naming 115200 (it was OK, silent); --baud 74880: OK, nothing said."""
        code, out, err = checked("-d", "/dev/null", "--baud", "11520", "-p", "tcp:0:interface=127.0.0.1")
        self.assertEqual((code, out, err),
                         (0, "serialgw: options: 1 line(s), 1 listener(s): OK, 1 warning(s)\n",
                          f"serialgw: warning: line 'null': {WARNING.format(rate=11520, meant=115200)}\n"))
        self.assertEqual(checked("-d", "/dev/null", "-s", "74880,8N1", "-p", "tcp:0:interface=127.0.0.1"),
                         (0, "serialgw: options: 1 line(s), 1 listener(s): OK\n", ""))

    def test_startAndReloadLog(self) -> None:
        """A line made at 11520 logs a warning naming 115200, as does a reload to 19220; made at 115200, or retuned to 250000: nothing."""
        logged = LogEvents(self)
        odd = LineConfig("web1", DeviceSpec("tty", "/dev/ttyS0"), SerialSettings(11520))
        line = makeLine(odd, RecordingDevice(odd.settings), Clock())
        fine = LineConfig("web2", DeviceSpec("tty", "/dev/ttyS1"), SerialSettings(115200))
        other = makeLine(fine, RecordingDevice(fine.settings), Clock())
        retuneLine(line, odd, LineConfig("web1", odd.device, SerialSettings(19220)))
        retuneLine(other, fine, LineConfig("web2", fine.device, SerialSettings(250000)))
        self.assertEqual([(e["line"], e["baud"], e["problem"], e["when"]) for e in logged.at(LogLevel.warn)],
                         [("web1", 11520, WARNING.format(rate=11520, meant=115200), ""),
                          ("web1", 19220, WARNING.format(rate=19220, meant=19200), " (reload)")])
