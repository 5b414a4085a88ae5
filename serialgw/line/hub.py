"""
One serial line and the clients attached to it.

The line is the hub of the data path: device output goes to every client,
each of which encodes it for its own wire; client input and commands go to
the device if the client's role allows.  The line knows its device only
through the device's methods and its clients only through L{IClient}.
Who is on it, as clients come and go, is L{serialgw.line.members}, the
base of L{Line} below its other parts (the mixins its docstring names).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from serialgw.config.breakseqs import shownSequence
from serialgw.config.people import Rights
from serialgw.config.specs import DEFAULT_BACKLOG, DEFAULT_BREAK_SEQUENCES, SerialSettings
from serialgw.interfaces import IClient, IConsoleLog, IDevice, IDeviceSink
from serialgw.line import idlestring
from serialgw.line.coalesce import Coalescer
from serialgw.line.comings import Comings, whoIsOn
from serialgw.line.idlestring import IdleString
from serialgw.line.members import Members
from serialgw.line.role import Role
from serialgw.line.tail import Tail
from serialgw.line.textgate import TextGate
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# The escape menu's O (clientReopen, conserver's ^Eco): at most REOPENS under way in REOPEN_WINDOW seconds on
# a line, whoever asks.  Each takes the device from everyone on the line for a moment, raises DTR again and
# runs its init-command again; a bound of a connection's would start afresh with each reconnect.
REOPENS = 3
REOPEN_WINDOW = 60.0

# w and the banner name at most this many clients; the rest are counted.


@implementer(IDeviceSink)
class Line(Members):
    """
    A serial line shared by any number of clients.  What RFC 2217 clients
    may do to the port is L{PortControl}'s; the open- and close-strings are
    L{OpenCloseStrings}'; who may write, as it changes, L{RoleChanges}'; the
    device's state, L{DeviceState}'; clients that cannot keep up,
    L{SlowClients}'; a device open only while a client wants it, L{OnDemandOpen}'s;
    the command run as it comes up, L{InitCommandLine}'s.
    """

    # The attributes set below that no base has a default for are slots.
    # Python 3.11 keeps an instance's attribute values inline, its names
    # shared by the class's instances, for at most 30 names; past them
    # each line's __dict__ becomes a dict of its own (it had 62 names in a
    # farm), where no method call and no attribute read is specialised,
    # and each lookup reaches into a table of its own (512 lines, 512
    # such tables).  The dict keeps what the bases have a default for
    # (writable, initRun, linger, ...), and what tests set.
    __slots__ = (
        "name", "device", "clock", "configured", "restoreSettings", "notices", "up", "_wasUp", "clients",
        "_receiving", "_fanOut", "_parked", "_parkedBounds", "_parkedSize", "parkedTail", "streamed",
        "controllers", "bytesGiven", "bytesFromDevice", "refused", "reopens", "droppedGone", "_lineState",
        "mode", "maxClients", "kickOld", "banner", "logs", "settingsFollowers", "_coalescer", "textGate",
        "comings", "_coalesce", "backlogSize", "_backlog", "openString", "closeString", "_stringItems",
        "_stringCall", "_openMissed", "modemAttached", "modemIdle", "people", "_earlyTaken", "_earlyTo",
        "waitForClient", "_blockers", "_unannounced", "_watching", "_unlogged", "_refusalsTold", "rights", "idle",
        "breakSequences", "closeOn", "_closeOnTail", "aliases", "_reopensAsked",
    )

    def __init__(
        self,
        name: str,
        device: IDevice,
        clock: Optional[IReactorTime] = None,
        configured: Optional[SerialSettings] = None,
        restoreSettings: bool = True,
    ) -> None:
        self.name = name
        self.device = device
        # (Tests hand a Clock and drive it through the line.)
        self.clock: Any = clock
        self.configured = configured if configured is not None else device.settings
        self.restoreSettings = restoreSettings
        # Device down/up notices for people at terminals.
        self.notices = True
        # A device may start down (not there yet, a console not dialed yet).
        self.up = bool(device.up)
        # Whether the device was ever up: its first coming up is no reopen.
        self._wasUp = self.up
        self.clients: list[IClient] = []
        # Those that get device output, the clients but the parked ones (see
        # park): kept as they come and go (an ordered set; filtering the
        # clients cost every chunk a look at each parked one while another
        # parked and resumed on every chunk), and a tuple of them made again
        # after a change (a client may park while the loop hands it a chunk).
        self._receiving: dict[IClient, None] = {}
        self._fanOut: Optional[tuple[IClient, ...]] = None
        # Parked clients (full, output dropped) by their guards, how many
        # of them have each bound, and the newest device output for them
        # (at least the largest bound).
        self._parked: dict[Any, Any] = {}
        self._parkedBounds: dict[int, int] = {}
        self._parkedSize = 0
        self.parkedTail = Tail()
        # Device output handed to the fan-out, bytes: the position a
        # parked client's guard is at.
        self.streamed = 0
        self.controllers: list[IClient] = []
        # People's typing is taken (the device not behind, no init-command running: see InitCommandLine).
        self.writable = True
        # Bytes handed to the device while it was up (see bytesToDevice).
        self.bytesGiven = 0
        self.bytesFromDevice = 0
        self.refused = 0
        # For the metrics: times the device came back, and device output
        # dropped for clients that have left, by their listener's policy.
        self.reopens = 0
        # When the last REOPENS reopens asked by people (clientReopen) went under way.
        self._reopensAsked: list[float] = []
        self.droppedGone: dict[str, int] = {}
        self._lastModem: Optional[int] = None
        self._lineState = 0
        self.mode = "shared"
        self.maxClients = 0
        # ser2net's kickolduser: a full line makes room for a newcomer (see makeRoom).
        self.kickOld = False
        # The line's own banner (serialgw.config.banner), else None: the listener option banner's text.
        self.banner: Optional[str] = None
        # Other names the line is reached under (conserver's aliases: see lineNamed).
        self.aliases: tuple[str, ...] = ()
        self.logs: list[IConsoleLog] = []
        # Told the settings in effect after every change (client ptys follow the line).
        self.settingsFollowers: list[Callable[[SerialSettings], None]] = []
        # Holds device output while coalescing (the same one across
        # reloads: what it holds goes first); _coalesce is it while on.
        self._coalescer = Coalescer(clock, self._deliverHeld)
        # Notices wait for device output cut inside an escape sequence (textgate).
        self.textGate = TextGate(clock)
        # Arrivals and departures told to people, bounded (comings).
        self.comings = Comings(name, clock, self.announce)
        self._coalesce: Optional[Coalescer] = None
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
        self._stringCall: Optional[IDelayedCall] = None
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
        self._earlyTo: Optional[IClient] = None
        # QEMU's server without nowait: the device is read from the first
        # client's arrival on, so none of its early output is lost.
        self.waitForClient = False
        self._blockers: dict[IClient, None] = {}
        # People attached but not announced yet (see attach); sets as dicts here (64 bytes empty, not 216).
        self._unannounced: dict[IClient, None] = {}
        # People who chose to watch (RoleChanges.onlyWatch): never handed write.
        self._watching: dict[IClient, None] = {}
        # Clients that are not people, attached quietly: not logged (see attach).
        self._unlogged: dict[IClient, None] = {}
        # When each client was last told a break was refused (see _tellRefusal).
        self._refusalsTold: dict[IClient, float] = {}
        # Who may use the line, by user name (SSH, TLS client certificates).
        self.rights = Rights()
        # conserver's idletimeout / idlestring (setIdleString), or None.
        self.idle: Optional[IdleString] = None
        # conserver's break sequences by the key after the escape menu's l (see clientSequence).
        self.breakSequences: dict[str, tuple[bytes, ...]] = dict(DEFAULT_BREAK_SEQUENCES)
        # ser2net's closeon (see setCloseOn): what the device sends that ends the people's sessions, and the end
        # of its output before this chunk (a match across two reads).
        self.closeOn = b""
        self._closeOnTail = b""
        # The mixins' defaults that each chunk or typing reads, as the line's
        # own: Python 3.11 looks a class attribute up through an instance
        # the slow way (not specialised), and these were read on every
        # chunk and every typing.
        self._letGo = False
        self._onDemandDevice = None
        self.initRun = None

    # Clients

    @property
    def writer(self) -> Optional[IClient]:
        """
        In exclusive mode, the one person who holds write (or None).  One
        that hung up, its typing waiting for the device (C{departed}), holds
        it no longer: that typing still goes, but the next person to attach
        writes, as once it has left.
        """
        return next((c for c in self.clients if c.role is Role.WRITER and c.person and not c.departed), None)

    def mayWrite(self, client: IClient) -> bool:
        return client.role is Role.WRITER and not self._letGo

    def clientData(self, client: IClient, data: bytes) -> bool:
        """Data from a client, for the device; C{False} if refused (it may not write, or the line is let go)."""
        if client.role is not Role.WRITER or self._letGo:
            self.refused += len(data)
            return False
        self.device.write(data, client)
        if self.idle is not None:
            self.idle.touch()
        if self._onDemandDevice is not None and self.closedOnDemand:
            # (From a client that does not open it: one that does is held for the open under way.)
            self.typedWhileClosed(client, len(data))
        # Down: the device drops it, and counts it (but for its first open: held).
        if self.up or self.device.holding:
            self.bytesGiven += len(data)
            for consoleLog in list(self.logs) if self.logs else ():  # (log-typed: what was typed, in its own file)
                try:
                    consoleLog.typed(client.peer, data)
                except Exception:
                    # As for device output: a failing log leaves the line's logs, the typing goes on.
                    log.failure("{line}: writing {peer} failed; it is cut off", line=self.name, peer=consoleLog.peer)
                    self._cutOff(consoleLog)
        return True

    def setIdleString(self, timeout: float, parts: tuple[bytes, ...]) -> None:
        """The idle-string written after C{timeout} s with the device quiet either way (0: none; see idlestring)."""
        self.idle = idlestring.retune(self.idle, self, timeout, parts)

    def who(self, exclude: Optional[IClient] = None) -> str:
        """Who is on, for people (C{w}, the banner): see L{whoIsOn}."""
        return whoIsOn(c for c in self.clients if c is not exclude)

    def clientBreak(self, client: IClient, duration: Optional[float] = None) -> bool:
        """
        A client asks for a break; C{True} if one was started.  If not, the
        client is told why (a notice, for a person at a terminal) and the
        log says the same.
        """
        reason = self._noBreak(client)
        if reason is None:
            if self.device.sendBreak(duration):
                self._breakHolder = None  # (this break is nobody's to hold)
                self.recordEvent(f"BREAK from {client.peer}", client.peer)
                return True
            reason = "one is under way"
        if self._tellRefusal(client):
            log.info("{line}: break from {peer} refused: {reason}", line=self.name, peer=client.peer, reason=reason)
            client.notice(f"no break: {reason}")
        return False

    def clientReopen(self, client: IClient) -> bool:
        """
        A person asks for the device anew (the escape menu's O, conserver's
        ^Eco): up, closed and opened again (a remote console's link cut and
        dialled again), everyone told it went and came back; down, opened
        now rather than after its backoff.  For those who may write; refused
        as the device says (a break or an open under way, a pty the gateway
        makes).  The person is told, the log and console logs say it; C{True}
        if under way.
        """
        device = self.device
        wasDown = None if device.up else device.downReason
        if not self.mayWrite(client):
            reason: Optional[str] = {Role.WATCHER: "you only watch: take write first",
                                     Role.READONLY: "read-only"}.get(client.role, f"{self.name} is closing")
        elif not self._mayReopenNow():
            reason = f"at most {REOPENS} reopens of it in {REOPEN_WINDOW:g} s, whoever asks"
        else:
            reason = device.reopen(f"reopened by {client.peer}")
            if reason is None:
                self._reopensAsked.append(self.clock.seconds() if self.clock is not None else 0.0)
                del self._reopensAsked[:-REOPENS]
        if reason is not None:
            log.info("{line}: reopen from {peer} refused: {reason}", line=self.name, peer=client.peer, reason=reason,
                     budget=client.logBudget)
            client.notice(f"{self.name} not reopened: {reason}")
            return False
        if wasDown is not None:
            # (Up, its going is the line's news already: 'device down (reopened by ...)'.)
            self.recordEvent(f"device opened now, asked by {client.peer} (it was down: {wasDown})", client.peer,
                             budget=client.logBudget)
        client.notice(f"{self.name}: opening {device.name} {'now' if wasDown is not None else 'again'}")
        return True

    def _mayReopenNow(self) -> bool:
        """Fewer than REOPENS reopens asked in the last REOPEN_WINDOW s (on the line's clock)."""
        asked = self._reopensAsked
        if len(asked) < REOPENS:
            return True
        now = self.clock.seconds() if self.clock is not None else 0.0
        return not asked[0] <= now < asked[0] + REOPEN_WINDOW

    def clientSequence(self, client: IClient, name: str) -> bool:
        """
        A client sends the line's break sequence C{name} (the escape menu's
        C{l KEY}): its data, its break (at most one) between, in order, or
        nothing: refused as a break is (read-only, the device down, typing
        waiting for it; one with a break where none can go), or while an
        init-command runs (its keys would land in the command's talk).  The
        client is told why; C{True} if sent.
        """
        parts = self.breakSequences[name]
        reason: Optional[str] = None
        if len(parts) > 1 or not self.mayWrite(client):
            # (Its first answer is who may not write.)
            reason = self._noBreak(client) or ("a break is under way" if self.device.breaking else None)
        elif not self.device.up:
            reason = "the device is down"
        elif waiting := self.typedAhead(client):
            reason = f"{waiting}, and the sequence now would reach it before them; ask again once they have gone"
        if reason is None and self.initHoldsTyping():
            reason = "an init-command runs"
        if reason is not None:
            if self._tellRefusal(client):
                log.info("{line}: break sequence {name} from {peer} refused: {reason}", line=self.name, name=name,
                         peer=client.peer, reason=reason)
                client.notice(f"break sequence {name} not sent: {reason}")
            return False
        self.recordEvent(f"break sequence {name} ({shownSequence(parts)}) from {client.peer}", client.peer)
        if parts[0]:
            self.clientData(client, parts[0])
        if len(parts) > 1:
            # (The data before it is queued: the device sends it first.)
            self.clientBreak(client)
            if parts[1]:
                self.clientData(client, parts[1])
        return True

    def _noBreak(self, client: IClient) -> Optional[str]:
        """Why no break can be sent for C{client} now (before asking the device); None: try."""
        if not self.mayWrite(client):
            return {Role.WATCHER: "you only watch: take write first", Role.READONLY: "read-only"}.get(
                client.role, f"{self.name} is closing")
        if self.device.noBreak:
            return str(self.device.noBreak)
        if not self.device.up:
            return "the device is down"
        # Sent now, it reached the device before typing that waits for it (a person's, read while it takes
        # no input), and a Linux console takes a break, then a key, as magic SysRq: 'boot' waiting, then a
        # break, rebooted it.  Another person's typing too: typed before, it would go after.  (What the
        # device's own queue holds goes first: a break waits for it.)
        waiting = self.typedAhead(client)
        if waiting:
            return f"{waiting}, and a break now would reach it before them; ask again once they have gone"
        return None

    def typedAhead(self, client: IClient) -> str:
        """
        What people typed that waits for the device (it takes no input now:
        read on for their escape menus), C{client}'s own first, said for
        C{client}; empty when none does.  A command done now (a break, a
        new rate) would reach the device before it.
        """
        why = "an init-command runs" if self.initHoldsTyping() else "it takes no input now"
        mine = client.typedWaiting
        if mine:
            return f"{mine} byte(s) you typed wait for the device ({why})"
        others = sum(other.typedWaiting for other in self.clients if other is not client)
        if others:
            return f"{others} byte(s) others typed wait for the device ({why})"
        return ""

    def initHoldsTyping(self) -> bool:
        """Whether people's typing waits for an init-command running, the device taking input (not for the device)."""
        return self.initRun is not None and self.deviceTakes

    def _cutOff(self, client: IClient) -> None:
        if client in self.logs:
            self.logs.remove(client)
        if not client.abort():
            self.detach(client)

    # Sessions

    def announce(self, text: str, exclude: Optional[IClient] = None, peer: Optional[str] = None,
                 actor: Optional[IClient] = None, everyone: bool = False, logged: bool = True) -> None:
        """
        News for the people at terminals (each client's announcement()),
        and the logs (not the gateway's log unless C{logged}: said there its
        own way); C{peer}: the client whose doing it is (its log
        budget); C{actor}, that client, is answered (its notice()), and
        so is C{everyone} (news that ends every session: the gateway stops);
        not C{logged}: the console logs only (the caller says it in the
        gateway's log its own way).
        """
        if logged:
            self.recordEvent(text, peer)
        else:
            self.writeLogs(text)
        for client in list(self.clients):
            if client is not exclude:
                try:
                    if everyone or client is actor:
                        client.notice(text)
                    else:
                        client.announcement(text)
                except Exception:
                    log.failure("{line}: telling {peer} failed; it is cut off", line=self.name, peer=client.peer)
                    self._cutOff(client)

    def recordEvent(self, text: str, peer: Optional[str] = None, budget: Optional[str] = None) -> None:
        log.info("{line}: {text}", line=self.name, text=text, peer=peer, budget=budget)
        self.writeLogs(text)

    def writeLogs(self, text: str) -> None:
        """An event for the console logs only (the gateway's log has said it its own way)."""
        for consoleLog in list(self.logs):
            try:
                consoleLog.event(text)
            except Exception:
                # As for device output: a failing log leaves the line's logs,
                # the event and the line go on.
                log.failure("{line}: writing {peer} failed; it is cut off", line=self.name, peer=consoleLog.peer)
                self._cutOff(consoleLog)

    def backlog(self, limit: Optional[int] = None) -> bytes:
        """
        The last device output kept (up to backlogSize bytes; up to C{limit},
        what a client may have waiting: a copy of a 64 MiB backlog for each
        connection took 40 ms).
        """
        return self._backlog.newest(self.backlogSize if limit is None else min(limit, self.backlogSize))

    def takeEarlyOutput(self, client: Optional[IClient] = None, limit: Optional[int] = None) -> bytes:
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
        return self.backlog(limit)

    # IDeviceSink

    def coalesce(self, low: float, high: float, on: bytes = b"") -> None:
        """
        Hold device output for fewer, larger packets (see L{Coalescer});
        C{low == 0}: no coalescing (the default).
        """
        self._coalescer.configure(low, high, on)
        self._coalesce = self._coalescer if low > 0 else None

    def setCloseOn(self, closeOn: bytes) -> None:
        """close-on (ser2net's closeon): the people are disconnected when the device sends C{closeOn} (b"": never)."""
        self.closeOn = closeOn
        self._closeOnTail = b""

    def _lookForCloseOn(self, data: bytes) -> None:
        """
        The device sent C{data} (every client has it): the close-on string
        in it, or across it and what came before, disconnects every person
        (network session) on the line, each told why, once its output
        (the string too) is written.  Programs and files stay.
        """
        closeOn = self.closeOn
        # Kept between reads: the last len(closeOn) - 1 bytes seen, the most
        # of the string that can sit before a read's start.  The chunk is
        # searched where it lies; only the seam (the tail and the chunk's
        # first bytes) is joined, so a flood costs no copy of each read.
        keep = len(closeOn) - 1
        tail = self._closeOnTail
        if closeOn not in data and not (tail and closeOn in tail + data[:keep]):
            if not keep:
                self._closeOnTail = b""
            elif len(data) >= keep:
                self._closeOnTail = data[-keep:]
            else:
                self._closeOnTail = (tail + data)[-keep:]
            return
        self._closeOnTail = b""
        people = [client for client in self.clients if client.person]
        shown = repr(closeOn)[2:-1]
        self.recordEvent(f"'{shown}' came from the device: {len(people)} session(s) disconnected (close-on)")
        why = f"'{shown}' came from {self.name}: disconnected (close-on)"
        # (Each told before any goes: the others' leaving is said after it.)
        for client in people:
            client.notice(why)
        for client in people:
            client.disconnect(why)

    def flushHeld(self) -> None:
        """Device output held to coalesce goes now (the device went, the line is let go)."""
        self._coalescer.flush()

    def _deliverHeld(self, data: bytes) -> None:
        self.deviceDataReceived(data, held=True)

    def deviceDataReceived(self, data: bytes, held: bool = False) -> None:
        """Device output: to every client (or held first, when coalescing)."""
        if self._coalesce is not None and not held:
            self._coalesce.hold(data)
            return
        # Parked clients' position first (one that parks while the loop
        # gives it these bytes is past them); the bytes leave before any
        # other bookkeeping.
        self.streamed += len(data)
        if self._parked:
            self.parkedTail.add(data, self._parkedSize)
        fanOut = self._fanOut
        if fanOut is None:
            fanOut = self._fanOut = tuple(self._receiving)
        failed = None
        for client in fanOut:
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
        self.textGate.deviceOutput(data)
        if self.closeOn:
            self._lookForCloseOn(data)
        self.bytesFromDevice += len(data)
        if self.initRun is not None:
            self.initRun.deviceOutput(data)
        if self.idle is not None:
            self.idle.touch()
        if self.backlogSize:
            self._backlog.add(data, self.backlogSize)


def lineNamed(lines: Mapping[str, Line], name: str) -> Optional[Line]:
    """
    The line C{name} names among C{lines} (by name): its own name, else one
    of its aliases (the configuration gives each alias to one line, never a
    line's name); None if none.
    """
    line = lines.get(name)
    if line is not None:
        return line
    return next((line for line in lines.values() if name in line.aliases), None)
