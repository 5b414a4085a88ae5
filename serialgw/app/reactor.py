"""
Twisted's epoll reactor with one method overridden: C{doPoll}, which
dispatches the ready descriptors of a turn.  It differs from Twisted's in
two ways, and only there:

  - No per-event logging context.  For every ready descriptor Twisted calls
    C{log.callWithLogger}, which asks the selectable for its C{logPrefix}
    and pushes a context dictionary so that legacy C{log.msg} calls get a
    C{system} tag: on a console gateway a third of the Python work of moving
    one byte (13 of 80 microseconds of CPU per single-byte round trip).
    serialgw logs through C{twisted.logger} with named fields, so the tag
    adds nothing.  Dispatch goes straight to the same C{_doReadOrWrite}
    (Twisted's error handling kept: an exception in C{doRead}/C{doWrite}
    disconnects that selectable only); anything escaping it is logged, so
    one descriptor's failure never stops the loop.
  - Quiet descriptors first.  epoll hands back a level-triggered descriptor
    that stays ready (a flooding line) ahead of one that just became ready
    (a keystroke on a quiet line), so the keystroke waited behind a chunk of
    the flood at each hop.  A descriptor that was also ready last turn now
    goes after those that were not; every ready descriptor is still served
    once per turn, so a flood cannot starve a quiet line, nor the reverse.

Until issue 14 it also rewrote C{mainLoop} to skip C{runUntilCurrent} on
turns with no timed call due; C{bench/reactors.py} measured that at
0.7-1.8 us a turn (1.3-3.5 us of CPU per pipe ping-pong in two runs,
nothing outside the noise in serialgw's round trip, its CPU per round trip
or per echoed message at 512 lines), against 5.6-7 us a ping-pong for the
C{doPoll} override, so it went, and with it the reading of Twisted's
timed-call privates.  What is left reads C{_poller}, C{_selectables} and
C{_doReadOrWrite}, the same in Twisted 22.10 and today's release.

What would make it unnecessary upstream: C{EPollReactor.doPoll} (and the
other posix reactors' C{doIteration}) not wrapping each event in
C{log.callWithLogger} (the legacy C{system} tag could be looked up only
when a legacy observer is there, or when an error is logged), and serving
newly ready descriptors ahead of those that were ready last turn.

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
    context, those that just became ready before those that stayed ready.
    """

    # The events of the last turn (which descriptors were ready).
    _previous: list[tuple[int, int]] = []

    def doPoll(self, timeout: Optional[float]) -> None:
        if timeout is None:
            timeout = -1  # Wait indefinitely.
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        previous, self._previous = self._previous, events
        if len(events) > 1 and previous:
            stayed = {fd for fd, _ in previous}
            events = [e for e in events if e[0] not in stayed] + [e for e in events if e[0] in stayed]
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
