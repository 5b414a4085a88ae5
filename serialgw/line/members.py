"""
Who is on a line, as clients come and go: room for one more (max-clients,
kick-old-user's oldest person disconnected), a client attached (a writer
in exclusive mode made a watcher, announced at once or, quiet, once it
says something), introduced, detached (the port's controls restored for
those who stay, what it dropped counted, a health check's write given on,
the last person's going), and those who hung up while their typing waits
for the device (bounded by max-clients).  The base of
L{serialgw.line.hub.Line}, below it the line's other parts.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.logger import Logger

from serialgw.interfaces import IClient, IDevice
from serialgw.line.comings import Comings
from serialgw.line.control import PortControl
from serialgw.line.devicestate import DeviceState
from serialgw.line.initcommand import InitCommandLine
from serialgw.line.ondemand import OnDemandOpen
from serialgw.line.role import Role, RoleChanges, heirOf
from serialgw.line.slowclients import SlowClients
from serialgw.line.strings import OpenCloseStrings
from serialgw.logflood import peerLimiter

# Limited per peer: a client's input cannot flood the log (logflood); the
# namespace its events had before this module was split from hub.
log = Logger(namespace="serialgw.line.hub", observer=peerLimiter)


class _Line(Protocol):
    """What Members uses of its line (L{serialgw.line.hub.Line} has it all: its own, its other parts', these)."""

    name: str
    device: IDevice
    clients: list[IClient]
    controllers: list[IClient]
    comings: Comings
    mode: str
    maxClients: int
    kickOld: bool
    people: int
    up: bool
    writable: bool
    waitForClient: bool
    initRun: Any
    initHeldUntil: Optional[float]
    droppedGone: dict[str, int]
    _blockers: dict[IClient, None]
    _receiving: dict[IClient, None]
    _fanOut: Optional[tuple[IClient, ...]]
    _parked: dict[Any, Any]
    _refusalsTold: dict[IClient, float]
    _unannounced: dict[IClient, None]
    _watching: dict[IClient, None]
    _unlogged: dict[IClient, None]
    _earlyTo: Optional[IClient]
    _earlyTaken: bool
    _makingRoom: bool

    @property
    def writer(self) -> Optional[IClient]: ...
    def mayWrite(self, client: IClient) -> bool: ...
    def announce(self, text: str, exclude: Optional[IClient] = None, peer: Optional[str] = None,
                 actor: Optional[IClient] = None, everyone: bool = False, logged: bool = True) -> None: ...
    def full(self) -> bool: ...
    def detach(self, client: IClient) -> None: ...
    def _countIn(self) -> None: ...
    def quietOpen(self, client: IClient) -> bool: ...
    def _downNotice(self, why: str) -> bytes: ...
    def _wakerCame(self, client: IClient) -> None: ...
    def _wakerLeft(self, client: IClient) -> None: ...
    def _firstPerson(self) -> None: ...
    def _lastPerson(self) -> None: ...
    def updateLineWatch(self) -> None: ...
    def _stopModemPoll(self) -> None: ...
    def _lastController(self, closing: bool = False, why: str = ...) -> None: ...
    def unblockDevice(self, client: IClient) -> None: ...
    def endHeldBreak(self, client: IClient, why: str) -> None: ...
    def _roleChanged(self, client: IClient, role: Role, text: str, told: bool = False) -> None: ...


class Members(PortControl, OpenCloseStrings, RoleChanges, DeviceState, SlowClients, OnDemandOpen, InitCommandLine):
    """A line's clients coming and going (the line is L{serialgw.line.hub.Line})."""

    # (The line's, set by Line.__init__, reset here: annotated only.)
    _earlyTo: Optional[IClient]

    def full(self: _Line) -> bool:
        """No room for another network client (max-clients): one that hung up, its typing waiting for the device, holds none."""
        people = sum(1 for c in self.clients if _holdsPlace(c))
        return bool(self.maxClients) and people >= self.maxClients

    def leftTyping(self: _Line, client: IClient) -> None:
        """
        C{client} hung up, what it sent waiting for the device (it holds no
        place now: L{full}): at most max-clients such wait on a line, past
        that the oldest one's unread bytes are dropped and it goes.
        """
        gone = [c for c in self.clients if c.departed]
        waiting = len(gone)
        # (Each one cut is off the line at once (its connection is lost only next turn): two seen gone in one turn
        # cut the oldest twice and the bound slipped by one a round.)
        while self.maxClients and len(gone) > self.maxClients:
            gone.pop(0).dropLeftTyping(f"{waiting} clients that hung up wait with their typing for the device, "
                                       f"at most {self.maxClients} (max-clients)")

    def makeRoom(self: _Line, newcomer: str, budget: Any = None, readOnly: bool = False) -> bool:
        """
        A network client C{newcomer} (its peer) is to be admitted: whether
        there is room (max-clients).  With C{kickOld} (ser2net's
        kickolduser) a full line makes room: its oldest person (the first
        attached, not a dial-out) is told why and disconnected; a
        C{readOnly} newcomer's, only a read-only person (none: no room,
        nobody disconnected).
        Asked only once the newcomer may come in (its address allowed, its
        TLS certificate or SSH key verified): an unverified connection never
        costs someone their place.  C{budget}: the newcomer's listener's log
        budget (a client reconnecting in a loop cannot flood the log:
        logflood).
        """
        if not self.full() or not self.kickOld:
            return not self.full()
        # One who may only watch takes no place of one who may type (a ro listener open to a network, a read-only
        # key: anyone there disconnected the person typing at will, each time).
        # Nor does a dial-out's (the gateway's own connection: cut, it dials again at once and cuts back).
        places = [c for c in self.clients if _holdsPlace(c) and not c.dialled and (not readOnly or c.role is Role.READONLY)]
        if len(places) <= sum(1 for c in self.clients if _holdsPlace(c)) - self.maxClients:
            return False
        # (A device opened on demand stays open for the newcomer: see OnDemandOpen._wakerLeft.)
        self._makingRoom = True
        try:
            for oldest in places:
                if not self.full():
                    break
                why = f"{newcomer} took your place on {self.name} (max-clients {self.maxClients}, kick-old-user)"
                log.info("{line}: {peer} disconnected: {newcomer} took its place (max-clients {count}, "
                         "kick-old-user)", line=self.name, peer=oldest.peer, newcomer=newcomer, count=self.maxClients,
                         budget=budget)
                oldest.notice(why)
                oldest.disconnect(why)
                if oldest in self.clients:
                    self.detach(oldest)  # (one whose connection is another's to close: off the line all the same)
        finally:
            self._makingRoom = False
        return not self.full()

    def attach(self: _Line, client: IClient, quiet: bool = False) -> None:
        """
        A client joins.  A person is announced to the others at once, or,
        C{quiet}, only when L{introduce} is called (it said something, or
        stayed a while): a health check or a port scan that comes and goes
        at once is never announced.  A C{quiet} client that is not a person
        (a watch-all watcher's view of this line: its listener logs it once)
        is not logged coming or going.
        """
        if (self.mode == "exclusive" and client.role is Role.WRITER and client.person
                and self.writer is not None):
            client.role = Role.WATCHER
        # In the list before anyone is told: whatever the telling does (a
        # log that fails), the client is fully attached.
        self.clients.append(client)
        self._receiving[client] = None
        self._fanOut = None
        if client.person:
            if quiet:
                self._unannounced[client] = None
            elif self.comings.arrived(client):
                self.announce(f"{client.peer} attached as {client.role.value}", exclude=client)
        elif quiet:
            self._unlogged[client] = None
        if not self.up and not self.quietOpen(client):
            # Someone arriving while the device is down hears it, as those
            # already here did when it went (not while it opens on demand:
            # what comes of that is told).
            client.deviceStateChanged(False, self._downNotice(self.device.downReason or "not there"))
        self._wakerCame(client)
        if self.waitForClient and client.wakesLine:
            self.waitForClient = False
            self.device.start()
        if not self.writable and self.mayWrite(client):
            client.pauseInput()
            if self.initRun is not None and client.person:
                client.notice("init-command running: what you type waits until it ends")
        if self.initHeldUntil is not None and client.person:
            client.notice("init-command held: too many runs lately; it runs soon (what you type goes meanwhile)")
        if not client.person:
            if not quiet:
                log.info("{line}: {peer} attached as {role}", line=self.name, peer=client.peer,
                         role=client.role.value, budget=client.logBudget)
        elif not quiet:
            self._countIn()

    def _countIn(self: _Line) -> None:
        """
        A person is here for good (attached, or announced: see L{introduce}):
        the first one sets the attached DTR/RTS and gets the open-string.  A
        quiet connection that comes and goes (a health check) is never
        counted, so it touches neither (a board with reset wired to DTR/RTS
        is not reset by every check).
        """
        self.people += 1
        if self.people == 1:
            self._firstPerson()

    def detach(self: _Line, client: IClient) -> None:
        # Counted out first: what is restored below is the state for those
        # who stay (the idle state when nobody does).  One never announced
        # was never counted in (see _countIn).
        attached = client in self.clients
        leaving = (attached and client.person
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
        self._watching.pop(client, None)
        self.endHeldBreak(client, "left")  # (it can send no BREAK-OFF now)
        if client in self.clients:
            parked = self._parked.get(client)
            if parked is not None:
                # What it missed is held, as it was until now (and counted).
                parked.unpark()
            place = self.clients.index(client)
            del self.clients[place]
            self._receiving.pop(client, None)
            self._fanOut = None
            guard = client.guard
            if guard is not None and guard.dropped:
                self.droppedGone[guard.policy] = self.droppedGone.get(guard.policy, 0) + guard.dropped
            if client.comPort is not None and client.comPort.dropped:
                self.droppedGone["suspended"] = self.droppedGone.get("suspended", 0) + client.comPort.dropped
            if client is self._earlyTo:
                # Given back by a connection that came and went (a health check).
                self._earlyTo = None
                self._earlyTaken = client not in self._unannounced
            if client in self._unannounced:
                self._unannounced.pop(client, None)
                log.info("{line}: {peer} came and went without a word (not announced)", line=self.name,
                         peer=client.peer, budget=client.logBudget)
                heir = self.mode == "exclusive" and client.role is Role.WRITER and heirOf(self.clients, place, self._watching)
                if heir:
                    # Write is the first person's who came meanwhile (a
                    # health check kept a raw client, with no ^] t, watching;
                    # one not announced yet either is only logged).
                    self._roleChanged(heir, Role.WRITER, "writes")
            elif client.person and self.comings.left(client):
                self.announce(f"{client.peer} detached")
            elif client in self._unlogged:
                self._unlogged.pop(client, None)
            else:
                log.info("{line}: {peer} detached", line=self.name, peer=client.peer,
                         budget=client.logBudget)
        if leaving and not self.people:
            self._lastPerson()
        if attached:
            # (After the close-string: an on-demand device takes it before it closes.)
            self._wakerLeft(client)

    def introduce(self: _Line, client: IClient) -> None:
        """A client attached quietly is announced now (once); nothing for the others."""
        if client in self._unannounced:
            self._unannounced.pop(client, None)
            if self.comings.arrived(client):
                self.announce(f"{client.peer} attached as {client.role.value}", exclude=client)
            self._countIn()


def _holdsPlace(client: IClient) -> bool:
    """A person holds a place in max-clients, unless it hung up and only its typing waits for the device (L{Line.leftTyping})."""
    return bool(client.person) and not client.departed
