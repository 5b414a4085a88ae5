"""
What every network client of a line shares, whatever its protocol: its
peer's name, joining and leaving the line, the bound on output queued
towards it (L{OutputGuard}), an idle timeout and TCP keepalive.
How it ends (told to go, cut, its connection gone) is
L{serialgw.clients.sessionend}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from serialgw.clients.escape import EscapeMenu, keyName, settingsShown
from serialgw.clients.guard import OutputGuard
from serialgw.clients.reading import DEVICE_BEHIND, ESCAPE_BUSY, HELD_INPUT_LIMIT, OUTPUT_FULL

# (CLOSE_GRACE's home is sessionend; clients/sshsession.py and sshtransport.py, conv31's ground in s31, still import it
# from here: it goes once they take it from sessionend.)
from serialgw.clients.sessionend import SessionEnd
from serialgw.clients.tls import peerSubject
from serialgw.clients.transports import cameIn, peerName
from serialgw.config.banner import fillBanner
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.sshkeys import printable
from serialgw.line.role import Role
from serialgw.logflood import Peer, clientLog
from serialgw.wire.sockets import noDelay

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# A connection that says nothing and leaves within this many seconds (a load
# balancer's health check, a port scan) is not announced to the others.
QUIET_SECONDS = 1.0
# A watcher or read-only person who types is told at most this often that
# the input is not sent.
NOT_SENT_INTERVAL = 10.0
# Log lines about a connection not announced yet wait for its arrival's
# (Session.logInOrder); at most this many, the rest left out.
HELD_LOG_LINES = 8
# Sessions one person (an SSH key's owner, a TLS certificate's CN) may have
# on one line at once: a person, a read-only one too, filled a line's
# max-clients (64) and kept its writers out.
PERSON_SESSIONS_PER_LINE = 8


def sessionsOf(line: Any, user: str) -> int:
    """How many of C{line}'s people are C{user}'s sessions."""
    return sum(1 for c in line.clients if c.person and c.user == user)


def setUpConnection(client: Any, source: Any, transport: Any, spec: ListenerSpec, clock: Any,
                    onIdle: Callable[[], None], fanOut: Any = None) -> tuple[OutputGuard, Any]:
    """
    What a listener's spec sets on each of its connections: the output
    guard (outbuf, policy; C{source} is paused by policy=block; C{fanOut}:
    see L{OutputGuard}), TCP_NODELAY, keepalive, and the idle timer.  The
    guard, and the idle timer's delayed call (None: no idle=, or no clock).
    """
    guard = OutputGuard(client, source, spec.outbuf, spec.policy, fanOut)
    guard.attach(transport)
    if spec.nodelay:
        noDelay(transport)
    # TCP transports (Twisted's, or an SSH channel's over one) have it; others do not.
    if spec.keepalive and hasattr(transport, "setTcpKeepAlive"):
        transport.setTcpKeepAlive(True)
    idleCall = clock.callLater(spec.idle, onIdle) if spec.idle and clock is not None else None
    return guard, idleCall


class Session(SessionEnd):
    """
    Mixed into a client protocol that has C{line}, C{transport},
    C{listener} (a ListenerSpec or None) and C{clock}.
    """

    line: Any
    transport: Any
    deliver: Callable[[bytes], None]
    listener: Any = None
    clock: Any = None
    guard: Optional[OutputGuard] = None
    _idleCall: Any = None
    _introCall: Any = None
    # The turn that handles input held by the escape menu (holdUntilNextTurn).
    _turnCall: Any = None
    # Joined: its text waits for device output cut short (TextGate).
    _started = False
    _notSentAt: Optional[float] = None
    # Log lines about it while it is not announced yet (logInOrder).
    _heldLog: Optional[list[Callable[[], None]]] = None
    peer: str = "?"
    # The person, when known by name (an SSH key's owner, a TLS certificate's CN).
    user: Optional[str] = None
    # A name given by whoever made the client (stdio, pipe:PATH), for a
    # transport whose peer address says nothing.
    fixedPeer: Optional[str] = None
    role: Role = Role.WRITER
    # A by-name listener's client: what the line's own listeners (given) let
    # it do now (None nothing, True read, False write; see clients.bynameown.throughOwn).
    ownListeners: Optional[Callable[[Sequence[Any]], Optional[bool]]] = None

    # A network client: counts for max-clients, exclusive mode, notices.
    person = True
    # Its arrival starts a line that waits for its first client.
    wakesLine = True
    # A dial-out's: the gateway made the connection (see IClient.dialled).
    dialled = False
    # Its listener's log budget, given by its factory (see IClient.logBudget).
    logBudget: Optional[str] = None
    # RFC 2217 control: telnet's, once negotiated (see TelnetClient).
    comPort: Any = None
    # Announced to the others only once it sends something or has stayed
    # QUIET_SECONDS (a connection from a listener, where a clock is known).
    quietStart = True
    escapeMenu: Optional[EscapeMenu] = None
    # Input held back while the client's output is past its bound and its
    # answer budget spent (see OutputGuard), or for the escape menu's next
    # turn: reading stops, and what was read but not handled yet (after the
    # wire layer, before the escape menu) waits in _heldInput.
    inputHeld = False
    _heldInput = b""

    def describePeer(self) -> str:
        """This client in notices and logs: its address (a person's name too, where known)."""
        return self.fixedPeer or peerName(self.transport)

    def startSession(self) -> None:
        """
        Join the line.  A start that fails leaves the client fully gone
        (detached, connection aborted), never half attached.
        """
        try:
            self._startSession()
        except Exception:
            log.failure("{line}: starting the session of {peer} failed; it is disconnected",
                        line=self.line.name, peer=self.peer)
            self.endSession()
            self.transport.loseConnection()

    def _startSession(self) -> None:
        # One object a connection: its own log budget (logflood.Peer).
        self.peer = Peer(self.describePeer())
        spec = self.listener
        key = None if spec is None else spec.escape
        if key is not None:
            self.escapeMenu = EscapeMenu(self, key, qemuKeys=spec is not None and spec.qemuKeys)
        if spec is not None and spec.tls is not None:
            # Over TLS a session starts once the handshake is done and the
            # certificate verified (tls.HandshakeGate): its subject names the
            # peer and, with readonly=, decides the role before the line sees
            # the client (so exclusive mode counts it right).
            self._certified(spec.tls)
        if spec is not None:
            # Full with policy drop, deliver (see mayDeliver) only holds:
            # the line passes this client by then.
            self.guard, self._idleCall = setUpConnection(self, self.line, self.transport, spec, self.clock,
                                                         self._idleTimeout, fanOut=self.line)
        # A connection from a listener is announced once it says something
        # or has stayed QUIET_SECONDS.
        clock = self._clock()
        quiet = self.quietStart and spec is not None and clock is not None
        self.line.attach(self, quiet=quiet)
        if quiet:
            self._introCall = clock.callLater(QUIET_SECONDS, self.introduce)
        if spec is not None and self.line.banner is not None and (spec.banner or self.wantsNotices()):
            # The line's own, to people (and where asked for by name): ser2net's banner.  (A dial-out came
            # in on no port: its own end's is a new one each time it dials.)
            port = "" if self.dialled else cameIn(self.transport)
            self.sendText(fillBanner(self.line.banner, self.line.name, self.line.device.name,
                                     settingsShown(self.line), port).encode("utf-8", "replace"))
        elif spec is not None and spec.banner:
            # Asked for by name: sent where notices are off too (raw's default, no-notices).
            self.say(f"{self.line.name}: {settingsShown(self.line)}, you are {self.role.value}; "
                     f"also here: {self.line.who(exclude=self)}"
                     + (f"; escape key {keyName(self.escapeMenu.key)}" if self.escapeMenu else ""))
        self._started = True
        limit = self.guard.bound if self.guard is not None else None
        early = self.line.takeEarlyOutput(self, limit)
        if spec is not None and spec.replay:
            self.deliverKept(self.line.backlog(limit))
        elif early:
            self.deliverKept(early)

    def deliverKept(self, data: bytes) -> None:
        """
        Kept device output (the replay backlog, the early output): at most
        the newest C{outbuf} bytes, what the client may have waiting (the
        whole of a 64 MiB backlog was queued for every client that asked),
        from the first whole UTF-8 character.
        """
        guard = self.guard
        if guard is not None and len(data) > guard.bound:
            data = data[len(data) - guard.bound:]
        # Cut (here, or by the backlog's size) inside a UTF-8 character: it
        # starts at the next whole one (at most 3 continuation bytes skipped).
        skip = 0
        while skip < 3 and skip < len(data) and 0x80 <= data[skip] < 0xC0:
            skip += 1
        self.deliver(data[skip:] if skip else data)

    def _clock(self) -> Any:
        return self.clock if self.clock is not None else self.line.clock

    def introduce(self) -> None:
        """This client said something, or stayed: the others are told it is here (once)."""
        if self._introCall is not None:
            if self._introCall.active():
                self._introCall.cancel()
            self._introCall = None
            self.line.introduce(self)
            self._writeHeldLog()

    def logInOrder(self, emit: Callable[[], None]) -> None:
        """
        A log line about this client (its output guard's: it fell behind,
        caught up): written now, or, while it is not announced yet, once its
        arrival is logged (or its going, if it leaves unannounced), so that
        the log tells what happened to it in order.  At most HELD_LOG_LINES
        wait; more are left out (each is also in the client's log budget).
        """
        if self._introCall is None:
            emit()
            return
        if self._heldLog is None:
            self._heldLog = []
        if len(self._heldLog) < HELD_LOG_LINES:
            self._heldLog.append(emit)

    def _writeHeldLog(self) -> None:
        held, self._heldLog = self._heldLog, None
        for emit in held or ():
            emit()

    def fromPeer(self, data: bytes) -> None:
        """A read of the client's input (a new turn for the escape menu): see L{handleInput}."""
        if self.escapeMenu is not None and not self.inputHeld:
            self.escapeMenu.newTurn()
        self.handleInput(data)

    def handleInput(self, data: bytes) -> None:
        """Data from the client: through the escape menu, then to the line."""
        if self.inputHeld:
            # At most what one read brought: the transport is not read now.
            self._heldInput += data
            if len(self._heldInput) > HELD_INPUT_LIMIT:
                # A transport that goes on reading (an SSH channel): cut.
                log.warn("{line}: {peer} sent {count} bytes while not reading its output: disconnected",
                         line=self.line.name, peer=self.peer, count=len(self._heldInput))
                self._heldInput = b""
                self.transport.abortConnection()
            return
        if self._idleCall is not None:
            self.touch()
        if self._introCall is not None:
            self.introduce()
        if self.escapeMenu is not None:
            data = self.escapeMenu.filter(data)
            if not data:
                return
        self.toLine(data)

    def toLine(self, data: bytes) -> None:
        """
        Typed data for the device (the escape menu's too): a watcher's or
        read-only person's is refused, and said.  A person's, while the
        device takes no input, waits for it (read on for its escape
        commands: ^] s, d, o, b were never read, nor its leaving seen); so
        does a telnet program's (read on for its negotiation: see
        L{readOnWhileHeld}).
        """
        if self._readingPaused & DEVICE_BEHIND and self.holdsTypedAhead():
            self._typedAhead += data
            if len(self._typedAhead) > HELD_INPUT_LIMIT:
                # A transport that goes on reading (an SSH channel): cut.
                self._heldInput = b""
                self.inputHeld = True
                self.transport.abortConnection()
            self._applyPause()
            return
        if not self.line.clientData(self, data):
            self._notSent()

    def _notSent(self) -> None:
        """
        A watcher or read-only person typed, or anyone on a line let go (the
        gateway stopping): say once (then at most every NOT_SENT_INTERVAL s)
        that it goes nowhere.
        """
        clock = self._clock()
        now = clock.seconds() if clock is not None else 0.0
        # (A clock stepped back is no interval: that kept the notice back until the clock was there again.)
        if self._notSentAt is not None and 0 <= now - self._notSentAt < NOT_SENT_INTERVAL:
            return
        self._notSentAt = now
        if self.role is Role.WATCHER:
            if self.escapeMenu is not None:
                hint = f"; {keyName(self.escapeMenu.key)} t takes write"
            else:
                # No way to take write from here (it was not said, and a watcher stayed one for good once the
                # writer had gone): a person who connects while nobody writes writes (Line.attach).
                writer = self.line.writer
                hint = (f"; {writer.peer} writes (no escape menu here to take write: connect again once nobody writes)"
                        if writer is not None else
                        "; nobody writes now (no escape menu here to take write: connect again to write)")
            self.notice(f"you only watch: what you type is not sent to {self.line.name}{hint}")
        elif self.role is Role.READONLY:
            self.notice(f"read-only: what you type is not sent to {self.line.name}")
        else:
            self.notice(f"{self.line.name} is closing: what you type is not sent")

    def wantsNotices(self) -> bool:
        spec = self.listener
        if spec is not None and spec.notices is not None:
            return bool(spec.notices)
        return self.defaultNotices()

    def defaultNotices(self) -> bool:
        # A client with an escape menu is a person at a terminal (a raw
        # one too: socat, QEMU's mon:); others are programs (raw, RFC 2217).
        return self.escapeMenu is not None and bool(self.line.notices)

    def notice(self, text: str) -> None:
        """
        A line of text for the person at this terminal about its own doing
        (an escape command's answer, why what it typed was refused): to
        anyone with an escape menu, whatever its listener says of notices.
        An answer: past the client's output bound it goes out of its answer
        budget (L{sendAnswer}).
        """
        if self.wantsNotices() or self.escapeMenu is not None:
            self.sendAnswer(f"\r\n[serialgw: {text}]\r\n".encode("utf-8", "replace"))

    def announcement(self, text: str) -> None:
        """
        News of the line (someone attached, detached, took write): only as
        the listener's notices / no-notices say (by default, people at
        terminals): C{no-notices} with an escape menu, or an RFC 2217
        program given one, had them in its data.
        """
        if self.wantsNotices():
            self.say(text)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        """The device went or came back: said as the line's news is (a raw client with notices heard nothing)."""
        if notice and self.wantsNotices():
            self.sendText(notice)

    def say(self, text: str) -> None:
        """A line of text for this client, whether or not it takes notices."""
        self.sendText(f"\r\n[serialgw: {text}]\r\n".encode("utf-8", "replace"))

    def sendText(self, data: bytes) -> None:
        """
        Text for the client (a notice, an answer): while it is past its
        output bound, it waits with held device output (bounded, the
        oldest dropped).
        """
        # (A client starting never had the device output its text would break.)
        if not (self._started and self.line.textGate.hold(self, self._sendTextNow, data)):
            self._sendTextNow(data)

    def _sendTextNow(self, data: bytes) -> None:
        guard = self.guard
        if guard is not None and guard.full:
            guard.hold(data)
        else:
            self.writeText(data)

    def sendAnswer(self, data: bytes) -> None:
        """
        Text answering the client's own input (an escape command's answer,
        why its typing was refused): as L{sendText}, but past its output
        bound it does not wait with the held output: it goes now, out of
        the answer budget (L{answered}).
        """
        if not (self._started and self.line.textGate.hold(self, self._sendAnswerNow, data)):
            self._sendAnswerNow(data)

    def _sendAnswerNow(self, data: bytes) -> None:
        guard = self.guard
        if guard is not None and guard.full and self.answersWait():
            guard.hold(data)
            return
        self.writeText(data)
        self.answered(len(data))

    def answersWait(self) -> bool:
        """
        Whether answers past the bound wait with the held output instead (a
        client whose input nothing but such notices answers is never held:
        a raw one without an escape menu).
        """
        return False

    def answered(self, count: int) -> None:
        """
        C{count} bytes answering the client's input went to its transport:
        past its bound (the write that passed it too) they are the answer
        budget's (L{OutputGuard.spendAnswer}); once it is spent, nothing
        more is read or handled until the client has taken its output.
        """
        guard = self.guard
        if guard is not None and guard.spendAnswer(count) and not self.inputHeld and not self.answersWait():
            self.inputHeld = True
            self._pauseReading(OUTPUT_FULL)

    def writeText(self, data: bytes) -> None:
        self.transport.write(data)

    def holdInput(self) -> None:
        """
        The guard: output past the bound.  The client is read on: its typing
        reaches the device at once, and what it is answered comes out of the
        answer budget (L{answered}), past which it is held.  With
        policy=disconnect it is being cut: nothing more it sent is handled.
        """
        guard = self.guard
        if guard is not None and guard.policy == "disconnect" and not self.inputHeld:
            self.inputHeld = True
            self._pauseReading(OUTPUT_FULL)

    def releaseInput(self) -> None:
        """The guard: output drained; what was held is handled, then reading goes on."""
        if self.leaving:
            return
        self._handleHeldInput()

    def _handleHeldInput(self) -> None:
        self.inputHeld = False
        held, self._heldInput = self._heldInput, b""
        if held:
            self.fromPeer(held)
        if not self.inputHeld:
            self.releaseWire()
        if not self.inputHeld:
            self._resumeReading(OUTPUT_FULL)

    def releaseWire(self) -> None:
        """Handle input the wire layer held back (telnet: bytes not parsed yet)."""

    def holdUntilNextTurn(self) -> bool:
        """
        The escape menu has handled what one read may (KEYS_PER_TURN): the
        rest of the input is held, and the client not read, until a later
        turn of the reactor.  False without a clock: it is handled now.
        """
        clock = self._clock()
        if clock is None:
            return False
        self.inputHeld = True
        self._pauseReading(ESCAPE_BUSY)
        if self._turnCall is None:
            self._turnCall = clock.callLater(0, self._nextTurnOfInput)
        return True

    def _nextTurnOfInput(self) -> None:
        self._turnCall = None
        if (self.guard is None or not self.guard.answersSpent) and not self.leaving:
            # (Its answer budget spent: the guard releases the input once it drains.)
            self._handleHeldInput()
        if self._turnCall is None:
            self._resumeReading(ESCAPE_BUSY)

    def _certified(self, tls: Any) -> None:
        subject = peerSubject(self.transport)
        if subject:
            # Shown to everyone on the line: a CN's control characters (CR LF, ESC) wrote fake notices there.
            self.peer = Peer(f"{self.peer} ({printable(subject)})")
        if not tls.hostname and tls.ca:
            # A client certificate names a person; a dial-out's (the server
            # we verified as tls.hostname) does not.  One without a CN is a
            # person too, named "" (the line's write / read let it in by
            # "*" only, and a reload's new ones apply to it: left as no
            # user, it wrote on after a reload gave the line write = [...]).
            self.user = subject
        if tls.readOnlySubjects:
            if subject in tls.readOnlySubjects:
                self.role = Role.READONLY
            log.info("{line}: {peer} is {role} by its certificate", line=self.line.name, peer=self.peer,
                     role=self.role.value, budget=self.logBudget)

    @property
    def wantsLineErrors(self) -> bool:
        return False

    def touch(self) -> None:
        """Traffic either way: the idle timer starts again."""
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.reset(self.listener.idle)

    def mayDeliver(self, data: bytes) -> bool:
        """False when this client is full and its policy drops output (then the guard holds it)."""
        guard = self.guard
        if guard is not None and guard.full:
            if guard.policy == "drop":
                guard.hold(data)
                return False
        if self._idleCall is not None:
            self.touch()
        return True

    def _idleTimeout(self) -> None:
        self._idleCall = None
        log.info("{line}: {peer} idle for {seconds} s: disconnected", line=self.line.name, peer=self.peer,
                 seconds=self.listener.idle, budget=self.logBudget)
        why = f"idle for {self.listener.idle:g} s: disconnected"
        # A person at a terminal is told why the connection closes (an SSH session says it on its stderr).
        self.notice(why)
        self.disconnect(why)

    def droppedNotice(self, count: int) -> None:
        """Output was dropped for this client: say so if it is a person's terminal."""
        if self.wantsNotices():
            self.notice(f"{count} bytes dropped: this session fell behind")
