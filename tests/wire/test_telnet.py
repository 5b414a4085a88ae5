"""
Tests for serialgw.wire.telnet: the codec alone (parser states, RFC 1143
negotiation, escaping), exact bytes and events.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from serialgw.wire.qmethod import Q
from serialgw.wire.telnet import COMMANDS_PER_TURN, ParserState
from serialgw.wire.telnetcodes import BINARY, BRK, DO, DONT, ECHO, IAC, NAWS, NOP, SB, SE, SGA, TTYPE, WILL, WONT
from tests.telnetpeer import TelnetRecorder, cmd, joined, toggleAnswers


class WireTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.proto = TelnetRecorder()
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
        whole = TelnetRecorder()
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
                p = TelnetRecorder()
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
        """Outside BINARY, IAC is doubled and a lone CR goes as CR NUL (the NUL of one at the end with what follows it)."""
        self.proto.writeData(b"\xffa\rb\r\n\r")
        self.proto.writeData(b"c")
        self.assertEqual(self.transport.value(), b"\xff\xffa\r\0b\r\n\r\0c")

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
        self.assertEqual(self.proto.events,
                         [("ignored", "malformed subnegotiation"), ("command", BRK), ("data", b"z")])

    def test_oversizedSubnegotiation(self) -> None:
        """A subnegotiation over the limit is ignored; data after it flows."""
        self.feed(cmd(IAC, SB, TTYPE) + b"x" * 5000 + cmd(IAC, SE) + b"ok")
        self.assertEqual(self.proto.events, [("ignored", "oversized subnegotiation"), ("data", b"ok")])

    def test_subnegotiationAtTheLimit(self) -> None:
        """A subnegotiation of MAX_SUBNEGOTIATION bytes (option included) is whole; one more is ignored once."""
        self.feed(cmd(IAC, SB, TTYPE) + b"x" * 1023 + cmd(IAC, SE))
        self.feed(cmd(IAC, SB, TTYPE) + b"y" * 1024)
        self.feed(b"y" * 5000 + cmd(IAC, SE))
        self.assertEqual(self.proto.events, [("sb", (TTYPE, b"x" * 1023)), ("ignored", "oversized subnegotiation")])

    def test_emptySubnegotiation(self) -> None:
        """IAC SB IAC SE is ignored."""
        self.feed(cmd(IAC, SB, IAC, SE) + b"ok")
        self.assertEqual(self.proto.events, [("data", b"ok")])


class ParserStateTests(SynchronousTestCase):
    def test_stateAfterEachByte(self) -> None:
        """Fed a byte at a time, the parser is in the named state each byte leads to."""
        proto = TelnetRecorder()
        proto.makeConnection(StringTransport())
        stream = [
            (ord("a"), ParserState.DATA),
            (IAC, ParserState.COMMAND),
            (WILL, ParserState.OPTION),
            (SGA, ParserState.DATA),
            (IAC, ParserState.COMMAND),
            (SB, ParserState.SUBNEGOTIATION),
            (NAWS, ParserState.SUBNEGOTIATION),
            (IAC, ParserState.SUBNEGOTIATION_IAC),
            (IAC, ParserState.SUBNEGOTIATION),
            (IAC, ParserState.SUBNEGOTIATION_IAC),
            (SE, ParserState.DATA),
            (IAC, ParserState.COMMAND),
            (IAC, ParserState.DATA),
            (IAC, ParserState.COMMAND),
            (BRK, ParserState.DATA),
            (IAC, ParserState.COMMAND),
            (SB, ParserState.SUBNEGOTIATION),
            (IAC, ParserState.SUBNEGOTIATION_IAC),
            (WONT, ParserState.OPTION),  # the SE was lost: WONT is read as a command
            (SGA, ParserState.DATA),
        ]
        states = []
        for byte, _ in stream:
            proto.dataReceived(bytes((byte,)))
            states.append(proto.parserState)
        self.assertEqual(states, [state for _, state in stream])
        self.assertEqual(joined(proto.events), [
            ("data", b"a"), ("option", (SGA, False, True)), ("sb", (NAWS, b"\xff")), ("data", b"\xff"),
            ("command", BRK), ("ignored", "malformed subnegotiation"), ("option", (SGA, False, False)),
        ])

    def test_heldInputKeepsItsState(self) -> None:
        """Input held mid-stream stops before the command that completes; released, it is parsed from there."""

        class Holding(TelnetRecorder):
            def telnetDataReceived(self, data: bytes) -> None:
                TelnetRecorder.telnetDataReceived(self, data)
                self.inputHeld = True

        proto = Holding()
        proto.makeConnection(StringTransport())
        proto.dataReceived(b"a" + cmd(IAC, BRK) + b"b")
        self.assertEqual((proto.events, proto.parserState, proto._wireHeld),
                         ([("data", b"a")], ParserState.COMMAND, cmd(BRK) + b"b"))
        proto.inputHeld = False
        proto.releaseWire()
        self.assertEqual((proto.events, proto.parserState), ([("data", b"a"), ("command", BRK), ("data", b"b")],
                                                             ParserState.DATA))


# RFC 1143 section 7, for one side of an option: (state, queue bit, the peer
# says enable: WILL/DO, or disable: WONT/DONT) -> (state, queue bit, what we
# answer: our enable "yes" (DO/WILL), our disable "no" (DONT/WONT) or nothing,
# the change told to the protocol).
RECEIVED = {
    (Q.NO, False, True): (Q.YES, False, "yes", True),  # accepted (SGA)
    (Q.YES, False, True): (Q.YES, False, None, None),
    (Q.WANTNO, False, True): (Q.NO, False, None, None),  # error: DONT answered by WILL
    (Q.WANTNO, True, True): (Q.YES, False, None, True),
    (Q.WANTYES, False, True): (Q.YES, False, None, True),
    (Q.WANTYES, True, True): (Q.WANTNO, False, "no", None),
    (Q.NO, False, False): (Q.NO, False, None, None),
    (Q.YES, False, False): (Q.NO, False, "no", False),
    (Q.WANTNO, False, False): (Q.NO, False, None, False),
    (Q.WANTNO, True, False): (Q.WANTYES, False, "yes", None),
    (Q.WANTYES, False, False): (Q.NO, False, None, None),
    (Q.WANTYES, True, False): (Q.NO, False, None, None),
}

# We ask for enable (True) or disable: (state, queue bit, enable) -> (state, queue bit, what we send).
ASKED = {
    (Q.NO, False, True): (Q.WANTYES, False, "yes"),
    (Q.NO, False, False): (Q.NO, False, None),
    (Q.YES, False, True): (Q.YES, False, None),
    (Q.YES, False, False): (Q.WANTNO, False, "no"),
    (Q.WANTNO, False, True): (Q.WANTNO, True, None),
    (Q.WANTNO, False, False): (Q.WANTNO, False, None),
    (Q.WANTNO, True, True): (Q.WANTNO, True, None),
    (Q.WANTNO, True, False): (Q.WANTNO, False, None),
    (Q.WANTYES, False, True): (Q.WANTYES, False, None),
    (Q.WANTYES, False, False): (Q.WANTYES, True, None),
    (Q.WANTYES, True, True): (Q.WANTYES, False, None),
    (Q.WANTYES, True, False): (Q.WANTYES, True, None),
}

# How each (state, queue bit) is reached: the peer enabling ("peer") and our requests ("ask", enable).
REACH: dict[tuple[Q, bool], list[tuple[str, bool]]] = {
    (Q.NO, False): [],
    (Q.YES, False): [("peer", True)],
    (Q.WANTYES, False): [("ask", True)],
    (Q.WANTYES, True): [("ask", True), ("ask", False)],
    (Q.WANTNO, False): [("peer", True), ("ask", False)],
    (Q.WANTNO, True): [("peer", True), ("ask", False), ("ask", True)],
}


class QMethodTests(SynchronousTestCase):
    """Every case of RFC 1143's Q method, for the peer's side (WILL/WONT) and ours (DO/DONT), exact bytes."""

    # local: (the peer's enable, its disable, our enable, our disable)
    SIDES = {False: (WILL, WONT, DO, DONT), True: (DO, DONT, WILL, WONT)}

    def reach(self, local: bool, state: Q, queued: bool) -> tuple[TelnetRecorder, StringTransport]:
        proto, transport = TelnetRecorder(), StringTransport()
        proto.makeConnection(transport)
        request = proto.requestLocal if local else proto.requestRemote
        peerYes = self.SIDES[local][0]
        for step, enable in REACH[(state, queued)]:
            if step == "peer":
                proto.dataReceived(cmd(IAC, peerYes, SGA))
            else:
                request(SGA, enable)
        side = proto.side(SGA, local)
        self.assertEqual((side.state, side.queued), (state, queued))
        transport.clear()
        del proto.events[:]
        return proto, transport

    def test_received(self) -> None:
        """The peer's WILL/WONT and DO/DONT in each state: the state, the queue bit, our answer, the change."""
        for local, (peerYes, peerNo, ourYes, ourNo) in self.SIDES.items():
            for (state, queued, positive), (after, afterQueued, answer, change) in RECEIVED.items():
                proto, transport = self.reach(local, state, queued)
                proto.dataReceived(cmd(IAC, peerYes if positive else peerNo, SGA))
                side = proto.side(SGA, local)
                sent = {None: b"", "yes": cmd(IAC, ourYes, SGA), "no": cmd(IAC, ourNo, SGA)}[answer]
                events = [] if change is None else [("option", (SGA, local, change))]
                self.assertEqual((side.state, side.queued, transport.value(), proto.events),
                                 (after, afterQueued, sent, events), (local, state, queued, positive))
                enabled = proto.localEnabled(SGA) if local else proto.remoteEnabled(SGA)
                self.assertEqual(enabled, after is Q.YES)

    def test_refusedInNo(self) -> None:
        """An option we do not take, offered in NO, is refused (DONT / WONT) and stays NO with no change told."""
        for local, (peerYes, _, _, ourNo) in self.SIDES.items():
            proto, transport = self.reach(local, Q.NO, False)
            proto.dataReceived(cmd(IAC, peerYes, ECHO))
            side = proto.side(ECHO, local)
            self.assertEqual((side.state, side.queued, transport.value(), proto.events),
                             (Q.NO, False, cmd(IAC, ourNo, ECHO), []))

    def test_asked(self) -> None:
        """Our requests in each state: the state, the queue bit, what we send (nothing while one is under way)."""
        for local, (_, _, ourYes, ourNo) in self.SIDES.items():
            for (state, queued, enable), (after, afterQueued, send) in ASKED.items():
                proto, transport = self.reach(local, state, queued)
                (proto.requestLocal if local else proto.requestRemote)(SGA, enable)
                side = proto.side(SGA, local)
                sent = {None: b"", "yes": cmd(IAC, ourYes, SGA), "no": cmd(IAC, ourNo, SGA)}[send]
                self.assertEqual((side.state, side.queued, transport.value(), proto.events),
                                 (after, afterQueued, sent, []), (local, state, queued, enable))

    def test_sidesApart(self) -> None:
        """The peer's side and ours of one option are apart: DO BINARY enables ours only."""
        proto, transport = self.reach(True, Q.NO, False)
        proto.dataReceived(cmd(IAC, DO, BINARY))
        self.assertEqual((proto.localEnabled(BINARY), proto.remoteEnabled(BINARY), transport.value()),
                         (True, False, cmd(IAC, WILL, BINARY)))

    def test_answersBatched(self) -> None:
        """Answers to one chunk of negotiation go out in one write, in order."""
        proto, transport = self.reach(False, Q.NO, False)
        writes: list[bytes] = []
        transport.write = writes.append  # type: ignore[method-assign]
        proto.dataReceived(cmd(IAC, WILL, 99, IAC, DO, 98, IAC, WILL, SGA))
        self.assertEqual(writes, [cmd(IAC, DONT, 99, IAC, WONT, 98, IAC, DO, SGA)])


