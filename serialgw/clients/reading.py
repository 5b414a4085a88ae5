"""
When a client's transport is read: paused for the device (behind: it takes
no input now, or an init-command runs), for the client's own output past
its bound, for a turn of the reactor; a person's client (one with an escape
menu) read on while only the device holds it, what it types waiting
(bounded); a telnet program's read on until it types (its negotiation and
RFC 2217 commands answered: pyserial's open waits for them), what it typed
waiting; and a client not read only for the device looked at for a hang-up.
"""

from __future__ import annotations

import fcntl
import select
import struct
import termios
from typing import TYPE_CHECKING, Any, Callable, Optional

from OpenSSL import SSL

from serialgw.line.role import Role
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# Why a client's transport is not read (InputReading._readingPaused).
DEVICE_BEHIND = 1
OUTPUT_FULL = 2
# The rest of a read waits for the next turn (telnet: COMMANDS_PER_TURN).
BUSY = 4
# The rest of the input waits for the next turn (the escape menu's KEYS_PER_TURN).
ESCAPE_BUSY = 8
# A telnet client's next RFC 2217 command waits for the line's port control (Line.controlReady).
CONTROL_WAIT = 16
# A telnet client's RFC 2217 command waits for what it typed before it to go to the device (see typedGone).
TYPED_WAIT = 32
# Input held while a client's output is full is what one read brings (64
# KiB); past this, its transport is not honouring the pause: it is cut.
HELD_INPUT_LIMIT = 256 * 1024
# What a person (a client with an escape menu) types while the device takes
# no input waits for it, at most this many bytes (and the rest of that
# read); past it the person is not read either (see Session.toLine).
TYPED_AHEAD_LIMIT = 4096
# A client not read only because the device takes no input is looked at
# this often for a hang-up (see InputReading._checkHangUp).
HANGUP_CHECK_SECONDS = 5.0
# What held a client's typing, as the log says it (InputReading._heldBy):
# the device, or an init-command running (the device took input all along).
DEVICE_HELD = "the device took no input"
INIT_HELD = "an init-command held people's typing"
# What a look at a hung-up TLS client reads of its socket at a time, and
# at most in all (see tlsHungUp).  It read all of it before, on the
# reactor: up to the socket's receive buffer (net.ipv4.tcp_rmem's most, 6
# MiB by default, 32 MiB on the machine measured), 2.7-2.9 ms of CPU for 6
# MiB held (AES-GCM); up to its first typing, 0.2-0.3 ms.
TLS_LEFT_READ = 65536
TLS_LOOK_MOST = 4 * TLS_LEFT_READ


def _peerShutDown(fd: int) -> bool:
    """The peer of the socket C{fd} has shut its side down (POLLRDHUP), or all of it (POLLHUP)."""
    poller = select.poll()
    poller.register(fd, select.POLLRDHUP)
    events = poller.poll(0)
    return bool(events and events[0][1] & (select.POLLRDHUP | select.POLLHUP))


def unreadAfterHangUp(transport: Any) -> Optional[int]:
    """
    The peer of C{transport}'s socket has shut its side down (POLLRDHUP, or
    all of it): how many bytes it sent wait unread (FIONREAD; 0: its end of
    file is all there is).  None while it has not, or when that cannot be
    told (no socket: an SSH channel, a pipe; TLS: see L{tlsHungUp}).
    """
    try:
        handle = transport.getHandle()
        if isinstance(handle, SSL.Connection):
            return None
        fd = handle.fileno()
        if not _peerShutDown(fd):
            return None
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except (AttributeError, OSError, ValueError):
        return None


def hungUpWithNothingUnread(transport: Any) -> bool:
    """The peer of C{transport}'s socket has shut its side down and nothing it sent waits unread (see L{unreadAfterHangUp})."""
    return unreadAfterHangUp(transport) == 0


