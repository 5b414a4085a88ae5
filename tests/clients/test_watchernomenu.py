"""
A watcher (exclusive mode) on a listener without an escape menu cannot take
write: what it is told when it types says how it may write.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.hub import Role
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
