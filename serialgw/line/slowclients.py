"""
Clients that cannot keep up with the device's output, mixed into
L{serialgw.line.hub.Line}: one whose policy is C{block} stops the device
being read until it has caught up; one that is full and drops its output
(C{drop}) is parked out of the fan-out, at no cost per chunk, the line
keeping the newest output for it to catch up from.

Apart from the hub because it is one client's bound against the line's
stream (see L{serialgw.clients.guard}), not the stream itself.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from serialgw.interfaces import IClient, IDevice
from serialgw.line.tail import Tail


class _Line(Protocol):
    """What the mixin uses of its line (L{serialgw.line.hub.Line} has it all)."""

    device: IDevice
    _blockers: dict[IClient, None]
    _receiving: dict[IClient, None]
    _fanOut: Optional[tuple[IClient, ...]]
    _parked: dict[Any, Any]
    _parkedBounds: dict[int, int]
    _parkedSize: int
    parkedTail: Tail
    streamed: int


class SlowClients:
    """Back-pressure and parking (see the module)."""

    # (The line's: see serialgw.line.hub.Line.__init__.)
    _fanOut: Optional[tuple[IClient, ...]]

    # Back-pressure from a client whose policy is "block"

    def blockDevice(self: _Line, client: IClient) -> None:
        """Stop reading the device until C{client} has caught up."""
        if not self._blockers:
            self.device.pauseReading()
        self._blockers[client] = None

    def unblockDevice(self: _Line, client: IClient) -> None:
        self._blockers.pop(client, None)
        if not self._blockers:
            self.device.resumeReading()

    # Clients that are full and drop their output, out of the fan-out

    def park(self: _Line, guard: Any) -> Optional[int]:
        """
        C{guard}'s client is full and drops device output (an
        L{serialgw.clients.guard.OutputGuard} with this line as its fan-out): it is passed by, at
        no cost per chunk, until L{unpark}; meanwhile the line keeps the
        newest device output (L{parkedTail}, at least the largest bound of
        those parked) for the guard to catch up from.  The stream position
        (L{streamed}) it is at; None if it is not attached (nothing to pass by).
        """
        client = guard.client
        if client not in self._receiving:  # parked already, or not attached
            return None
        del self._receiving[client]
        self._parked[client] = guard
        self._parkedBounds[guard.bound] = self._parkedBounds.get(guard.bound, 0) + 1
        self._parkedSize = max(self._parkedBounds)
        self._fanOut = None
        return self.streamed

    def unpark(self: _Line, guard: Any) -> None:
        """C{guard}'s client (caught up) gets device output again."""
        if self._parked.pop(guard.client, None) is None:
            return
        # (Parked means attached: detach unparks before it lets go.)
        self._receiving[guard.client] = None
        left = self._parkedBounds.pop(guard.bound) - 1
        if left:
            self._parkedBounds[guard.bound] = left
        self._fanOut = None
        if self._parked:
            self._parkedSize = max(self._parkedBounds)
        else:
            self._parkedSize = 0
            self.parkedTail = Tail()
