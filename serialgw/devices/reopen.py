"""
The reopen supervisor of a local device: once the device went away (a USB
adapter unplugged, a tty hung up, not there at start), open it again,
attempt n (0, 1, ...) after C{policy(n)} seconds, until one works or the
device is closed.  The open itself runs on the device opens' own threads
(L{serialgw.devices.reopenpool}: opening can block on some adapters, for
good on a hung one, and must not take the threads name lookups use), one a
device at a time; an open that has not returned in C{STUCK_AFTER} seconds
is logged, and the line waits for it (no second open); a reactor without
threads (a test's Clock) opens in line.  Why each attempt failed is noted
on the device: C{downReason}, and C{lockedBy} while a live process holds
its UUCP lock (logged when the holder changes).

A line's first open (a line a reload adds, or whose device it changes)
takes the same path at once (L{Reopener.openNow}): the line is made with
its device down, C{downReason} L{OPENING}, and up when the open returns.

The device stays the owner of its port and its state; the supervisor
drives it through L{ReopenTarget}.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Optional, Protocol

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.devices.errors import DeviceError, DeviceLocked, errorReason
from serialgw.devices.reopenpool import DeviceOpens, OpenWithdrawn, deviceOpens
from serialgw.interfaces import IPort

log = Logger()

# An open that has not returned in this many seconds is logged as stuck.
STUCK_AFTER = 30.0

# Why a device is down while its first open is under way (see Reopener.openNow).
OPENING = "opening the device"

# A device must stay up this long (seconds) for the backoff of its next
# loss to start again from the first delay: one that came back and failed
# at once (EIO at its first read: a flaky adapter or cable) was opened
# every 0.5 s for ever, each time "device lost" logged and every person
# told it went and came back.
STABLE_UP = 10.0


class ReopenTarget(Protocol):
    """What a reopen supervisor drives: a device that is down."""

    name: str
    # The name of the line it serves, said in what its reopens log ("" for none: its name alone).
    lineName: str
    closed: bool
    # Closed on demand (no client wants it): an open under way closes what it opens, and no attempt follows.
    resting: bool
    downReason: Optional[str]
    lockedBy: Optional[int]

    def takeBack(self, port: IPort) -> None:
        """The device is open again: set it up as it was and read; raise if that fails."""

    def notTakenBack(self, port: IPort, reason: str) -> None:
        """Setting the reopened device up failed: close C{port}, stay down for C{reason}."""

    def announceUp(self) -> None:
        """Tell whoever listens that the device is back."""

    def notOpened(self) -> None:
        """Its first open failed, or is said stuck: what it held meanwhile (typed) is dropped, its line told."""


def _about(target: ReopenTarget, device: bool = True) -> str:
    """Who a reopen's log line is about: C{line web1: /dev/ttyS0} (C{device} false: C{line web1}); the device alone for no line."""
    if not target.lineName:
        return target.name
    return f"line {target.lineName}: {target.name}" if device else f"line {target.lineName}"


