"""
The escape menu's C{l KEY} (conserver's C{^Ecl1}): the line's break
sequences (C{break-sequences}), sent whole and in order, or refused and
said; C{l ?} lists them.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.clients.test_sessions import Harness, text


class BreakSequenceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.log = self.h.eventLog()
        self.client, self.t = self.h.telnet()
        self.log.events.clear()

    def type(self, data: bytes) -> str:
        """C{data} typed, the reactor's turns run; what the client was told since the last look."""
        self.client.dataReceived(data)
        for _ in range(len(data) // 32 + 2):
            self.h.line.clock.advance(0)
        return text(self.t)

    def test_defaultsListed(self) -> None:
        """Left unconfigured the line has conserver's first three: l ? lists them as written, nothing sent."""
        self.assertEqual(self.type(b"\x1dl?"), "\r\n[serialgw: break sequences of rack4 (^] l KEY sends one; \\b a "
                                              "break): 1 \\b, 2 \\r~^B, 3 #.]\r\n")
        self.assertEqual(self.h.device.events, [])

    def test_sentWholeAndLogged(self) -> None:
        """l 2 sends Sun's alternate break (CR ~ ^B) as one write, l 3 '#.', l 1 a break; each an event in the console log; nothing told."""
        self.assertEqual(self.type(b"\x1dl2"), "")
        self.assertEqual(self.h.device.events, [("write", b"\r~\x02")])
        self.h.device.events.clear()
        self.type(b"\x1dl3\x1dl1after")
        self.assertEqual(self.h.device.events, [("write", b"#."), ("break", None), ("write", b"after")])
        self.assertEqual(self.log.events, ["break sequence 2 (\\r~^B) from 192.0.2.9:1000",
                                           "break sequence 3 (#.) from 192.0.2.9:1000",
                                           "break sequence 1 (\\b) from 192.0.2.9:1000",
                                           "BREAK from 192.0.2.9:1000"])

    def test_keysAroundTheBreakInOrder(self) -> None:
        """A sequence with keys before and after its break: the keys, the break, the keys, in that order."""
        self.h.line.breakSequences = {"z": (b"\r", b"h")}
        self.type(b"\x1dlz")
        self.assertEqual(self.h.device.events, [("write", b"\r"), ("break", None), ("write", b"h")])

    def test_refusedAndSaid(self) -> None:
        """A watcher, a read-only client, a device down, a break that cannot go, an init-command running: nothing sent, each said."""
        device, line = self.h.device, self.h.line
        line.mode = "exclusive"
        watcher, watcherT = self.h.telnet(port=1001)
        watcher.dataReceived(b"\x1dl2")
        self.assertIn("break sequence 2 not sent: you only watch: take write first]", text(watcherT))
        reader, readerT = self.h.telnet("telnet,ro,escape=^]+4444", port=1002)
        reader.dataReceived(b"\x1dl3")
        self.assertIn("break sequence 3 not sent: read-only]", text(readerT))
        device.up = False
        self.assertIn("break sequence 2 not sent: the device is down]", self.type(b"\x1dl2"))
        device.up = True
        device.noBreak = "tcp:h:1 is a raw socket: it carries no break"
        line.clock.advance(1)
        self.assertIn("break sequence 1 not sent: tcp:h:1 is a raw socket: it carries no break]", self.type(b"\x1dl1"))
        device.breaking = True
        line.clock.advance(1)
        device.noBreak = ""
        self.assertIn("break sequence 1 not sent: a break is under way]", self.type(b"\x1dl1"))
        device.breaking = False
        # (An init-command's run under way, the device taking input: people's typing waits for it.)
        line.initRun = object()  # type: ignore[assignment]
        line.clock.advance(1)
        self.assertIn("break sequence 3 not sent: an init-command runs]", self.type(b"\x1dl3"))
        self.assertEqual(device.events, [])
        self.assertEqual([e for e in self.log.events if "sequence" in e], [])

    def test_unknownCancelAndTypingAfter(self) -> None:
        """A key that names none is said (its Enter's LF, a UTF-8 character's rest swallowed); Esc, ^C and the escape key cancel; the next keys are typing."""
        self.assertEqual(self.type(b"\x1dlx"), "\r\n[serialgw: no break sequence 'x' on rack4; ^] l ? lists them]\r\n")
        self.assertIn("no break sequence ^M on rack4", self.type(b"\x1dl\r\n"))
        self.assertIn("no break sequence byte 0xc3 on rack4", self.type("\x1dl\u00e9".encode()))
        for key in (b"\x1b", b"\x03", b"\x1d"):
            self.assertEqual(self.type(b"\x1dl" + key), "\r\n[serialgw: break sequence cancelled]\r\n")
        self.type(b"ls\r")
        self.assertEqual(self.h.device.events, [("write", b"ls\r")])

    def test_noneConfigured(self) -> None:
        """break-sequences = {}: l says so at once and the next key is typing."""
        self.h.line.breakSequences = {}
        self.assertEqual(self.type(b"\x1dl2"),
                         "\r\n[serialgw: rack4 has no break sequences (its break-sequences are none)]\r\n")
        self.assertEqual(self.h.device.events, [("write", b"2")])