class Busy(TelnetRecorder):
    """A codec that holds what follows its commands per turn, and counts how often it was busy."""

    busy = 0

    def telnetBusy(self) -> bool:
        self.busy += 1
        return True


class CommandsPerTurnTests(SynchronousTestCase):
    def test_busyHoldsTheRest(self) -> None:
        """
        A read of more than COMMANDS_PER_TURN commands: that many are
        handled, the rest (and what comes meanwhile) is held; each
        releaseWire handles the next COMMANDS_PER_TURN, in order.
        """
        proto = Busy()
        proto.makeConnection(StringTransport())
        total = 2 * COMMANDS_PER_TURN + 10
        proto.dataReceived(b"a" + cmd(IAC, NOP) * total + b"b")
        self.assertEqual(proto.events, [("data", b"a")] + [("command", NOP)] * COMMANDS_PER_TURN)
        self.assertEqual((proto.busy, proto.parserState), (1, ParserState.COMMAND))
        proto.dataReceived(b"c" + cmd(IAC, NOP))
        self.assertEqual(len(proto.events), 1 + COMMANDS_PER_TURN)
        proto.releaseWire()
        self.assertEqual((len(proto.events), proto.busy), (1 + 2 * COMMANDS_PER_TURN, 2))
        proto.releaseWire()
        self.assertEqual(proto.events, [("data", b"a")] + [("command", NOP)] * total
                         + [("data", b"bc"), ("command", NOP)])
        self.assertEqual((proto.busy, proto.parserState, proto._wireHeld), (2, ParserState.DATA, b""))

    def test_negotiationAnsweredAsHandled(self) -> None:
        """Negotiation past the turn's commands is answered only once it is handled: answers never run ahead."""
        proto = Busy()
        transport = StringTransport()
        proto.makeConnection(transport)
        toggle = cmd(IAC, DO, SGA, IAC, DONT, SGA)
        proto.dataReceived(toggle * COMMANDS_PER_TURN)
        enables = [True, False] * COMMANDS_PER_TURN
        self.assertEqual(transport.value(), toggleAnswers(enables[:COMMANDS_PER_TURN], WILL, WONT, SGA))
        proto.releaseWire()
        self.assertEqual(transport.value(), toggleAnswers(enables, WILL, WONT, SGA))
        self.assertEqual((proto.busy, proto._wireHeld), (1, b""))

    def test_subnegotiationHeldWhole(self) -> None:
        """A subnegotiation that ends past the turn's commands is handed on whole once released."""
        proto = Busy()
        proto.makeConnection(StringTransport())
        proto.dataReceived(cmd(IAC, NOP) * COMMANDS_PER_TURN + cmd(IAC, SB, 44, 1, 2, IAC, SE) + b"x")
        self.assertEqual((proto.events[-1], proto.busy), (("command", NOP), 1))
        proto.releaseWire()
        self.assertEqual(proto.events[COMMANDS_PER_TURN:], [("sb", (44, bytes([1, 2]))), ("data", b"x")])

    def test_withoutReactorAllAtOnce(self) -> None:
        """A codec that does not hold (telnetBusy False, the default) handles every command of a read at once."""
        proto = TelnetRecorder()
        proto.makeConnection(StringTransport())
        proto.dataReceived(cmd(IAC, NOP) * (3 * COMMANDS_PER_TURN) + b"z")
        self.assertEqual(proto.events, [("command", NOP)] * (3 * COMMANDS_PER_TURN) + [("data", b"z")])
