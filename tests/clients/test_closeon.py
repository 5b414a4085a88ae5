"""
close-on (ser2net's closeon): the device sends the string, and every
person on the line is disconnected once its output (the string too) is
written, told why; programs and files stay; a match across two reads.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from serialgw.line.role import Role
from tests.clients.test_sessions import Harness, text
from tests.fakes import RecordingClient


class CloseOnTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.h = Harness()
        self.h.line.setCloseOn(b"NO CARRIER\r\n")
        self.alice, self.aliceT = self.h.telnet(port=1)
        self.reader, self.readerT = self.h.telnet("telnet,ro,escape=^]+4444", port=2)
        # A program's client (a pty, a file): not a person.
        self.program = RecordingClient("pty:/tmp/x", Role.WATCHER)
        self.h.line.attach(self.program)
        text(self.aliceT)
        text(self.readerT)

    def test_acrossReadsEveryPersonGoes(self) -> None:
        """'NO CAR' then 'RIER\\r\\n': each person gets all the output, then why, and its connection closes; the program stays."""
        line = self.h.line
        line.deviceDataReceived(b"ATDT5551234\r\nNO CAR")
        self.assertFalse(self.aliceT.disconnecting)
        line.deviceDataReceived(b"RIER\r\nOK")
        why = "\r\n[serialgw: 'NO CARRIER\\r\\n' came from rack4: disconnected (close-on)]\r\n"
        # (Each is told why before anyone goes: the reader hears of alice's leaving after it.)
        self.assertEqual(text(self.aliceT), f"ATDT5551234\r\nNO CARRIER\r\nOK{why}")
        self.assertEqual(text(self.readerT), f"ATDT5551234\r\nNO CARRIER\r\nOK{why}"
                                             "\r\n[serialgw: 192.0.2.9:1 detached]\r\n")
        self.assertTrue(self.aliceT.disconnecting)
        self.assertTrue(self.readerT.disconnecting)
        self.assertEqual(line.clients, [self.program])
        self.assertEqual(self.program.disconnected, 0)
        self.assertEqual(b"".join(self.program.received), b"ATDT5551234\r\nNO CARRIER\r\nOK")

    def test_noMatchKeepsOnlyTheTail(self) -> None:
        """Output without the string closes nothing, and what is kept to match across reads is at most the string less a byte."""
        line = self.h.line
        line.deviceDataReceived(b"x" * 100000 + b"NO CARRIER\r")
        self.assertEqual(line._closeOnTail, b"NO CARRIER\r")
        self.assertFalse(self.aliceT.disconnecting)
        line.deviceDataReceived(b"\n")
        self.assertTrue(self.aliceT.disconnecting)
        self.assertEqual(line._closeOnTail, b"")

    def test_oneByteAReadMatches(self) -> None:
        """The string arriving a byte a read (a slow UART, a modem) is seen: what is kept grows until it holds all but the last byte."""
        line = self.h.line
        for byte in b"xNO CARRIER\r":
            line.deviceDataReceived(bytes([byte]))
        self.assertEqual(line._closeOnTail, b"NO CARRIER\r")
        self.assertFalse(self.aliceT.disconnecting)
        line.deviceDataReceived(b"\n")
        self.assertTrue(self.aliceT.disconnecting)
        self.assertTrue(self.readerT.disconnecting)

    def test_shortReadsAfterALongOne(self) -> None:
        """A long read, then the string in reads shorter than it: the tail carried is always the last bytes, never a stale cut."""
        line = self.h.line
        line.deviceDataReceived(b"y" * 5000 + b"NO")
        for piece in (b" CA", b"RR", b"IER", b"\r"):
            line.deviceDataReceived(piece)
        self.assertEqual(line._closeOnTail, b"NO CARRIER\r")
        line.deviceDataReceived(b"\nrest")
        self.assertTrue(self.aliceT.disconnecting)

    def test_offAndReset(self) -> None:
        """Set to b"" (a reload taking it out): nothing is looked for, nothing kept; a new string starts afresh."""
        line = self.h.line
        line.deviceDataReceived(b"NO CARRIER")
        line.setCloseOn(b"")
        line.deviceDataReceived(b"\r\nNO CARRIER\r\n")
        self.assertFalse(self.aliceT.disconnecting)
        self.assertEqual(line._closeOnTail, b"")
        line.setCloseOn(b"bye")
        line.deviceDataReceived(b"\r\nb")
        line.deviceDataReceived(b"ye")
        self.assertTrue(self.aliceT.disconnecting)
