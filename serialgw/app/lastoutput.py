"""
At a stop, the sessions still connected take what waits for them before
the reactor ends: device output the gateway read, queued behind a client
that reads slowly (a C{policy=block} client's C{outbuf}, a telnet user's
dropped-output queue, the stop's own notice).  Left to the reactor's
shutdown, each connection was dropped with its buffers (a block client
reading slowly lost 193-200 KB of 600 KB at a SIGTERM, unsaid).  Each is
closed once its output is written, and cut after L{LAST_OUTPUT_WAIT} s,
saying what it had not taken.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.internet import defer
from twisted.logger import Logger

from serialgw.clients.session import Session
from serialgw.wire.sockets import queuedBytes

log = Logger()

# How long (seconds) the sessions still connected at a stop have to take
# their last output, once the devices are closed.
LAST_OUTPUT_WAIT = 2.0


class LastOutput:
    """The sessions of a stopping gateway closed once they have taken their output, or cut (L{hurry})."""

    def __init__(self, clock: Any, clients: Iterable[Any], wait: float = LAST_OUTPUT_WAIT) -> None:
        self.clock = clock
        self.wait = wait
        self.sessions = [c for c in clients if isinstance(c, Session) and not c.sessionEnded]
        self._timer: Any = None
        self._done: defer.Deferred[None] = defer.Deferred()

    def close(self) -> defer.Deferred[None]:
        """Close each session once its output is written; fires when all are gone, or cut (after C{wait} s)."""
        if not self.sessions or self._done.called:
            return defer.succeed(None)
        for session in self.sessions:
            session.whenGone().addCallback(self._gone)
        for session in self.sessions:
            if not session.sessionEnded:
                # Its input no longer handled; what its guard held goes first (see OutputGuard.letGo).
                session.leaving = True
                if session.endedBecause is None:
                    # (Said where the protocol can: an SSH session's exit status 1 and its standard error.)
                    session.endedBecause = "the gateway is stopping"
                if session.guard is not None:
                    session.guard.letGo()
                session.transport.loseConnection()
        if not self._done.called:
            self._timer = self.clock.callLater(self.wait, self.hurry, f"not taken within {self.wait:g} s")
        return self._done

    def _gone(self, _: Any) -> None:
        if not self._done.called and all(session.sessionEnded for session in self.sessions):
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            self._done.callback(None)

    def hurry(self, why: str) -> int:
        """
        Those still connected cut now (C{why}: the wait is over, or SIGTERM
        again), each logged with what it had not taken; the stop goes on
        (a stream on descriptors, stdio or pipe:, cannot be cut: the
        reactor's end closes it).  How many were cut.
        """
        if self._done.called:
            return 0
        cut = 0
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        # Two figures, each of one kind: the output the gateway held for the
        # session (bytes as the session has them to send), and the bytes its
        # connection had not written (as on the wire: an SSH connection's
        # encrypted packets; several SSH sessions share one, counted once).
        counted: set[int] = set()
        for session in self.sessions:
            if session.sessionEnded:
                continue
            holder = session.connectionBuffer()
            buffered = 0
            if id(holder) not in counted:
                counted.add(id(holder))
                buffered = queuedBytes(holder)
            log.warn("{line}: {peer} did not take its last output at the stop ({why}): cut, {count} byte(s) of output "
                     "not sent and {buffered} byte(s) its connection had not written", line=session.line.name,
                     peer=session.peer, why=why, count=session.heldOutput(), buffered=buffered)
            session.abort()
            cut += 1
        if not self._done.called:  # (a cut one gone at once: done)
            self._done.callback(None)
        return cut