class Reopener:
    """
    Opens C{target} again with C{opener} (None: never; a device that goes
    is closed for good), waiting C{policy(n)} seconds before attempt n, on
    C{opens} (by default the process's L{deviceOpens} with a reactor that
    has threads, else in line).
    """

    def __init__(
        self,
        target: ReopenTarget,
        reactor: Any,
        opener: Optional[Callable[[], IPort]],
        policy: Callable[[int], float],
        opens: Optional[DeviceOpens] = None,
    ) -> None:
        self.target = target
        self.reactor = reactor
        self.opener = opener
        self.policy = policy
        if opens is None and IReactorThreads.providedBy(reactor):
            opens = deviceOpens
        self.opens = opens
        self.attempts = 0
        # When the device last came back, and the attempt that brought it
        # (the next loss counts on from there if it was not up STABLE_UP s).
        self._upAt: Optional[float] = None
        self._upAttempts = 0
        self._call: Optional[IDelayedCall] = None
        # While an open is under way: when it began, the call that says it
        # is stuck, and whether that was said.
        self._openedAt: Optional[float] = None
        self._stuckCall: Optional[IDelayedCall] = None
        # The open under way (from opens), until it returns.
        self._opening: Optional[defer.Deferred[IPort]] = None
        self._stuckSaid = False
        # The last reason logged (or the one the line went down with).
        self._said: Optional[str] = None
        # Its last failure was a lock being written (see noteFailure).
        self._beingLocked = False
        # What openNow returned, until its attempt is over.
        self._first: Optional[defer.Deferred[Optional[BaseException]]] = None

    def start(self) -> None:
        """
        The device went: the first attempt after C{policy(0)}, or, if it
        came back less than STABLE_UP s ago, after the delay that follows
        the one that brought it back.
        """
        upAt, self._upAt = self._upAt, None
        stable = upAt is None or self.reactor.seconds() - upAt >= STABLE_UP
        self.attempts = 0 if stable else self._upAttempts
        self._said = self.target.downReason
        self._schedule()

    def openNow(self, opener: Callable[[], IPort]) -> defer.Deferred[Optional[BaseException]]:
        """
        The device's first open (its C{downReason} L{OPENING}) with
        C{opener}, at once and as a reopen is (off the reactor thread, one
        a device, said if stuck); fires once it is over: with None, the
        device up, else with why not (noted, and tried again with the
        supervisor's own opener after C{policy(0)}, as for a vanished
        device; only a lock holder is logged here: the caller says why the
        line starts down).
        """
        first = self._beginFirst()
        self._attempt(opener)
        return first

    def adopt(self, opening: defer.Deferred[IPort], since: float) -> defer.Deferred[Optional[BaseException]]:
        """
        As L{openNow}, for a first open already under way since C{since}
        (reactor time: one begun at start, see
        L{serialgw.devices.reopenpool.DeviceOpens.openAll}): C{opening}
        fires with its port or failure.
        """
        first = self._beginFirst()
        self._await(opening, since)
        return first

    @property
    def opening(self) -> bool:
        """Whether an open is under way (it may hang)."""
        return self._openedAt is not None

    def wanted(self, opener: Callable[[], IPort]) -> None:
        """
        On demand: the device is wanted again (see
        L{serialgw.devices.ondemand}): opened now with C{opener} as a first
        open is (L{openNow}), unless an open is under way (one that a rest
        let run: its outcome is this one's): never a second beside it, however
        often clients come and go while it hangs.
        """
        if self.opening:
            if self._first is None:
                self._beginFirst()
            if self._stuckCall is None and self._openedAt is not None:
                # (The rest stopped its watch: this client is told it hangs as the first would have been, counted
                # from its start: at once if it has hung STUCK_AFTER s already.)
                self._stuckCall = self.reactor.callLater(
                    max(0.0, self._openedAt + STUCK_AFTER - self.reactor.seconds()), self._stuck)
            return
        self.openNow(opener)

    def _beginFirst(self) -> defer.Deferred[Optional[BaseException]]:
        self.attempts = 0
        self._said = self.target.downReason
        first = self._first = defer.Deferred()
        return first

    def _firstOver(self, outcome: Optional[BaseException]) -> None:
        first, self._first = self._first, None
        if first is not None:
            if outcome is not None and not isinstance(outcome, OpenWithdrawn) and not self.target.closed \
                    and not self.target.resting:
                self.target.notOpened()
            first.callback(outcome)

    def now(self) -> Optional[str]:
        """
        A person asked for the device (the escape menu's O): the attempt due
        after its backoff made now, at the end of this turn (the backoff going
        on from there if it fails); why not (an open under way, none due), or
        None.
        """
        if self.opening:
            return "an open of it is under way"
        if self._call is None or not self._call.active():
            return "no open of it is due"
        self._call.cancel()
        # (At the end of this turn: whoever asked is answered before it is back.)
        self._call = self.reactor.callLater(0, self._attempt)
        return None

    def stop(self) -> None:
        """The device is closed for good: no attempt after this (one under way closes what it opens)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._stuckCall is not None and self._stuckCall.active():
            self._stuckCall.cancel()
        self._stuckCall = None
        # An open still waiting for its place (paced) never begins.
        opening, self._opening = self._opening, None
        if opening is not None and self.opens is not None:
            self.opens.withdraw(opening)

    def noteFailure(self, error: BaseException) -> None:
        """
        Why the device could not be opened (C{downReason}); a lock holder
        (C{lockedBy}, on the status page) is logged when it changes, as is
        any other reason (at debug while it stays the same).
        """
        target = self.target
        target.downReason = reason = errorReason(error)
        said, self._said = self._said, reason
        if isinstance(error, DeviceLocked):
            # (Pid 0: a lock being written, its holder not known yet: said once while it is so.)
            if (error.pid != target.lockedBy) if error.pid else not self._beingLocked:
                # (The reason names the device: "/dev/ttyS0 is locked by process 1234 (cu) (...)".)
                log.warn("{about}: {reason}; the line stays down and tries again", about=_about(target, False),
                         line=target.lineName, device=target.name, reason=str(error), holder=error.pid)
            target.lockedBy = error.pid or None
            self._beingLocked = not error.pid
        else:
            target.lockedBy = None
            self._beingLocked = False
            if said == OPENING or self._first is not None:
                pass  # The first open's failure (said stuck, or not): said by whoever opened it (see openNow).
            elif reason == said:
                log.debug("{about}: still gone: {reason}", about=_about(target), line=target.lineName,
                          device=target.name, reason=reason)
            else:
                # Said when it changes: a device node back without
                # permission, a file at the path, is not only on the status page.
                level = log.info if reason.endswith(os.strerror(errno.ENOENT)) else log.warn
                level("{about}: still down: {reason}; trying again with backoff", about=_about(target),
                      line=target.lineName, device=target.name, reason=reason)

    def _schedule(self) -> None:
        # (The policy's input bounded: 2 ** attempt overflows a float past 1023.)
        delay = self.policy(min(self.attempts, 100))
        self.attempts += 1
        self._call = self.reactor.callLater(delay, self._attempt)

    def _attempt(self, opener: Optional[Callable[[], IPort]] = None) -> None:
        self._call = None
        opener = opener or self.opener
        assert opener is not None
        target = self.target
        if self.opens is not None and self.opens.busy(target.name) and self._first is not None:
            # A first open (its line closed and made again by a reload) while
            # an earlier open of the device has not returned: it begins once
            # that one has, as its own open under way (what is typed is
            # held meanwhile, said stuck after STUCK_AFTER s).
            self._await(self._afterEarlier(opener), self.reactor.seconds())
            return
        if self.opens is not None and self.opens.busy(target.name):
            # An earlier open of this device (its line closed and made again
            # by a reload) has not returned: no second one beside it.
            error = DeviceError(f"an earlier open of {target.name} has not returned")
            self.noteFailure(error)
            self._schedule()
            self._firstOver(error)
            return
        if self.opens is not None:
            # Opening can block on some adapters: not on the reactor thread
            # (a test's Clock has no threads: opened in line).
            d = self._opening = self.opens.open(self.reactor, target.name, opener)
        else:
            d = defer.maybeDeferred(opener)
        self._await(d, self.reactor.seconds())

    def _afterEarlier(self, opener: Callable[[], IPort]) -> defer.Deferred[IPort]:
        """The open with C{opener} once the device's earlier one has returned (withdrawn if it was closed meanwhile)."""
        opens, target = self.opens, self.target
        assert opens is not None

        def begin(_: Any) -> defer.Deferred[IPort]:
            if target.closed or target.resting:
                raise OpenWithdrawn("closed before its open began")
            if opens.busy(target.name):  # (another one, waiting too, began first)
                return opens.after(target.name).addCallback(begin)
            d = self._opening = opens.open(self.reactor, target.name, opener)
            return d

        return opens.after(target.name).addCallback(begin)

    def _await(self, d: defer.Deferred[IPort], since: float) -> None:
        """The open under way since C{since}: said if stuck, the device taken back when it returns."""
        self._openedAt = since
        self._stuckCall = self.reactor.callLater(max(0.0, since + STUCK_AFTER - self.reactor.seconds()), self._stuck)
        d.addBoth(self._returned)
        d.addCallbacks(self._opened, self._failed)

    def _stuck(self) -> None:
        """The open has not returned in STUCK_AFTER s: said once, and shown as the reason the line is down."""
        self._stuckCall = None
        target = self.target
        if target.closed or target.resting:
            return
        target.downReason = reason = f"opening the device has not returned in {STUCK_AFTER:.0f} s"
        self._said = reason
        said, self._stuckSaid = self._stuckSaid, True
        if not said:  # (once an open: on demand, each client that comes while it hangs is told, the log once)
            log.warn("{about}: {reason} (a hung adapter or driver?); the line stays down until it does "
                     "({opens} device open(s) under way)", about=_about(target), line=target.lineName,
                     device=target.name, reason=reason,
                     opens=len(self.opens.inFlight) if self.opens is not None else 1)
        if self._first is not None:
            target.notOpened()  # (what was typed meanwhile is not held for a hung open)

    def _returned(self, result: Any) -> Any:
        self._opening = None
        if self._stuckCall is not None and self._stuckCall.active():
            self._stuckCall.cancel()
        self._stuckCall = None
        if self._stuckSaid and self._openedAt is not None:
            log.info("{about}: the open that had not returned did after {seconds:.0f} s", about=_about(self.target),
                     line=self.target.lineName, device=self.target.name, seconds=self.reactor.seconds() - self._openedAt)
        self._openedAt, self._stuckSaid = None, False
        return result

    def _failed(self, failure: Failure) -> None:
        error = failure.value if failure.value is not None else Exception(failure.getErrorMessage())
        if isinstance(error, OpenWithdrawn):
            self._firstOver(error)  # (stopped: nothing more, nothing said)
            return
        if not self.target.closed and not self.target.resting:
            self.noteFailure(error)
            self._schedule()
        self._firstOver(error)

    def _opened(self, port: IPort) -> None:
        target = self.target
        if target.closed or target.resting:
            # (Wanted by nobody now: its lock and descriptor let go at once.)
            port.close()
            self._firstOver(OpenWithdrawn(f"{target.name} was closed while it opened") if target.resting
                            else DeviceError(f"{target.name} was closed while it opened"))
            return
        try:
            target.takeBack(port)
        except Exception as e:
            # Setting the reopened device up failed (a bug, an ioctl): it is
            # still gone for the line, and tried again.  One that went again
            # meanwhile (EIO: unplugged, a flaky cable) is said as such, not
            # as a bug with its traceback.
            code = e.errno if isinstance(e, OSError) else (e.args or (None,))[0]
            if code in (errno.EIO, errno.ENXIO, errno.ENODEV):
                log.warn("{about}: went again while it was set up: {reason}; trying again with backoff",
                         about=_about(target), line=target.lineName, device=target.name, reason=errorReason(e))
            else:
                log.failure("{about}: setting up the reopened device failed", about=_about(target),
                            line=target.lineName, device=target.name)
            target.notTakenBack(port, f"could not be set up again: {errorReason(e)}")
            self._schedule()
            self._firstOver(e)
            return
        self._upAt, self._upAttempts = self.reactor.seconds(), self.attempts
        self.attempts = 0
        target.announceUp()
        self._firstOver(None)
