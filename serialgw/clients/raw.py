"""
Raw TCP (or unix-socket) clients: bytes pass both ways untouched.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.session import Session
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.wire.sockets import writeNow


@implementer(IClient)
class RawClient(Session, ClientEvents, Protocol):
    """
    A client whose connection carries the line's bytes and nothing else.
    """

    transport: Any

    def __init__(
        self, line: Line, role: Role = Role.WRITER, listener: Any = None, clock: Any = None, peer: Optional[str] = None
    ) -> None:
        self.line = line
        self.role = role
        self.listener = listener
        self.clock = clock
        self.fixedPeer = peer
        # Read on every read of its input: the class's defaults as its own
        # (Python 3.11 looks a class attribute up through an instance the
        # slow way: not specialised).
        self.escapeMenu = None
        self.inputHeld = False
        self._readingPaused = 0
        self._idleCall = self._introCall = None

    def connectionMade(self) -> None:
        self.startSession()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.endSession()

    def dataReceived(self, data: bytes) -> None:
        """Bytes from the peer: through the escape menu (if any) to the line (L{Session.fromPeer})."""
        # The common case (no escape menu, input not held, no idle timer, no introduction due) without
        # the calls: what fromPeer, handleInput and toLine do then.
        if self.escapeMenu is None and not self.inputHeld and self._idleCall is None and self._introCall is None:
            if not self.line.clientData(self, data):
                self._notSent()
            return
        self.fromPeer(data)

    def answersWait(self) -> bool:
        """
        Past its output bound a raw client is read on (as every client: its
        typing, a Ctrl-C into a flooding console, reaches the device at
        once; it waited until the client had taken its output, its bound
        and the kernel's: a client reading 20 KB/s got its Ctrl-C to the
        console 21 s late, ser2net's 0.2 s).  With no escape menu nothing it
        sends is answered but a notice ("not sent"), which waits with its
        held output, bounded: it is never held.  With one, the menu's
        answers come out of the answer budget (L{Session.sendAnswer}).
        """
        return self.escapeMenu is None

    def deliver(self, data: bytes) -> None:
        # The common case (no full output guard, no idle timer) without a call.
        guard = self.guard
        if (guard is not None and guard.full) or self._idleCall is not None:
            if not self.mayDeliver(data):
                return
        writeNow(self.transport, data)
