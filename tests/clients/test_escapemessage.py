"""
The escape menu's C{m TEXT} Enter (conserver's C{^Ecb}, its broadcast): a
message to everyone on the line, naming who sent it, bounded.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escape import MESSAGE_WINDOW, MESSAGES, NOTE_LIMIT
from tests.clients.test_sessions import Harness, text


class MessageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.log = self.h.eventLog()
        self.alice, self.aliceT = self.h.telnet(port=1)
        self.bob, self.bobT = self.h.telnet(port=2)
        self.reader, self.readerT = self.h.telnet("telnet,ro,escape=^]+4444", port=3)
        for t in (self.aliceT, self.bobT, self.readerT):
            t.clear()
        self.log.events.clear()

    def type(self, client: Any, data: bytes) -> None:
        """C{data} typed by C{client}, the reactor's turns run."""
        client.dataReceived(data)
        for _ in range(len(data) // 32 + 2):
            self.h.line.clock.advance(0)

    def test_everyoneTold(self) -> None:
        """^] m, a message, Enter: everyone on the line is told who said what, the sender too; the console log keeps it; nothing reaches the device."""
        self.type(self.alice, b"\x1dm")
        self.assertEqual(text(self.aliceT), "\r\n[serialgw: a message for everyone on rack4, then Enter (Esc cancels):]\r\n")
        self.type(self.alice, "rebooting in 5 min, caf\u00e9\r\n".encode())
        said = "\r\n[serialgw: message from 192.0.2.9:1: rebooting in 5 min, caf\u00e9]\r\n"
        self.assertEqual((text(self.aliceT), text(self.bobT), text(self.readerT)), (said, said, said))
        self.assertEqual(self.log.events, ["message from 192.0.2.9:1: rebooting in 5 min, caf\u00e9"])
        self.assertEqual(self.h.device.events, [])

    def test_readOnlyMaySay(self) -> None:
        """A read-only person may say something too (conserver's spies may), not control characters: shown as '?'."""
        self.type(self.reader, "\x1dmhands off\u202e please\r".encode())
        self.assertEqual(text(self.bobT), "\r\n[serialgw: message from 192.0.2.9:3: hands off? please]\r\n")

    def test_bounded(self) -> None:
        """Esc cancels; an empty one is none; past NOTE_LIMIT keys it is cancelled; past MESSAGES in MESSAGE_WINDOW s nothing is said, then again."""
        self.type(self.alice, b"\x1dmhalf\x1b")
        self.type(self.alice, b"\x1dm  \r")
        self.type(self.alice, b"\x1dm" + b"x" * (NOTE_LIMIT + 1) + b"\r")
        told = text(self.aliceT)
        self.assertIn("message cancelled]", told)
        self.assertIn("an empty message: nothing said]", told)
        self.assertIn(f"message cancelled: more than {NOTE_LIMIT} characters", told)
        self.assertEqual(text(self.bobT), "")
        for n in range(MESSAGES + 1):
            self.type(self.alice, b"\x1dm%d\r" % n)
        self.assertEqual(text(self.bobT).count("message from"), MESSAGES)
        self.assertIn(f"at most {MESSAGES} messages in {MESSAGE_WINDOW:g} s: nothing said]", text(self.aliceT))
        self.h.line.clock.advance(MESSAGE_WINDOW)
        self.type(self.alice, b"\x1dmlater\r")
        self.assertEqual(text(self.bobT), "\r\n[serialgw: message from 192.0.2.9:1: later]\r\n")
        self.assertEqual(self.h.device.events, [])
