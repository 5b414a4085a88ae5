"""
A watcher (exclusive mode) on a listener without an escape menu cannot take
write: what it is told when it types says how it may write.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.raw import RawClient
from serialgw.clients.session import NOT_SENT_INTERVAL
from serialgw.config.listeners import parseListener
from serialgw.line.role import Role
from tests.clients.test_sessions import Harness


class WatcherWithoutMenuTests(SynchronousTestCase):
    def test_writerThere(self) -> None:
        """Someone writes: the watcher is told who, and that with no escape menu it writes by connecting once they have gone (it was told only that it watches)."""
        h = Harness("exclusive")
        h.telnet("telnet+4444", port=1)
        bob, t = h.telnet("telnet+4444", port=2)
        bob.dataReceived(b"ls")
        self.assertEqual(t.value(), b"\r\n[serialgw: you only watch: what you type is not sent to rack4; 192.0.2.9:1 "
                                    b"writes (no escape menu here to take write: connect again once nobody writes)]\r\n")

    def test_writerGone(self) -> None:
        """The writer has gone: the watcher is told nobody writes and that connecting again gives it write (it stayed a watcher with no way to write)."""
        h = Harness("exclusive")
        alice, _ = h.telnet("telnet+4444", port=1)
        bob, t = h.telnet("telnet+4444", port=2)
        alice.connectionLost(None)  # type: ignore[arg-type]
        t.clear()
        bob.dataReceived(b"ls")
        self.assertEqual(t.value(), b"\r\n[serialgw: you only watch: what you type is not sent to rack4; nobody "
                                    b"writes now (no escape menu here to take write: connect again to write)]\r\n")
        self.assertEqual(h.device.events, [])
        carol, _ = h.telnet("telnet+4444", port=3)
        self.assertEqual((bob.role, carol.role), (Role.WATCHER, Role.WRITER))

    def test_withMenuUnchanged(self) -> None:
        """With an escape menu the watcher is told the key, as before."""
        h = Harness("exclusive")
        h.telnet(port=1)
        bob, t = h.telnet(port=2)
        bob.dataReceived(b"ls")
        self.assertEqual(t.value(), b"\r\n[serialgw: you only watch: what you type is not sent to rack4; ^] t takes write]\r\n")

    def test_rawWatcherToldAfterIntroduction(self) -> None:
        """A raw client with notices and no escape menu that watches is told whenever it types, as a telnet one is, its introduction past (RawClient's short way to the line, taken then, refuses and tells as fromPeer does)."""
        h = Harness("exclusive")
        h.telnet("telnet+4444", port=1)
        bob = RawClient(h.line, listener=parseListener("raw,notices+4445"), clock=h.line.clock)
        t = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 2))
        bob.makeConnection(t)
        told = (b"\r\n[serialgw: you only watch: what you type is not sent to rack4; 192.0.2.9:1 "
                b"writes (no escape menu here to take write: connect again once nobody writes)]\r\n")
        seen = []
        for _ in range(2):
            t.clear()
            bob.dataReceived(b"ls")
            seen.append(t.value())
            h.line.clock.advance(NOT_SENT_INTERVAL + 1)
        self.assertEqual((bob.role, bob._introCall, seen, h.device.events, h.line.refused),
                         (Role.WATCHER, None, [told, told], [], 4))
