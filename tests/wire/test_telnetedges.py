"""
The telnet codec at its edges: CR and its follower across writes and
reads, and BINARY changing meanwhile; exact bytes.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.wire.telnet import ParserState
from serialgw.wire.telnetcodes import BINARY, DM, DO, DONT, IAC, IP, NOP, SB, WILL
from serialgw.wire.telnetout import CR_WAIT
from tests.telnetpeer import TelnetRecorder, cmd


class Codec:
    def __init__(self) -> None:
        self.proto = TelnetRecorder()
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)


class CROutputTests(SynchronousTestCase):
    def setUp(self) -> None:
        codec = Codec()
        self.proto, self.transport = codec.proto, codec.transport

    def test_crLfSplitAcrossWrites(self) -> None:
        """A CR ending one write and an LF starting the next go as CR LF (they went as CR NUL LF)."""
        self.proto.writeData(b"login: root\r")
        self.proto.writeData(b"\nPassword:")
        self.assertEqual(self.transport.value(), b"login: root\r\nPassword:")

    def test_crThenOtherByte(self) -> None:
        """A CR ending one write followed by anything but LF gets its NUL first; an empty write changes nothing."""
        self.proto.writeData(b"50%\r")
        self.proto.writeData(b"")
        self.proto.writeData(b"60%\r")
        self.proto.writeData(b"\r")
        self.proto.writeData(b"\xff")
        self.assertEqual(self.transport.value(), b"50%\r\x0060%\r\x00\r\x00\xff\xff")

    def test_everySplitAsOneWrite(self) -> None:
        """Whatever the data and wherever it is split, two writes put the same bytes on the wire as one."""
        data = b"a\r\n\r\r\0\xff\r\nb\r"
        whole = Codec()
        whole.proto.writeData(data)
        self.assertEqual(whole.transport.value(), b"a\r\n\r\0\r\0\0\xff\xff\r\nb\r")
        for i in range(len(data) + 1):
            for j in range(i, len(data) + 1):
                split = Codec()
                for piece in (data[:i], data[i:j], data[j:]):
                    split.proto.writeData(piece)
                self.assertEqual((i, j, split.transport.value()), (i, j, whole.transport.value()))

    def test_commandAfterCR(self) -> None:
        """Our own telnet bytes after a CR (a negotiation, a command) come after its NUL: only LF or NUL may follow a CR."""
        self.proto.writeData(b"x\r")
        self.proto.sendCommand(NOP)
        self.proto.writeData(b"\ny")
        self.assertEqual(self.transport.value(), b"x\r\0" + cmd(IAC, NOP) + b"\ny")

    def test_answerAfterCRWhileParsing(self) -> None:
        """An answer made while parsing (gathered, written after) still has the CR's NUL before it, and the data after it after."""
        self.proto.writeData(b"x\r")
        self.proto.dataReceived(cmd(IAC, WILL, 99))
        self.proto.writeData(b"\ny")
        self.assertEqual(self.transport.value(), b"x\r\0" + cmd(IAC, 254, 99) + b"\ny")

    def test_crWrittenWhileAnswersGathered(self) -> None:
        """Data ending in CR written while a read is parsed (a command's handler), answers gathered before it: they go after the CR's NUL, not right after the CR."""

        class Writing(TelnetRecorder):
            def telnetCommandReceived(self, command: int) -> None:
                self.writeData(b"x\r")

        codec = Writing()
        wire = StringTransport()
        codec.makeConnection(wire)
        codec.dataReceived(cmd(IAC, WILL, 99, IAC, NOP))
        self.assertEqual(wire.value(), b"x\r\0" + cmd(IAC, DONT, 99))

    def test_binaryBetween(self) -> None:
        """A CR sent outside BINARY, then BINARY agreed: the next byte goes as it is, no NUL (the peer reads binary now)."""
        self.proto.requestLocal(BINARY)
        self.proto.writeData(b"x\r")
        self.proto.dataReceived(cmd(IAC, DO, BINARY))
        self.proto.writeData(b"\0y\r")
        self.proto.writeData(b"z")
        self.assertEqual(self.transport.value(), cmd(IAC, WILL, BINARY) + b"x\r\0y\rz")


