"""
A reload's look at the files it would open (L{serialgw.app.applying}): lock
directories, console logs, file/pipe/pty listeners' paths and TLS files
checked in a thread of their own, where the reactor has threads, so a file
system that does not answer holds no line.  A look that has not returned
in L{CHECK_WAIT} s refuses the reload, naming the file or directory, and
its path is remembered (L{_stuck}) until it returns: a later reload that
would look at it again is refused at once.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads

from serialgw.clients.tlsfiles import TLSError, readPem
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.specs import LineConfig

# Seconds a reload waits for its look at the files it would open (see Applying.lookAside).
CHECK_WAIT = 5.0

# Paths whose look, begun by a reload, had not returned when it gave up (a file system that does not answer).
_stuck: set[str] = set()
_looking = threading.Lock()


@attrs.frozen
class TLSFile:
    """One of the files a TLS listener or dial-out reads (certificate, key, CA file): what a reload reads aside first."""

    spec: ListenerSpec
    path: str
    what: str


def tlsFiles(name: str, spec: ListenerSpec) -> list[tuple[str, TLSFile]]:
    """The TLS files of C{spec} (none without TLS), as items of a reload's look (see L{_what})."""
    tls = spec.tls
    if tls is None:
        return []
    return [(name, TLSFile(spec, path, what)) for path, what in ((tls.cert, "certificate"), (tls.key, "key"),
                                                                 (tls.ca, "CA file")) if path]


def readTLSFile(item: tuple[str, TLSFile]) -> Optional[str]:
    """(The look's thread.)  A TLS file read as its listener will read it: why it cannot be, or None."""
    name, file = item
    try:
        readPem(file.path, file.what)
    except TLSError as e:
        return f"line {name!r}: listener {file.spec.text!r}: {e}"
    return None


def _what(item: tuple[str, Any]) -> tuple[str, str, str]:
    """
    What a reload's look at C{item} is about: the path it looks at (the
    key of L{_stuck}), how a problem with it is said (as checkFiles and
    checkLocks say it), and what the look does.
    """
    name, spec = item
    if isinstance(spec, TLSFile):
        return spec.path, f"line {name!r}: listener {spec.spec.text!r}: {spec.what} {spec.path!r}", "open, read"
    if isinstance(spec, LineConfig):
        return spec.lockDir, f"line {name!r}: lock-dir {spec.lockDir!r}", "stat, access"
    if isinstance(spec, ListenerSpec):
        return spec.path, f"line {name!r}: cannot open listener {spec.text or spec.path!r}", "lstat, access, its lock"
    return spec.path, f"line {name!r}: cannot open log {spec.path!r}", "lstat, access, its lock"


class LookedGateway(Protocol):
    """
    What the look uses of the gateway (L{serialgw.app.service.GatewayService}):
    declared here, since the service imports this module (through applying).
    """

    reactor: Any

    def placed(self, name: str, key: Optional[str], message: str) -> str: ...


class _Applying(Protocol):
    """What the look uses of the reload it is part of (L{serialgw.app.applying.Applying} has it)."""

    problem: Optional[str]

    @property
    def service(self) -> LookedGateway: ...

    def stopped(self) -> bool: ...
    def checkAll(self, _: Any, items: list[Any], check: Callable[[Any], Optional[str]],
                 key: str) -> defer.Deferred[None]: ...


class LookingAside:
    """The look aside, mixed into L{serialgw.app.applying.Applying}."""

    # (The reload's first problem, set by Applying.__init__: annotated only.)
    problem: Optional[str]


    def lookAside(self: _Applying, _: Any, items: list[Any], check: Callable[[Any], Optional[str]],
                  key: str) -> defer.Deferred[None]:
        """
        The checks of C{items}' files (lstat, access, a log's lock) or
        lock directories (stat, access), made in a thread of their own
        where the reactor has threads: a file system that does not answer
        holds no line.  One that has not returned in CHECK_WAIT s refuses
        the reload, naming the file or directory (and a later reload that
        would look at it again, until it returns).
        """
        reactor: Any = self.service.reactor
        if not items or self.stopped() or self.problem is not None or not IReactorThreads.providedBy(reactor):
            return self.checkAll(None, items, check, key)
        with _looking:
            stuck = next((item for item in items if _what(item)[0] in _stuck), None)
        if stuck is not None:
            _, said, does = _what(stuck)
            self.problem = self.service.placed(stuck[0], key, f"{said}: a look at it ({does}) begun before has not "
                                               "returned yet")
            return defer.succeed(None)
        done: defer.Deferred[None] = defer.Deferred()
        # The index of the item looked at, or of the next one to be, its look
        # not begun (an item's look answered: the next's, not its own, is
        # what has not returned); whether its look is under way; all done.
        at: list[Any] = [0, False, False]

        def look() -> None:
            found: Optional[tuple[Any, str]] = None
            for index, item in enumerate(items):
                with _looking:
                    at[:2] = [index, True]
                try:
                    problem = check(item)
                except Exception as e:
                    problem = f"{_what(item)[1]}: {e}"
                if problem is not None:
                    found = (item, problem)
                with _looking:
                    at[:3] = [index + 1, False, found is not None]
                    _stuck.discard(_what(item)[0])
                if found is not None:
                    break
            with _looking:
                at[2] = True
            reactor.callFromThread(over, found)

        def over(found: Optional[tuple[Any, str]]) -> None:
            if done.called:
                return
            if timer.active():  # (run already when the look had answered all: left to this answer)
                timer.cancel()
            if found is not None:
                self.problem = self.service.placed(found[0][0], key, found[1])
            done.callback(None)

        def late() -> None:
            with _looking:
                index, busy, finished = at
                if finished or index >= len(items):
                    return  # (its answer is on its way: see over)
                item = items[index]
                if busy:
                    _stuck.add(_what(item)[0])
            _, said, does = _what(item)
            self.problem = self.service.placed(item[0], key, f"{said}: a look at it ({does}) has not returned in "
                                               f"{CHECK_WAIT:g} s (a file system that does not answer?)")
            done.callback(None)

        timer = self.service.reactor.callLater(CHECK_WAIT, late)
        try:
            threading.Thread(target=look, name="serialgw reload's look at files", daemon=True).start()
        except RuntimeError:  # (no thread to be had: looked at here, as before)
            timer.cancel()
            return self.checkAll(None, items, check, key)
        return done
