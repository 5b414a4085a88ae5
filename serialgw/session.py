"""
What every network client of a line shares, whatever its protocol: its
peer's name, joining and leaving the line, the bound on output queued
towards it (L{OutputGuard}), an idle timeout and TCP keepalive.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.flow import OutputGuard
from serialgw.line import Role, peerName
from serialgw.tls import peerSubject

log = Logger()


@implementer(IHandshakeListener)
class Session:
    """
    Mixed into a client protocol that has C{line}, C{transport},
    C{listener} (a ListenerSpec or None) and C{clock}.
    """

    line: Any
    transport: Any
    listener: Any = None
    clock: Any = None
    guard: Optional[OutputGuard] = None
    _idleCall: Any = None
    peer: str = "?"
    role: Role = Role.WRITER
    _roleAfterHandshake: Role = Role.WRITER

    def startSession(self) -> None:
        self.peer = peerName(self.transport)
        spec = self.listener
        if spec is not None and spec.tls is not None and spec.tls.readOnlySubjects:
            # Read-only until the certificate says otherwise (handshakeCompleted).
            self._roleAfterHandshake, self.role = self.role, Role.READONLY
        if spec is not None:
            self.guard = OutputGuard(self, self.line, spec.outbuf, spec.policy)
            self.guard.attach(self.transport)
            if spec.keepalive and hasattr(self.transport, "setTcpKeepAlive"):
                self.transport.setTcpKeepAlive(True)
            if spec.idle and self.clock is not None:
                self._idleCall = self.clock.callLater(spec.idle, self._idleTimeout)
        self.line.attach(self)

    def handshakeCompleted(self) -> None:
        """TLS is up: map the client certificate's subject to a role."""
        subject = peerSubject(self.transport)
        if subject:
            self.peer = f"{self.peer} ({subject})"
        spec = self.listener
        if spec is not None and spec.tls is not None and spec.tls.readOnlySubjects:
            self.role = Role.READONLY if subject in spec.tls.readOnlySubjects else self._roleAfterHandshake
            log.info("{line}: {peer} is {role} by its certificate", line=self.line.name, peer=self.peer,
                     role=self.role.value)

    def endSession(self) -> None:
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.cancel()
        self._idleCall = None
        if self.guard is not None:
            self.guard.stopProducing()
        self.line.detach(self)

    def touch(self) -> None:
        """Traffic either way: the idle timer starts again."""
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.reset(self.listener.idle)

    def mayDeliver(self, data: bytes) -> bool:
        """False when this client is full and its policy drops output (then the guard holds it)."""
        guard = self.guard
        if guard is not None and guard.full:
            if guard.policy == "drop":
                guard.hold(data)
                return False
        if self._idleCall is not None:
            self.touch()
        return True

    def _idleTimeout(self) -> None:
        self._idleCall = None
        log.info("{line}: {peer} idle for {seconds} s: disconnected", line=self.line.name, peer=self.peer,
                 seconds=self.listener.idle)
        self.transport.loseConnection()

    def droppedNotice(self, count: int) -> None:
        """Output was dropped for this client: say so if it is a person's terminal."""
