"""
SIGUSR1 (logrotate moved the files): every console log and every C{file:}
listener opens its path again, in turns of the reactor, L{REOPENS_PER_TURN}
a turn, the reactor serving every line in between: a farm's 1024 console
logs reopened in one turn held every line 17-20 ms (see
L{serialgw.app.applying} for a reload spread the same way).  A SIGUSR1 that
comes while one is under way is one more pass once it is done (any number
of them: one pass); a stop between turns leaves the rest as they are.

A console log is reopened by its writer, off the reactor's thread, after
what waits for it (L{serialgw.clients.logwriter}): the pass ends when
every one has said, or after L{REOPEN_WAIT} s, naming those whose writer
is stuck in a write (reopened when it returns, if ever).
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.clients.consolelog import ConsoleLog
from serialgw.clients.local import FileClient
from serialgw.line.hub import Line

log = Logger()

# Files opened again in one turn (one takes 15-20 us: a turn of ~1 ms).
REOPENS_PER_TURN = 64

# Seconds a pass waits for console logs' writers to reopen their files.
REOPEN_WAIT = 10.0


class ReopenedGateway(typing.Protocol):
    """
    What the reopens use of their gateway (L{serialgw.app.service.GatewayService}):
    declared here, since the service imports this module.
    """

    reactor: Any
    lines: dict[str, Line]
    _stopped: bool


class Reopens:
    """The SIGUSR1 reopens of one gateway: the pass under way, and those waiting for the next."""

    def __init__(self, service: ReopenedGateway) -> None:
        self.service = service
        self.running = False
        # Who waits for the pass after the one under way (None: no such pass).
        self.waiting: Optional[list[defer.Deferred[int]]] = None

    def reopen(self) -> defer.Deferred[int]:
        """One pass over every file (or the next one, if one is under way); fires with how many could be opened."""
        done: defer.Deferred[int] = defer.Deferred()
        if not self.running:
            self.running = True
            self._pass([done])
        elif self.waiting is None:
            self.waiting = [done]
        else:
            self.waiting.append(done)
        return done

    def _pass(self, waiters: list[defer.Deferred[int]]) -> None:
        files: list[Any] = [client for line in self.service.lines.values()
                            for client in list(line.logs) + [c for c in line.clients if isinstance(c, FileClient)]]
        count = 0
        # Console logs whose writers have not said yet.
        pending: dict[Any, defer.Deferred[int]] = {}

        def said(opened: int, client: Any) -> None:
            nonlocal count
            count += opened
            pending.pop(client, None)

        def failed(reason: Failure, client: Any) -> None:
            pending.pop(client, None)
            log.failure("{path}: reopen failed", reason, path=client.peer)

        def turn(start: int) -> None:
            end = min(start + REOPENS_PER_TURN, len(files))
            for client in files[start:end]:
                if self.service._stopped:
                    break
                if isOpen(client):  # (not one a reload closed meanwhile)
                    try:
                        reopened = client.reopen()
                    except Exception:
                        # (One file's failure, a close's EIO, stops neither
                        # this pass nor every later SIGUSR1: the pass ends.)
                        log.failure("{path}: reopen failed", path=getattr(client, "peer", client))
                        continue
                    if isinstance(reopened, defer.Deferred):
                        pending[client] = reopened
                        reopened.addCallback(said, client).addErrback(failed, client)
                    else:
                        said(int(reopened), client)
            if end < len(files) and not self.service._stopped:
                self.service.reactor.callLater(0, turn, end)
                return
            self._waitFor(pending, lambda: self._passed(count, waiters))

        turn(0)

    def _waitFor(self, pending: dict[Any, defer.Deferred[int]], then: Any) -> None:
        """C{then()} once every writer in C{pending} has reopened its file, or after REOPEN_WAIT s (those left named)."""
        if not pending:
            then()
            return

        def over() -> None:
            stuck = list(pending)
            pending.clear()
            log.error("{count} log file(s) not reopened in {wait} s, their writers stuck in a write (reopened "
                      "when it returns): {paths}", count=len(stuck), wait=f"{REOPEN_WAIT:g}",
                      paths=" ".join(pathOf(client) for client in stuck))
            then()

        timer = self.service.reactor.callLater(REOPEN_WAIT, over)

        def one(result: Any) -> Any:
            if not pending and timer.active():
                timer.cancel()
                then()
            return result

        for waiting in list(pending.values()):
            waiting.addBoth(one)

    def _passed(self, count: int, waiters: list[defer.Deferred[int]]) -> None:
        log.info("reopened {count} log file(s)", count=count)
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not self.service._stopped:
            self._pass(waiting)
        else:
            self.running = False
            for late in waiting or []:
                late.callback(0)
        for done in waiters:
            done.callback(count)


def isOpen(client: Any) -> bool:
    """Whether a console log or file: client is still its line's (not closed by a reload since the pass began)."""
    if isinstance(client, ConsoleLog):
        return client in client.line.logs
    return client in client.line.clients


def pathOf(client: Any) -> str:
    """The path a console log or a file: output writes."""
    return str(client.path) if isinstance(client, FileClient) else str(client.spec.path)
