"""
How a network client's session ends (see L{serialgw.clients.session}):
told to go, it is off the line at once, what its guard held and its last
words sent before its connection closes, cut if it does not take them
within CLOSE_GRACE s; cut at once where the line could not tell it
something; at its connection's end, its timers stopped, its typing that
waits dropped, its held log lines written, and whoever waits for it told.
What it holds at a stop is counted here too.  The base of
L{serialgw.clients.session.Session}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from serialgw.clients.guard import OutputGuard, bufferHolder
from serialgw.clients.reading import InputReading, stopCalls
from serialgw.logflood import peerLimiter

# Limited per peer: a client's input cannot flood the log (logflood); the
# namespace its events had before this module was split from session.
log = Logger(namespace="serialgw.clients.session", observer=peerLimiter)

# A client told to go (idle, escape d) has this many seconds to read what
# waits for it; then its connection is cut (closing waits for the output to
# drain: a client that never reads stayed connected for ever).
CLOSE_GRACE = 10.0


class SessionEnd(InputReading):
    """
    A session's end, mixed into L{serialgw.clients.session.Session}, whose
    C{guard}, C{_idleCall}, C{_introCall}, C{_turnCall}, C{inputHeld},
    C{logBudget} and C{_writeHeldLog} it uses (InputReading's as well).
    """

    # (Session's: annotated only, so as not to hide its own.)
    guard: Optional[OutputGuard]
    _idleCall: Any
    _introCall: Any
    _turnCall: Any
    inputHeld: bool
    logBudget: Optional[str]
    # Told to go (disconnect): its input is no longer handled; why, when the gateway ended it.
    leaving = False
    endedBecause: Optional[str] = None
    # Its cut, CLOSE_GRACE s after it was told to go.
    _closeCall: Any = None
    # Its connection is gone (endSession); who waits for that (whenGone).
    sessionEnded = False
    _goneWaits: Optional[list[Deferred[None]]] = None

    if TYPE_CHECKING:
        # Session's (held to it by tests.test_layers PartStubTests).
        def _writeHeldLog(self) -> None: ...

    def _cuttable(self) -> bool:
        # A stream on descriptors (stdio, pipe:) has no abortConnection: it cannot be cut.
        return hasattr(self.transport, "abortConnection")

    def heldOutput(self) -> int:
        """Output for this client the gateway holds above its connection's buffer: what its guard holds."""
        return self.guard.heldBytes if self.guard is not None else 0

    def connectionBuffer(self) -> Any:
        """Where its connection's bytes wait in Twisted's buffer (L{serialgw.wire.sockets.queuedBytes} counts them)."""
        return bufferHolder(self.transport)

    def abort(self) -> bool:
        """Cut at once (the line failed to tell it something); False: nothing to cut, the line detaches it."""
        if not self._cuttable():
            return False
        self.transport.abortConnection()
        return True

    def disconnect(self, why: Optional[str] = None) -> None:
        """
        Close the connection once what waits is sent; cut it if that takes
        CLOSE_GRACE s.  C{why}: the gateway ends it (see
        L{serialgw.interfaces.IClient.disconnect}); kept in C{endedBecause}
        for the transport (an SSH channel's exit status).
        """
        if not self.leaving:
            self.endedBecause = why
        # Nothing more it sent is handled (the rest of the read after escape
        # d), and it is off the line now: no more output flows to it while
        # the connection closes (a person whose right was taken away kept
        # getting the console while reading it slowly).
        self.leaving = True
        self.inputHeld = True
        self._dropTypedAhead(told=True)
        # What its guard held, then its last words (bye, why), before the connection closes.
        if self.guard is not None:
            self.guard.letGo()
        self.line.textGate.release(self)
        self.transport.loseConnection()
        self._writeHeldLog()
        self.line.detach(self)
        clock = self._clock()
        # (A stream on descriptors, stdio or pipe:, cannot be cut: off the
        # line, it closes once what it holds is read, as with policy disconnect.)
        if clock is not None and self._closeCall is None and self._cuttable():
            self._closeCall = clock.callLater(CLOSE_GRACE, self._cut)

    def _cut(self) -> None:
        self._closeCall = None
        log.info("{line}: {peer} did not take its last output within {seconds} s: cut", line=self.line.name,
                 peer=self.peer, seconds=CLOSE_GRACE, budget=self.logBudget)
        self.transport.abortConnection()

    def whenGone(self) -> Deferred[None]:
        """Fires once its connection is gone (at once if it is)."""
        if self.sessionEnded:
            return succeed(None)
        if self._goneWaits is None:
            self._goneWaits = []
        self._goneWaits.append(Deferred())
        return self._goneWaits[-1]

    def endSession(self) -> None:
        self.sessionEnded = True
        stopCalls(self._idleCall, self._closeCall, self._introCall, self._turnCall, self._hangUpCall)
        self._idleCall = self._closeCall = self._introCall = self._turnCall = self._hangUpCall = None
        if self.guard is not None:
            self.guard.stopProducing()
        self.line.textGate.forget(self)
        self._dropTypedAhead(told=False)
        # What the log holds about it goes before its leaving.
        self._writeHeldLog()
        self.line.detach(self)
        if self.guard is not None:
            # (Counted by the line: what it held and what was unsent go now.)
            self.guard.release()
        waits, self._goneWaits = self._goneWaits or [], None
        for wait in waits:
            wait.callback(None)
