"""
The telnet layer attacked from outside: negotiation loops (RFC 1143),
subnegotiation floods and SB left open, odd NAWS/TTYPE/ENVIRON, bursts of
DO/DONT, BINARY changing with a CR pending, any chunking; everything
bounded, nothing raised, exact bytes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.telnet import TelnetClient
from serialgw.line.hub import Line
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnet import MAX_SUBNEGOTIATION, ParserState, TelnetProtocol
from serialgw.wire.telnetcodes import BINARY, DO, DONT, ECHO, IAC, NAWS, SB, SE, SGA, TTYPE, WILL, WONT
from tests.fakes import RecordingDevice, oneTurn
from tests.telnetpeer import AGREE, TelnetRecorder, cmd

ENVIRON = 39
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def cuts(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    out, last = [], 0
    for mark in marks:
        out.append(data[last:mark])
        last = mark
    out.append(data[last:])
    return out


class Picky(TelnetRecorder):
    """A codec that accepts the options in C{yes} on either side."""

    def __init__(self, yes: frozenset[int]) -> None:
        TelnetRecorder.__init__(self)
        self.yes = yes

    def acceptLocal(self, option: int) -> bool:
        return option in self.yes

    def acceptRemote(self, option: int) -> bool:
        return option in self.yes


class NegotiationTests(SynchronousTestCase):
    @PROPERTY
    @given(st.frozensets(st.integers(0, 5)), st.frozensets(st.integers(0, 5)),
           st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.booleans(), st.booleans()), max_size=40))
    def test_twoCodecsNeverLoop(self, yesA: frozenset[int], yesB: frozenset[int],
                                asks: list[tuple[bool, int, bool, bool]]) -> None:
        """Two codecs asking each other for anything in any order (RFC 1143 on both ends): the exchange ends, bounded by the asks, and both agree on each option's state."""
        a, b = Picky(yesA), Picky(yesB)
        wa, wb = StringTransport(), StringTransport()
        a.makeConnection(wa)
        b.makeConnection(wb)
        sent = 0
        for first, option, local, enable in asks:
            asker = a if first else b
            (asker.requestLocal if local else asker.requestRemote)(option, enable)
            # Deliver what is on the wire, both ways, until it is quiet.
            for _ in range(100):
                fromA, fromB = wa.value(), wb.value()
                wa.clear()
                wb.clear()
                if not fromA and not fromB:
                    break
                sent += len(fromA) + len(fromB)
                b.dataReceived(fromA)
                a.dataReceived(fromB)
            else:
                self.fail("negotiation did not end")
        # Each ask costs at most its request and one answer each way (3 bytes each).
        self.assertLessEqual(sent, 3 * 3 * len(asks))
        for option in range(6):
            self.assertEqual((option, a.localEnabled(option)), (option, b.remoteEnabled(option)))
            self.assertEqual((option, a.remoteEnabled(option)), (option, b.localEnabled(option)))

    def test_repeatedAsksAnsweredOnce(self) -> None:
        """A peer saying DO ECHO a thousand times to our offer gets nothing back; DONT a thousand times one WONT; DO again a thousand times one WILL (no loop)."""
        client = TelnetClient(Line("t", RecordingDevice()))
        transport = StringTransport()
        client.makeConnection(transport)
        transport.clear()
        client.dataReceived(cmd(IAC, DO, ECHO) * 1000)
        self.assertEqual(transport.value(), b"")
        client.dataReceived(cmd(IAC, DONT, ECHO) * 1000)
        self.assertEqual(transport.value(), cmd(IAC, WONT, ECHO))
        transport.clear()
        client.dataReceived(cmd(IAC, DO, ECHO) * 1000)
        self.assertEqual(transport.value(), cmd(IAC, WILL, ECHO))
        self.assertTrue(client.localEnabled(ECHO))
        client.connectionLost()

    def test_everyOptionAsked(self) -> None:
        """WILL and DO for all 256 options, three times over: each unknown refused each time (DONT / WONT: one answer an ask), the known agreed once, state kept for 256 options at most."""
        client = TelnetClient(Line("t", RecordingDevice()), rfc2217=False)
        transport = StringTransport()
        client.makeConnection(transport)
        transport.clear()
        flood = b"".join(cmd(IAC, WILL, o, IAC, DO, o) for o in range(256)) * 3
        client.dataReceived(flood)
        expected = b""
        for repeat in range(3):
            for option in range(256):
                # Refused each time asked (one answer an ask: no loop); NAWS and TTYPE agreed once.
                if option not in (BINARY, SGA, NAWS, TTYPE):
                    expected += cmd(IAC, DONT, option)
                elif option in (NAWS, TTYPE) and repeat == 0:
                    expected += cmd(IAC, DO, option)
                if option not in (BINARY, ECHO, SGA):
                    expected += cmd(IAC, WONT, option)
        self.assertEqual(transport.value(), expected)
        self.assertLessEqual((len(client._us), len(client._him)), (256, 256))
        client.connectionLost()


class SubnegotiationTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.device = RecordingDevice()
        self.line = Line("t", self.device, clock=self.clock)
        self.client = TelnetClient(self.line)
        self.transport = StringTransport()
        self.client.makeConnection(self.transport)
        self.client.dataReceived(AGREE + cmd(IAC, WONT, COM_PORT_OPTION))
        self.transport.clear()

    def tearDown(self) -> None:
        self.client.connectionLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_openSubnegotiationFlood(self) -> None:
        """An SB left open for 1 MiB holds at most MAX_SUBNEGOTIATION bytes, counts one oversized subnegotiation, sends nothing anywhere; after its IAC SE typing reaches the device again."""
        self.client.dataReceived(cmd(IAC, SB, NAWS))
        for _ in range(64):
            self.client.dataReceived(b"\x00\x50" * 8192)
            self.assertLessEqual(len(self.client._sb), MAX_SUBNEGOTIATION)
        self.assertEqual(self.client.parserState, ParserState.SUBNEGOTIATION)
        self.client.dataReceived(cmd(IAC, SE) + b"ls\r")
        self.assertEqual((self.device.events, self.transport.value()), ([("write", b"ls\r")], b""))
        self.assertEqual(self.client.ignored.total, 1)

    def test_oddNawsTtypeEnviron(self) -> None:
        """NAWS empty, short, long, with IAC doubled; TTYPE IS of 1000 bytes; ENVIRON offered (refused) and its SB sent anyway; an SB of no option: nothing reaches the device or the wire but the refusal, the session goes on."""
        self.client.dataReceived(cmd(IAC, WILL, NAWS, IAC, WILL, TTYPE, IAC, WILL, ENVIRON))
        self.assertEqual(self.transport.value(), cmd(IAC, DO, NAWS, IAC, DO, TTYPE, IAC, DONT, ENVIRON))
        self.transport.clear()
        for payload in (b"", b"\x00", b"\x00\x50\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\x00" * 100):
            self.client.dataReceived(cmd(IAC, SB, NAWS) + payload + cmd(IAC, SE))
        self.client.dataReceived(cmd(IAC, SB, TTYPE, 0) + b"x" * 1000 + cmd(IAC, SE))
        self.client.dataReceived(cmd(IAC, SB, ENVIRON, 0, 0) + b"USER" + cmd(1) + b"root" + cmd(IAC, SE))
        self.client.dataReceived(cmd(IAC, SB, IAC, SE, IAC, SB) + cmd(IAC, SE))
        self.client.dataReceived(b"ok")
        self.assertEqual((self.device.events, self.transport.value()), ([("write", b"ok")], b""))
        self.assertEqual(self.client.parserState, ParserState.DATA)

    def test_subnegotiationCutByACommand(self) -> None:
        """An SB whose IAC SE never comes, cut by another command (IAC WILL ...): dropped as malformed, the command handled, the data after it typed."""
        self.client.dataReceived(cmd(IAC, SB, TTYPE, 0) + b"vt100" + cmd(IAC, WILL, 99) + b"ls")
        self.assertEqual(self.transport.value(), cmd(IAC, DONT, 99))
        self.assertEqual(self.device.events, [("write", b"ls")])


