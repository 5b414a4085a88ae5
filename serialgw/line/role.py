"""
What a client may do on its line, and who may write as that changes.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Container, Optional, Protocol, Sequence

from serialgw.config.people import Rights
from serialgw.config.sshkeys import printable
from serialgw.interfaces import IClient
from serialgw.logflood import clientLog

# Limited per peer: a client's doing cannot flood the log (logflood).
log = clientLog()


class Role(Enum):
    """
    What a client may do on its line.

      - C{WRITER}: send data, breaks and settings;
      - C{WATCHER}: read only for now, may become a writer (take-over);
      - C{READONLY}: read only, always.
    """

    WRITER = "writer"
    WATCHER = "watcher"
    READONLY = "read-only"


def heirOf(clients: Sequence[Any], place: int, watching: Container[Any]) -> Any:
    """
    In exclusive mode, who writes once a writer that came and went without
    a word (a health check) has left from C{place} in C{clients}: the first
    person watching who attached after it (only it kept them watching), or
    None.  One who chose to watch (in C{watching}: the escape menu's C{o},
    conserver's spy mode) is passed over, as conserver's FindWrite passes
    over a client without its want-write bit.
    """
    return next((c for c in clients[place:] if c.person and c.role is Role.WATCHER and c not in watching), None)


class _Line(Protocol):
    """What the mixin uses of its line (L{serialgw.line.hub.Line} has it all)."""

    name: str
    mode: str
    clients: list[IClient]
    controllers: list[IClient]
    rights: Rights
    writable: bool
    device: Any
    refused: int
    _unannounced: dict[IClient, None]
    _watching: dict[IClient, None]

    @property
    def writer(self: _Line) -> Optional[IClient]: ...
    def announce(self: _Line, text: str, exclude: Optional[IClient] = None, peer: Optional[str] = None,
                 actor: Optional[IClient] = None, everyone: bool = False, logged: bool = True) -> None: ...
    def updateLineWatch(self: _Line) -> None: ...
    def _lastController(self: _Line, closing: bool = False, why: str = ...) -> None: ...
    def _roleChanged(self: _Line, client: IClient, role: Role, text: str, told: bool = False) -> None: ...
    def _setRole(self: _Line, client: IClient, role: Role) -> None: ...
    def endHeldBreak(self: _Line, client: IClient, why: str) -> None: ...
    def dropWrite(self: _Line, client: IClient) -> None: ...
    def makeReadOnly(self: _Line, client: IClient, why: str) -> None: ...
    def dropTyped(self: _Line, client: IClient, why: str = ..., told: str = ...) -> int: ...


class RoleChanges:
    """
    Who may write on a line, as it changes (mixed into the line): take-over
    and giving up write, a new mode, rights taken away by a reload.  A
    change is told to everyone on the line, or, for a connection not
    announced yet (see C{Line.attach}), only logged: the others were never
    told it is there.

    A person who chose to watch (L{onlyWatch}: the escape menu's C{o},
    conserver's C{^Ecs}) keeps watching until it takes write (L{takeWrite}):
    neither a writer's going (L{heirOf}) nor a reload making the line
    shared (L{setMode}) makes it write (conserver issue #107: a spy made
    the writer again, its keys reaching a console it only meant to watch).
    """

    def choseToWatch(self: _Line, client: IClient) -> bool:
        """Whether C{client} chose to watch (L{onlyWatch}) and has not taken write since."""
        return client in self._watching

    def onlyWatch(self: _Line, client: IClient) -> bool:
        """
        C{client} chooses to watch (the escape menu's C{o}): a writer only
        watches from now on (announced); a watcher stays one, its choice
        kept.  Either keeps watching until it takes write.  Whether its role
        changed; a read-only client's choice is nothing (it never writes).
        """
        if client.role is Role.READONLY:
            return False
        self._watching[client] = None
        if client.role is Role.WRITER:
            self._roleChanged(client, Role.WATCHER, "now only watches")
            return True
        return False

    def _setRole(self: _Line, client: IClient, role: Role) -> None:
        """
        C{client} has C{role} now.  While the device is behind, writers are
        not read (see L{Line.deviceWritable}): one that gains write is
        paused with them, one that loses it is read again (what it sends is
        refused and said; left paused, it was never read again, its escape
        menu dead, once the device caught up).
        """
        was = client.role is Role.WRITER
        client.role = role
        if was and role is not Role.WRITER:
            self.endHeldBreak(client, f"is {role.value} now")
        if not self.writable and was != (role is Role.WRITER):
            if was:
                client.resumeInput()
            else:
                client.pauseInput()

    def _roleChanged(self: _Line, client: IClient, role: Role, text: str, told: bool = False) -> None:
        """
        C{client} has C{role} now: said to everyone (but C{client} if it
        was C{told} already) as C{text}, or only logged while it is not
        announced.
        """
        self._setRole(client, role)
        if client in self._unannounced:
            log.info("{line}: {peer} (not announced) {change}", line=self.name, peer=client.peer,
                     change=text, role=role.value)
        else:
            self.announce(f"{client.peer} {text}", exclude=client if told else None, peer=client.peer, actor=client)

    def takeWrite(self: _Line, client: IClient) -> bool:
        """
        C{client} becomes the writer; in exclusive mode the old one watches
        (not one that hung up, its typing waiting: that still goes, as it
        would have had the old one left).
        """
        if client.role is Role.READONLY:
            return False
        self._watching.pop(client, None)
        if self.mode == "exclusive":
            for other in self.clients:
                if other is not client and other.role is Role.WRITER and other.person and not other.departed:
                    self._setRole(other, Role.WATCHER)
        self._setRole(client, Role.WRITER)
        self.announce(f"{client.peer} took write", peer=client.peer, actor=client)
        return True

    def setMode(self: _Line, mode: str) -> None:
        """
        A new mode (a reload).  Made exclusive, the line keeps one writer:
        the first person attached who writes; the other writers only watch
        from now on, as after a take-over (announced).  Made shared again,
        everyone who watches writes (as everyone attaching then does), but
        one who chose to watch (L{onlyWatch}): it keeps watching, logged.
        """
        if mode == self.mode:
            return
        self.mode = mode
        writer = self.writer
        for client in list(self.clients):
            if not client.person:
                continue
            if mode == "exclusive" and client is not writer and client.role is Role.WRITER and not client.departed:
                self.dropWrite(client)
            elif mode == "shared" and client.role is Role.WATCHER:
                if client in self._watching:
                    log.info("{line}: {peer} keeps watching: it chose to (shared)", line=self.name,
                             peer=client.peer, budget=client.logBudget)
                else:
                    self._roleChanged(client, Role.WRITER, "writes (shared)")

    def dropWrite(self: _Line, client: IClient) -> None:
        if client.role is Role.WRITER:
            self._roleChanged(client, Role.WATCHER, "now only watches")

    def makeReadOnly(self: _Line, client: IClient, why: str) -> None:
        """
        C{client} may only read from now on (its right taken away by a
        reload): it is told C{why}, the others and the log that it is
        read-only now.  Were it the last RFC 2217 client that could change
        the port, the configured settings come back, as when that one
        leaves (read-only, it no longer holds them back).
        """
        if client.role is Role.READONLY:
            return
        wasWriter = client.role is Role.WRITER
        client.notice(f"you are read-only now: {why}")
        self._roleChanged(client, Role.READONLY, f"is read-only now: {why}", told=True)
        if wasWriter:
            self.dropTyped(client)
        if wasWriter and self.mode == "exclusive" and client in self._unannounced and client.person:
            # The write it held goes where it would when such a connection
            # leaves (see Line.detach): to the first person who came since
            # (kept watching by it alone, perhaps with no ^] t; told of nobody).
            heir = heirOf(self.clients, self.clients.index(client) + 1, self._watching)
            if heir is not None:
                self._roleChanged(heir, Role.WRITER, "writes")
        if client in self.controllers:
            self.updateLineWatch()
            if wasWriter and not any(c.role is not Role.READONLY for c in self.controllers):
                self._lastController(
                    why="the last RFC 2217 client that could change the port is read-only now")

    def dropTyped(self: _Line, client: IClient, why: str = "a reload took its write right away",
                  told: str = "a reload took your write right away") -> int:
        """
        A reload took C{client}'s write right away (read-only now, or
        disconnected), or an admin disconnected it: what it typed that waits
        for the device, not written yet, goes no further, as what it types
        from now on: refused, logged (C{why}) and told (C{told}: it was
        written after the reload: 66,430 bytes of a 200 KB paste reached the
        device).  How many bytes.
        """
        dropped = int(self.device.dropQueuedFrom(client))
        if dropped:
            self.refused += dropped
            log.info("{line}: {peer}: {count} byte(s) it typed, not yet written to the device, dropped: {why}",
                     line=self.name, peer=client.peer, count=dropped, why=why)
            client.notice(f"{dropped} byte(s) you typed were not sent: {told}")
        return dropped

    def giveWrite(self: _Line, client: IClient, why: str) -> None:
        """
        C{client}, read-only, writes from now on (a reload took C{ro} out of
        its listener, and it cannot connect again to be given the right: a
        client pty): told C{why}, the others and the log too.
        """
        if client.role is not Role.READONLY:
            return
        self._watching.pop(client, None)
        client.notice(f"you write again: {why}")
        self._roleChanged(client, Role.WRITER, f"writes again: {why}", told=True)

    def applyRights(self: _Line, rights: Rights) -> None:
        """
        New rights (a reload): a person no longer in the line's write list
        only reads from now on; one in neither list is disconnected.  (One
        who gains write takes it by connecting again.)
        """
        self.rights = rights
        for client in list(self.clients):
            if client.user is None:
                continue
            # (A TLS certificate without a CN is a person named "": only "*" names it.)
            right = rights.of(client.user)
            user = printable(client.user) if client.user else "a certificate without a CN"
            if right is None:
                log.info("{line}: {peer} disconnected: a reload left {user} in neither {line}'s write nor its read list",
                         line=self.name, peer=client.peer, user=user)
                self.dropTyped(client)
                client.notice(f"{user} may no longer use {self.name}")
                client.disconnect(f"{user} may no longer use {self.name}")
            elif right == "read" and client.role is not Role.READONLY:
                self.makeReadOnly(client, f"a reload left {user} only in {self.name}'s read list")