class CRInputTests(SynchronousTestCase):
    def setUp(self) -> None:
        codec = Codec()
        self.proto, self.transport = codec.proto, codec.transport

    def data(self) -> bytes:
        return b"".join(value for kind, value in self.proto.events if kind == "data")  # type: ignore[misc]

    def test_everySplitAsOneRead(self) -> None:
        """From the peer, outside BINARY: wherever CR NUL, CR LF or IAC IAC are split across reads, the data is the same as in one read."""
        wire = b"a\r\0b\r\nc\r\0\0d\xff\xff\r\0"
        for i in range(len(wire) + 1):
            for j in range(i, len(wire) + 1):
                codec = Codec()
                for piece in (wire[:i], wire[i:j], wire[j:]):
                    codec.proto.dataReceived(piece)
                got = b"".join(v for k, v in codec.proto.events if k == "data")  # type: ignore[misc]
                self.assertEqual((i, j, got), (i, j, b"a\rb\r\nc\r\0d\xff\r"))

    def test_binaryBetweenCRAndNul(self) -> None:
        """A CR read outside BINARY, then the peer's BINARY agreed: a NUL after it is data (binary), not the CR's."""
        self.proto.dataReceived(b"x\r")
        self.proto.dataReceived(cmd(IAC, WILL, BINARY) + b"\0y")
        self.assertEqual(self.data(), b"x\r\0y")


class Timed(TelnetRecorder):
    def __init__(self, clock: Clock) -> None:
        TelnetRecorder.__init__(self)
        self.clock = clock

    def crClock(self) -> Clock:
        return self.clock


class CRWaitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.proto = Timed(self.clock)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def tearDown(self) -> None:
        self.proto.stopTurns()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_nulAfterTheWait(self) -> None:
        """A CR ending a write is sent at once; with nothing after it within CR_WAIT its NUL goes alone (a peer acting on a CR only with the byte after it is not left waiting), and the next write adds none."""
        self.proto.writeData(b"Enter\r")
        self.assertEqual(self.transport.value(), b"Enter\r")
        self.clock.advance(CR_WAIT - 0.001)
        self.assertEqual(self.transport.value(), b"Enter\r")
        self.clock.advance(0.001)
        self.assertEqual(self.transport.value(), b"Enter\r\0")
        self.proto.writeData(b"\nx")
        self.assertEqual(self.transport.value(), b"Enter\r\0\nx")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_lfWithinTheWait(self) -> None:
        """The LF of a CR LF split across reads within CR_WAIT: CR LF, and no NUL later."""
        self.proto.writeData(b"a\r")
        self.clock.advance(CR_WAIT / 2)
        self.proto.writeData(b"\nb\r")
        self.clock.advance(CR_WAIT / 2)
        self.proto.writeData(b"c")
        self.clock.advance(CR_WAIT)
        self.assertEqual(self.transport.value(), b"a\r\nb\r\0c")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_oneCallForMany(self) -> None:
        """Many codecs of one clock with a CR waiting share one timed call; each gets its NUL CR_WAIT after its own CR, none after its LF came; the last gone takes the call."""
        others = []
        for _ in range(100):
            other = Timed(self.clock)
            other.makeConnection(StringTransport())
            other.writeData(b"x\r")
            others.append(other)
        self.clock.advance(CR_WAIT / 2)
        self.proto.writeData(b"y\r")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        others[0].writeData(b"\n")
        self.clock.advance(CR_WAIT / 2)
        self.assertEqual([o.transport.value() for o in others[:2]], [b"x\r\n", b"x\r\0"])
        self.assertEqual(self.transport.value(), b"y\r")
        self.clock.advance(CR_WAIT / 2)
        self.assertEqual(self.transport.value(), b"y\r\0")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.proto.writeData(b"z\r")
        for other in others:
            other.stopTurns()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_goneWhileWaiting(self) -> None:
        """The connection lost while a CR waits: no call left behind."""
        self.proto.writeData(b"a\r")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)


