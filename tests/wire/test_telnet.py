"""
Tests for serialgw.clients.telnet: the wire layer and the line adapter, exact bytes.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from serialgw.clients.telnet import (
    AYT,
    BINARY,
    BRK,
    DO,
    DONT,
    ECHO,
    IAC,
    NAWS,
    SB,
    SE,
    SGA,
    TTYPE,
    WILL,
    WONT,
    TelnetClient,
    TelnetProtocol,
)
from serialgw.interfaces import IClient
from serialgw.line.hub import Line, Role
from tests.fakes import PausableTransport, RecordingDevice

OFFER = bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, WILL, BINARY, IAC, DO, SGA, IAC, DO, BINARY, IAC, DO, 44])
AGREE = bytes([IAC, DO, ECHO, IAC, DO, SGA, IAC, DO, BINARY, IAC, WILL, SGA, IAC, WILL, BINARY])


def cmd(*values: int) -> bytes:
    return bytes(values)


class Recorder(TelnetProtocol):
    """A wire layer that records what it parses and accepts SGA and BINARY."""

    def __init__(self) -> None:
        TelnetProtocol.__init__(self)
        self.events: list[tuple[str, object]] = []

    def acceptLocal(self, option: int) -> bool:
        return option in (SGA, BINARY)

    def acceptRemote(self, option: int) -> bool:
        return option in (SGA, BINARY)

    def telnetDataReceived(self, data: bytes) -> None:
        self.events.append(("data", data))

    def telnetCommandReceived(self, command: int) -> None:
        self.events.append(("command", command))

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        self.events.append(("sb", (option, payload)))

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        self.events.append(("option", (option, local, enabled)))


def joined(events: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Merge adjacent data events: chunking must not matter."""
    out: list[tuple[str, object]] = []
    for kind, value in events:
        if kind == "data" and out and out[-1][0] == "data":
            out[-1] = ("data", out[-1][1] + value)  # type: ignore[operator]
        else:
            out.append((kind, value))
    return out


class WireTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.proto = Recorder()
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def feed(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def test_plainDataOneCall(self) -> None:
        """A chunk without IAC is delivered whole, in one call."""
        self.feed(b"hello world\n")
        self.assertEqual(self.proto.events, [("data", b"hello world\n")])

    def test_iacIacIsData(self) -> None:
        """IAC IAC is one 0xFF data byte."""
        self.feed(b"a\xff\xffb")
        self.assertEqual(joined(self.proto.events), [("data", b"a\xffb")])

    def test_everyCommandKeepsNextByte(self) -> None:
        """Each IAC command (NOP..GA, 236-239) is reported and the next data byte kept."""
        for command in [241, 242, 243, 244, 245, 246, 247, 248, 249, 236, 237, 238, 239, 0, 100]:
            self.proto.events = []
            self.feed(b"x" + bytes([IAC, command]) + b"y")
            self.assertEqual(self.proto.events, [("data", b"x"), ("command", command), ("data", b"y")])
        self.assertEqual(self.transport.value(), b"")

    def test_splitAnywhere(self) -> None:
        """Any split of a stream gives the same events."""
        stream = (
            b"ab\xff\xffc"
            + bytes([IAC, BRK])
            + b"d"
            + bytes([IAC, SB, NAWS, 0, 80, IAC, IAC, 24, IAC, SE])
            + b"e\r\nf"
        )
        whole = Recorder()
        whole.makeConnection(StringTransport())
        whole.dataReceived(stream)
        expected = joined(whole.events)
        self.assertEqual(
            expected,
            [
                ("data", b"ab\xffc"),
                ("command", BRK),
                ("data", b"d"),
                ("sb", (NAWS, b"\x00\x50\xff\x18")),
                ("data", b"e\r\nf"),
            ],
        )
        for i in range(len(stream) + 1):
            for j in range(i, len(stream) + 1):
                p = Recorder()
                p.makeConnection(StringTransport())
                for part in (stream[:i], stream[i:j], stream[j:]):
                    if part:
                        p.dataReceived(part)
                self.assertEqual(joined(p.events), expected, (i, j))

    def test_crNulBecomesCr(self) -> None:
        """Outside BINARY, CR NUL from the client is CR; CR LF stays CR LF."""
        self.feed(b"a\r\0b\r\nc")
        self.assertEqual(joined(self.proto.events), [("data", b"a\rb\r\nc")])

    def test_crNulSplit(self) -> None:
        """CR at the end of one chunk and NUL at the start of the next is CR."""
        self.feed(b"a\r")
        self.feed(b"\0b")
        self.feed(b"\r")
        self.feed(b"\n")
        self.assertEqual(joined(self.proto.events), [("data", b"a\rb\r\n")])

    def test_crNulNulKeepsSecondNul(self) -> None:
        """CR NUL NUL is CR then a NUL data byte."""
        self.feed(b"\r\0")
        self.feed(b"\0")
        self.assertEqual(joined(self.proto.events), [("data", b"\r\0")])

    def test_binaryInputUntouched(self) -> None:
        """With the peer in BINARY, CR NUL passes unchanged."""
        self.feed(cmd(IAC, WILL, BINARY))
        self.assertEqual(self.transport.value(), cmd(IAC, DO, BINARY))
        self.proto.events = []
        self.feed(b"a\r\0b\r\n")
        self.assertEqual(self.proto.events, [("data", b"a\r\0b\r\n")])

    def test_outputEscaping(self) -> None:
        """Outside BINARY, IAC is doubled and a lone CR goes as CR NUL."""
        self.proto.writeData(b"\xffa\rb\r\n\r")
        self.assertEqual(self.transport.value(), b"\xff\xffa\r\0b\r\n\r\0")

    def test_binaryOutput(self) -> None:
        """In BINARY, only IAC is doubled."""
        self.feed(cmd(IAC, DO, BINARY))
        self.assertEqual(self.transport.value(), cmd(IAC, WILL, BINARY))
        self.transport.clear()
        self.proto.writeData(bytes(range(256)))
        self.assertEqual(self.transport.value(), bytes(range(255)) + b"\xff\xff")

    def test_refuseUnknown(self) -> None:
        """Unknown options are refused at once: WILL -> DONT, DO -> WONT."""
        self.feed(cmd(IAC, WILL, 99, IAC, DO, 98))
        self.assertEqual(self.transport.value(), cmd(IAC, DONT, 99, IAC, WONT, 98))

    def test_noLoop(self) -> None:
        """Repeated WILL for an enabled option is not answered again (RFC 1143)."""
        self.feed(cmd(IAC, WILL, SGA))
        self.feed(cmd(IAC, WILL, SGA))
        self.assertEqual(self.transport.value(), cmd(IAC, DO, SGA))
        self.transport.clear()
        self.feed(cmd(IAC, DONT, ECHO, IAC, WONT, 99))
        self.assertEqual(self.transport.value(), b"")

    def test_requestAnswered(self) -> None:
        """Our DO answered by WILL enables without a reply; by WONT, disables quietly."""
        self.proto.requestRemote(SGA)
        self.proto.requestRemote(BINARY)
        self.assertEqual(self.transport.value(), cmd(IAC, DO, SGA, IAC, DO, BINARY))
        self.transport.clear()
        self.feed(cmd(IAC, WILL, SGA, IAC, WONT, BINARY))
        self.assertEqual(self.transport.value(), b"")
        self.assertTrue(self.proto.remoteEnabled(SGA))
        self.assertFalse(self.proto.remoteEnabled(BINARY))
        self.assertEqual(self.proto.events, [("option", (SGA, False, True))])

    def test_disableEnabled(self) -> None:
        """WONT for an enabled option is acknowledged with DONT and disables it."""
        self.feed(cmd(IAC, WILL, BINARY))
        self.transport.clear()
        self.feed(cmd(IAC, WONT, BINARY))
        self.assertEqual(self.transport.value(), cmd(IAC, DONT, BINARY))
        self.assertFalse(self.proto.remoteEnabled(BINARY))

    def test_queuedOpposite(self) -> None:
        """Asking to disable while an enable is pending waits for the answer, then asks once."""
        self.proto.requestLocal(BINARY)
        self.proto.requestLocal(BINARY, False)
        self.assertEqual(self.transport.value(), cmd(IAC, WILL, BINARY))
        self.transport.clear()
        self.feed(cmd(IAC, DO, BINARY))
        self.assertEqual(self.transport.value(), cmd(IAC, WONT, BINARY))
        self.transport.clear()
        self.feed(cmd(IAC, DONT, BINARY))
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.proto.localEnabled(BINARY))

    def test_subnegotiationWithoutSE(self) -> None:
        """An SB cut short by another command is dropped; the command still counts."""
        self.feed(cmd(IAC, SB, NAWS, 1, 2, IAC, BRK) + b"z")
        self.assertEqual(self.proto.events, [("command", BRK), ("data", b"z")])

    def test_oversizedSubnegotiation(self) -> None:
        """A subnegotiation over the limit is ignored; data after it flows."""
        self.feed(cmd(IAC, SB, TTYPE) + b"x" * 5000 + cmd(IAC, SE) + b"ok")
        self.assertEqual(self.proto.events, [("data", b"ok")])

    def test_emptySubnegotiation(self) -> None:
        """IAC SB IAC SE is ignored."""
        self.feed(cmd(IAC, SB, IAC, SE) + b"ok")
        self.assertEqual(self.proto.events, [("data", b"ok")])


class TelnetClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.device = RecordingDevice()
        self.line = Line("test", self.device)
        self.client = TelnetClient(self.line)
        self.transport = PausableTransport()
        self.client.makeConnection(self.transport)

    def test_interface(self) -> None:
        """A telnet client is an IClient."""
        verifyObject(IClient, self.client)

    def test_offer(self) -> None:
        """At connect: WILL ECHO, WILL SGA, WILL BINARY, DO SGA, DO BINARY, DO COM-PORT-OPTION, nothing else."""
        self.assertEqual(self.transport.value(), OFFER)
        self.assertEqual(self.line.clients, [self.client])

    def test_agreementSilent(self) -> None:
        """A client agreeing to all of it gets no further negotiation."""
        self.transport.clear()
        self.client.dataReceived(AGREE)
        self.assertEqual(self.transport.value(), b"")
        for option in (ECHO, SGA, BINARY):
            self.assertTrue(self.client.localEnabled(option))
        for option in (SGA, BINARY):
            self.assertTrue(self.client.remoteEnabled(option))

    def test_nawsTtypeAccepted(self) -> None:
        """WILL NAWS / WILL TTYPE are accepted and their subnegotiations ignored."""
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, WILL, NAWS, IAC, WILL, TTYPE, IAC, SB, NAWS, 0, 80, 0, 24, IAC, SE))
        self.assertEqual(self.transport.value(), cmd(IAC, DO, NAWS, IAC, DO, TTYPE))
        self.assertEqual(self.device.events, [])

    def test_dataToDevice(self) -> None:
        """Client data reaches the device unescaped."""
        self.client.dataReceived(AGREE + b"ls\r\n\xff\xff")
        self.assertEqual(self.device.events, [("write", b"ls\r\n\xff")])

    def test_brk(self) -> None:
        """IAC BRK sends a break, between the data around it."""
        self.client.dataReceived(b"a" + cmd(IAC, BRK) + b"h")
        self.assertEqual(self.device.events, [("write", b"a"), ("break", None), ("write", b"h")])

    def test_otherCommandsIgnored(self) -> None:
        """NOP, DM, IP, AO, EC, EL, GA, 236-239 reach neither device nor wire; the connection stays."""
        self.transport.clear()
        for command in (241, 242, 244, 245, 247, 248, 249, 236, 237, 238, 239):
            self.client.dataReceived(cmd(IAC, command))
        self.client.dataReceived(b"k")
        self.assertEqual(self.device.events, [("write", b"k")])
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)

    def test_ayt(self) -> None:
        """AYT is answered with visible text."""
        self.transport.clear()
        self.client.dataReceived(cmd(IAC, AYT))
        self.assertEqual(self.transport.value(), b"\r\n[serialgw: yes]\r\n")

    def test_deliverEscapes(self) -> None:
        """Device output is IAC-escaped for this client; 8-bit clean in BINARY."""
        self.client.dataReceived(AGREE)
        self.transport.clear()
        self.line.deviceDataReceived(bytes(range(256)))
        self.assertEqual(self.transport.value(), bytes(range(255)) + b"\xff\xff")

    def test_pauseResume(self) -> None:
        """A device behind pauses the client's input; caught up resumes it."""
        self.line.deviceWritable(False)
        self.line.deviceWritable(True)
        self.assertEqual((self.transport.pauses, self.transport.resumes), (1, 1))

    def test_readOnlyCannotWriteOrBreak(self) -> None:
        """A read-only telnet client's data and breaks are refused."""
        client = TelnetClient(self.line, Role.READONLY)
        client.makeConnection(StringTransport())
        client.dataReceived(b"x" + cmd(IAC, BRK))
        self.assertEqual(self.device.events, [])
        self.assertEqual(self.line.refused, 1)

    def test_detach(self) -> None:
        """Losing the connection detaches the client from its line."""
        self.client.connectionLost()
        self.assertEqual(self.line.clients, [])
