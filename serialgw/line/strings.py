"""
ser2net's open- and close-strings, mixed into L{Line}: written when the
first person is announced and when the last one leaves; their parts are
data with a break between each two, in order (a break waits for the one
under way to end).  And the line let go (the gateway stopping, a reload
removing the line): left as when the last person leaves, while its device
is still open, and the device closed only once it has taken that (or after
L{LET_GO_LIMIT} seconds).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from serialgw.interfaces import IClient, IDevice
from serialgw.line.comings import Comings
from serialgw.line.role import Role
from serialgw.line.textgate import TextGate
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# How often an open- or close-string's next break checks that the one
# before it has ended.
STRING_BREAK_POLL = 0.05
# How long a line let go waits for its device to take what is queued for it
# (the close-string, its breaks) before the device is closed anyway (one
# held by flow control, or a remote console that does not read, would hold
# a stop or a reload for ever), and how often it looks.
LET_GO_LIMIT = 2.0
LET_GO_POLL = 0.05


class _Line(Protocol):
    """What the mixin uses of its line (L{Line} has it all)."""

    name: str
    device: IDevice
    clock: Any
    bytesGiven: int
    _unsentSeen: int
    _sentSeen: int
    people: int
    openString: tuple[bytes, ...]
    closeString: tuple[bytes, ...]
    controllers: list[IClient]
    _stringItems: list[tuple[str, Optional[bytes]]]
    _stringCall: Optional[IDelayedCall]
    _openMissed: bool
    _openGiven: int
    _letGo: bool
    _letGoCall: Optional[IDelayedCall]
    _letGoLook: Optional[Callable[[bool], None]]
    _idleCall: Optional[IDelayedCall]
    idle: Any  # (an IdleString, or None)
    textGate: TextGate
    comings: Comings

    def _sendString(self: _Line, parts: tuple[bytes, ...], what: str) -> None: ...
    def _sendStringItems(self: _Line) -> None: ...
    def _leftAsLastLeaves(self: _Line) -> None: ...
    def _idleWhenSent(self: _Line, deadline: float) -> None: ...
    def _cancelIdle(self: _Line) -> Optional[IDelayedCall]: ...
    def _countUnsent(self: _Line, why: str) -> None: ...
    def _cancelRest(self: _Line) -> bool: ...
    def _stringsLeft(self: _Line, what: str) -> str: ...
    def _stringsPending(self: _Line) -> list[str]: ...
    def _undrained(self: _Line) -> str: ...
    def applyModemLines(self: _Line, nobody: bool = False) -> None: ...
    def _lastController(self: _Line, closing: bool = False) -> None: ...
    def flushHeld(self: _Line) -> None: ...
    def stopInitCommand(self: _Line, why: str) -> Optional[Deferred[None]]: ...
    def hurryInitCommand(self: _Line) -> None: ...


class OpenCloseStrings:
    """
    Sends a line's open- and close-strings (see L{Line._countIn} and
    L{Line.detach}); counts what its device took.
    """

    # The device's unsent count when its last loss was told (see _countUnsent).
    _unsentSeen = 0
    # The most bytesToDevice has said (it never says less: a counter).
    _sentSeen = 0

    @property
    def bytesToDevice(self: _Line) -> int:
        """
        Bytes the device took: those given to it while it was up (typing,
        the strings) less those it has not sent yet (L{IDevice.queuedBytes}:
        ours, a tty driver's) and those it lost before sending them (queued
        when it went away or was closed, or purged: its C{unsent}, counted
        dropped).  A counter: never less than it said before (a remote
        console's queue counts its telnet encoding too).
        """
        sent = self.bytesGiven - self.device.unsent - self.device.queuedBytes()
        if sent > self._sentSeen:
            self._sentSeen = sent
        return self._sentSeen

    # bytesGiven once the last open-string's data was given to the device:
    # taken by it only once what it sent reaches that (_countUnsent).
    _openGiven = 0

    def _countUnsent(self: _Line, why: str) -> None:
        """
        The device went away (C{why}): what it lost of what it was given is
        logged, naming the line.  An open-string it lost some of (queued
        behind the string's own break when it was unplugged) goes whole to
        the device that comes back, as one due while it was down.
        """
        unsent = self.device.unsent
        lost, self._unsentSeen = unsent - self._unsentSeen, unsent
        if lost:
            log.warn("{line}: {count} byte(s) queued for the device were lost with it ({reason}): not sent, "
                     "counted dropped", line=self.name, count=lost, reason=why, device=self.device.name)
        # (What it lost is the last given: its queue goes in order.)
        if self._openGiven > self.bytesGiven - lost - self.device.queuedBytes() and not self._letGo:
            self._openGiven = 0
            self._openMissed = True
            log.info("{line}: open-string cut short: the device is down ({reason}); sent whole when it is back",
                     line=self.name, reason=why)

    _stringCall: Optional[IDelayedCall]
    # Let go (see letGo): people coming and going send nothing to the
    # device from then on.
    _letGo = False
    # A let-go waiting for its device: its next look, and the look itself
    # (called at once, hurried, by hurryLetGo).
    _letGoCall: Optional[IDelayedCall] = None
    _letGoLook: Optional[Callable[[bool], None]] = None
    # The idle DTR/RTS waiting for the close-string to leave (see _idleWhenSent).
    _idleCall: Optional[IDelayedCall] = None

    def _firstPerson(self: _Line) -> None:
        """The first person counts: the attached DTR/RTS, then the open-string (not once let go)."""
        if self._letGo:
            return
        self._cancelIdle()
        self.applyModemLines()
        self._sendString(self.openString, "open-string")

    def _lastPerson(self: _Line) -> None:
        """The last person left: the close-string, then the idle DTR/RTS (not again once let go)."""
        if not self._letGo:
            self._leftAsLastLeaves()

    def _leftAsLastLeaves(self: _Line) -> None:
        self._sendString(self.closeString, "close-string")
        self._cancelIdle()
        self._idleWhenSent(self.clock.seconds() + LET_GO_LIMIT if self.clock is not None else 0.0)

    def _idleWhenSent(self: _Line, deadline: float) -> None:
        """
        The idle DTR/RTS, once the device has sent what is queued for it
        (the close-string, its breaks; a tty's driver included), or at
        C{deadline} (held by flow control): not before, or a modem hangs up,
        a board wired to DTR resets, before the close-string reached it.
        """
        self._idleCall = None
        if self.clock is not None and self.clock.seconds() < deadline and self._undrained():
            self._idleCall = self.clock.callLater(STRING_BREAK_POLL, self._idleWhenSent, deadline)
            return
        self.applyModemLines(nobody=True)

    def _cancelIdle(self: _Line) -> Optional[IDelayedCall]:
        """No idle DTR/RTS waits any more (someone came, or it is set now); the call that waited, if any."""
        call, self._idleCall = self._idleCall, None
        if call is not None and call.active():
            call.cancel()
            return call
        return None

    def letGo(self: _Line, limit: float = LET_GO_LIMIT) -> Deferred[None]:
        """
        The gateway stops, or a reload removes the line, its device still
        open.  With people attached the line is left as when the last one
        leaves: what an RFC 2217 writer changed is put back (a break it
        holds ended), the close-string is sent (its breaks included) and
        the idle DTR/RTS set.  From now on people coming and going send
        nothing (they are cut off next), and what they send (typing, breaks,
        settings) is refused (L{Line.mayWrite}).  The Deferred fires once the
        device has taken what is queued for it, or after C{limit} seconds
        (logged, naming the line): then it may be closed.  A line with no
        close-string and no string under way does not wait.
        """
        # Device output held to coalesce goes before what the stop tells and before the close.
        self.flushHeld()
        # (A command under way is killed: the let-go is done once it is gone.)
        ending = self.stopInitCommand("the line is let go")
        self._cancelRest()  # (an on-demand close waiting for the close-string: the device is closed next anyway)
        if not self._letGo:
            if self.people:
                if any(c.role is Role.WRITER for c in self.controllers):
                    self._lastController(closing=True)
                self._leftAsLastLeaves()
            self._letGo = True
            if self.idle is not None:
                self.idle.stop()  # (no idle-string into the close)
            # An open-string waiting for the device to come back is moot.
            self._openMissed = False
        done: Deferred[None] = Deferred()

        def finish() -> None:
            # What is not sent by now never will be: the device is closed next.
            if self._stringCall is not None and self._stringCall.active():
                self._stringCall.cancel()
            self._stringCall = None
            if self._cancelIdle() is not None:
                self.applyModemLines(nobody=True)
            for what in self._stringsPending():
                log.info("{line}: {what}: {left} not sent: the device is {state}", line=self.name,
                         what=what, left=self._stringsLeft(what),
                         state="closed now" if self.device.up else f"down ({self.device.downReason})")
            del self._stringItems[:]
            # Held output and notices go now (the device's answer to the
            # close-string, before the device and the logs close), and the
            # count of untold arrivals is moot.
            self.flushHeld()
            self.textGate.release()
            self.comings.stop()
            # (What closing the device drops is its unsent: see bytesToDevice.)
            if ending is not None and not ending.called:
                ending.addBoth(lambda _: done.callback(None))
            else:
                done.callback(None)

        if self.clock is None or not (self.closeString or self._stringItems):
            # Nothing of ours to see through (typing queued on a device that
            # does not take it is no reason to hold a stop).
            finish()
            return done
        deadline = self.clock.seconds() + limit

        def look(hurried: bool = False) -> None:
            self._letGoCall = None
            left = self._undrained()
            if left and not hurried and self.clock.seconds() < deadline:
                self._letGoCall = self.clock.callLater(LET_GO_POLL, look)
                return
            self._letGoLook = None
            if left and hurried:
                log.warn("{line}: the stop was hurried: the device is closed now ({left}); that is dropped",
                         line=self.name, left=left)
            elif left:
                log.warn("{line}: the device did not take what was queued for it within {limit} s ({left}); "
                         "closing it anyway, that is dropped", line=self.name, limit=limit, left=left)
            finish()

        self._letGoLook = look
        look()
        return done

    def hurryLetGo(self: _Line) -> None:
        """
        The stop is hurried (SIGTERM again): a let-go still waiting for its
        device (see L{letGo}) ends now, what the device has not taken dropped.
        """
        self.hurryInitCommand()
        if self._letGoCall is not None and self._letGoCall.active():
            self._letGoCall.cancel()
        self._letGoCall = None
        if self._letGoLook is not None:
            self._letGoLook(True)

    def _undrained(self: _Line) -> str:
        """What the device has still to take (for people), or "" if nothing (or it is down: it never will)."""
        if not self.device.up:
            return ""
        left = [f"{what}: {self._stringsLeft(what)} not sent yet" for what in self._stringsPending()]
        queued = self.device.queuedBytes()
        if queued:
            left.append(f"{queued} byte(s) queued")
        if self.device.breaking:
            left.append("a break under way")
        return ", ".join(left)

    def _stringsPending(self: _Line) -> list[str]:
        """Which strings (open-string, close-string) are not all sent yet, in order."""
        return list(dict.fromkeys(what for what, _ in self._stringItems))

    def _stringsLeft(self: _Line, what: str) -> str:
        """How much of string C{what} is not sent yet, for people."""
        items = [item for item in self._stringItems if item[0] == what]
        size = sum(len(data) for _, data in items if data)
        breaks = sum(1 for _, data in items if data is None)
        return f"{size} byte(s) and {breaks} break(s)"

    def _sendString(self: _Line, parts: tuple[bytes, ...], what: str) -> None:
        """An open- or close-string: its data, with a break between parts, in order."""
        if not parts:
            return
        # Due while the device is down: the open-string goes when it is
        # back (if someone is still here); a close-string is moot.  (A
        # closed device is down too: what it is given is dropped.)
        self._openMissed = what == "open-string" and not self.device.up
        if not self.device.up:
            log.info("{line}: {what} not sent: the device is down ({reason}){later}", line=self.name, what=what,
                     reason=self.device.downReason or "closed",
                     later="; sent when it is back" if self._openMissed else "")
            return
        items: list[tuple[str, Optional[bytes]]] = [(what, parts[0])]
        for data in parts[1:]:
            items += [(what, None), (what, data)]
        self._stringItems += items
        if self._stringCall is None:
            self._sendStringItems()
        if not self.device.up:
            return  # lost while it was written: said by _sendStringItems
        log.info("{line}: {what} sent ({size} bytes, {breaks} break(s))", line=self.name, what=what,
                 size=sum(len(p) for p in parts), breaks=len(parts) - 1)

    def _sendStringItems(self: _Line) -> None:
        """
        The strings' data and breaks (None) in order; a break waits for the
        one under way (the string's previous one) to end.  What is left when
        the device goes down (or is closed) is not sent, nor counted.
        """
        self._stringCall = None
        items = self._stringItems
        while items:
            what, data = items[0]
            if not self.device.up:
                for what in self._stringsPending():
                    # An open-string cut short (unplugged during its break)
                    # goes whole to the device that comes back, as one due
                    # while it was down (the board behind a replugged
                    # adapter never had it).
                    again = what == "open-string" and not self._letGo
                    self._openMissed = self._openMissed or again
                    log.info("{line}: {what}: {left} not sent: the device is down ({reason}){later}", line=self.name,
                             what=what, left=self._stringsLeft(what), reason=self.device.downReason or "closed",
                             later="; sent whole when it is back" if again else "")
                del items[:]
                return
            if data is None:
                if self.device.breaking and self.clock is not None:
                    self._stringCall = self.clock.callLater(STRING_BREAK_POLL, self._sendStringItems)
                    return
                if not self.device.sendBreak():
                    log.info("{line}: {what}: break not sent: {reason}", line=self.name, what=what,
                             reason=self.device.noBreak or "a break is under way")
            elif data:
                self.device.write(data)
                if not self.device.up:
                    continue  # lost on this write: it did not reach the device
                self.bytesGiven += len(data)
                if what == "open-string":
                    self._openGiven = self.bytesGiven
            del items[0]
