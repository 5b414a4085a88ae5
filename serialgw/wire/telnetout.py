"""
The telnet codec's output (L{serialgw.wire.telnet}): data escaped for the
wire (IAC doubled; outside BINARY, a CR's LF or NUL chosen across writes),
our own telnet bytes gathered while a read is parsed, and the Synch.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable, Optional

from serialgw.wire.sockets import (
    dropsOnAbort,
    queuedBytes,
    sendUrgent,
    sendUrgentLater,
    takeQueued,
    urgentCapable,
    writeNow,
)
from serialgw.wire.telnetcodes import BINARY, CR, DM, IAC, IAC_B, IAC_IAC, SB, SE

# Before a Synch's IAC DM when queued output was dropped (see _sendSynchNow).
RESYNC = bytes((0, IAC, SE))

ANSWER_BATCH = 4096
# Outside BINARY, a CR that ends a write is sent at once and its follower
# (LF or NUL) chosen by the next byte: that byte may come in the next read
# of the device (a CR LF split across reads went as CR NUL LF).  If none
# comes within this many seconds, the NUL goes alone: a peer that acts on a
# CR only once it has the byte after it (Twisted's telnet) is not left
# waiting for the next key (L{TelnetOutput.crClock}).  At 1200 baud a
# byte takes 8.3 ms.
CR_WAIT = 0.01


def keptOfQueued(queued: bytes, sent: int, ours: Iterable[tuple[int, int]]) -> tuple[bytes, bytes, int]:
    """
    What an AO keeps of the bytes C{queued} for the peer, which begin at
    stream position C{sent} (where what the kernel has ends), our own
    telnet bytes being at C{ours} (start, end) in the stream: the rest of
    one of ours the kernel has begun (the peer is inside it), ours wholly
    queued (in order), and how many bytes are dropped (the console's).
    """
    head = b""
    kept = bytearray()
    for start, end in ours:
        if end <= sent:
            continue
        if start < sent:
            head = queued[:end - sent]
        else:
            kept += queued[start - sent:end - sent]
    return head, bytes(kept), len(queued) - len(head) - len(kept)


class TelnetOutput:
    """What the codec sends; L{serialgw.wire.telnet.TelnetProtocol} is one."""

    transport: Any
    # While parsing: our answers, written in pieces of ANSWER_BATCH (a
    # flood of 3-byte answers written one by one would cost the transport a
    # buffer entry each, several times the bytes).
    _answers: Optional[bytearray] = None
    # Outside our BINARY: the last data byte sent was a CR whose LF or
    # NUL depends on the next byte (writeData).
    _sentCR = False
    # Bytes of our stream handed to the transport (less what an AO took
    # back), and where our own telnet bytes (answers, commands,
    # subnegotiations) are in it while they may wait in Twisted's buffers
    # of a plain TCP connection, among console output an AO drops: a
    # client may be waiting for them (RFC 854: commands in what a Synch
    # discards are still acted on).  (start, end) spans, adjacent ones
    # merged, those the kernel has taken forgotten at the next.
    _streamed = 0
    _ours: Optional[deque[tuple[int, int]]] = None

    if TYPE_CHECKING:
        # TelnetOptions' (held to it by tests.test_layers PartStubTests).
        def localEnabled(self, option: int) -> bool: ...

    def writeData(self, data: bytes) -> None:
        """Send data to the peer, escaped for the wire."""
        if not data:
            return
        if IAC_B in data:
            data = data.replace(IAC_B, IAC_IAC)
        if self._sentCR:
            # The CR that ended the last chunk: its LF is this one's first
            # byte, or it needs its NUL (in BINARY since: neither).
            self._sentCR = False
            if data[:1] != b"\n" and not self.localEnabled(BINARY):
                data = b"\0" + data
        if CR in data and not self.localEnabled(BINARY):
            # NVT: a CR not followed by LF goes as CR NUL; one at the end
            # waits for the next chunk to know (a CR LF from the device
            # split across reads went as CR NUL LF).
            data = data.replace(b"\r", b"\r\0").replace(b"\r\0\n", b"\r\n")
            if data.endswith(b"\r\0"):
                data = data[:-1]
                self._sentCR = True
        self._streamed += len(data)
        writeNow(self.transport, data)
        if self._sentCR:
            self._waitForCR()
        elif self._crWaits is not None:
            self._crWaits.remove(self)

    # Where this codec's CR waits for its follower (crClock), if it does.
    _crWaits: Optional[CRWaits] = None

    def crClock(self) -> Any:
        """
        The clock that sends the NUL of a CR ending a write after CR_WAIT
        if nothing follows it by then; None (this default, for a codec
        without a reactor): it waits for the next write.
        """
        return None

    def _waitForCR(self) -> None:
        waits = self._crWaits
        if waits is None:
            clock = self.crClock()
            if clock is None:
                return
            waits = self._crWaits = CRWaits.of(clock)
        waits.add(self)

    def stopWaitingForCR(self) -> None:
        """The connection is gone: no CR's NUL to send."""
        if self._crWaits is not None:
            self._crWaits.remove(self)

    def _crWaited(self) -> None:
        if self._sentCR:
            self._sendCRNul()

    def _sendCRNul(self) -> None:
        """The CR that ended the last write gets its NUL now (none if we are in BINARY since)."""
        self._sentCR = False
        if self._crWaits is not None:
            self._crWaits.remove(self)
        if not self.localEnabled(BINARY):
            self._streamed += 1
            writeNow(self.transport, b"\0")

    def sendCommand(self, command: int) -> None:
        self._answer(bytes((IAC, command)))

    # A Synch asked for while parsing: sent once the read is parsed.
    _synchOwed = False

    def sendSynch(self) -> None:
        """
        The answer to AO (RFC 854; RFC 1123 3.2.4: a server MUST answer AO
        with a Synch, to flush the output stream): on plain TCP, what is
        queued for the peer and not yet handed to the kernel is dropped
        (L{outputAborted} is told how much), then IAC DM goes with the DM as
        TCP urgent data, at once or, with the kernel full, as soon as it has
        room (what is written meanwhile after it); the peer drops the data
        before the DM.  Elsewhere (TLS, a unix socket: no urgent data)
        nothing is dropped and IAC DM goes in the stream, a NOP.  Asked for
        while a read is parsed, one is sent after it, however many were
        asked: a flood of AO is not a send each; our answers to that read
        follow it.
        """
        if self._answers is not None:
            self._synchOwed = True
            return
        self._sendSynchNow()

    def outputAborted(self, discarded: int) -> None:
        """A Synch dropped C{discarded} bytes queued for the peer (to count or log)."""

    def _sendSynchNow(self) -> None:
        self._synchOwed = False
        queued = takeQueued(self.transport)
        head = kept = b""
        discarded = 0
        if queued is not None:
            # Of what waits, console output is dropped; our own telnet bytes go again, before the DM.
            self._streamed -= len(queued)
            head, kept, discarded = keptOfQueued(queued, self._streamed, self._ours or ())
            if self._ours:
                self._ours.clear()
        if discarded and self._sentCR:
            # (The CR waiting for its LF or NUL was the last byte queued: dropped too.)
            self._sentCR = False
            if self._crWaits is not None:
                self._crWaits.remove(self)
        if self._sentCR:
            self._sendCRNul()
        # What the kernel has may end inside a telnet sequence the drop cut
        # (IAC IAC, a CR's NUL; one of ours it ends with goes on: head): a
        # NUL and IAC SE end any of them (a NUL after a lone IAC is an
        # unknown command, IAC SE outside an SB one ignored, and the peer
        # drops the data before the DM).
        synch = head + (RESYNC if discarded else b"") + kept + bytes((IAC, DM))
        if discarded:
            self.outputAborted(discarded)
        if not sendUrgent(self.transport, synch):
            if not urgentCapable(self.transport):
                self._answer(synch)
                return
            # (The kernel full, or a CR's NUL queued before it.)
            sendUrgentLater(self.transport, synch)
        start = self._streamed
        self._streamed += len(synch)
        # Ours in it are ours still: a second AO while it waits keeps them.
        if head:
            self._noteOurs(start, start + len(head))
        if kept:
            self._noteOurs(self._streamed - 2 - len(kept), self._streamed - 2)

    def sendSubnegotiation(self, option: int, payload: bytes) -> None:
        self._answer(bytes((IAC, SB, option)) + payload.replace(IAC_B, IAC_IAC) + bytes((IAC, SE)))

    def _answer(self, data: bytes) -> None:
        """Our own telnet bytes (negotiation, commands, subnegotiations, short answers)."""
        if self._sentCR:
            # Nothing but LF or NUL may follow a CR (RFC 854): its NUL first.
            self._sendCRNul()
        answers = self._answers
        if answers is None:
            self._writeOurs(data)
            return
        answers += data
        if len(answers) >= ANSWER_BATCH:
            self._flushAnswers()

    def _flushAnswers(self) -> None:
        answers = self._answers
        if answers:
            self._answers = bytearray()
            if self._sentCR:
                # Data ending in CR was written since they were gathered.
                self._sendCRNul()
            self._writeOurs(bytes(answers))

    def _writeOurs(self, data: bytes) -> None:
        """Our own telnet bytes to the transport, where they are in the stream kept (see C{_ours})."""
        start = self._streamed
        self._streamed = start + len(data)
        self.transport.write(data)
        if dropsOnAbort(self.transport):
            self._noteOurs(start, self._streamed)
        self.oursWritten(len(data))

    def oursWritten(self, count: int) -> None:
        """
        C{count} bytes of our own (answers, commands, subnegotiations) went
        to the transport: a subclass counts them (a client's answer budget).
        """

    def _noteOurs(self, start: int, end: int) -> None:
        """Ours at C{start}..C{end} of the stream; those the kernel has taken forgotten."""
        ours = self._ours
        if ours is None:
            ours = self._ours = deque()
        sent = self._streamed - queuedBytes(self.transport)
        while ours and ours[0][1] <= sent:
            ours.popleft()
        if end <= sent:
            return
        if ours and ours[-1][1] == start:
            ours[-1] = (ours[-1][0], end)
        else:
            ours.append((start, end))

    def _endBatch(self, outer: Optional[bytearray]) -> None:
        """A read is parsed: a Synch it asked for goes (dropping what was queued before it), then our answers gathered meanwhile."""
        if self._synchOwed and outer is None:
            answers, self._answers = self._answers, None
            self._sendSynchNow()
            if answers:
                self._answer(bytes(answers))
            return
        self._flushAnswers()
        self._answers = outer


class CRWaits:
    """
    The codecs of one clock whose CR waits for its follower (CR_WAIT), and
    one timed call for all of them: a call each cost 11 us a client for a
    chunk ending in CR sent to 500 clients outside BINARY (a callLater and
    its cancel), against 3 us to write it.
    """

    _ofClock: weakref.WeakKeyDictionary[Any, CRWaits] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, clock: Any) -> CRWaits:
        waits = cls._ofClock.get(clock)
        if waits is None:
            waits = cls._ofClock[clock] = cls(clock)
        return waits

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        # Each codec waiting and when its wait ends, in that order.
        self.waiting: dict[TelnetOutput, float] = {}
        self._call: Any = None

    def add(self, codec: TelnetOutput) -> None:
        """C{codec}'s CR waits CR_WAIT from now (again, if it waited)."""
        waiting = self.waiting
        waiting.pop(codec, None)
        waiting[codec] = self.clock.seconds() + CR_WAIT
        if self._call is None:
            self._call = self.clock.callLater(CR_WAIT, self._due)

    def remove(self, codec: TelnetOutput) -> None:
        """C{codec}'s CR has its follower (or its connection is gone)."""
        waiting = self.waiting
        if waiting.pop(codec, None) is not None and not waiting and self._call is not None:
            call, self._call = self._call, None
            if call.active():
                call.cancel()

    def _due(self) -> None:
        self._call = None
        now = self.clock.seconds()
        waiting = self.waiting
        while waiting:
            codec, end = next(iter(waiting.items()))
            if end > now:
                self._call = self.clock.callLater(end - now, self._due)
                return
            del waiting[codec]
            codec._crWaited()
