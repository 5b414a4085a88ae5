"""
Telnet (RFC 854, 855, 856, 858, 1143) for serial data: the codec.

L{TelnetProtocol} splits the byte stream into data, commands and
subnegotiations, keeps RFC 1143 (Q method) state for each side of each
option so negotiation never loops, refuses unknown options at once,
discards a Synch's data up to its DM (RFC 854), and escapes IAC on the way
out (L{serialgw.wire.telnetout}); the options' state and negotiation are
L{serialgw.wire.telnetoptions}, the hooks' defaults
L{serialgw.wire.telnethooks}.  Data without IAC (and, outside BINARY,
without CR) is handed on in one piece: no per-byte Python loop on the hot
path.  It knows no line and no session: subclasses (a client session, a
remote device's link) override the C{telnet*} hooks and L{acceptLocal} /
L{acceptRemote}.

Why not C{twisted.conch.telnet.Telnet}: it parses every byte in Python, turns
CR LF into LF even in binary mode, and raises C{ValueError('Stumped')} on
commands it does not know (236-238), dropping the connection.  Here
malformed input is counted through L{TelnetProtocol.telnetIgnored} and
parsing goes on; a subnegotiation is bounded (MAX_SUBNEGOTIATION), and so
is the work one read of a peer's input costs (COMMANDS_PER_TURN).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Callable, Optional

from twisted.internet.protocol import Protocol

from serialgw.wire.qmethod import Side
from serialgw.wire.sockets import urgentInline, urgentWatch
from serialgw.wire.telnetcodes import BINARY, CR, DM, DM_B, DONT, IAC, IAC_B, IAC_IAC, SB, SE, WILL
from serialgw.wire.telnethooks import TelnetHooks

MAX_SUBNEGOTIATION = 1024
# The most commands (negotiations, subnegotiations, other IAC commands; a
# doubled IAC is data) one call of dataReceived handles; what follows waits
# until L{TelnetProtocol.releaseWire} (see telnetBusy).  Each costs a few
# microseconds of Python, so a peer sending nothing but commands (a
# negotiation loop, garbage, an attack) held the reactor, and every other
# line, 70-120 ms per 64 KiB read; at most this many cost about 1 ms.
COMMANDS_PER_TURN = 256


class ParserState(Enum):
    """Where the parser is in the byte stream (the value says what it waits for)."""

    DATA = "data, up to the next IAC"
    COMMAND = "the byte after IAC"
    OPTION = "the option after IAC WILL/WONT/DO/DONT"
    SUBNEGOTIATION = "subnegotiation bytes, up to IAC"
    SUBNEGOTIATION_IAC = "the byte after IAC in a subnegotiation: IAC (data) or SE (the end)"


# The states as module globals for the parser's loop (looking up an Enum
# member costs about 0.1 us on CPython 3.11, a global a fifth of it).
_DATA = ParserState.DATA
_COMMAND = ParserState.COMMAND
_OPTION = ParserState.OPTION
_SB = ParserState.SUBNEGOTIATION
_SB_IAC = ParserState.SUBNEGOTIATION_IAC


# A run of data: bytes other than IAC, and doubled IACs (IAC's data), up to
# the first IAC that starts a command (or ends the chunk); its match's end
# is that IAC's index.
_RUN = re.compile(rb"(?:[^\xff]++|\xff\xff)*+").match


def _runEnd(data: bytes, start: int) -> int:
    """Where the run of data from C{start} ends: the index of the IAC that starts a command, or the chunk's end."""
    match = _RUN(data, start)
    return start if match is None else match.end()  # (never None: the run may be empty)


