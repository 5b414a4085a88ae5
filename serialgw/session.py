"""
What every network client of a line shares, whatever its protocol: its
peer's name, joining and leaving the line, the bound on output queued
towards it (L{OutputGuard}), an idle timeout and TCP keepalive.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.escape import EscapeMenu, keyName
from serialgw.flow import OutputGuard
from serialgw.line import Role, noDelay, peerName
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
    deliver: Callable[[bytes], None]
    listener: Any = None
    clock: Any = None
    guard: Optional[OutputGuard] = None
    _idleCall: Any = None
    peer: str = "?"
    role: Role = Role.WRITER
    _roleAfterHandshake: Role = Role.WRITER

    # A network client: counts for max-clients, exclusive mode, notices.
    person = True
    escapeMenu: Optional[EscapeMenu] = None
    defaultEscape: Optional[int] = None

    def startSession(self) -> None:
        """
        Join the line.  A start that fails leaves the client fully gone
        (detached, connection aborted), never half attached.
        """
        try:
            self._startSession()
        except Exception:
            log.failure("{line}: starting the session of {peer} failed; it is disconnected",
                        line=self.line.name, peer=self.peer)
            self.endSession()
            self.transport.loseConnection()

    def _startSession(self) -> None:
        self.peer = peerName(self.transport)
        spec = self.listener
        key = self.defaultEscape if spec is None or spec.escape == -1 else spec.escape
        if key is not None:
            self.escapeMenu = EscapeMenu(self, key, qemuKeys=spec is not None and spec.qemuKeys)
        if spec is not None and spec.tls is not None and spec.tls.readOnlySubjects:
            # Read-only until the certificate says otherwise (handshakeCompleted).
            self._roleAfterHandshake, self.role = self.role, Role.READONLY
        if spec is not None:
            self.guard = OutputGuard(self, self.line, spec.outbuf, spec.policy)
            self.guard.attach(self.transport)
            if spec.nodelay:
                noDelay(self.transport)
            if spec.keepalive and hasattr(self.transport, "setTcpKeepAlive"):
                self.transport.setTcpKeepAlive(True)
            if spec.idle and self.clock is not None:
                self._idleCall = self.clock.callLater(spec.idle, self._idleTimeout)
        self.line.attach(self)
        if spec is not None and spec.banner:
            others = [c.peer for c in self.line.clients if c is not self and getattr(c, "person", False)]
            self.notice(f"{self.line.name}: {self.line.settings.describe()}, you are {self.role.value}; "
                        f"also here: {', '.join(others) or 'nobody'}"
                        + (f"; escape key {keyName(self.escapeMenu.key)}" if self.escapeMenu else ""))
        if spec is not None and spec.replay:
            self.deliver(self.line.backlog())

    def fromPeer(self, data: bytes) -> None:
        """Data from the client: through the escape menu, then to the line."""
        if self._idleCall is not None:
            self.touch()
        if self.escapeMenu is not None:
            data = self.escapeMenu.filter(data)
            if not data:
                return
        self.line.clientData(self, data)

    def wantsNotices(self) -> bool:
        spec = self.listener
        if spec is not None and spec.notices is not None:
            return bool(spec.notices)
        return self.defaultNotices()

    def defaultNotices(self) -> bool:
        return False

    def notice(self, text: str) -> None:
        """A line of text for the person at this terminal, if it is one."""
        if self.wantsNotices() or self.escapeMenu is not None:
            self.writeText(f"\r\n[serialgw: {text}]\r\n".encode("utf-8", "replace"))

    def writeText(self, data: bytes) -> None:
        self.transport.write(data)

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
        if self.wantsNotices():
            self.notice(f"{count} bytes dropped: this session fell behind")
