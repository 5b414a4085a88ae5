"""
Telnet (RFC 854, 855, 856, 858, 1143) for serial data.

L{TelnetProtocol} is the wire layer: it splits the byte stream into data,
commands and subnegotiations, keeps RFC 1143 (Q method) state for each option
so negotiation never loops, refuses unknown options at once, and escapes IAC
on the way out.  Data without IAC (and, outside BINARY, without CR) is handed
on in one piece: no per-byte Python loop on the hot path.

Why not C{twisted.conch.telnet.Telnet}: it parses every byte in Python, turns
CR LF into LF even in binary mode, and raises C{ValueError('Stumped')} on
commands it does not know (236-238), dropping the connection.

L{TelnetClient} connects the wire layer to a serial line.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.rfc2217 import ComPortControl
from serialgw.clients.session import DEVICE_BEHIND, Session
from serialgw.interfaces import IClient
from serialgw.line.hub import Line, Role, writeNow
from serialgw.logflood import IgnoredInput, clientLog
from serialgw.wire.rfc2217 import FLOWCONTROL_RESUME, FLOWCONTROL_SUSPEND

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# Commands (RFC 854).
SE = 240
NOP = 241
DM = 242
BRK = 243
IP = 244
AO = 245
AYT = 246
EC = 247
EL = 248
GA = 249
SB = 250
WILL = 251
WONT = 252
DO = 253
DONT = 254
IAC = 255

# Options.
BINARY = 0
ECHO = 1
SGA = 3
TTYPE = 24
NAWS = 31

IAC_B = b"\xff"
IAC_IAC = b"\xff\xff"
CR = b"\r"
MAX_SUBNEGOTIATION = 1024
ANSWER_BATCH = 4096

# RFC 1143 states, for each side of each option.
NO = "no"
YES = "yes"
WANTNO = "wantno"
WANTYES = "wantyes"

# Parser states.
_DATA = 0
_IAC = 1
_NEG = 2
_SB = 3
_SB_IAC = 4


class _OptionState:
    """
    RFC 1143 state of one option: C{us} is our side (WILL/WONT), C{him} the
    peer's (DO/DONT); the C{q} flags say an opposite request is queued.
    """

    __slots__ = ("us", "usq", "him", "himq")

    def __init__(self) -> None:
        self.us = NO
        self.usq = False
        self.him = NO
        self.himq = False


class TelnetProtocol(Protocol):
    """
    The telnet wire layer.  Subclasses override the C{telnet*} hooks and
    L{acceptLocal} / L{acceptRemote}.
    """

    transport: Any
    # While True, nothing more is parsed: input waits in _wireHeld (a
    # subclass sets it when its output is past its bound).
    inputHeld = False
    _wireHeld = b""
    # While parsing: our answers, written in pieces of ANSWER_BATCH (a
    # flood of 3-byte answers written one by one would cost the transport a
    # buffer entry each, several times the bytes).
    _answers: Optional[bytearray] = None

    def __init__(self) -> None:
        self._options: dict[int, _OptionState] = {}
        self._state = _DATA
        self._negCommand = 0
        self._sb = bytearray()
        self._sbOverflow = False
        self._pendingCR = False

    # Hooks

    def acceptLocal(self, option: int) -> bool:
        """May we enable C{option} on our side (peer sent DO)?"""
        return False

    def acceptRemote(self, option: int) -> bool:
        """May the peer enable C{option} (peer sent WILL)?"""
        return False

    def telnetDataReceived(self, data: bytes) -> None:
        """Data from the peer, with IAC IAC undone and NVT CR NUL made CR."""

    def telnetCommandReceived(self, command: int) -> None:
        """A command other than negotiation: BRK, NOP, AYT, ..."""

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        """A whole subnegotiation, IAC IAC undone."""

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        """An option was enabled or disabled on one side."""

    def telnetIgnored(self, kind: str) -> None:
        """
        Input was ignored: C{kind} says what ("malformed subnegotiation",
        "oversized subnegotiation", ...).  Subclasses count it (logflood).
        """
        log.info("telnet: {kind} ignored", kind=kind)

    # State

    def _option(self, option: int) -> _OptionState:
        state = self._options.get(option)
        if state is None:
            state = self._options[option] = _OptionState()
        return state

    def localEnabled(self, option: int) -> bool:
        state = self._options.get(option)
        return state is not None and state.us == YES

    def remoteEnabled(self, option: int) -> bool:
        state = self._options.get(option)
        return state is not None and state.him == YES

    # Output

    def writeData(self, data: bytes) -> None:
        """Send data to the peer, escaped for the wire."""
        if IAC_B in data:
            data = data.replace(IAC_B, IAC_IAC)
        if CR in data and not self.localEnabled(BINARY):
            # NVT: a CR not followed by LF goes as CR NUL.
            data = data.replace(b"\r", b"\r\0").replace(b"\r\0\n", b"\r\n")
        writeNow(self.transport, data)

    def sendCommand(self, command: int) -> None:
        self._answer(bytes((IAC, command)))

    def sendSubnegotiation(self, option: int, payload: bytes) -> None:
        self._answer(bytes((IAC, SB, option)) + payload.replace(IAC_B, IAC_IAC) + bytes((IAC, SE)))

    def requestLocal(self, option: int, enable: bool = True) -> None:
        """Ask to enable (WILL) or disable (WONT) an option on our side."""
        state = self._option(option)
        self._request(state, "us", "usq", enable, WILL, WONT, option)

    def requestRemote(self, option: int, enable: bool = True) -> None:
        """Ask the peer to enable (DO) or disable (DONT) an option."""
        state = self._option(option)
        self._request(state, "him", "himq", enable, DO, DONT, option)

    def _request(
        self, state: _OptionState, side: str, queue: str, enable: bool, yes: int, no: int, option: int
    ) -> None:
        current = getattr(state, side)
        want, against, send = (YES, NO, yes) if enable else (NO, YES, no)
        wanting, unwanting = (WANTYES, WANTNO) if enable else (WANTNO, WANTYES)
        if current == against:
            setattr(state, side, wanting)
            self._answer(bytes((IAC, send, option)))
        elif current == unwanting:
            # Wait for the answer to the opposite request, then ask.
            setattr(state, queue, True)
        elif current == wanting:
            setattr(state, queue, False)
        # current == want: nothing to do.

    # Input

    def dataReceived(self, data: bytes) -> None:
        if self.inputHeld:
            self._wireHeld += data
            return
        if self._state == _DATA:
            if IAC_B not in data:
                plain = data
            else:
                # Only doubled IACs (binary data)?  Split on the single
                # byte (CPython scans for one byte far faster than for the
                # pair: 1.1 against 4.7 ms per MiB of random data): doubled
                # IACs leave empty pieces at every odd place, and an odd
                # count of pieces (no IAC left open at the end).
                parts = data.split(IAC_B)
                if len(parts) & 1 and not any(parts[1::2]):
                    plain = IAC_B.join(parts[::2])
                else:
                    plain = b""
            if plain:
                plain = self._decode(plain)
                if plain:
                    self.telnetDataReceived(plain)
                return
        outer, self._answers = self._answers, bytearray()
        try:
            self._parse(data)
        finally:
            self._flushAnswers()
            self._answers = outer

    def _parse(self, data: bytes) -> None:
        # Data pieces between IAC sequences are joined, so that one chunk
        # gives one telnetDataReceived call between commands.
        pieces: list[bytes] = []
        i = 0
        n = len(data)
        while i < n:
            state = self._state
            if state == _DATA:
                j = data.find(IAC_B, i)
                if j < 0:
                    pieces.append(self._decode(data[i:]))
                    break
                if j > i:
                    pieces.append(self._decode(data[i:j]))
                i = j + 1
                self._state = _IAC
            elif state == _IAC:
                byte = data[i]
                i += 1
                self._state = _DATA
                if byte == IAC:
                    pieces.append(self._decode(IAC_B))
                elif WILL <= byte <= DONT:
                    self._negCommand = byte
                    self._state = _NEG
                elif byte == SB:
                    self._sb = bytearray()
                    self._sbOverflow = False
                    self._state = _SB
                else:
                    self._flush(pieces)
                    if self.inputHeld:
                        self._holdFrom(data, i - 1, _IAC)
                        return
                    self.telnetCommandReceived(byte)
            elif state == _NEG:
                option = data[i]
                i += 1
                self._state = _DATA
                self._flush(pieces)
                if self.inputHeld:
                    self._holdFrom(data, i - 1, _NEG)
                    return
                self._negotiate(self._negCommand, option)
            elif state == _SB:
                j = data.find(IAC_B, i)
                end = n if j < 0 else j
                self._sbAppend(data[i:end])
                if j < 0:
                    break
                i = j + 1
                self._state = _SB_IAC
            else:  # _SB_IAC
                byte = data[i]
                if byte == IAC:
                    i += 1
                    self._sbAppend(IAC_B)
                    self._state = _SB
                elif byte == SE:
                    i += 1
                    self._state = _DATA
                    self._flush(pieces)
                    if self.inputHeld:
                        self._holdFrom(data, i - 1, _SB_IAC)
                        return
                    self._endSubnegotiation()
                else:
                    # IAC <command> inside SB: the SE was lost.  Drop the
                    # subnegotiation and read the command normally.
                    self.telnetIgnored("malformed subnegotiation")
                    self._sb = bytearray()
                    self._state = _IAC
        self._flush(pieces)

    def _answer(self, data: bytes) -> None:
        """Our own telnet bytes (negotiation, commands, subnegotiations, short answers)."""
        answers = self._answers
        if answers is None:
            self.transport.write(data)
            return
        answers += data
        if len(answers) >= ANSWER_BATCH:
            self._flushAnswers()

    def _flushAnswers(self) -> None:
        answers = self._answers
        if answers:
            self._answers = bytearray()
            self.transport.write(bytes(answers))

    def _holdFrom(self, data: bytes, start: int, state: int) -> None:
        """
        Input is held (the data before has been handed on): keep the rest,
        from the byte at C{start} that completes a command, parsed in
        C{state} once it is released.
        """
        self._state = state
        self._wireHeld = data[start:]

    def releaseWire(self) -> None:
        """Parse what was held back."""
        held, self._wireHeld = self._wireHeld, b""
        if held:
            TelnetProtocol.dataReceived(self, held)

    def _flush(self, pieces: list[bytes]) -> None:
        if pieces:
            data = b"".join(pieces)
            del pieces[:]
            if data:
                # What handles data may write to the peer itself: our
                # answers so far go first.
                # (Should that fill its output, the data waits in the
                # session: see Session.fromPeer.)
                self._flushAnswers()
                self.telnetDataReceived(data)

    def _decode(self, data: bytes) -> bytes:
        """
        Undo NVT's CR NUL (outside BINARY), keeping state across chunks.
        """
        if self.remoteEnabled(BINARY):
            self._pendingCR = False
            return data
        if self._pendingCR:
            self._pendingCR = False
            if data[:1] == b"\0":
                data = data[1:]
        if CR in data:
            self._pendingCR = data.endswith(CR)
            data = data.replace(b"\r\0", b"\r")
        return data

    def _sbAppend(self, chunk: bytes) -> None:
        if self._sbOverflow or not chunk:
            return
        if len(self._sb) + len(chunk) > MAX_SUBNEGOTIATION:
            self._sbOverflow = True
            self.telnetIgnored("oversized subnegotiation")
            return
        self._sb += chunk

    def _endSubnegotiation(self) -> None:
        payload, self._sb = bytes(self._sb), bytearray()
        if self._sbOverflow or not payload:
            return
        self.telnetSubnegotiation(payload[0], payload[1:])

    def _negotiate(self, command: int, option: int) -> None:
        state = self._option(option)
        if command in (WILL, WONT):
            self._received(state, "him", "himq", command == WILL, DO, DONT, option, False)
        else:
            self._received(state, "us", "usq", command == DO, WILL, WONT, option, True)

    def _received(
        self,
        state: _OptionState,
        side: str,
        queue: str,
        positive: bool,
        yes: int,
        no: int,
        option: int,
        local: bool,
    ) -> None:
        """
        RFC 1143 section 7: the peer said WILL/DO (C{positive}) or WONT/DONT.
        """
        current = getattr(state, side)
        queued = getattr(state, queue)
        if positive:
            if current == NO:
                accept = self.acceptLocal(option) if local else self.acceptRemote(option)
                if accept:
                    setattr(state, side, YES)
                    self._answer(bytes((IAC, yes, option)))
                    self.telnetOptionChanged(option, local, True)
                else:
                    self._answer(bytes((IAC, no, option)))
            elif current == WANTNO:
                # Answered our disable with enable: RFC 1143 calls it an
                # error; take it as the peer's last word.
                setattr(state, side, YES if queued else NO)
                setattr(state, queue, False)
                if queued:
                    self.telnetOptionChanged(option, local, True)
            elif current == WANTYES:
                if queued:
                    setattr(state, side, WANTNO)
                    setattr(state, queue, False)
                    self._answer(bytes((IAC, no, option)))
                else:
                    setattr(state, side, YES)
                    self.telnetOptionChanged(option, local, True)
            # YES: already enabled, ignore.
        else:
            if current == YES:
                setattr(state, side, NO)
                self._answer(bytes((IAC, no, option)))
                self.telnetOptionChanged(option, local, False)
            elif current == WANTNO:
                if queued:
                    setattr(state, side, WANTYES)
                    setattr(state, queue, False)
                    self._answer(bytes((IAC, yes, option)))
                else:
                    setattr(state, side, NO)
                    self.telnetOptionChanged(option, local, False)
            elif current == WANTYES:
                setattr(state, side, NO)
                setattr(state, queue, False)
            # NO: already disabled, ignore.


COM_PORT = 44
_OWE_MODEM = 1

# Options a serial console speaks, on our side and on the peer's.
LOCAL_OPTIONS = frozenset({BINARY, ECHO, SGA})
REMOTE_OPTIONS = frozenset({BINARY, SGA, NAWS, TTYPE})

_COMMAND_NAMES = {
    NOP: "NOP", DM: "DM", BRK: "BRK", IP: "IP", AO: "AO", AYT: "AYT",
    EC: "EC", EL: "EL", GA: "GA", 236: "EOF", 237: "SUSP", 238: "ABORT", 239: "EOR",
}


@implementer(IClient)
class TelnetClient(Session, TelnetProtocol):
    """
    A telnet client of a serial line: offers a character-at-a-time 8-bit
    session (WILL ECHO, WILL SGA, DO SGA, WILL BINARY, DO BINARY) and, unless
    turned off, RFC 2217 com port control (DO COM-PORT-OPTION); turns IAC
    BRK into a serial break, ignores the other commands.
    """

    def __init__(
        self,
        line: Line,
        role: Role = Role.WRITER,
        rfc2217: bool = True,
        signature: Optional[str] = None,
        listener: Any = None,
        clock: Any = None,
    ) -> None:
        TelnetProtocol.__init__(self)
        self.line = line
        self.role = role
        self.listener = listener
        self.clock = clock
        self.rfc2217 = rfc2217
        self.signature = signature
        self.comPort: Optional[ComPortControl] = None
        # Ignored and malformed input, counted (at most a log line a minute).
        self.ignored = IgnoredInput(lambda: (self.line.name, self.peer), clock)
        # RFC 2217 notifications owed since the output went past its bound.
        self._owed = 0
        self._owedLineState = 0
        self._flowSuspended = False

    def connectionMade(self) -> None:
        for option in (ECHO, SGA, BINARY):
            self.requestLocal(option)
        for option in (SGA, BINARY):
            self.requestRemote(option)
        if self.rfc2217:
            self.requestRemote(COM_PORT)
        self.startSession()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.ignored.flush()
        self.endSession()

    def telnetIgnored(self, kind: str) -> None:
        # Counted, and logged at most once a minute: never a line each.
        self.ignored.add(kind)

    def ignoredInput(self, kind: str) -> None:
        """Input from this client was ignored (for ComPortControl too)."""
        self.ignored.add(kind)

    def dataReceived(self, data: bytes) -> None:
        if self._idleCall is not None:
            self.touch()
        if self._introCall is not None:
            # Negotiation counts: a health check sends nothing at all.
            self.introduce()
        TelnetProtocol.dataReceived(self, data)

    def defaultNotices(self) -> bool:
        # People at terminals, not programs: data stays data for RFC 2217.
        return self.comPort is None and bool(self.line.notices)

    def writeText(self, data: bytes) -> None:
        self.writeData(data)

    def acceptLocal(self, option: int) -> bool:
        return option in LOCAL_OPTIONS or (option == COM_PORT and self.rfc2217)

    def acceptRemote(self, option: int) -> bool:
        return option in REMOTE_OPTIONS or (option == COM_PORT and self.rfc2217)

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        if option == COM_PORT and enabled and self.comPort is None:
            # Either side's COM-PORT-OPTION starts com port control: a
            # program, whose bytes are data, so no escape menu.
            if self.listener is None or self.listener.escape == -1:
                self.escapeMenu = None
            self.comPort = ComPortControl(self, self.signature)
            self.line.addController(self)
            self.comPort.start()

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        if option == COM_PORT and self.comPort is not None:
            if payload[:1] == bytes((FLOWCONTROL_RESUME,)):
                # Held device output is written at once: our answers first.
                self._flushAnswers()
            self.comPort.handle(payload)

    def telnetDataReceived(self, data: bytes) -> None:
        self.fromPeer(data)

    def telnetCommandReceived(self, command: int) -> None:
        if command == BRK:
            self.line.clientBreak(self)
        elif command == AYT:
            # Gathered with the other answers (input is not parsed while
            # the output is full, so this is never past the bound).
            self._answer(b"\r\n[serialgw: yes]\r\n")
        else:
            self.telnetIgnored("ignored telnet command")

    # IClient

    def deliver(self, data: bytes) -> None:
        if not self.mayDeliver(data):
            return
        if self.comPort is not None:
            self.comPort.deliver(data)
        else:
            self.writeData(data)

    # RFC 2217 notifications the device causes are not sent while the
    # client's output is past its bound: once it drains, it is told the
    # state then (modem lines, line state seen meanwhile, flow control).

    def modemStateChanged(self, state: int) -> None:
        if self.comPort is not None:
            if self.inputHeld:
                self._owed |= _OWE_MODEM
                return
            self.comPort.modemStateChanged(state)

    def lineStateChanged(self, state: int) -> None:
        if self.comPort is not None:
            if self.inputHeld:
                self._owedLineState |= state
                return
            self.comPort.lineStateChanged(state)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        if self.comPort is not None:
            # RFC 2217 clients see carrier: CD drops while the device is gone.
            if self.inputHeld:
                self._owed |= _OWE_MODEM
                return
            self.comPort.carrier(up)
        elif notice and self.wantsNotices():
            self.sendText(notice)

    def pauseInput(self) -> None:
        Session.pauseInput(self)
        self._tellFlow()

    def resumeInput(self) -> None:
        Session.resumeInput(self)
        self._tellFlow()

    def _tellFlow(self) -> None:
        """FLOWCONTROL-SUSPEND / RESUME to an RFC 2217 client when the device's state for it changed."""
        if self.comPort is None or self.inputHeld:
            return
        suspended = bool(self._readingPaused & DEVICE_BEHIND)
        if suspended != self._flowSuspended:
            self._flowSuspended = suspended
            self.comPort.reply(FLOWCONTROL_SUSPEND if suspended else FLOWCONTROL_RESUME, b"")

    releaseWire = TelnetProtocol.releaseWire

    def releaseInput(self) -> None:
        if self.leaving:
            return
        self.inputHeld = False
        if self.comPort is not None:
            owed, self._owed = self._owed, 0
            lineState, self._owedLineState = self._owedLineState, 0
            if owed & _OWE_MODEM:
                self.comPort.modemStateChanged(self.comPort.currentModemState())
            if lineState:
                self.comPort.lineStateChanged(lineState)
            self._tellFlow()
        if not self.inputHeld:
            Session.releaseInput(self)

