"""
The reopen supervisor of a local device: once the device went away (a USB
adapter unplugged, a tty hung up, not there at start), open it again,
attempt n (0, 1, ...) after C{policy(n)} seconds, until one works or the
device is closed.  The open itself runs on the reactor's thread pool
(opening can block on some adapters); a reactor without threads (a test's
Clock) opens in line.  Why each attempt failed is noted on the device:
C{downReason}, and C{lockedBy} while a live process holds its UUCP lock
(logged when the holder changes).

The device stays the owner of its port and its state; the supervisor
drives it through L{ReopenTarget}.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Optional, Protocol

from twisted.internet import defer, threads
from twisted.internet.interfaces import IDelayedCall, IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.devices.ports import DeviceLocked, errorReason
from serialgw.interfaces import IPort

log = Logger()


class ReopenTarget(Protocol):
    """What a reopen supervisor drives: a device that is down."""

    name: str
    closed: bool
    downReason: Optional[str]
    lockedBy: Optional[int]

    def takeBack(self, port: IPort) -> None:
        """The device is open again: set it up as it was and read; raise if that fails."""

    def notTakenBack(self, port: IPort, reason: str) -> None:
        """Setting the reopened device up failed: close C{port}, stay down for C{reason}."""

    def announceUp(self) -> None:
        """Tell whoever listens that the device is back."""


class Reopener:
    """
    Opens C{target} again with C{opener} (None: never; a device that goes
    is closed for good), waiting C{policy(n)} seconds before attempt n.
    """

    def __init__(
        self,
        target: ReopenTarget,
        reactor: Any,
        opener: Optional[Callable[[], IPort]],
        policy: Callable[[int], float],
    ) -> None:
        self.target = target
        self.reactor = reactor
        self.opener = opener
        self.policy = policy
        self.attempts = 0
        self._call: Optional[IDelayedCall] = None
        # The last reason logged (or the one the line went down with).
        self._said: Optional[str] = None

    def start(self) -> None:
        """The device went: the first attempt after C{policy(0)}."""
        self.attempts = 0
        self._said = self.target.downReason
        self._schedule()

    def stop(self) -> None:
        """The device is closed for good: no attempt after this (one under way closes what it opens)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

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
            if error.pid != target.lockedBy:
                log.warn("{device}: {reason}; the line stays down and tries again", device=target.name,
                         reason=str(error), holder=error.pid)
            target.lockedBy = error.pid
        else:
            target.lockedBy = None
            if reason == said:
                log.debug("{device}: still gone: {reason}", device=target.name, reason=reason)
            else:
                # Said when it changes: a device node back without
                # permission, a file at the path, is not only on the status page.
                level = log.info if reason.endswith(os.strerror(errno.ENOENT)) else log.warn
                level("{device}: still down: {reason}; trying again with backoff", device=target.name,
                      reason=reason)

    def _schedule(self) -> None:
        delay = self.policy(self.attempts)
        self.attempts += 1
        self._call = self.reactor.callLater(delay, self._attempt)

    def _attempt(self) -> None:
        self._call = None
        assert self.opener is not None
        if IReactorThreads.providedBy(self.reactor):
            # Opening can block on some adapters: not on the reactor thread
            # (a test's Clock has no threads: opened in line).
            d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), self.opener)
        else:
            d = defer.maybeDeferred(self.opener)
        d.addCallbacks(self._opened, self._failed)

    def _failed(self, failure: Failure) -> None:
        if self.target.closed:
            return
        self.noteFailure(failure.value if failure.value is not None else Exception(failure.getErrorMessage()))
        self._schedule()

    def _opened(self, port: IPort) -> None:
        target = self.target
        if target.closed:
            port.close()
            return
        try:
            target.takeBack(port)
        except Exception as e:
            # Setting the reopened device up failed (a bug, an ioctl): it is
            # still gone for the line, and tried again.
            log.failure("{device}: setting up the reopened device failed", device=target.name)
            target.notTakenBack(port, f"could not be set up again: {errorReason(e)}")
            self._schedule()
            return
        self.attempts = 0
        target.announceUp()
