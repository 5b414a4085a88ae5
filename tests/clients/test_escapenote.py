"""
The escape menu's C{n TEXT} Enter (conserver's C{^Ecn}): a note written
into the line's console logs, naming who wrote it.
"""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escape import NOTE_LIMIT, NOTE_WINDOW, NOTES
from serialgw.config.logspec import LogSpec
from tests.clients.test_sessions import Harness
from tests.fakes import LogEvents


class NoteTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.log = self.h.eventLog()
        self.client, self.t = self.h.telnet()
        self.assertEqual(self.log.events, ["192.0.2.9:1000 attached as writer"])
        self.log.events.clear()

    def type(self, data: bytes) -> None:
        """C{data} typed, the reactor's turns run (KEYS_PER_TURN keys of commands a turn: the rest waits)."""
        self.client.dataReceived(data)
        for _ in range(len(data) // 32 + 2):
            self.h.line.clock.advance(0)

    def test_noteWritten(self) -> None:
        """^] n, a note, Enter: the console log gets 'note by PEER: TEXT', the gateway's log too; the person is told; nothing reaches the device."""
        events = LogEvents(self)
        self.type(b"\x1dn")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: a note for rack4's console log, then Enter (Esc cancels):]\r\n")
        self.t.clear()
        self.type("rebooted for the BIOS update, caf\u00e9\r\n".encode())
        said = "note by 192.0.2.9:1000: rebooted for the BIOS update, caf\u00e9"
        self.assertEqual(self.log.events, [said])
        self.assertEqual(self.t.value(), b"\r\n[serialgw: noted in rack4's console log]\r\n")
        self.assertEqual([e["text"] for e in events.at(LogLevel.info) if e.get("text", "").startswith("note")], [said])
        self.assertEqual(self.h.device.events, [])

    def test_boundsAndCancel(self) -> None:
        """Esc cancels; an empty note is none; past NOTE_LIMIT keys it is cancelled; past NOTES in NOTE_WINDOW s nothing is noted, then again."""
        self.type(b"\x1dnhalf\x1b")
        self.type(b"\x1dn  \r")
        self.type(b"\x1dn" + b"x" * (NOTE_LIMIT + 1) + b"\r")
        self.assertEqual(self.log.events, [])
        self.assertIn(b"note cancelled]", self.t.value())
        self.assertIn(b"an empty note: nothing noted]", self.t.value())
        self.assertIn(b"note cancelled: more than %d characters" % NOTE_LIMIT, self.t.value())
        for n in range(NOTES + 1):
            self.type(b"\x1dn%d\r" % n)
        self.assertEqual(len(self.log.events), NOTES)
        self.assertIn(b"at most %d notes in %d s: nothing noted]" % (NOTES, NOTE_WINDOW), self.t.value())
        self.h.line.clock.advance(NOTE_WINDOW)
        self.type(b"\x1dnlater\r")
        self.assertEqual(self.log.events[-1], "note by 192.0.2.9:1000: later")
        self.assertEqual(self.h.device.events, [])

    def test_noConsoleLog(self) -> None:
        """A line without a console log: n says so at once, and what follows is typing again."""
        self.h.line.logs.clear()
        self.type(b"\x1dnls\r")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: rack4 has no console log: nothing to note]\r\n")
        self.assertEqual(self.h.device.events, [("write", b"ls\r")])

    def test_logKeepsNoEvents(self) -> None:
        """A console log with log-events = "off" would not write it: said at n, and at Enter if a reload turned them off meanwhile."""
        self.log.spec = LogSpec("/var/log/rack4.log", events="off")
        self.type(b"\x1dn")
        self.assertEqual(self.t.value(), b"\r\n[serialgw: rack4's console log keeps no events (log-events = \"off\"): "
                                         b"nothing to note]\r\n")
        self.log.spec = LogSpec("/var/log/rack4.log")
        self.t.clear()
        self.type(b"\x1dnhalf")
        self.log.spec = LogSpec("/var/log/rack4.log", events="off")
        self.type(b"\r")
        self.assertIn(b"keeps no events (log-events = \"off\"): nothing noted]", self.t.value())
        self.assertEqual(self.log.events, [])

    def test_notPrintableShownAsQuestionMarks(self) -> None:
        """A note's characters that are not printable (a line separator, a bidi override) are '?' in the log."""
        self.type("\x1dna\u2028b\u202ec\r".encode())
        self.assertEqual(self.log.events, ["note by 192.0.2.9:1000: a?b?c"])
