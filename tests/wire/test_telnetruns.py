"""
Data with IAC in it (binary data: 0xff doubled on the wire) is parsed in
runs, by C, not a Python step a doubled IAC: in a read that also holds a
command, and inside a subnegotiation left open.  What one read of a peer
costs the reactor is bounded by the read, not by how many 0xff bytes it
holds.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.wire.telnet import MAX_SUBNEGOTIATION, ParserState
from serialgw.wire.telnetcodes import IAC, NOP, SB, SE
from tests.telnetpeer import TelnetRecorder, cmd

# A 64 KiB read parsed in runs takes a few dozen lines of Python; a step a
# doubled IAC took hundreds of thousands (23-70 ms of the reactor a read).
MOST_STEPS = 2000


def pythonLines(feed: Any, data: bytes) -> int:
    """How many lines of Python feeding C{data} runs."""
    steps = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal steps
        if event == "line":
            steps += 1
        return local

    sys.settrace(lambda frame, event, arg: local)
    try:
        feed(data)
    finally:
        sys.settrace(None)
    return steps


class RunTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.codec = TelnetRecorder()
        self.codec.makeConnection(StringTransport())

    def data(self) -> bytes:
        return b"".join(value for kind, value in self.codec.events if kind == "data")  # type: ignore[misc]

    def test_doubledIacsWithACommand(self) -> None:
        """A 64 KiB read of 0xff data with a command in it (and 0xff around A): the data exact, the command seen, in runs."""
        read = cmd(IAC, IAC) * 16383 + cmd(IAC, NOP) + cmd(IAC, IAC, 0x41) * 10922 + cmd(IAC)
        self.assertLess(pythonLines(self.codec.dataReceived, read), MOST_STEPS)
        self.assertEqual(self.data(), b"\xff" * 16383 + b"\xffA" * 10922)
        self.assertIn(("command", NOP), self.codec.events)
        # (The IAC that ends the read waits for its command: IAC, here, data.)
        self.codec.dataReceived(cmd(IAC, 0x42))
        self.assertEqual(self.data()[-3:], b"A\xffB")

    def test_openSubnegotiationOfDoubledIacs(self) -> None:
        """
        A subnegotiation never ended, fed 64 KiB of IAC IAC a read: a few
        steps a read, the subnegotiation kept bounded, nothing handed on as
        data; its SE at last drops it (oversized) and the data after it is data.
        """
        self.codec.dataReceived(cmd(IAC, SB, 31))
        for _ in range(4):
            self.assertLess(pythonLines(self.codec.dataReceived, cmd(IAC, IAC) * 32768), MOST_STEPS)
        self.assertEqual(self.codec.parserState, ParserState.SUBNEGOTIATION)
        self.assertLessEqual(len(self.codec._sb), MAX_SUBNEGOTIATION)
        self.codec.dataReceived(cmd(IAC, IAC, IAC, SE) + b"after")
        self.assertEqual(self.data(), b"after")
        self.assertNotIn("sb", [kind for kind, _ in self.codec.events])

    def test_subnegotiationWithDoubledIacs(self) -> None:
        """A subnegotiation whose payload holds doubled IACs, cut anywhere: the payload exact."""
        whole = cmd(IAC, SB, 31, IAC, IAC, 1, IAC, IAC, IAC, IAC, 2, IAC, SE) + b"x"
        for cut in range(len(whole) + 1):
            codec = TelnetRecorder()
            codec.makeConnection(StringTransport())
            codec.dataReceived(whole[:cut])
            codec.dataReceived(whole[cut:])
            self.assertEqual([e for e in codec.events if e[0] in ("sb", "data")],
                             [("sb", (31, bytes((IAC, 1, IAC, IAC, 2)))), ("data", b"x")], cut)
