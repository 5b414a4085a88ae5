"""
The reconnection backoff of a connection that is redialed when it goes (a
remote device's link, a dial-out listener), whose attempt count survives
links that do not last.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application.internet import backoffPolicy
from twisted.internet.interfaces import IReactorTime

# A link must stay up this many seconds for the reconnection backoff to
# start again from the first delay.  ClientService starts it again on every
# connection: a far end that accepts and closes at once was redialled every
# ~1.3 s for ever, each time telling every person down, then back.
STABLE_LINK = 10.0


class CarriedBackoff:
    """
    A ClientService C{retryPolicy} whose attempt count survives short links.

    ClientService counts failed attempts from zero again on every
    connection.  Call L{linkUp} when a connection is made: if it is lost
    within STABLE_LINK s, the next delays count on from the attempt that
    made it; one that lasted starts from the first delay again.  Used by
    remote devices and by dial-out listeners (C{tcp:HOST:PORT} without
    C{server}).
    """

    def __init__(self, clock: IReactorTime, policy: Optional[Callable[[int], float]] = None) -> None:
        self.clock = clock
        self.policy = policy or backoffPolicy()
        # The attempt the last delay was for (counted since the last link
        # that lasted, or the start), where failures count from, and when
        # the last link came up (None: no link since).
        self.attempt = 0
        self._carried = 0
        self._upAt: Optional[float] = None
        # A connection made that is no link yet (see linkMade).
        self._made = False

    def linkUp(self, *ignored: object) -> None:
        """A connection was made (usable as ClientService's C{prepareConnection})."""
        self._upAt = self.clock.seconds()

    def linkMade(self, *ignored: object) -> None:
        """
        A connection was made that is a link only once L{linkUp} says so (a
        TLS dial-out: once its handshake is done): lost before, it counts as
        an attempt that failed, however long it was there.
        """
        self._made = True

    def __call__(self, failed: int) -> float:
        """The delay before the next attempt after C{failed} in a row since the last connection."""
        if self._upAt is not None:
            # The first delay after a link: ClientService asks as it is lost.
            self._carried = 0 if self.clock.seconds() - self._upAt >= STABLE_LINK else self.attempt
            self._upAt = None
        elif self._made:
            # (ClientService counts from 1 again after any connection.)
            self._carried = self.attempt
        self._made = False
        self.attempt = self._carried + failed
        # The policy's input bounded (2.0 ** attempt overflows a float past 1023).
        return self.policy(min(self.attempt, 100))


class DialEndpoint:
    """
    A client endpoint redialed by a ClientService with a L{CarriedBackoff}:
    keeps the outcome of its last connect (C{""} when it connected, else
    why not) and knows the backoff's attempt, for the retry message
    (L{serialgw.app.logs.tidy}), whose count ClientService starts again at
    every connection.
    """

    def __init__(self, wrapped: Any, backoff: Optional[CarriedBackoff] = None) -> None:
        self._wrappedEndpoint = wrapped
        self.backoff = backoff
        self.lastOutcome: Optional[str] = None

    @property
    def attempt(self) -> Optional[int]:
        """The attempt the backoff's last delay was for (None: no backoff)."""
        return self.backoff.attempt if self.backoff is not None else None

    def connect(self, factory: Any) -> Any:
        """Connect through the wrapped endpoint, noting how it went."""

        def connected(protocol: Any) -> Any:
            self.lastOutcome = ""
            return protocol

        def failed(failure: Any) -> Any:
            self.lastOutcome = str(failure.value).strip().rstrip(".") or type(failure.value).__name__
            return failure

        return self._wrappedEndpoint.connect(factory).addCallbacks(connected, failed)
