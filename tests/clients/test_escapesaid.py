"""
Escape menu answers that must say what happened: a key of ^] k KEY not
sent, a replay count capped.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.escapecommands import MAX_REPLAY_LINES
from tests.clients.test_sessions import Harness


class BreakThenKeyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()

    def test_refusedKeyNotSentSaid(self) -> None:
        """^] k h refused (read-only): the person hears why and that h was not sent, also once the refusal itself is rate-limited."""
        client, t = self.h.telnet("telnet,ro,escape=^]+4444")
        client.dataReceived(b"\x1dkh")
        self.assertEqual(t.value(), b"\r\n[serialgw: no break: read-only]\r\n"
                                    b"\r\n[serialgw: 'h' not sent: no break]\r\n")
        t.clear()
        client.dataReceived(b"\x1dkh")
        self.assertEqual(t.value(), b"\r\n[serialgw: 'h' not sent: no break]\r\n")
        self.assertEqual(self.h.device.events, [])

    def test_keyAfterBreakNotSaid(self) -> None:
        """^] k h that breaks: h goes after the break, nothing said."""
        client, t = self.h.telnet()
        client.dataReceived(b"\x1dkh")
        self.assertEqual((t.value(), self.h.device.events), (b"", [("break", None), ("write", b"h")]))


class ReplayCapTests(SynchronousTestCase):
    def test_capSaid(self) -> None:
        """^] R past MAX_REPLAY_LINES replays that many and says it capped the count; at the cap, nothing more is said."""
        h = Harness()
        client, t = h.telnet()
        h.line.deviceDataReceived(b"a\r\nb\r\n")
        t.clear()
        client.dataReceived(b"\x1dR1000000\r")
        self.assertEqual(t.value(), b"\r\n[serialgw: how many lines, then Enter (Esc cancels):]\r\n"
                                    b"\r\n[serialgw: last %d lines of rack4 (at most %d, not 1000000):]\r\n"
                                    b"a\r\nb\r\n" % (MAX_REPLAY_LINES, MAX_REPLAY_LINES))
        t.clear()
        client.dataReceived(b"\x1dR%d\r" % MAX_REPLAY_LINES)
        self.assertIn(b"[serialgw: last %d lines of rack4:]\r\n" % MAX_REPLAY_LINES, t.value())
