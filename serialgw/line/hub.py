"""
One serial line and the clients attached to it.

The line is the hub of the data path: device output goes to every client,
each of which encodes it for its own wire; client input and commands go to
the device if the client's role allows.  The line knows its device only
through the device's methods and its clients only through L{IClient}.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from enum import Enum
from typing import Any, Callable, Optional

from twisted.internet.address import UNIXAddress
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import DEFAULT_BACKLOG, Rights, SerialSettings, describeUnix
from serialgw.interfaces import IDeviceSink
from serialgw.line.tail import Tail
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# w and the banner name at most this many clients; the rest are counted.
WHO_LIMIT = 20
# A client is told a break was refused at most this often (seconds).
BREAK_REFUSAL_INTERVAL = 1.0
# How often an open- or close-string's next break checks that the one
# before it has ended.
STRING_BREAK_POLL = 0.05


class Role(Enum):
    """
    What a client may do on its line.

      - C{WRITER}: send data, breaks and settings;
      - C{WATCHER}: read only for now, may become a writer (take-over);
      - C{READONLY}: read only, always.
    """

    WRITER = "writer"
    WATCHER = "watcher"
    READONLY = "read-only"


class ClientEvents:
    """
    Default answers to the line's events for clients that have nothing to
    do with them (files, datagrams, raw streams): override what matters.
    """

    def modemStateChanged(self, state: int) -> None:
        pass

    def lineStateChanged(self, state: int) -> None:
        pass

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        pass

    def pauseInput(self) -> None:
        pass

    def resumeInput(self) -> None:
        pass

    def notice(self, text: str) -> None:
        pass


@implementer(IDeviceSink)
class Line:
    """
    A serial line shared by any number of clients.
    """

    # How long an RFC 2217 BREAK-ON may hold the line without a BREAK-OFF.
    breakHoldLimit = 30.0
    # How often modem lines are read while an RFC 2217 client watches.
    modemPollInterval = 0.05

    def __init__(
        self,
        name: str,
        device: Any,
        clock: Any = None,
        configured: Optional[SerialSettings] = None,
        restoreSettings: bool = True,
    ) -> None:
        self.name = name
        self.device = device
        self.clock = clock
        self.configured = configured if configured is not None else device.settings
        self.restoreSettings = restoreSettings
        # Device down/up notices for people at terminals.
        self.notices = True
        # A device may start down (not there yet, a console not dialed yet).
        self.up = bool(device.up)
        # Whether the device was ever up: its first coming up is no reopen.
        self._wasUp = self.up
        self.clients: list[Any] = []
        self.controllers: list[Any] = []
        self.writable = True
        self.bytesToDevice = 0
        self.bytesFromDevice = 0
        self.refused = 0
        # For the metrics: times the device came back, and device output
        # dropped for clients that have left, by their listener's policy.
        self.reopens = 0
        self.droppedGone: dict[str, int] = {}
        self._modemPoll: Optional[LoopingCall] = None
        self._lastModem: Optional[int] = None
        self._lineState = 0
        self.mode = "shared"
        self.maxClients = 0
        self.logs: list[Any] = []
        # Told the settings in effect after every change (client ptys follow the line).
        self.settingsFollowers: list[Callable[[SerialSettings], None]] = []
        self._coalesce: Optional[tuple[float, float, bytes]] = None
        self._held: list[bytes] = []
        self._flushCall: Any = None
        self._firstHeld = 0.0
        self.backlogSize = DEFAULT_BACKLOG
        # The newest device output, for replay.
        self._backlog = Tail()
        # ser2net's openstr/closestr: written when the first person is
        # announced (see _countIn) and the last one leaves (data between breaks).
        self.openString: tuple[bytes, ...] = ()
        self.closeString: tuple[bytes, ...] = ()
        # Their data and breaks (None) not sent yet: a break waits for the
        # one before it to end (see _sendStringItems).
        self._stringItems: list[tuple[str, Optional[bytes]]] = []
        self._stringCall: Any = None
        self._openMissed = False
        # DTR/RTS wanted while people are attached and while nobody is
        # (None: as the device has them; idle None: as while attached).
        self.modemAttached: dict[str, Optional[bool]] = {"dtr": None, "rts": None}
        self.modemIdle: dict[str, Optional[bool]] = {"dtr": None, "rts": None}
        # People (network sessions) attached and announced now (a quiet
        # one counts from its introduction on).
        self.people = 0
        # The first person to attach gets what the device said before
        # anyone was there (see takeEarlyOutput).
        self._earlyTaken = False
        self._earlyTo: Any = None
        # QEMU's server without nowait: the device is read from the first
        # client's arrival on, so none of its early output is lost.
        self.waitForClient = False
        self._blockers: set[Any] = set()
        # People attached but not announced yet (see attach).
        self._unannounced: set[Any] = set()
        # Clients that are not people, attached quietly: not logged (see attach).
        self._unlogged: set[Any] = set()
        # When each client was last told a break was refused (see _tellRefusal).
        self._refusalsTold: dict[Any, float] = {}
        # Who may use the line, by user name (SSH, TLS client certificates).
        self.rights = Rights()

    # State, as the device has it

    @property
    def settings(self) -> SerialSettings:
        return self.device.settings  # type: ignore[no-any-return]

    @property
    def modemLines(self) -> dict[str, bool]:
        return self.device.modemLines  # type: ignore[no-any-return]

    @property
    def breaking(self) -> bool:
        return bool(self.device.breaking)

    def modemState(self) -> Optional[int]:
        return self.device.modemState()  # type: ignore[no-any-return]

    def lineState(self, clear: bool = True) -> int:
        """
        RFC 2217 line-state bits (break, framing, parity) seen since the last
        call that cleared them: an answer to a client's poll.
        """
        state = self._lineState
        if clear:
            self._lineState = 0
        return state

    # Clients

    @property
    def writer(self) -> Any:
        """In exclusive mode, the one client that may write (or None)."""
        return next((c for c in self.clients if c.role is Role.WRITER and getattr(c, "person", False)), None)

    def full(self) -> bool:
        """No room for another network client (max-clients)."""
        people = sum(1 for c in self.clients if getattr(c, "person", False))
        return bool(self.maxClients) and people >= self.maxClients

    def attach(self, client: Any, quiet: bool = False) -> None:
        """
        A client joins.  A person is announced to the others at once, or,
        C{quiet}, only when L{introduce} is called (it said something, or
        stayed a while): a health check or a port scan that comes and goes
        at once is never announced.  A C{quiet} client that is not a person
        (a watch-all watcher's view of this line: its listener logs it once)
        is not logged coming or going.
        """
        if (self.mode == "exclusive" and client.role is Role.WRITER and getattr(client, "person", False)
                and self.writer is not None):
            client.role = Role.WATCHER
        # In the list before anyone is told: whatever the telling does (a
        # log that fails), the client is fully attached.
        self.clients.append(client)
        if getattr(client, "person", False):
            if quiet:
                self._unannounced.add(client)
            else:
                self.announce(f"{client.peer} attached as {client.role.value}", exclude=client)
        elif quiet:
            self._unlogged.add(client)
        if not self.up:
            # Someone arriving while the device is down hears it, as those
            # already here did when it went.
            client.deviceStateChanged(False, self._downNotice(self.device.downReason or "not there"))
        if self.waitForClient and getattr(client, "wakesLine", True):
            self.waitForClient = False
            self.device.start()
        if not self.writable and self.mayWrite(client):
            client.pauseInput()
        if not getattr(client, "person", False):
            if not quiet:
                log.info("{line}: {peer} attached as {role}", line=self.name, peer=client.peer,
                         role=client.role.value)
        elif not quiet:
            self._countIn()

    def _countIn(self) -> None:
        """
        A person is here for good (attached, or announced: see L{introduce}):
        the first one sets the attached DTR/RTS and gets the open-string.  A
        quiet connection that comes and goes (a health check) is never
        counted, so it touches neither (a board with reset wired to DTR/RTS
        is not reset by every check).
        """
        self.people += 1
        if self.people == 1:
            self.applyModemLines()
            self._sendString(self.openString, "open-string")

    def detach(self, client: Any) -> None:
        # Counted out first: what is restored below is the state for those
        # who stay (the idle state when nobody does).  One never announced
        # was never counted in (see _countIn).
        leaving = (client in self.clients and getattr(client, "person", False)
                   and client not in self._unannounced)
        if leaving:
            self.people -= 1
        if client in self.controllers:
            self.controllers.remove(client)
            self.updateLineWatch()
            if not self.controllers:
                self._stopModemPoll()
            # Only a client that may change the port now (a writer) leaving
            # restores: a read-only one or a watcher (exclusive mode) changed
            # nothing, so its going changes nothing either.  A read-only one
            # staying does not hold the restore back; a watcher (who may take
            # write) does.
            if client.role is Role.WRITER and not any(
                    c.role is not Role.READONLY for c in self.controllers):
                self._lastController(closing=bool(leaving) and not self.people)
        if client in self._blockers:
            self.unblockDevice(client)
        self._refusalsTold.pop(client, None)
        if client in self.clients:
            self.clients.remove(client)
            guard = getattr(client, "guard", None)
            if guard is not None and guard.dropped:
                self.droppedGone[guard.policy] = self.droppedGone.get(guard.policy, 0) + guard.dropped
            if client is self._earlyTo:
                # Given back by a connection that came and went (a health check).
                self._earlyTo = None
                self._earlyTaken = client not in self._unannounced
            if client in self._unannounced:
                self._unannounced.discard(client)
                log.info("{line}: {peer} came and went without a word (not announced)", line=self.name,
                         peer=client.peer)
            elif getattr(client, "person", False):
                self.announce(f"{client.peer} detached")
            elif client in self._unlogged:
                self._unlogged.discard(client)
            else:
                log.info("{line}: {peer} detached", line=self.name, peer=client.peer)
        if leaving and not self.people:
            self._sendString(self.closeString, "close-string")
            self.applyModemLines()

    def wantedModemLine(self, name: str) -> Optional[bool]:
        """DTR or RTS as configured for now (people attached or not); None: not configured."""
        attached, idle = self.modemAttached[name], self.modemIdle[name]
        if self.people:
            # Only an idle state set: on while attached, as the device opens.
            return True if attached is None and idle is not None else attached
        return attached if idle is None else idle

    def applyModemLines(self) -> None:
        """
        Set DTR and RTS as configured for now; a line that is already so,
        or not configured, is not touched (never pulsed).
        """
        for name in ("dtr", "rts"):
            wanted = self.wantedModemLine(name)
            if wanted is not None and bool(self.device.modemLines[name]) != wanted:
                self.device.setModemLine(name, wanted)

    def _sendString(self, parts: tuple[bytes, ...], what: str) -> None:
        """An open- or close-string: its data, with a break between parts, in order."""
        if not parts:
            return
        # Due while the device is down: the open-string goes when it is
        # back (if someone is still here); a close-string is moot.
        self._openMissed = what == "open-string" and not self.device.up
        if not self.device.up:
            log.info("{line}: {what} not sent: the device is down{later}", line=self.name, what=what,
                     later="; sent when it is back" if self._openMissed else "")
            return
        items: list[tuple[str, Optional[bytes]]] = [(what, parts[0])]
        for data in parts[1:]:
            items += [(what, None), (what, data)]
        self._stringItems += items
        if self._stringCall is None:
            self._sendStringItems()
        log.info("{line}: {what} sent ({size} bytes, {breaks} break(s))", line=self.name, what=what,
                 size=sum(len(p) for p in parts), breaks=len(parts) - 1)

    def _sendStringItems(self) -> None:
        """
        The strings' data and breaks (None) in order; a break waits for the
        one under way (the string's previous one) to end.
        """
        self._stringCall = None
        items = self._stringItems
        while items:
            what, data = items[0]
            if data is None:
                if self.device.breaking and self.device.up and self.clock is not None:
                    self._stringCall = self.clock.callLater(STRING_BREAK_POLL, self._sendStringItems)
                    return
                if not self.device.sendBreak():
                    log.info("{line}: {what}: break not sent (the device is down, or a break is under way)",
                             line=self.name, what=what)
            elif data:
                self.device.write(data)
                self.bytesToDevice += len(data)
            del items[0]

    def introduce(self, client: Any) -> None:
        """A client attached quietly is announced now (once); nothing for the others."""
        if client in self._unannounced:
            self._unannounced.discard(client)
            self.announce(f"{client.peer} attached as {client.role.value}", exclude=client)
            self._countIn()

    def mayWrite(self, client: Any) -> bool:
        return bool(client.role is Role.WRITER)

    def clientData(self, client: Any, data: bytes) -> bool:
        """Data from a client, for the device; C{False} if refused (the client may not write)."""
        if client.role is not Role.WRITER:
            self.refused += len(data)
            return False
        self.device.write(data)
        self.bytesToDevice += len(data)
        return True

    def who(self, exclude: Any = None) -> str:
        """
        Who is on, for people (C{w}, the banner): each client with its role,
        at most L{WHO_LIMIT} named and the rest counted by role, so that the
        answer stays short however many are on.
        """
        others = [c for c in self.clients if c is not exclude]
        text = ", ".join(f"{c.peer} ({c.role.value})" for c in others[:WHO_LIMIT])
        rest = others[WHO_LIMIT:]
        if rest:
            roles: dict[str, int] = {}
            for c in rest:
                roles[c.role.value] = roles.get(c.role.value, 0) + 1
            text += f" and {len(rest)} more (" + ", ".join(f"{n} {role}" for role, n in roles.items()) + ")"
        return text or "nobody"

    def clientBreak(self, client: Any, duration: Optional[float] = None) -> bool:
        """
        A client asks for a break; C{True} if one was started.  If not, the
        client is told why (a notice, for a person at a terminal) and the
        log says the same.
        """
        reason = self._noBreak(client)
        if reason is None:
            if self.device.sendBreak(duration):
                self.recordEvent(f"BREAK from {client.peer}", client.peer)
                return True
            reason = "one is under way"
        if self._tellRefusal(client):
            log.info("{line}: break from {peer} refused: {reason}", line=self.name, peer=client.peer, reason=reason)
            client.notice(f"no break: {reason}")
        return False

    def _tellRefusal(self, client: Any) -> bool:
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

    def _noBreak(self, client: Any) -> Optional[str]:
        """Why no break can be sent for C{client} now (before asking the device); None: try."""
        if not self.mayWrite(client):
            return "you only watch: take write first" if client.role is Role.WATCHER else "read-only"
        if self.device.noBreak:
            return str(self.device.noBreak)
        if not self.device.up:
            return "the device is down"
        return None

    # Port control (RFC 2217)

    def addController(self, client: Any) -> None:
        """A client now controls the port (RFC 2217): watch the modem lines."""
        if client not in self.controllers:
            self.controllers.append(client)
        if self._modemPoll is None and self.clock is not None and self.device.modemState() is not None:
            self._lastModem = self.device.modemState()
            self._modemPoll = LoopingCall(self._pollModem)
            self._modemPoll.clock = self.clock
            self._modemPoll.start(self.modemPollInterval, now=False)

    def updateLineWatch(self) -> None:
        """Detect line errors on the device only while a client's mask asks for them."""
        wanted = any(getattr(c.comPort, "linestateMask", 0) for c in self.controllers
                     if getattr(c, "comPort", None) and c.role is not Role.READONLY)
        self.device.watchLineErrors(wanted)

    def _stopModemPoll(self) -> None:
        if self._modemPoll is not None:
            self._modemPoll.stop()
            self._modemPoll = None

    def _lastController(self, closing: bool = False) -> None:
        if not self.restoreSettings:
            return
        if self.device.breaking:
            self.device.stopBreak()
        if self.device.settings != self.configured:
            effective = self.applySettings(self.configured)
            log.info("{line}: last RFC 2217 client gone; settings restored to {settings}",
                     line=self.name, settings=effective.describe())
        for name in ("dtr", "rts"):
            # As configured for those still attached (idle if nobody is);
            # not configured: on, as a tty opens.
            wanted = self.wantedModemLine(name)
            if wanted is not None and closing:
                continue  # set after the close-string, with the idle state
            target = True if wanted is None else wanted
            if bool(self.device.modemLines[name]) != target:
                self.device.setModemLine(name, target)

    def _pollModem(self) -> None:
        state = self.device.modemState()
        if state is None or state == self._lastModem:
            return
        self._lastModem = state
        for client in self.clients:
            client.modemStateChanged(state)

    def applySettings(self, settings: SerialSettings) -> SerialSettings:
        """Settings for the device; those in effect, which every follower is told."""
        effective: SerialSettings = self.device.apply(settings)
        for follower in list(self.settingsFollowers):
            follower(effective)
        return effective

    def clientSettings(self, client: Any, settings: SerialSettings) -> SerialSettings:
        """A client asks for settings; return those in effect."""
        if not self.mayWrite(client):
            log.info("{line}: settings from {peer} refused: {role}", line=self.name, peer=client.peer, role=client.role.value)
            return self.settings
        effective = self.applySettings(settings)
        log.info("{line}: {peer} set {wanted}; in effect: {settings}", line=self.name, peer=client.peer,
                 wanted=settings.describe(), settings=effective.describe())
        return effective

    def clientModemLine(self, client: Any, name: str, on: bool) -> bool:
        """A client sets DTR or RTS; return the state in effect."""
        if not self.mayWrite(client):
            return bool(self.device.modemLines[name])
        return bool(self.device.setModemLine(name, on))

    def clientPurge(self, client: Any, receive: bool, transmit: bool) -> bool:
        """A client purges the device's queues; C{False} if refused."""
        if not self.mayWrite(client):
            return False
        self.device.purge(receive, transmit)
        return True

    def clientBreakHold(self, client: Any, on: bool) -> None:
        """A client sets (held, up to breakHoldLimit) or clears the break condition."""
        if not self.mayWrite(client):
            return
        if on:
            reason = self._noBreak(client)
            if reason is None and self.device.sendBreak(self.breakHoldLimit):
                log.info("{line}: BREAK on from {peer}", line=self.name, peer=client.peer)
            elif self._tellRefusal(client):
                log.info("{line}: BREAK on from {peer} refused: {reason}", line=self.name, peer=client.peer,
                         reason=reason or "one is under way")
        elif self.device.breaking:
            self.device.stopBreak()
            log.info("{line}: BREAK off from {peer}", line=self.name, peer=client.peer)

    def _cutOff(self, client: Any) -> None:
        if client in self.logs:
            self.logs.remove(client)
        transport = getattr(client, "transport", None)
        if transport is not None and hasattr(transport, "abortConnection"):
            transport.abortConnection()
        else:
            self.detach(client)

    # Sessions

    def announce(self, text: str, exclude: Any = None, peer: Optional[str] = None) -> None:
        """
        A notice for the people at terminals (see each client's notice()),
        and the logs; C{peer}: the client whose doing it is (its log budget).
        """
        self.recordEvent(text, peer)
        for client in list(self.clients):
            if client is not exclude:
                try:
                    client.notice(text)
                except Exception:
                    log.failure("{line}: telling {peer} failed; it is cut off", line=self.name, peer=client.peer)
                    self._cutOff(client)

    def recordEvent(self, text: str, peer: Optional[str] = None) -> None:
        log.info("{line}: {text}", line=self.name, text=text, peer=peer)
        for consoleLog in list(self.logs):
            try:
                consoleLog.event(text)
            except Exception:
                # As for device output: a failing log leaves the line's logs,
                # the event and the line go on.
                log.failure("{line}: writing {peer} failed; it is cut off", line=self.name, peer=consoleLog.peer)
                self._cutOff(consoleLog)

    def takeWrite(self, client: Any) -> bool:
        """C{client} becomes the writer; in exclusive mode the old one watches."""
        if client.role is Role.READONLY:
            return False
        if self.mode == "exclusive":
            for other in self.clients:
                if other is not client and other.role is Role.WRITER and getattr(other, "person", False):
                    other.role = Role.WATCHER
        client.role = Role.WRITER
        self.announce(f"{client.peer} took write", peer=client.peer)
        return True

    def setMode(self, mode: str) -> None:
        """
        A new mode (a reload).  Made exclusive, the line keeps one writer:
        the first person attached who writes; the other writers only watch
        from now on, as after a take-over (announced).  Made shared again,
        everyone who watches writes (as everyone attaching then does).
        """
        if mode == self.mode:
            return
        self.mode = mode
        writer = self.writer
        for client in list(self.clients):
            if not getattr(client, "person", False):
                continue
            if mode == "exclusive" and client is not writer and client.role is Role.WRITER:
                self.dropWrite(client)
            elif mode == "shared" and client.role is Role.WATCHER:
                client.role = Role.WRITER
                self.announce(f"{client.peer} writes (shared)", peer=client.peer)

    def dropWrite(self, client: Any) -> None:
        if client.role is Role.WRITER:
            client.role = Role.WATCHER
            self.announce(f"{client.peer} now only watches", peer=client.peer)

    def applyRights(self, rights: Rights) -> None:
        """
        New rights (a reload): a person no longer in the line's write list
        only reads from now on; one in neither list is disconnected.  (One
        who gains write takes it by connecting again.)
        """
        self.rights = rights
        for client in list(self.clients):
            user = getattr(client, "user", None)
            if not user:
                continue
            right = rights.of(user)
            if right is None:
                client.notice(f"{user} may no longer use {self.name}")
                client.disconnect()
            elif right == "read" and client.role is not Role.READONLY:
                client.role = Role.READONLY
                self.announce(f"{client.peer} is read-only now", peer=client.peer)

    def backlog(self) -> bytes:
        """The last device output kept (up to backlogSize bytes)."""
        return self._backlog.newest(self.backlogSize)

    def takeEarlyOutput(self, client: Any = None) -> bytes:
        """
        For the first person to attach, once: what the device said before
        anyone was there (boot messages waiting in the tty when the gateway
        opened it included), the newest backlogSize bytes; then nothing.
        A C{client} that comes and goes without a word (a health check)
        leaves it for the next one (see L{detach}).
        """
        if self._earlyTaken:
            return b""
        self._earlyTaken = True
        self._earlyTo = client
        return self.backlog()

    # Back-pressure from a client whose policy is "block"

    def blockDevice(self, client: Any) -> None:
        """Stop reading the device until C{client} has caught up."""
        if not self._blockers:
            self.device.pauseReading()
        self._blockers.add(client)

    def unblockDevice(self, client: Any) -> None:
        self._blockers.discard(client)
        if not self._blockers:
            self.device.resumeReading()

    # IDeviceSink

    def coalesce(self, low: float, high: float, on: bytes = b"") -> None:
        """
        Hold device output for fewer, larger packets: send C{low} seconds
        after the last byte, at most C{high} after the first held, or at
        once when C{on} arrives.  C{low == 0}: no coalescing (the default).
        """
        self._coalesce = (low, high, on) if low > 0 else None


    def _hold(self, data: bytes) -> None:
        assert self._coalesce is not None and self.clock is not None
        low, high, on = self._coalesce
        self._held.append(data)
        if on and on in data:
            self._flush()
            return
        now = self.clock.seconds()
        if self._flushCall is None:
            self._firstHeld = now
            self._flushCall = self.clock.callLater(low, self._flush)
        elif now + low <= self._firstHeld + high:
            self._flushCall.reset(low)

    def _flush(self) -> None:
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self._flushCall = None
        data, self._held = b"".join(self._held), []
        if data:
            self.deviceDataReceived(data, held=True)

    def deviceDataReceived(self, data: bytes, held: bool = False) -> None:
        """Device output: to every client (or held first, when coalescing)."""
        if self._coalesce is not None and not held:
            self._hold(data)
            return
        # Clients first: the bytes leave before any bookkeeping.
        failed = None
        for client in self.clients:
            try:
                client.deliver(data)
            except Exception:
                # One client's failure must not reach the device (whose
                # reader would be dropped) nor the other clients: it is cut
                # off after the loop, so the next client still gets the bytes.
                log.failure("{line}: delivering to {peer} failed; it is cut off", line=self.name, peer=client.peer)
                failed = (failed or []) + [client]
        if failed:
            for client in failed:
                self._cutOff(client)
        self.bytesFromDevice += len(data)
        if self.backlogSize:
            self._backlog.add(data, self.backlogSize)

    def deviceWritable(self, writable: bool) -> None:
        self.writable = writable
        for client in self.clients:
            if self.mayWrite(client):
                if writable:
                    client.resumeInput()
                else:
                    client.pauseInput()

    def deviceLineState(self, state: int) -> None:
        self._lineState |= state
        log.info("{line}: line state {state:#04x} seen on the device", line=self.name, state=state)
        for client in self.clients:
            client.lineStateChanged(state)

    def deviceLost(self, reason: Failure) -> None:
        self.up = False
        why = reason.getErrorMessage().rstrip(".")  # "closed cleanly." then "; waiting": one stop
        self.recordEvent(f"device down ({why}); {len(self.clients)} client(s) stay connected")
        notice = self._downNotice(why)
        for client in list(self.clients):
            client.deviceStateChanged(False, notice)

    def _downNotice(self, why: str) -> bytes:
        if not self.notices:
            return b""
        text = f"[serialgw: {self.name} is down: {why}; waiting for it]"
        return b"\r\n" + text.encode("utf-8", "replace") + b"\r\n"

    def deviceUp(self) -> None:
        self.up = True
        if self._wasUp:
            self.reopens += 1
        self._wasUp = True
        self.recordEvent("device up")
        notice = f"\r\n[serialgw: {self.name} is back]\r\n".encode("utf-8", "replace") if self.notices else b""
        for client in list(self.clients):
            client.deviceStateChanged(True, notice)
        if self._openMissed and self.people:
            self._sendString(self.openString, "open-string")



def describeAddress(address: Any) -> str:
    """
    An address for messages: C{127.0.0.1:5000}, C{[::1]:5000}, C{unix:/path}.
    """
    host: Optional[str] = getattr(address, "host", None)
    port: Optional[int] = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    name = getattr(address, "name", None)
    return f"unix:{describeUnix(name)}" if name is not None else str(address)


def addressAllowed(address: Any, networks: list[Any]) -> bool:
    """
    Whether a peer's address is in one of the networks (C{allow=}); a unix
    socket's peer always is (the file mode decides).
    """
    host = getattr(address, "host", None)
    if host is None:
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def peerName(transport: Any) -> str:
    """
    A transport's peer, for messages.  A unix socket client has no name of
    its own: it is the listener's name and the peer's process and user
    (SO_PEERCRED), so that C{w} tells two of them apart.
    """
    try:
        address = transport.getPeer()
        if isinstance(address, UNIXAddress) and not address.name:
            where = describeAddress(transport.getHost())
            try:
                credentials = transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            except (AttributeError, OSError):
                return where
            pid, uid, _ = _UCRED.unpack(credentials)
            return f"{where} (pid {pid}, uid {uid})"
        return describeAddress(address)
    except Exception:
        return "?"


# struct ucred: pid, uid, gid.
_UCRED = struct.Struct("3i")


def noDelay(transport: Any) -> None:
    """
    Send small writes at once (TCP_NODELAY): a keystroke or a prompt must
    not wait for Nagle's algorithm.  Not TCP (a unix socket, a pipe): nothing.
    """
    setNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setNoDelay is None:
        return
    try:
        setNoDelay(True)
    except OSError:
        pass


def writeNow(transport: Any, data: bytes) -> None:
    """
    Write to a client without waiting for the reactor's next turn: on a
    plain TCP or unix connection with nothing queued, send at once; what the
    socket does not take, and every other case, goes through
    C{transport.write}.  This is the device-to-network hot path: one
    C{send} instead of queue, epoll_ctl, epoll_wait, send, epoll_ctl.
    """
    if (
        isinstance(transport, _SOCKET_TRANSPORTS)
        and not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport.TLS
    ):
        try:
            sent = transport.socket.send(data)
        except OSError:  # BlockingIOError included: all of it goes through write
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


from twisted.internet import tcp  # noqa: E402

_SOCKET_TRANSPORTS = (tcp.Connection,)