class Urgent(TelnetRecorder):
    """A codec whose transport says whether TCP urgent data waits unread (C{urgent})."""

    urgent = False

    def urgentAhead(self) -> bool:
        return self.urgent


class SynchTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.proto = Urgent()
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def test_dataBeforeTheDMDiscarded(self) -> None:
        """Read while urgent data waits (a Synch on its way), data is discarded and commands are not, up to the DM; what follows the DM is data again (RFC 854). It was all kept."""
        self.proto.urgent = True
        self.proto.dataReceived(b"typed ahead" + cmd(IAC, IP) + b"more")
        self.proto.dataReceived(b"\xff\xffand" + cmd(IAC, WILL, 99, IAC))
        self.proto.urgent = False
        self.proto.dataReceived(cmd(DM) + b"after")
        self.assertEqual(self.proto.events, [("command", IP), ("synched", 19), ("command", DM), ("data", b"after")])
        self.assertEqual(self.transport.value(), cmd(IAC, DONT, 99))

    def test_dmWithoutUrgentIsANop(self) -> None:
        """A DM with no urgent data (no Synch): a NOP, nothing discarded."""
        self.proto.dataReceived(b"a" + cmd(IAC, DM) + b"b")
        self.assertEqual(self.proto.events, [("data", b"a"), ("command", DM), ("data", b"b")])

    def test_secondSynchUnderWay(self) -> None:
        """Urgent data still ahead at a DM (a second Synch sent): data is discarded on, up to the last DM."""
        self.proto.urgent = True
        self.proto.dataReceived(b"a" + cmd(IAC, DM) + b"b" + cmd(IAC))
        self.proto.urgent = False
        self.proto.dataReceived(cmd(DM) + b"c")
        self.assertEqual(self.proto.events, [("command", DM), ("synched", 2), ("command", DM), ("data", b"c")])

    def test_urgentWithoutDM(self) -> None:
        """Urgent data that is no Synch (no DM at the mark): what came before it is discarded, from the mark on data is kept."""
        self.proto.urgent = True
        self.proto.dataReceived(b"junk")
        self.proto.urgent = False
        self.proto.dataReceived(b"Xafter")
        self.assertEqual(self.proto.events, [("ignored", "urgent mark without a DM"), ("synched", 4), ("data", b"Xafter")])

    def test_dmSplitFromItsIAC(self) -> None:
        """The IAC before the mark, the DM after it (how Linux reads a Synch: a read ends at the mark): one DM, the Synch ended by it."""
        self.proto.urgent = True
        self.proto.dataReceived(b"x\r" + cmd(IAC))
        self.proto.urgent = False
        self.proto.dataReceived(cmd(DM) + b"\0y")
        # (The CR discarded has no NUL to take: the NUL after the DM is data.)
        self.assertEqual(self.proto.events, [("synched", 2), ("command", DM), ("data", b"\0y")])

    def test_synchInsideSubnegotiation(self) -> None:
        """A Synch in the middle of a subnegotiation: the subnegotiation is dropped as malformed, the DM ends the Synch."""
        self.proto.urgent = True
        self.proto.dataReceived(cmd(IAC, SB, 24, 1, 2) + b"zz" + cmd(IAC))
        self.proto.urgent = False
        self.proto.dataReceived(cmd(DM) + b"ok")
        self.assertEqual(self.proto.events, [("ignored", "malformed subnegotiation"), ("synched", 0), ("command", DM),
                                             ("data", b"ok")])
        self.assertEqual(self.proto.parserState, ParserState.DATA)

    def test_sendSynch(self) -> None:
        """Our Synch (the answer to AO) on a transport with no urgent data: IAC DM in the stream, after a waiting CR's NUL."""
        self.proto.writeData(b"x\r")
        self.proto.sendSynch()
        self.assertEqual(self.transport.value(), b"x\r\0" + cmd(IAC, DM))
