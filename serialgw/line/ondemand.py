"""
A line whose device is opened on demand (C{on-demand = true}), mixed into
L{serialgw.line.hub.Line}: the device is opened when the first client that
wants it attaches, and closed once the last one has left, so that other
programs may use the port meanwhile (conserver's C{options ondemand},
ser2net's way).

Who wants it: the clients that wake a line (L{IClient.wakesLine}: network
sessions, whatever their role, read-only and watchers in exclusive mode
included).  A console log, a C{file:} or C{pty:} listener, a datagram peer
and a watch-all view do not: they see the device while someone else keeps
it open, and are told it is closed on demand otherwise.

Opening: the device is down (C{opening the device}) until its open returns, a turn
later for a tty that opens at once; what is typed meanwhile is held for it
(see L{serialgw.devices.early}), and the open-string sent once it is up.
Nobody is told anything of an open that works (the console logs and the
gateway's log say C{device opened (on demand)}); one that fails is told to
every client as a device down is (C{[serialgw: NAME is down: cannot open
...; waiting for it]}), tried again with backoff while someone is there,
and told back when it works.

Closing: the last client gone (after the close-string), and
C{on-demand-linger} seconds after that if it is given (a client coming
back within them finds the device open: a board whose reset is wired to
DTR is not reset by each health check), the device is closed once it has
taken what is queued for it (the close-string, typing, a break under way;
at most L{LET_GO_LIMIT} s, then that is dropped, counted), what the device
read before is delivered first (to the logs and views still attached), and
the idle DTR/RTS set.  A client arriving meanwhile finds it still open.  A client that comes and goes at once, over
and over, costs one open and one close each time, never two opens at once
(an open that hangs is the next one's: see L{IRestingDevice}).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.internet.interfaces import IDelayedCall

from serialgw.interfaces import IClient, IConsoleLog, IDevice, IRestingDevice
from serialgw.line.strings import LET_GO_LIMIT, STRING_BREAK_POLL
from serialgw.logflood import clientLog

# Limited per peer: a client coming and going in a loop cannot flood the log (logflood).
log = clientLog()


class _Line(Protocol):
    """What the mixin uses of its line (L{serialgw.line.hub.Line} has it all)."""

    name: str
    device: IDevice
    clock: Any
    up: bool
    clients: list[IClient]
    logs: list[IConsoleLog]
    _letGo: bool
    _wakers: int
    _makingRoom: bool
    _restCall: Optional[IDelayedCall]
    _quietOpen: bool
    _wokenFor: dict[str, Any]
    _onDemandDevice: Optional[IRestingDevice]
    _stringItems: list[tuple[str, Optional[bytes]]]
    _stringCall: Optional[IDelayedCall]
    linger: float
    _lingerSince: Optional[float]
    _lingerLogged: dict[str, Any]

    def _restWhenSent(self: _Line, deadline: float, logged: Optional[dict[str, Any]] = None) -> None: ...
    def _cancelRest(self: _Line) -> bool: ...
    def _lingers(self: _Line) -> bool: ...
    def _lingerFrom(self: _Line, logged: dict[str, Any]) -> None: ...
    def _wake(self: _Line, client: Optional[IClient]) -> None: ...
    def _undrained(self: _Line) -> str: ...
    def _cancelIdle(self: _Line) -> Optional[IDelayedCall]: ...
    def _stringsPending(self: _Line) -> list[str]: ...
    def _stringsLeft(self: _Line, what: str) -> str: ...
    def _downNotice(self: _Line, why: str) -> bytes: ...
    def applyModemLines(self: _Line, nobody: bool = False) -> None: ...
    def flushHeld(self: _Line) -> None: ...
    def writeLogs(self: _Line, text: str) -> None: ...
    def stopInitCommand(self: _Line, why: str) -> Any: ...


class OnDemandOpen:
    """Opens and closes a line's device as the clients that want it come and go (see the module)."""

    # The device when its line opens it on demand (see setOnDemand), else None.
    _onDemandDevice: Optional[IRestingDevice] = None
    # Clients attached that want the device (IClient.wakesLine).
    _wakers = 0
    # The close waiting for the device to take what is queued for it.
    _restCall: Optional[IDelayedCall] = None
    # kick-old-user is making room for a newcomer (see _wakerLeft).
    _makingRoom = False
    # An open on demand is under way that nobody has been told of (its success is no news).
    _quietOpen = False
    # Whose coming the open is, for its log line (the client's log budget: see logflood).
    _wokenFor: dict[str, Any] = {}
    # (The strings' own: see serialgw.line.strings.)
    _stringCall: Optional[IDelayedCall]
    # Seconds the device stays open after the last client that wanted it left (on-demand-linger; 0: closed at
    # once), and, while it does, when that one left and whom the close's log line counts against.
    linger = 0.0
    _lingerSince: Optional[float] = None
    _lingerLogged: dict[str, Any] = {}

    @property
    def onDemand(self: _Line) -> bool:
        """Whether the device is open only while a client wants it."""
        return self._onDemandDevice is not None

    @property
    def closedOnDemand(self: _Line) -> bool:
        """Whether the device is closed now because no client wants it."""
        return self._onDemandDevice is not None and bool(self._onDemandDevice.resting)

    @property
    def lingeringUntil(self: _Line) -> Optional[float]:
        """While the device lingers open after the last client left (on-demand-linger): when it is to close; else None."""
        since = self._lingerSince
        return None if since is None or self._restCall is None else since + self.linger

    def setOnDemand(self: _Line, on: bool, lingering: bool = False) -> None:
        """
        On demand from now on (C{on}; the device closed if no client wants
        it: at once, or with C{lingering} (a reload), its on-demand-linger
        from now, as when the last client leaves), or no more (opened now if
        closed, and kept open).  Only a device that can rest
        (L{IRestingDevice}: a local tty) is opened on demand; another is
        always open.
        """
        device = self.device if on and IRestingDevice.providedBy(self.device) else None
        if device is self._onDemandDevice:
            return
        if device is not None:
            self._onDemandDevice = device  # type: ignore[assignment]
            if not self._wakers and lingering and self._lingers():
                self._lingerFrom({})
            elif not self._wakers:
                self._restWhenSent(self.clock.seconds() + LET_GO_LIMIT if self.clock is not None else 0.0)
            return
        resting, self._onDemandDevice = self._onDemandDevice, None
        self._cancelRest()
        if resting is not None and resting.resting:
            self._quietOpen, self._wokenFor = True, {}
            resting.wake()

    def _wakerCame(self: _Line, client: IClient) -> None:
        """A client that wants the device attached: the first one opens it (or keeps it from closing)."""
        if not client.wakesLine:
            return
        self._wakers += 1
        if self._wakers == 1 and self._onDemandDevice is not None and not self._cancelRest():
            self._wake(client)

    def _wakerLeft(self: _Line, client: IClient) -> None:
        """A client that wanted the device left: after the last one, it is closed once it has taken what is queued."""
        if not client.wakesLine:
            return
        self._wakers -= 1
        if not self._wakers and self._onDemandDevice is not None:
            deadline = self.clock.seconds() + LET_GO_LIMIT if self.clock is not None else 0.0
            if self._lingers():
                # (A client coming back within it finds the device open: _cancelRest, no open; so does
                # kick-old-user's newcomer, and one that never attaches leaves it lingering.)
                self._lingerFrom(_logged(client))
                return
            if self._makingRoom and self.clock is not None:
                # kick-old-user: the newcomer attaches in this turn and finds the device open (the close
                # cancelled); closed at once, the device was opened again for it (its DTR dropped, its lock
                # let go meanwhile).  A newcomer that never attaches lets it close the next turn.
                self._restCall = self.clock.callLater(0, self._restWhenSent, deadline, _logged(client))
                return
            self._restWhenSent(deadline, _logged(client))

    def _lingers(self: _Line) -> bool:
        """Whether a device nobody wants now stays open its on-demand-linger first (open, or opening; not let go)."""
        return bool(self.linger) and self.clock is not None and (self.up or self._quietOpen) and not self._letGo

    def _lingerFrom(self: _Line, logged: dict[str, Any]) -> None:
        """The device nobody wants now is closed its linger from now (C{logged}: whom the close's log line counts against)."""
        now = self.clock.seconds()
        self._lingerSince, self._lingerLogged = now, logged
        self._restCall = self.clock.callLater(self.linger, self._restWhenSent, now + self.linger + LET_GO_LIMIT, logged)

    def setLinger(self: _Line, seconds: float) -> None:
        """
        A reload's on-demand-linger: a device lingering open now is closed
        C{seconds} after the last client left (at once if that is past).
        """
        self.linger = seconds
        since, logged = self._lingerSince, self._lingerLogged
        if since is None or self.clock is None or not self._cancelRest():
            return
        self._lingerSince = since
        now = self.clock.seconds()  # (read once: a real clock has moved on by the next read)
        due = max(since + seconds, now)
        self._restCall = self.clock.callLater(due - now, self._restWhenSent, due + LET_GO_LIMIT, logged)

    def _wake(self: _Line, client: Optional[IClient]) -> None:
        device = self._onDemandDevice
        if device is None or not device.resting or self._letGo:
            return
        self._quietOpen, self._wokenFor = True, _logged(client)
        device.wake()

    def typedWhileClosed(self: _Line, client: IClient, count: int) -> None:
        """
        C{client}, one that does not open the device (a pty: or udp:
        listener's program or peer), typed C{count} bytes while it is closed
        on demand: dropped by the device.  Such a client cannot be told (a
        notice in a pty reaches its program as console output; a datagram
        peer reads none), so the log says it, counted against its peer's
        budget (20 a minute, the rest counted as left out).
        """
        log.info("{line}: {count} byte(s) from {peer} dropped: the device is closed on demand and {peer} does not "
                 "open it (a network client does)", line=self.name, peer=client.peer, count=count)

    def quietOpen(self: _Line, client: IClient) -> bool:
        """
        Whether C{client}, attaching while the device is down, is told
        nothing of it: an open on demand is under way (or about to be: the
        first client that wants it), and what comes of it is told.
        """
        device = self._onDemandDevice
        return device is not None and (self._quietOpen and bool(device.holding)
                                       or bool(device.resting) and client.wakesLine and not self._wakers)

    def openedOnDemand(self: _Line) -> bool:
        """The device is up: whether that was an open on demand nobody was told of (then said to the logs only)."""
        quiet, self._quietOpen = self._quietOpen, False
        if not quiet:
            return False
        log.info("{line}: device opened (on demand)", line=self.name, **self._wokenFor)
        self.writeLogs("device opened (on demand)")
        # (No notice; an RFC 2217 client's carrier goes up.)
        for client in list(self.clients):
            client.deviceStateChanged(True, b"")
        return True

    def notOpenedOnDemand(self: _Line, reason: str) -> None:
        """An open on demand failed (C{reason}): it is no quiet one any more (the clients are told next)."""
        if not self._quietOpen:
            return  # (not an open of ours: a first open at start or by a reload says its own failure)
        self._quietOpen = False
        log.warn("{line}: cannot open the device (on demand): {reason}; tried again with backoff while a client "
                 "wants it", line=self.name, reason=reason, **self._wokenFor)

    def _cancelRest(self: _Line) -> bool:
        """No close waits any more (a client came); whether one did."""
        call, self._restCall = self._restCall, None
        self._lingerSince = None
        if call is not None and call.active():
            call.cancel()
            return True
        return False

    def _restWhenSent(self: _Line, deadline: float, logged: Optional[dict[str, Any]] = None) -> None:
        """
        Nobody wants the device: closed once it has taken what is queued for
        it (the close-string), or at C{deadline}; the idle DTR/RTS set first.
        """
        self._restCall = None
        self._lingerSince = None
        device = self._onDemandDevice
        if device is None or device.resting or self._wakers or self._letGo:
            return
        left = self._undrained()
        if left and self.clock is not None and self.clock.seconds() < deadline:
            self._restCall = self.clock.callLater(STRING_BREAK_POLL, self._restWhenSent, deadline, logged)
            return
        if left:
            log.warn("{line}: the device did not take what was queued for it within {limit} s ({left}); closing it "
                     "anyway (on demand), that is dropped", line=self.name, limit=LET_GO_LIMIT, left=left)
        if self._stringCall is not None and self._stringCall.active():
            self._stringCall.cancel()
        self._stringCall = None
        del self._stringItems[:]
        if self._cancelIdle() is not None:
            self.applyModemLines(nobody=True)
        # What it said before, held to coalesce, goes before the close; what its mover moved, with it (held too).
        self.flushHeld()
        self._quietOpen = False
        self.stopInitCommand("the device is closed (on demand)")
        device.rest()
        self.flushHeld()
        self.up = False
        log.info("{line}: device closed (on demand): no client wants it", line=self.name, **(logged or {}))
        self.writeLogs("device closed (on demand)")
        notice = self._downNotice(str(device.downReason))
        for client in list(self.clients):
            client.deviceStateChanged(False, notice)


def _logged(client: Optional[IClient]) -> dict[str, Any]:
    """The log fields that count a line about C{client}'s coming or going against its budgets (see logflood)."""
    if client is None:
        return {}
    return {"peer": client.peer, "budget": client.logBudget}
