"""
What RFC 2217 clients may do to a line's port, mixed into L{Line}:
settings, DTR and RTS, purges, a break held on and off; the modem lines
polled while a controller watches, line errors watched while one asks, and
the configured state put back when the last writer among them goes.  DTR
and RTS as configured (while people are attached, while nobody is) are
here too.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol

from serialgw.config.baudrates import unusualBaud
from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IClient, IDevice
from serialgw.line.modempolls import modemPolls, pollsOf
from serialgw.line.role import Role
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# A client is told a break was refused at most this often (seconds).
BREAK_REFUSAL_INTERVAL = 1.0

# The time clients' port control (RFC 2217 settings, DTR/RTS, purges,
# breaks) may take of one line a turn of the reactor: once a line's requests
# have taken this long (a USB adapter's tcsetattr is synchronous control
# transfers, milliseconds; a pty's 50-140 us of Python and ioctls), the
# next, from any client, waits for a later turn, in the order they came (one
# a turn if each takes longer).  However many clients ask at once (64 each
# sending SET-BAUDRATE held every line 30-48 ms a turn on a pty), the other
# lines get theirs.  No timer: a later turn is a callLater(0).
CONTROL_PER_TURN = 0.001


class _Line(Protocol):
    """What the mixin uses of its line (L{Line} has it all)."""

    name: str
    device: IDevice
    clock: Any
    clients: list[IClient]
    controllers: list[IClient]
    configured: SerialSettings
    restoreSettings: bool
    settingsFollowers: list[Callable[[SerialSettings], None]]
    people: int
    modemAttached: dict[str, Optional[bool]]
    modemIdle: dict[str, Optional[bool]]
    breakHoldLimit: float
    _modemPolled: bool
    _lastModem: Optional[int]
    _letGo: bool
    _refusalsTold: dict[IClient, float]
    mode: str
    _controlSpent: float
    _controlTurn: Any
    _controlWaiters: Optional[list[Callable[[], None]]]
    _unsentSeen: int
    _breakHolder: Optional[IClient]

    @property
    def settings(self: _Line) -> SerialSettings: ...
    @property
    def writer(self: _Line) -> Optional[IClient]: ...
    def mayWrite(self: _Line, client: IClient) -> bool: ...
    def _whyNotWrite(self: _Line, client: IClient) -> str: ...
    def _noBreak(self: _Line, client: IClient) -> Optional[str]: ...
    def _tellRefusal(self: _Line, client: IClient) -> bool: ...
    def wantedModemLine(self: _Line, name: str, nobody: bool = False) -> Optional[bool]: ...
    def applySettings(self: _Line, settings: SerialSettings) -> SerialSettings: ...
    def pollModem(self: _Line) -> None: ...
    def writeLogs(self: _Line, text: str) -> None: ...
    def _nextControlTurn(self: _Line) -> None: ...


class PortControl:
    """
    RFC 2217 port control on a line: each C{client*} method is refused
    (the state in effect returned) for a client that may not write.
    """

    # How long an RFC 2217 BREAK-ON may hold the line without a BREAK-OFF.
    breakHoldLimit = 30.0
    # The client whose BREAK-ON holds the break (see endHeldBreak).
    _breakHolder: Optional[IClient] = None
    # Whether the modem lines are read (while an RFC 2217 client watches: modempolls).
    _modemPolled = False
    _lastModem: Optional[int] = None
    # Clients' port control: the time taken since the turn it was last
    # counted from, the call that starts the next such turn (once this
    # one's CONTROL_PER_TURN is spent), and who waits for it (in order).
    _controlSpent = 0.0
    _controlTurn: Any = None
    _controlWaiters: Optional[list[Callable[[], None]]] = None

    def controlReady(self: _Line, wake: Callable[[], None]) -> bool:
        """
        Whether a client's port control request may reach the device now;
        if not, C{wake} is called on a later turn, when it may (see
        CONTROL_PER_TURN), unless L{forgetControlWaiter} takes it back.
        """
        if self.clock is None or self._controlSpent < CONTROL_PER_TURN:
            return True
        if self._controlWaiters is None:
            self._controlWaiters = []
        if wake not in self._controlWaiters:
            self._controlWaiters.append(wake)
        return False

    def controlTook(self: _Line, took: float) -> None:
        """A client's port control request took C{took} seconds (see CONTROL_PER_TURN)."""
        if self.clock is None or took <= 0:
            return
        self._controlSpent += took
        if self._controlSpent >= CONTROL_PER_TURN and self._controlTurn is None:
            self._controlTurn = self.clock.callLater(0, self._nextControlTurn)

    def forgetControlWaiter(self: _Line, wake: Callable[[], None]) -> None:
        """C{wake} waits no more (its client left)."""
        if self._controlWaiters is not None and wake in self._controlWaiters:
            self._controlWaiters.remove(wake)

    def _nextControlTurn(self: _Line) -> None:
        self._controlTurn = None
        self._controlSpent = 0.0
        waiters = self._controlWaiters or []
        while waiters and self._controlSpent < CONTROL_PER_TURN:
            waiters.pop(0)()

    def wantedModemLine(self: _Line, name: str, nobody: bool = False) -> Optional[bool]:
        """
        DTR or RTS as configured for now (people attached or not; C{nobody}:
        as if none were); None: not configured.
        """
        attached, idle = self.modemAttached[name], self.modemIdle[name]
        if self.people and not nobody:
            # Only an idle state set: on while attached, as the device opens.
            return True if attached is None and idle is not None else attached
        return attached if idle is None else idle

    def applyModemLines(self: _Line, nobody: bool = False) -> None:
        """
        Set DTR and RTS as configured for now (C{nobody}: the idle state,
        for a line let go with people still on it); a line that is already
        so, or not configured, is not touched (never pulsed).
        """
        for name in ("dtr", "rts"):
            wanted = self.wantedModemLine(name, nobody)
            if wanted is not None and bool(self.device.modemLines[name]) != wanted:
                self.device.setModemLine(name, wanted)

    def addController(self: _Line, client: IClient) -> None:
        """A client now controls the port (RFC 2217): watch the modem lines."""
        if client not in self.controllers:
            self.controllers.append(client)
        if not self._modemPolled and self.clock is not None:
            state = self.device.modemState()
            if state is not None:
                # Read with every other line's, a slice a turn (modempolls).
                self._lastModem = state
                self._modemPolled = True
                modemPolls(self.clock).add(self)

    def updateLineWatch(self: _Line) -> None:
        """Detect line errors on the device only while a client's mask asks for them."""
        wanted = any(c.wantsLineErrors for c in self.controllers if c.role is not Role.READONLY)
        self.device.watchLineErrors(wanted)

    def _stopModemPoll(self: _Line) -> None:
        if self._modemPolled:
            self._modemPolled = False
            polls = pollsOf(self.clock)
            if polls is not None:
                polls.remove(self)

    def _lastController(self: _Line, closing: bool = False,
                        why: str = "last RFC 2217 client gone") -> None:
        # A line let go (see letGo) was put back then, once.
        if not self.restoreSettings or self._letGo:
            return
        if self.device.breaking:
            self.device.stopBreak()
        if self.device.settings != self.configured:
            effective = self.applySettings(self.configured)
            log.info("{line}: {why}; settings restored to {settings}",
                     line=self.name, why=why, settings=effective.describe())
        for name in ("dtr", "rts"):
            # As configured for those still attached (idle if nobody is);
            # not configured: on, as a tty opens.
            wanted = self.wantedModemLine(name)
            if wanted is not None and closing:
                continue  # set after the close-string, with the idle state
            target = True if wanted is None else wanted
            if bool(self.device.modemLines[name]) != target:
                self.device.setModemLine(name, target)

    def pollModem(self: _Line) -> None:
        """Read the modem lines; tell every client a change."""
        state = self.device.modemState()
        if state is None or state == self._lastModem:
            return
        self._lastModem = state
        for client in self.clients:
            client.modemStateChanged(state)

    def applySettings(self: _Line, settings: SerialSettings) -> SerialSettings:
        """Settings for the device; those in effect, which every follower is told."""
        effective: SerialSettings = self.device.apply(settings)
        for follower in list(self.settingsFollowers):
            follower(effective)
        return effective

    def clientSettings(self: _Line, client: IClient, settings: SerialSettings) -> SerialSettings:
        """
        A client asks for settings; return those in effect (refused, logged
        with why, if it may not write or the device carries no settings).
        """
        refusal = self._whyNotWrite(client) if not self.mayWrite(client) else self.device.noSettings
        if refusal:
            current = self.settings
            setting, value, asked = settingsAsked(current, settings)
            # Asking for what is in effect changes nothing (pyserial sends
            # each setting at open): a debug line, as a writer's repeat is.
            emit = log.info if settings != current else log.debug
            if self.device.noSettings:
                # (Not "stays at 115200,8N1": a tcp:, unix: or telnet: console has no such framing here.)
                emit("{line}: settings from {peer} refused ({asked}): {reason}; nothing changed (serial settings "
                     "are the far end's)", line=self.name, peer=client.peer, setting=setting, value=value,
                     asked=asked, reason=refusal, role=client.role.value)
            else:
                emit("{line}: settings from {peer} refused ({asked}): {reason}; {line} stays at {settings}",
                     line=self.name, peer=client.peer, setting=setting, value=value, asked=asked,
                     reason=refusal, role=client.role.value, settings=current.describe())
            return current
        before = self.settings
        effective = self.applySettings(settings)
        # One line when something changed or the device would not take all
        # of it; a client repeating what is in effect (pyserial sends each
        # setting on its own at open) is a debug line.
        emit = log.info if effective != before or effective != settings else log.debug
        emit("{line}: {peer} set {wanted}; in effect: {settings}", line=self.name, peer=client.peer,
             wanted=settings.describe(), settings=effective.describe())
        if effective != before:
            self.writeLogs(f"{client.peer} set {settings.describe()}; in effect: {effective.describe()}")
        unusual = unusualBaud(settings.baudrate) if effective.baudrate != before.baudrate else None
        if unusual is not None:
            # As --baud 11520 is warned of; once a change of rate (a client repeating it is not), and counted
            # against the peer's log budget as its other lines are.
            log.warn("{line}: from {peer}: {problem}", line=self.name, peer=client.peer, problem=unusual,
                     baud=settings.baudrate)
        return effective

    def deviceSettings(self: _Line, before: SerialSettings) -> None:
        """
        IDeviceSink: the settings in effect changed without the line asking
        (the device, back, took less of those kept for it while it was
        down; a remote port answered with others).  RFC 2217 clients were
        answered C{before} (the value in effect then, as far as the line
        knew): they are told those now in effect, and so are the line's
        followers (client ptys).  Logged within the device's budget (a
        remote port answering otherwise again and again).
        """
        effective = self.settings
        if effective == before:
            return
        for follower in list(self.settingsFollowers):
            follower(effective)
        told = 0
        for client in list(self.controllers):
            if client.comPort is not None:
                client.comPort.settingsChanged(before, effective)
                told += 1
        log.info("{line}: settings in effect now {settings}, not {asked}: the device took them so; {told} RFC 2217 "
                 "client(s) told", line=self.name, settings=effective.describe(), asked=before.describe(),
                 told=told, peer=self.device.name)

    def _whyNotWrite(self: _Line, client: IClient) -> str:
        """Why C{client} may not change the port now, for the log (see L{Line.mayWrite})."""
        if self._letGo:
            return f"{self.name} is closing"
        if client.role is Role.READONLY:
            return "the client is read-only"
        writer = self.writer if self.mode == "exclusive" else None
        if writer is not None and writer is not client:
            return f"another client is the writer ({writer.peer}; this one only watches)"
        return "the client only watches (it has not taken write)"

    def _tellRefusal(self: _Line, client: IClient) -> bool:
        """
        Whether to say (notice and log) that a break was refused: at most
        once a second a client, so that a stream of IAC BRK never becomes
        a stream of text (bounded whatever the client sends).
        """
        now = self.clock.seconds() if self.clock is not None else 0.0
        last = self._refusalsTold.get(client)
        if last is not None and now - last < BREAK_REFUSAL_INTERVAL:
            return False
        self._refusalsTold[client] = now
        return True

    def clientModemLine(self: _Line, client: IClient, name: str, on: bool) -> bool:
        """A client sets DTR or RTS; return the state in effect."""
        refusal = self._whyNotWrite(client) if not self.mayWrite(client) else self.device.noSettings
        if refusal:
            state = bool(self.device.modemLines[name])
            if state != on:
                # Logged as a refused setting is (one asking for what is in effect changes nothing);
                # a tcp:, unix: or telnet: console has no DTR or RTS to stay on.
                log.info("{line}: {asked} from {peer} refused: {reason}; {inEffect}", line=self.name,
                         peer=client.peer, asked=f"{name.upper()} {'on' if on else 'off'}", reason=refusal,
                         inEffect="nothing changed" if self.device.noSettings
                         else f"{name.upper()} stays {'on' if state else 'off'}")
            return state
        return bool(self.device.setModemLine(name, on))

    def clientPurge(self: _Line, client: IClient, receive: bool, transmit: bool) -> bool:
        """A client purges the device's queues; C{False} if refused."""
        if not self.mayWrite(client):
            return False
        self.device.purge(receive, transmit)
        # What the purge dropped is not sent (see bytesToDevice), nor lost with the device later.
        self._unsentSeen = self.device.unsent
        return True

    def clientBreakHold(self: _Line, client: IClient, on: bool) -> None:
        """A client sets (held, up to breakHoldLimit) or clears the break condition."""
        if not self.mayWrite(client):
            # Never silent (as a refused IAC BRK): logged, at most once a second a client.
            if on and self._tellRefusal(client):
                log.info("{line}: BREAK on from {peer} refused: {reason}", line=self.name, peer=client.peer,
                         reason=self._whyNotWrite(client))
            return
        if on:
            reason = self._noBreak(client)
            if reason is None and self.device.sendBreak(self.breakHoldLimit):
                self._breakHolder = client
                log.info("{line}: BREAK on from {peer}", line=self.name, peer=client.peer)
            elif self._tellRefusal(client):
                log.info("{line}: BREAK on from {peer} refused: {reason}", line=self.name, peer=client.peer,
                         reason=reason or "one is under way")
        elif self.device.breaking:
            self._breakHolder = None
            self.device.stopBreak()
            log.info("{line}: BREAK off from {peer}", line=self.name, peer=client.peer)

    def endHeldBreak(self: _Line, client: IClient, why: str) -> None:
        """
        C{client} may no longer write (C{why}): a break its BREAK-ON holds
        ends now, as its BREAK-OFF would (it could not send one any more;
        the break held the line up to breakHoldLimit).
        """
        if self._breakHolder is not client:
            return
        self._breakHolder = None
        if self.device.breaking:
            self.device.stopBreak()
            log.info("{line}: BREAK off: {peer}, which held it, {why}", line=self.name, peer=client.peer, why=why)


# SerialSettings' fields as people name them.
SETTING_NAMES = {"baudrate": "baud rate", "bytesize": "data bits", "parity": "parity", "stopbits": "stop bits",
                  "xonxoff": "xonxoff", "rtscts": "rtscts"}


def settingsAsked(current: SerialSettings, wanted: SerialSettings) -> tuple[str, str, str]:
    """
    What a client asked to change, for the log: the settings that differ
    from C{current}, their wanted values, and both together
    (C{("baud rate", "9600", "baud rate 9600")}); if none differs, the
    settings as a whole (C{("settings", "115200,8N1", "settings 115200,8N1")}).
    """
    changed = [(name, _shown(getattr(wanted, field))) for field, name in SETTING_NAMES.items()
               if getattr(wanted, field) != getattr(current, field)]
    if not changed:
        changed = [("settings", wanted.describe())]
    return (", ".join(name for name, _ in changed), ", ".join(value for _, value in changed),
            ", ".join(f"{name} {value}" for name, value in changed))


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
