"""
The threads devices are opened again on: a pool of their own, not the
reactor's.

Opening a tty can block for good (a hung USB adapter or driver).  On the
reactor's thread pool (10 threads) ten such opens took every thread, and
name lookups (dial-outs and remote consoles by host name) and every other
line's reopen waited behind them for ever.  Here:

  - at most one open of a device is under way at a time (C{inFlight}, by
    device name): a line removed and added again by reloads while its open
    hangs does not start another;
  - each open runs on a thread of its own (L{OpenThreads}), which ends
    with it: an open that hangs holds only its own (in a pool of 32
    threads, 32 hung opens held every later open of every line for good);
    at most C{MOST_OPENS} at once: past that many an open is refused at
    once, the line down for that reason and tried again with backoff;
  - only C{BUSY_OPENS} opens that have not been running for C{SLOW_AFTER}
    s run at once: more threads at work only fight the reactor for the
    GIL (a reload adding 500 lines, 32 opens at once, held the other lines
    up to 17 ms at a time; 2 at once, 5 ms), while an open that hangs holds
    a place only that long;
  - the threads are daemon threads and never joined: the process stops
    without waiting for an open that hangs.

The lines' first opens at start run here too, all at once (L{DeviceOpens.openAll}),
waited for a few seconds before the reactor runs (so they are made
before twistd drops privileges, and the lines are up at READY=1); one that
has not returned by then is waited for by its line, which starts down.
"""

from __future__ import annotations

import threading
from collections import deque
from functools import partial
from typing import Any, Callable, Optional

from twisted.internet import defer, threads
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from serialgw.devices.errors import DeviceError
from serialgw.interfaces import IPort

# How long the start waits for the first opens (seconds, all together).
START_WAIT = 5.0

# Opens that may run at once, each a line's (at most one a device) on a
# thread of its own: more than a farm has lines, so that only a farm whose
# every adapter hangs meets it.
MOST_OPENS = 1024
# Of those, how many may have been running less than SLOW_AFTER s (see above).
BUSY_OPENS = 2
SLOW_AFTER = 0.25


class OpenWithdrawn(Exception):
    """An open waiting for its place was withdrawn (its device closed for good meanwhile)."""


class OpenThreads:
    """
    Where L{DeviceOpens} runs opens (its C{callInThreadWithCallback}, as a
    L{twisted.python.threadpool.ThreadPool}'s): each call on a daemon
    thread of its own, started for it and ended with it, never waiting
    for another (no thread kept idle either).
    """

    def callInThreadWithCallback(self, onResult: Callable[[bool, Any], None], f: Callable[..., Any], *args: Any,
                                 **kwargs: Any) -> None:
        def run() -> None:
            try:
                result, ok = f(*args, **kwargs), True
            except BaseException:
                result, ok = Failure(), False
            onResult(ok, result)

        threading.Thread(target=run, daemon=True, name="serialgw-device-open").start()


