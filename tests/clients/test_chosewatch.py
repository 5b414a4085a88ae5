"""
A person who chose to watch (the escape menu's C{o}, conserver's C{^Ecs}
spy mode) keeps watching: write is not handed to them when a writer goes
(a health check's write, L{heirOf}), nor by a reload making the line
shared again; C{t} takes write back (conserver issue #107).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.role import Role
from tests.clients.test_sessions import Harness, text
from tests.fakes import LogEvents

CHOSE = "\r\n[serialgw: you only watch already, and keep watching when write is free: ^] t takes it]\r\n"


class ChoseToWatchTests(SynchronousTestCase):
    def test_healthCheckWriteNotHandedToOneWhoChose(self) -> None:
        """Exclusive: a health check that held write goes; the person after it who chose to watch (^] o) keeps watching, the next who did not writes."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        alice, aliceT = h.telnet(port=2)
        bob, bobT = h.telnet(port=3)
        self.assertEqual([c.role for c in (check, alice, bob)], [Role.WRITER, Role.WATCHER, Role.WATCHER])
        text(aliceT), text(bobT)
        alice.dataReceived(b"\x1do")
        self.assertEqual((text(aliceT), text(bobT)), (CHOSE, ""))
        check.connectionLost()
        self.assertEqual((alice.role, bob.role), (Role.WATCHER, Role.WRITER))
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:3 writes]\r\n")
        alice.dataReceived(b"ls")
        bob.dataReceived(b"id")
        self.assertEqual(h.device.events, [("write", b"id")])

    def test_nobodyElseLeavesWriteFree(self) -> None:
        """The only person after the health check chose to watch: nobody writes once it goes; ^] t takes write back."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        alice, aliceT = h.telnet(port=2)
        alice.dataReceived(b"\x1do")
        check.connectionLost()
        self.assertEqual((alice.role, h.line.writer), (Role.WATCHER, None))
        text(aliceT)
        alice.dataReceived(b"\x1dt")
        self.assertEqual((alice.role, text(aliceT)), (Role.WRITER, "\r\n[serialgw: 192.0.2.9:2 took write]\r\n"))
        alice.dataReceived(b"ls")
        self.assertEqual(h.device.events, [("write", b"ls")])

    def test_madeSharedKeepsOneWhoChose(self) -> None:
        """A reload making the line shared: the writer who gave write up (^] o) keeps watching, unannounced and logged; one made a watcher by exclusive mode writes."""
        events = LogEvents(self).events
        h = Harness()
        alice, aliceT = h.telnet(port=1)
        bob, bobT = h.telnet(port=2)
        carol, _ = h.telnet(port=3)
        text(aliceT)
        bob.dataReceived(b"\x1do")
        self.assertEqual((bob.role, text(aliceT)), (Role.WATCHER, "\r\n[serialgw: 192.0.2.9:2 now only watches]\r\n"))
        h.line.setMode("exclusive")
        self.assertEqual([c.role for c in (alice, bob, carol)], [Role.WRITER, Role.WATCHER, Role.WATCHER])
        text(aliceT)
        h.line.setMode("shared")
        self.assertEqual([c.role for c in (alice, bob, carol)], [Role.WRITER, Role.WATCHER, Role.WRITER])
        self.assertEqual(text(aliceT), "\r\n[serialgw: 192.0.2.9:3 writes (shared)]\r\n")
        kept = [e for e in events if e.get("log_format", "").endswith("keeps watching: it chose to (shared)")]
        self.assertEqual([(e["line"], e["peer"]) for e in kept], [("rack4", "192.0.2.9:2")])
        bob.dataReceived(b"ls")
        self.assertEqual(h.device.events, [])
        bob.dataReceived(b"\x1dt")
        bob.dataReceived(b"ls")
        self.assertEqual((bob.role, h.device.events), (Role.WRITER, [("write", b"ls")]))

    def test_takingWriteEndsTheChoice(self) -> None:
        """One who chose to watch, then took write back, then lost it to a reload's exclusive mode: made shared again, it writes (its choice was undone by ^] t)."""
        h = Harness()
        alice, _ = h.telnet(port=1)
        bob, _ = h.telnet(port=2)
        bob.dataReceived(b"\x1do\x1dt")
        h.line.setMode("exclusive")
        h.line.setMode("shared")
        self.assertEqual((alice.role, bob.role), (Role.WRITER, Role.WRITER))

    def test_readOnlyWriterHeirSkipsOneWhoChose(self) -> None:
        """A reload making a health check that held write read-only hands write on as its leaving would: past one who chose to watch."""
        h = Harness("exclusive")
        check, _ = h.telnet("telnet+4444", port=1, agree=b"")
        alice, _ = h.telnet(port=2)
        bob, _ = h.telnet(port=3)
        alice.dataReceived(b"\x1do")
        h.line.makeReadOnly(check, "a reload made it so")
        self.assertEqual([c.role for c in (check, alice, bob)], [Role.READONLY, Role.WATCHER, Role.WRITER])

    def test_choiceGoesWithTheClient(self) -> None:
        """What the line keeps of a choice goes when its client does (nothing left behind by people coming and going)."""
        h = Harness("exclusive")
        alice, _ = h.telnet(port=1)
        for port in range(2, 102):
            bob, _ = h.telnet(port=port)
            bob.dataReceived(b"\x1do")
            self.assertTrue(h.line.choseToWatch(bob))
            bob.connectionLost()
            self.assertFalse(h.line.choseToWatch(bob))
        self.assertEqual(len(h.line._watching), 0)