def tlsHungUp(transport: Any) -> Optional[tuple[bytes, bool]]:
    """
    C{transport} is TLS (Twisted's TLSMemoryBIOProtocol) whose peer has
    shut its side of the socket down: what it left unread there (its
    close_notify, and anything it typed before) is read and decrypted
    until the first of its typing, or its end: that typing (what those
    reads held of it: the rest stays in the socket, read as the client's
    own once it is read again), and whether its end was reached with
    nothing typed before it.  None when it is not TLS, its peer is there,
    or that cannot be told.  Over TLS the socket always holds something
    after a peer's orderly close (its close_notify, which under TLS 1.3
    looks like data until decrypted), so FIONREAD cannot tell a hang-up
    from typing that waits.  Bounded: at most TLS_LOOK_MOST bytes read
    (records that hold no typing: the next look goes on from there).
    """
    try:
        connection = transport.getHandle()
        if not isinstance(connection, SSL.Connection):
            return None
        sock = transport.transport.getHandle()
        if not _peerShutDown(sock.fileno()):
            return None
    except (AttributeError, OSError, ValueError):
        return None
    typed: list[bytes] = []
    ended = False
    read = 0
    while not ended and not typed and read < TLS_LOOK_MOST:
        try:
            records = sock.recv(TLS_LEFT_READ)
        except OSError:
            ended = True  # (nothing more: a reset; BlockingIOError, not after its end of file)
            break
        ended = not records
        read += len(records)
        if records:
            connection.bio_write(records)
        while True:
            try:
                typed.append(connection.recv(TLS_LEFT_READ))
            except (SSL.ZeroReturnError, SSL.WantReadError):
                break  # (its close_notify; the rest of a record)
            except SSL.Error:
                ended = True  # (a record that does not decrypt: nothing after it is read)
                break
    data = b"".join(typed)
    return data, ended and not data


def stopCalls(*calls: Any) -> None:
    """Cancel the delayed calls still pending (None, or one that ran or was cancelled: nothing)."""
    for call in calls:
        if call is not None and call.active():
            call.cancel()