class DeviceOpens:
    """
    Runs device opens off the reactor thread, on C{pool} (by default
    L{OpenThreads}: a thread each), one a device at a time, at most
    C{MOST_OPENS} at once.
    """

    def __init__(self, pool: Optional[Any] = None) -> None:
        self._pool = pool
        # Opens on the pool now (begun, not returned).
        self.running = 0
        # Device name -> when its open was asked for (reactor time).
        self.inFlight: dict[str, float] = {}
        # Device name -> who waits for its open under way to return (see after).
        self._after: dict[str, list[Deferred[None]]] = {}
        # Opens waiting for a place among the BUSY_OPENS, and how many are taken.
        self._waiting: deque[tuple[Any, Callable[[], IPort], Deferred[IPort]]] = deque()
        self._busy = 0

    @property
    def pool(self) -> Any:
        if self._pool is None:
            self._pool = OpenThreads()
        return self._pool

    def _onPool(self, reactor: Any, opener: Callable[[], IPort]) -> Deferred[IPort]:
        """C{opener()} on the pool, if fewer than MOST_OPENS run (else refused, as a device that cannot open)."""
        if self.running >= MOST_OPENS:
            return defer.fail(DeviceError(f"not opened: {self.running} device opens have not returned (hung adapters or "
                                          "drivers?); tried again when fewer hang"))
        try:
            d = threads.deferToThreadPool(reactor, self.pool, opener)
        except RuntimeError as e:  # (no thread to be had: a limit on the process's tasks)
            return defer.fail(DeviceError(f"not opened: no thread to open it on: {e}"))
        self.running += 1

        def returned(result: Any) -> Any:
            self.running -= 1
            return result

        return d.addBoth(returned)

    def busy(self, name: str) -> bool:
        """Whether an open of C{name} is under way (it may hang)."""
        return name in self.inFlight

    def open(self, reactor: Any, name: str, opener: Callable[[], IPort], paced: bool = True) -> Deferred[IPort]:
        """
        C{opener()} on the pool (C{paced}: once one of the BUSY_OPENS
        places is free); its result (or failure) on the reactor thread.
        """
        self.inFlight[name] = reactor.seconds()

        def done(result: Any) -> Any:
            self.inFlight.pop(name, None)
            for waiting in self._after.pop(name, []):
                # (A turn later: what it opened is closed first, if its line was.)
                reactor.callLater(0, waiting.callback, None)
            return result

        if not paced:
            return self._onPool(reactor, opener).addBoth(done)
        d: Deferred[IPort] = Deferred()
        self._waiting.append((reactor, opener, d))
        self._next()
        return d.addBoth(done)

    def after(self, name: str) -> Deferred[None]:
        """Fires a turn after the open of C{name} under way (see L{busy}) has returned (its outcome is its opener's)."""
        waiting: Deferred[None] = Deferred()
        self._after.setdefault(name, []).append(waiting)
        return waiting

    def withdraw(self, opening: Deferred[IPort]) -> bool:
        """
        An open (C{opening}, from L{open}) still waiting for its place is
        not begun: the device is not opened, even for a moment (its UUCP
        lock, DTR).  It fails with L{OpenWithdrawn}.  Whether it was waiting.
        """
        for entry in self._waiting:
            if entry[2] is opening:
                self._waiting.remove(entry)
                opening.errback(OpenWithdrawn("closed before its open began"))
                return True
        return False

    def _next(self) -> None:
        while self._waiting and self._busy < BUSY_OPENS:
            reactor, opener, d = self._waiting.popleft()
            self._busy += 1
            self._run(reactor, opener).chainDeferred(d)

    def _run(self, reactor: Any, opener: Callable[[], IPort]) -> Deferred[IPort]:
        """One open in a place: the place freed when it returns or has run SLOW_AFTER s, whichever is first."""
        held = [True]

        def free() -> None:
            if held:  # (once)
                held.clear()
                self._busy -= 1
                self._next()

        slow = reactor.callLater(SLOW_AFTER, free)

        def returned(result: Any) -> Any:
            if slow.active():
                slow.cancel()
            free()
            return result

        return self._onPool(reactor, opener).addBoth(returned)

    def openAll(self, reactor: Any, openers: dict[str, Callable[[], IPort]]) -> dict[str, FirstOpen]:
        """
        Begin the opens of C{openers} (by device name) at once, and wait on
        this thread (at start, before the reactor runs) up to C{START_WAIT}
        seconds for them all to return; each one's L{FirstOpen}, C{done} if
        it had returned by then.
        """
        returned = threading.Condition()
        begun: dict[str, FirstOpen] = {}
        for name, opener in openers.items():
            first = begun[name] = FirstOpen(reactor.seconds())
            # (Not paced: nothing is served yet, and no timer runs before the reactor does.)
            first.deferred = self.open(reactor, name, partial(first.run, opener, returned), paced=False)
            if first.deferred.called:  # (refused at once: see _onPool)
                first.deferred.addErrback(first.refused, returned)
        with returned:
            returned.wait_for(lambda: all(first.returned for first in begun.values()), START_WAIT)
            for first in begun.values():
                first.done = first.returned  # (decided here: one returning later is its Deferred's)
        for first in begun.values():
            if first.done:
                first.deferred.addErrback(lambda _: None)  # (its outcome is taken from result)
        return begun


class FirstOpen:
    """
    A first open begun at start (see L{DeviceOpens.openAll}): C{done}, its
    C{result} (the port or the exception) is the line's now; not done, its
    C{deferred} fires with it (on the reactor thread).
    """

    def __init__(self, since: float) -> None:
        self.since = since
        self.returned = self.done = False
        self.result: Any = None
        self.deferred: Deferred[IPort] = Deferred()

    def run(self, opener: Callable[[], IPort], returned: threading.Condition) -> IPort:
        """(On the pool's thread.)  C{opener()}, its outcome kept as well."""
        try:
            port = opener()
        except BaseException as e:
            with returned:
                self.result, self.returned = e, True
                returned.notify_all()
            raise
        with returned:
            self.result, self.returned = port, True
            returned.notify_all()
        return port

    def refused(self, failure: Failure, returned: threading.Condition) -> None:
        """(On this thread.)  It was refused before it began: its outcome is that."""
        with returned:
            self.result, self.returned = failure.value, True

    def port(self) -> IPort:
        """The port it opened, or raise what the open raised."""
        assert self.done
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result  # type: ignore[no-any-return]


# The process's device opens (one reactor, one pool).
deviceOpens = DeviceOpens()
