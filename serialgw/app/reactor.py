"""
Twisted's epoll reactor without the per-event logging context.

For every ready descriptor, Twisted's reactor calls C{log.callWithLogger},
which asks the selectable for its C{logPrefix} and pushes a context
dictionary so that legacy C{log.msg} calls get a C{system} tag.  On a
console gateway that is a third of the Python work of moving one byte
(measured: 13 of 80 microseconds of CPU per single-byte round trip).
serialgw logs through C{twisted.logger} with named fields, so the tag
adds nothing; this reactor dispatches straight to the same
C{_doReadOrWrite} (which keeps Twisted's error handling: an exception in
C{doRead}/C{doWrite} disconnects that selectable only) and logs anything
that escapes it, so one descriptor's failure never stops the loop.

It is installed by C{twistd serialgw} when no reactor has been chosen
(C{--reactor} still wins); L{install} is the usual installer.
"""

from __future__ import annotations

import errno
import sys
from typing import Any, Optional

from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger

log = Logger()


class GatewayReactor(EPollReactor):
    """
    An epoll reactor that dispatches ready descriptors without a logging
    context, and whose loop skips the timed-call machinery on turns where
    no timed call, thread call or shutdown is due.
    """

    def mainLoop(self) -> None:
        while self._started:
            try:
                self._turns()
            except Exception:
                log.failure("Unexpected error in main loop")
        log.info("Main loop terminated.")

    def _turns(self) -> None:
        # Twisted's loop is runUntilCurrent(); timeout(); doIteration() on
        # every turn.  Here runUntilCurrent only runs when it has work: a
        # thread call, a new or due timed call, or a stop to announce.
        seconds = self.seconds
        while self._started:
            pending = self._pendingTimedCalls
            if (
                self.threadCallQueue
                or self._newTimedCalls
                or self._justStopped
                or (pending and pending[0].time <= seconds())
            ):
                self.runUntilCurrent()
                timeout = self.timeout()
            elif pending:
                timeout = self.timeout()
            else:
                timeout = None
            self.doIteration(self.running and timeout)

    def doPoll(self, timeout: Optional[float]) -> None:
        if timeout is None:
            timeout = -1  # Wait indefinitely.
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        dispatch = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except Exception:
                log.failure("event on descriptor {fd} ({selectable!r}) failed", fd=fd, selectable=selectable)

    doIteration = doPoll


def install() -> Any:
    """Install L{GatewayReactor} as the global reactor and return it."""
    from twisted.internet.main import installReactor

    reactor = GatewayReactor()
    installReactor(reactor)
    return reactor


def installIfNoneChosen() -> bool:
    """
    Install L{GatewayReactor} unless a reactor is already installed (by
    C{twistd --reactor}, or by anything that imported the default one).
    Return whether it was installed.
    """
    if "twisted.internet.reactor" in sys.modules:
        return False
    install()
    return True