class InputReading:
    """
    Mixed into L{serialgw.clients.session.Session}: C{line}, C{transport},
    C{escapeMenu}, C{leaving}, C{role}, C{peer}, C{notice}, C{toLine},
    C{_clock} are its.
    """

    line: Any
    transport: Any
    # (The protocol's: annotated only, so as not to hide a class's own further along.)
    dataReceived: Callable[[bytes], None]
    escapeMenu: Any
    leaving: bool
    role: Role
    peer: str
    # Why the transport is not read: DEVICE_BEHIND | OUTPUT_FULL | ...; a
    # person's (escape menu) is read on while only DEVICE_BEHIND holds and
    # what it typed meanwhile (_typedAhead) is under TYPED_AHEAD_LIMIT; a
    # program whose wire has commands of its own (telnet: commandsReadOn)
    # while it has typed nothing meanwhile (see readOnWhileHeld).
    _readingPaused = 0
    commandsReadOn = False
    _transportPaused = False
    _typedAhead = b""
    # What a TLS client that hung up typed, read to see its hang-up (see _checkHangUp): for the device first.
    _tlsLeft = b""
    # While not read only for the device (DEVICE_BEHIND): the next look for a hang-up.
    _hangUpCall: Any = None
    # It hung up, what it sent waiting for the device: it holds no place in max-clients (Line.full).
    departed = False

    if TYPE_CHECKING:
        # Session's (held to it by tests.test_layers PartStubTests).
        def _clock(self) -> Any: ...
        def notice(self, text: str) -> None: ...
        def toLine(self, data: bytes) -> None: ...

    @property
    def typedWaiting(self) -> int:
        """Bytes this person typed that wait for the device (it takes no input now): see L{toLine}."""
        return len(self._typedAhead)

    def _dropTypedAhead(self, told: bool) -> None:
        """The person (or a TLS client that hung up) goes while what it typed waits for the device: not sent, counted (refused), said."""
        typed, self._typedAhead = self._typedAhead + self._tlsLeft, b""
        self._tlsLeft = b""
        if not typed:
            return
        self.line.refused += len(typed)
        held = self._heldBy()
        log.info("{line}: {peer} left with {count} byte(s) it typed while {held}: not sent",
                 line=self.line.name, peer=self.peer, count=len(typed), held=held)
        if told:
            self.notice(f"{len(typed)} byte(s) you typed were not sent: "
                        + (f"{self.line.name} took no input" if held == DEVICE_HELD else held))

    def _typingLost(self) -> Optional[str]:
        """
        Why typing given the device now would be lost, for people: it is
        down (gone, being opened again, or closed) and holds nothing for a
        first open, so it drops what it is given; None while it takes it.
        Asked as it goes, before the line hears of it: its queue dropped
        lets the writers go, and what people typed meanwhile would follow.
        """
        device = self.line.device
        if device.up or device.holding:
            return None
        return str(device.downReason or "closed")

    def _typedLost(self, typed: bytes, why: str) -> None:
        """
        The device went (C{why}: unplugged, hung up, a link lost, ^] O)
        while what this person typed waited for it: not handed to a device
        that drops it unsaid (counted only as its C{dropped}, and as sent),
        but counted (refused), logged and said, to this person alone; once
        a loss, however much was typed (what waits is bounded: see
        L{TYPED_AHEAD_LIMIT}).
        """
        held = self._heldBy()
        self.line.refused += len(typed)
        log.warn("{line}: {peer}: {count} byte(s) it typed while {held} were not sent: the device went down ({reason})",
                 line=self.line.name, peer=self.peer, count=len(typed), held=held, reason=why)
        cause = f"{self.line.name} took no input, then went down" if held == DEVICE_HELD else \
            f"{held}, then {self.line.name} went down"
        self.notice(f"{len(typed)} byte(s) you typed were not sent: {cause} ({why})")

    def holdsTypedAhead(self) -> bool:
        """Whether what this client types while the device holds it (DEVICE_BEHIND) waits here (read on: see L{readOnWhileHeld})."""
        return self.escapeMenu is not None or (self.commandsReadOn and self.line.initHoldsTyping())

    def readOnWhileHeld(self) -> bool:
        """
        Whether this client is read while only the device holds its typing
        (DEVICE_BEHIND): a person's (escape menu) until TYPED_AHEAD_LIMIT
        bytes of typing wait; a telnet program's while an init-command holds
        it (seconds: the device behind is kept to TCP's flow control) until
        it has typed anything: its negotiation and RFC 2217 commands are
        answered meanwhile (pyserial's open gave up before the command
        ended); what it typed waits here (at most a read's), and its hang-up
        is looked for as a program's not read is, that typing kept for the
        device (L{_checkHangUp}).
        """
        if self.escapeMenu is not None:
            return len(self._typedAhead) < TYPED_AHEAD_LIMIT
        return self.commandsReadOn and not self._typedAhead and self.line.initHoldsTyping()

    def _heldBy(self) -> str:
        """
        What keeps this client's typing from the device now, for the log:
        the device (it takes no input), or the line's init-command (it holds
        people's typing while it runs, the device taking input).
        """
        return INIT_HELD if self.line.initHoldsTyping() else DEVICE_HELD

    # Reading the client: paused while the device is behind (the line's
    # pauseInput) or while the client's own output is past its bound.

    def _pauseReading(self, why: int) -> None:
        self._readingPaused |= why
        self._applyPause()

    def _resumeReading(self, why: int) -> None:
        if self._readingPaused & why:
            self._readingPaused &= ~why
            self._applyPause()

    def _applyPause(self) -> None:
        """The transport read or not, as C{_readingPaused} (and what a person typed ahead) say."""
        why = self._readingPaused
        if why == DEVICE_BEHIND and self.readOnWhileHeld():
            why = 0
        if bool(why) != self._transportPaused:
            self._transportPaused = bool(why)
            if why:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()
        # Not read only because the device takes no input (for ever, on a
        # console that reads nothing): its hang-up is looked for.  So for a
        # person's RFC 2217 command waiting behind its own typing for that
        # device (TYPED_WAIT): it waits as long.
        watch = (why & ~TYPED_WAIT) == DEVICE_BEHIND and not self.leaving
        clock = self._clock()
        if watch and self._hangUpCall is None and clock is not None:
            self._hangUpCall = clock.callLater(HANGUP_CHECK_SECONDS, self._checkHangUp)
        elif not watch and self._hangUpCall is not None:
            stopCalls(self._hangUpCall)
            self._hangUpCall = None

    def _checkHangUp(self) -> None:
        """
        A client not read while the device takes no input that has hung up
        with nothing it sent left unread goes now, as it would have at its
        end of file: it held its place in max-clients (64 visits to a stuck
        console filled the line) and its descriptor until the device took
        input.  One with input unread stays: that input goes to the device.
        Over TLS, where its close_notify is always left unread, what it
        left is read and decrypted up to its first typing to be told from
        its close (it was never reaped: 3 such clients stayed attached for
        good): one that typed nothing goes; one whose typing waits stays as
        a raw one does, the typing read (L{_tlsLeft}) going to the device
        first once it takes input, the rest read from its socket after it.
        So does a telnet program whose typing was read with its commands
        (L{readOnWhileHeld}): that typing waits here for the device.
        """
        self._hangUpCall = None
        if self._tlsLeft:
            return  # (its hang-up seen: it waits for the device with what it typed)
        unread = unreadAfterHangUp(self.transport)
        left = (b"", True) if unread == 0 else tlsHungUp(self.transport)
        # A program's typing, read with its commands, waits here: the device's, as what its socket holds is.
        kept = len(self._typedAhead) if self.escapeMenu is None else 0
        if kept and left == (b"", True):
            if not self.departed:
                self._depart(f"{kept} byte(s) it sent wait")
            self._applyPause()
        elif left is None or not (left[0] or left[1]):
            if unread and not self.departed:
                self._depart(f"{unread + kept} byte(s) it sent wait")
            self._applyPause()
        elif not left[0]:
            log.info("{line}: {peer} hung up while {held} (nothing it sent was left unread): it goes now",
                     line=self.line.name, peer=self.peer, held=self._heldBy())
            self.transport.abortConnection()
        else:
            # Over TLS its typing is read to tell it from its close: held
            # here (at most a look's reads) for the device, ahead of the rest.
            self._tlsLeft = left[0]
            self._depart("what it sent waits")

    def _depart(self, what: str) -> None:
        """
        It hung up with what it sent waiting for the device: that still goes
        to the device, then it goes; meanwhile its place in max-clients is
        free (a newcomer was refused "full" until a stuck device took its
        typing, as ser2net and conserver free it at the hang-up).  Bounded:
        the line keeps at most max-clients of them (L{Line.leftTyping}).
        """
        self.departed = True
        log.info("{line}: {peer} hung up while {held}: {what} for the device, then it goes (its place is free)",
                 line=self.line.name, peer=self.peer, held=self._heldBy(), what=what)
        self.line.leftTyping(self)

    def dropLeftTyping(self, why: str) -> None:
        """It hung up and what it sent waits, past the line's bound (L{Line.leftTyping}): not sent, counted (refused), said; it goes."""
        # (Over TLS, what the look read of its typing is held here: its socket's count is not known.)
        unread = (unreadAfterHangUp(self.transport) or 0) + len(self._tlsLeft)
        self._tlsLeft = b""
        self.line.refused += unread
        log.info("{line}: {peer}'s {count} unread byte(s) not sent: {why}", line=self.line.name, peer=self.peer,
                 count=unread, why=why)
        self.transport.abortConnection()
        # Off the line now, not when its connection is lost (next turn): no longer one that waits (Line.leftTyping).
        self.line.detach(self)

    def pauseInput(self) -> None:
        self._pauseReading(DEVICE_BEHIND)

    def resumeInput(self) -> None:
        # What a person typed meanwhile goes first (refused if it lost write
        # meanwhile); the line may find the device behind again at once (an
        # earlier client's typing, in the same pass): then a writer waits on.
        if self.role is Role.WRITER and not self.line.writable:
            return
        typed, self._typedAhead = self._typedAhead, b""
        self._readingPaused &= ~DEVICE_BEHIND
        if typed and not self.leaving:
            gone = self._typingLost()
            if gone is None:
                self.toLine(typed)
            else:
                self._typedLost(typed, gone)
        left, self._tlsLeft = self._tlsLeft, b""
        if left and not self.leaving:
            self.dataReceived(left)  # (as its transport would have handed it on: telnet's commands too)
        self.typedGone()
        self._applyPause()

    def typedGone(self) -> None:
        """What this person typed while the device took no input has gone to the line: a command held behind it may go."""
