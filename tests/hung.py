"""
A call made to wait as on a file system that does not answer (a
hard-mounted NFS server gone), for the tests of what the gateway does
meanwhile; and its guard against holding the whole process.

The call waits on the gateway's own threads until the test lets it go
(or its cleanup does), however long a loaded machine takes.  Made on the
test's thread, the reactor's, it would hold the whole process (the bug
those tests look for): there it does not wait, and the test fails at its
end naming it.  The tests had a rescue timer instead, letting the call go
after 15 s, which failed a correct gateway whose test took longer than
that (race26: tests.real.test_loghang, two busy loops on its one core:
both tests 'True is not false', the rescue come).
"""

from __future__ import annotations

import threading
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase


class Held:
    """
    A call held (C{what} names it): L{enter} where it begins, then
    L{wait}; C{entered} once it has begun, C{released} once let go.
    """

    def __init__(self, case: SynchronousTestCase, what: str) -> None:
        self.what = what
        self.entered = threading.Event()
        self.released = threading.Event()
        self.onReactorsThread = 0
        self._lock = threading.Lock()
        self._waiting: list[Deferred[None]] = []
        self._case = case
        case.addCleanup(self._check)
        case.addCleanup(self.release)  # (run first: cleanups run last first)

    def enter(self) -> bool:
        """
        The call begins: C{entered} set, L{whenEntered}'s Deferreds fired (on
        the reactor).  True on another thread, where the call may wait; False
        on the reactor's (counted, failing the test at its end), unless let
        go already.
        """
        offReactor = self.released.is_set() or threading.current_thread() is not threading.main_thread()
        if not offReactor:
            self.onReactorsThread += 1
        with self._lock:
            self.entered.set()
            waiting, self._waiting = self._waiting, []
        if waiting:
            from twisted.internet import reactor

            for d in waiting:
                reactor.callFromThread(d.callback, None)  # type: ignore[attr-defined]
        return offReactor

    def hold(self) -> None:
        """Where the call begins: wait until let go (not on the reactor's thread: see L{enter})."""
        if self.enter():
            self.released.wait()

    def whenEntered(self) -> Deferred[None]:
        """Fires (on the reactor) once the call has begun: no bound but the test's own timeout."""
        with self._lock:
            if self.entered.is_set():
                return succeed(None)
            d: Deferred[None] = Deferred()
            self._waiting.append(d)
            return d

    def release(self) -> None:
        self.released.set()

    def _check(self) -> Any:
        if self.onReactorsThread:
            self._case.fail(f"{self.what} was made on the reactor's thread ({self.onReactorsThread} time(s)), where it "
                            "would have held the whole process, every line with it, until it returned")