class BinaryToggleTests(SynchronousTestCase):
    def test_binaryOffWithCRPending(self) -> None:
        """The peer in BINARY sends a CR, then WONT BINARY, then NUL: the CR was binary data, the NUL is data too (not taken as the CR's)."""
        proto = TelnetRecorder()
        proto.makeConnection(StringTransport())
        proto.dataReceived(cmd(IAC, WILL, BINARY) + b"a\r")
        proto.dataReceived(cmd(IAC, WONT, BINARY) + b"\0b\r")
        proto.dataReceived(b"\0c")
        data = b"".join(v for k, v in proto.events if k == "data")  # type: ignore[misc]
        self.assertEqual(data, b"a\r\0b\rc")

    def test_ourBinaryTogglesMidOutput(self) -> None:
        """Our BINARY agreed, refused and agreed again (the peer's DO and DONT) while device output with CRs flows: each chunk encoded for the mode it leaves in."""
        proto = TelnetRecorder()
        wire = StringTransport()
        proto.makeConnection(wire)
        proto.writeData(b"1\r")
        proto.dataReceived(cmd(IAC, DO, BINARY))
        proto.writeData(b"2\r")
        proto.dataReceived(cmd(IAC, DONT, BINARY))
        proto.writeData(b"3\r")
        proto.writeData(b"\n4\r")
        proto.dataReceived(cmd(IAC, DO, BINARY))
        proto.writeData(b"5")
        # (A CR pending when BINARY is agreed gets no NUL: the peer reads binary from its DO on.)
        self.assertEqual(wire.value(), b"1\r" + cmd(IAC, WILL, BINARY) + b"2\r" + cmd(IAC, WONT, BINARY)
                         + b"3\r\n4\r" + cmd(IAC, WILL, BINARY) + b"5")


class NVTRoundTripTests(SynchronousTestCase):
    @PROPERTY
    @given(st.lists(st.one_of(st.binary(max_size=12), st.sampled_from([b"\r", b"\n", b"\r\n", b"\0", b"\xff", b"\r\0"])),
                    max_size=20),
           st.lists(st.integers(min_value=0), max_size=6))
    def test_anyChunksBothEnds(self, writes: list[bytes], readCuts: list[int]) -> None:
        """Outside BINARY, whatever is written in whatever writes, read back in whatever reads, is what was written (CR NUL / CR LF across writes and reads)."""
        sender = TelnetProtocol()
        wire = StringTransport()
        sender.makeConnection(wire)
        for chunk in writes:
            sender.writeData(chunk)
        receiver = TelnetRecorder()
        receiver.makeConnection(StringTransport())
        for piece in cuts(wire.value(), readCuts):
            receiver.dataReceived(piece)
        got = b"".join(v for k, v in receiver.events if k == "data")  # type: ignore[misc]
        self.assertEqual(got, b"".join(writes))


TOKENS = st.sampled_from([
    b"\xff\xff", b"\xff\xf3", b"\xff\xf1", b"\xff\xf2", b"\xff\xf4", b"\xff\xf5", b"\xff\xf6", b"\xff\xf9",
    b"\xff\xfb\x00", b"\xff\xfc\x00", b"\xff\xfd\x01", b"\xff\xfe\x01", b"\xff\xfb\x2c", b"\xff\xfd\x2c",
    b"\xff\xfc\x2c", b"\xff\xfa\x2c\x01\x00\x00\x25\x80\xff\xf0", b"\xff\xfa\x1f\x00\x50\xff\xff\xff\xf0",
    b"\xff\xfa", b"\xff\xf0", b"\xff\xfa\x18" + b"y" * 1100, b"\r", b"\r\0", b"\r\n", b"\0", b"\x1d",
])


class HostileStreamTests(SynchronousTestCase):
    @PROPERTY
    @given(st.lists(st.one_of(st.binary(max_size=30), TOKENS), max_size=60), st.lists(st.integers(min_value=0), max_size=8))
    def test_anythingBounded(self, tokens: list[bytes], readCuts: list[int]) -> None:
        """Any mix of commands, negotiation, RFC 2217, SB left open, AO, IP, AYT and data, in any chunks, turns of the reactor between: nothing raised, the client stays, the SB buffer bounded, what reaches the device at most the input's length, no call left behind when it goes."""
        clock = Clock()
        device = RecordingDevice()
        client = TelnetClient(Line("t", device, clock=clock), clock=clock)
        transport = StringTransport()
        client.makeConnection(transport)
        data = b"".join(tokens)
        for piece in cuts(data, readCuts):
            client.dataReceived(piece)
            self.assertLessEqual(len(client._sb), MAX_SUBNEGOTIATION)
            for _ in range(4):
                oneTurn(clock)
        while client._wireHeld or client._busyCall is not None:
            oneTurn(clock)
        written = sum(len(e[1]) for e in device.events if e[0] == "write")  # type: ignore[arg-type]
        self.assertLessEqual(written, len(data))
        self.assertFalse(transport.disconnecting)
        client.connectionLost()
        clock.advance(60)
        self.assertEqual([c for c in clock.getDelayedCalls() if c.active()], [])