class TelnetProtocol(TelnetHooks, Protocol):
    """
    The telnet codec.  Subclasses override the C{telnet*} hooks and
    L{acceptLocal} / L{acceptRemote}.
    """

    transport: Any
    # While True, nothing more is parsed: input waits in _wireHeld (a
    # subclass sets it when its output is past its bound).
    inputHeld = False
    _wireHeld = b""

    def __init__(self) -> None:
        # RFC 1143's "us" and "him", per option.
        self._us: dict[int, Side] = {}
        self._him: dict[int, Side] = {}
        # How often each side of each option changed (MAX_OPTION_CHANGES).
        self._changes: dict[tuple[int, bool], int] = {}
        self._state = _DATA
        self._negCommand = 0
        self._sb = bytearray()
        self._sbOverflow = False
        self._pendingCR = False
        # Commands this call of dataReceived may still handle (COMMANDS_PER_TURN).
        self._commandsLeft = COMMANDS_PER_TURN

    # Synch (RFC 854): while True, the peer's data is discarded (its
    # commands are not) up to the DM: TCP urgent data was waiting unread
    # when it was read (urgentAhead).
    synching = False
    _urgent: Optional[Callable[[], bool]] = None
    # Data bytes discarded by the Synch under way.
    _discarded = 0

    def makeConnection(self, transport: Any) -> None:
        # Synch's DM (urgent data) stays in the stream, where it is read.
        # (Set on the connection, before its first read: urgent data that
        # came before is kept too, Linux looks at the flag when reading.)
        urgentInline(transport)
        self._urgent = urgentWatch(transport)
        Protocol.makeConnection(self, transport)

    def urgentAhead(self) -> bool:
        """Whether TCP urgent data is waiting unread: a Synch's DM not read yet."""
        urgent = self._urgent
        return urgent is not None and urgent()

    @property
    def parserState(self) -> ParserState:
        return self._state


    # Input

    def dataReceived(self, data: bytes) -> None:
        if self.inputHeld or self._wireHeld:
            # Held (inputHeld, or the rest of a busy read): after what waits.
            self._wireHeld += data
            return
        ahead = self.urgentAhead()
        if ahead or self.synching:
            self._synchRead(data, ahead)
            return
        if self._state is _DATA:
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
        self._parseRead(data)

    def _parseRead(self, data: bytes) -> None:
        """A read with commands in it parsed: our answers meanwhile gathered and sent once it is (see _endBatch)."""
        outer, self._answers = self._answers, bytearray()
        self._commandsLeft = COMMANDS_PER_TURN
        try:
            self._parse(data)
        finally:
            self._endBatch(outer)

    def _synchRead(self, data: bytes, ahead: bool) -> None:
        """
        A read while a Synch is under way (RFC 854): data is discarded,
        commands are not, up to the DM.  With no urgent data ahead any more
        this read starts at the urgent mark, where the DM is: if it is not
        (urgent data that is no Synch), the Synch ends there all the same
        and the read is handled as any other.
        """
        if ahead:
            self.synching = True
        elif data[:1] != DM_B or (self._state is not _COMMAND and self._state is not _SB_IAC):
            self.telnetIgnored("urgent mark without a DM")
            self._endSynch()
            TelnetProtocol.dataReceived(self, data)
            return
        self._parseRead(data)

    def _endSynch(self) -> None:
        self.synching = False
        discarded, self._discarded = self._discarded, 0
        # (A CR among what was discarded has no NUL to take.)
        self._pendingCR = False
        self.telnetSynched(discarded)

    def _parse(self, data: bytes) -> None:
        # Data pieces between IAC sequences are joined, so that one chunk
        # gives one telnetDataReceived call between commands.
        pieces: list[bytes] = []
        i = 0
        n = len(data)
        while i < n:
            state = self._state
            if state is _DATA:
                # Up to the next IAC that is no doubled one (binary data's
                # 0xff), found by C: a step a doubled IAC took 23-70 ms of
                # the reactor for a 64 KiB read of them with a command in it.
                j = _runEnd(data, i)
                if j > i:
                    run = data[i:j]
                    pieces.append(self._decode(run.replace(IAC_IAC, IAC_B) if IAC_B in run else run))
                if j >= n:
                    break
                i = j + 1
                self._state = _COMMAND
            elif state is _COMMAND:
                byte = data[i]
                i += 1
                self._state = _DATA
                if byte == IAC:
                    pieces.append(self._decode(IAC_B))
                elif WILL <= byte <= DONT:
                    self._negCommand = byte
                    self._state = _OPTION
                elif byte == SB:
                    self._sb = bytearray()
                    self._sbOverflow = False
                    self._state = _SB
                else:
                    self._flush(pieces)
                    if self.inputHeld or self._spent() or self.commandWaits(byte):
                        self._holdFrom(data, i - 1, _COMMAND)
                        return
                    if byte == DM and self.synching and not self.urgentAhead():
                        # The Synch's DM (another Synch under way: its own DM ends it).
                        self._endSynch()
                    self.telnetCommandReceived(byte)
            elif state is _OPTION:
                option = data[i]
                i += 1
                self._state = _DATA
                self._flush(pieces)
                if self.inputHeld or self._spent():
                    self._holdFrom(data, i - 1, _OPTION)
                    return
                self._negotiate(self._negCommand, option)
            elif state is _SB:
                # (The same runs: a subnegotiation left open, fed doubled IACs, was a step each.)
                j = _runEnd(data, i)
                if j > i and not self._sbOverflow:
                    run = data[i:j]
                    self._sbAppend(run.replace(IAC_IAC, IAC_B) if IAC_B in run else run)
                if j >= n:
                    break
                i = j + 1
                self._state = _SB_IAC
            else:  # _SB_IAC: after IAC in a subnegotiation
                byte = data[i]
                if byte == IAC:
                    i += 1
                    self._sbAppend(IAC_B)
                    self._state = _SB
                elif byte == SE:
                    i += 1
                    self._state = _DATA
                    self._flush(pieces)
                    if self.inputHeld or self._spent() or self.subnegotiationWaits(bytes(self._sb[:1])):
                        self._holdFrom(data, i - 1, _SB_IAC)
                        return
                    self._endSubnegotiation()
                else:
                    # IAC <command> inside SB: the SE was lost.  Drop the
                    # subnegotiation and read the command normally.  It
                    # counts as a command (IAC SB again and again, no SE:
                    # a 64 KiB read of it held every line 55 ms).
                    self._flush(pieces)
                    if self.inputHeld or self._spent():
                        self._holdFrom(data, i, _SB_IAC)
                        return
                    self.telnetIgnored("malformed subnegotiation")
                    self._sb = bytearray()
                    self._state = _COMMAND
        self._flush(pieces)

    def _spent(self) -> bool:
        """
        One more command to handle: whether it must wait for a later turn
        (this call's COMMANDS_PER_TURN are spent and the subclass holds the
        rest: telnetBusy).
        """
        self._commandsLeft -= 1
        if self._commandsLeft >= 0:
            return False
        if self.telnetBusy():
            return True
        self._commandsLeft = COMMANDS_PER_TURN
        return False

    def _holdFrom(self, data: bytes, start: int, state: ParserState) -> None:
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
            if self.synching:
                self._discarded += len(data)
            elif data:
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
