"""
A tty that stays ready polled with C{EPOLLONESHOT} (issue 15, target 1).

What a quiet line waits for beside a flooding one is in the kernel, not
in Python.  When C{epoll_wait} looks again at a level-triggered tty whose
input a read has just emptied, the line discipline's poll (C{n_tty_poll})
first waits for the kernel worker that moves the writer's bytes into it
(C{flush_work}), even with a timeout of 0; a keystroke's socket, ready in
the same epoll, is handed back only after that wait (seen with perf:
37 % of a flood's time, 33 us on average; C{bench/neighbourcpu.py
--trace}).

So a tty that was ready in two turns running is registered
C{EPOLLIN | EPOLLONESHOT}: once it fires, the kernel leaves it out of
later polls until it is armed again (C{epoll_ctl} C{MOD}, which is where
the wait now happens).  The next turn first polls and serves the other
descriptors without it, then arms it again and polls once more (without
waiting), serving it and whatever else is ready by then.  A flooding tty
is served once a turn, every other descriptor at least once: neither
starves.  A one-shot tty that is not ready at the first poll after it
was armed again goes back to level-triggered, as every other descriptor
is.  Only
selectables that say so (C{oneShotWhileReady}: serialgw's devices) and
that are read, not written, are ever made one-shot.

Two ways to arm again (L{OneShotReactor.threaded}): in the reactor's
thread in the next turn (the reactor waits for the tty's worker there,
after that turn's first poll was served), or in a helper
thread (C{epoll.modify} releases the GIL around C{epoll_ctl}: CPython's
C{pyepoll_internal_ctl}), so that the reactor's thread never waits for
the worker at all; a lock then keeps the helper from arming a descriptor
the reactor has unregistered, changed or given to another file since.

Invariants (each pinned by C{tests/app/test_oneshot.py}):
  - a one-shot descriptor that fired is armed again, whatever else
    happens in its turn (a second one firing, an interrupted poll, an
    exception escaping the turn);
  - only a real change of a descriptor's registration (Twisted's own
    tests: the descriptor in its set or not, a selectable whose fileno()
    is -1 found by identity) forgets it, and forgetting leaves nothing
    behind: a new file given the same number is level-triggered;
  - the bookkeeping is per descriptor number, O(1) a descriptor a turn;
  - nothing that fails leaves one disarmed and forgotten: what a poll
    handed over is noted before anything else is done, an C{epoll_ctl}
    that fails (C{ENOMEM}) leaves the descriptor one-shot, and a safety
    net (L{OneShotReactor._checkDisarmed}), every SAFETY_NET seconds while
    anything is one-shot, arms again and logs any one-shot descriptor in
    none of the records that lead to it being armed again (a missed path:
    its tty would never be read again).

Off unless C{SERIALGW_ONESHOT} says otherwise (C{1} or C{inline}, C{thread});
for the benchmark's comparisons (README, "Benchmarks").
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from collections import deque
from select import EPOLLIN, EPOLLONESHOT
from typing import Any, Callable, Mapping, Optional

from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger

from serialgw.app.reactor import STOPS, GatewayReactor, failed, stopFor

log = Logger()

ONESHOT_ENV = "SERIALGW_ONESHOT"
ARMED = EPOLLIN | EPOLLONESHOT
# How often, seconds, while some descriptor is one-shot, the reactor looks
# for one that nothing will arm again (L{OneShotReactor._checkDisarmed}).
SAFETY_NET = 1.0

# epoll_ctl's errors for a descriptor the kernel no longer has in the epoll
# set: closed (its last reference), or never there.
GONE = (errno.ENOENT, errno.EBADF)


def modeFromEnvironment(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """C{None} (off), C{"inline"} or C{"thread"}, from C{SERIALGW_ONESHOT}; a clear error for anything else."""
    value = environ.get(ONESHOT_ENV, "").strip().lower()
    if value in ("", "0", "off"):
        return None
    if value in ("1", "on", "inline"):
        return "inline"
    if value == "thread":
        return "thread"
    raise ValueError(f"{ONESHOT_ENV}={value!r}: expected 0 (off), 1 (inline) or thread")


class OneShotReactor(GatewayReactor):
    """
    L{GatewayReactor} whose read-only descriptors marked
    C{oneShotWhileReady} are registered C{EPOLLONESHOT} while they stay
    ready, armed again in the reactor's thread (or a helper thread: see
    L{ThreadedOneShotReactor}) after the next turn's other descriptors.
    """

    threaded = False

    def __init__(self) -> None:
        # Registered EPOLLIN | EPOLLONESHOT (armed or not).
        self._oneShot: set[int] = set()
        # One-shot descriptors that fired this turn: disarmed in the kernel.
        self._fired: set[int] = set()
        # Those that fired last turn, armed again at the end of this one
        # (inline); the reactor's, never the helper's.
        self._rearming: set[int] = set()
        # Armed again since the last poll: back to level-triggered if that
        # poll does not find them ready (the helper appends to it).
        self._armed: deque[int] = deque()
        # Ready this turn, and last turn (by number; a number forgotten is
        # taken out of both: a new file given it was not ready before).
        self._stayed: set[int] = set()
        self._stayedBefore: set[int] = set()
        # Handed to the helper and not yet armed again by it (threaded).
        self._pending: set[int] = set()
        self._armLock = threading.Lock()
        self._work: Optional[queue.SimpleQueue[Any]] = None
        self._helper: Optional[threading.Thread] = None
        # The next safety-net check (while some descriptor is one-shot).
        self._netCall: Any = None
        GatewayReactor.__init__(self)

    # -- a turn ---------------------------------------------------------------

    def doPoll(self, timeout: Optional[float]) -> None:
        if self._turn(-1 if timeout is None else timeout) and not self.threaded:
            # Armed again: polled once more in this turn, so that a tty
            # ready again is read now rather than a whole turn later (in
            # the quiet window of 2026-12-02, A's flood 0.95x the default's
            # this way, against 0.92x a turn later).
            self._turn(0)

    doIteration = doPoll

    def _turn(self, timeout: float) -> bool:
        """Poll and serve; arm again what fired last time.  Whether something was armed again."""
        rearming: set[int] = set()
        if not self.threaded:
            # What fired last turn: armed again at the end of this one.
            rearming, self._fired = self._fired, rearming
            self._rearming = rearming
        armed = self._armed
        checked = [armed.popleft() for _ in range(len(armed))] if armed else []
        try:
            if rearming and not self.threaded:
                # A tty waits to be armed again: nothing to wait for before that.
                events = self._poller.poll(0, len(self._selectables))
            else:
                events = self.busyPoll.wait(self._poller.poll, timeout, len(self._selectables))
        except BaseException as err:
            # Nothing was served: all of it is still to do.
            self._fired |= rearming
            self._rearming = set()
            armed.extendleft(reversed(checked))
            if isinstance(err, OSError) and err.errno == errno.EINTR:
                return False
            raise
        try:
            ready = {fd for fd, _ in events}
            # Disarmed by the kernel as it handed them over, served or not
            # (an exception may escape the turn before they are): first of
            # all noted, so that all are armed again.
            self._fired |= ready & self._oneShot
            if checked:
                self._backToLevel(checked, ready)
            self._dispatch(events, ready)
        finally:
            if self.threaded:
                if self._fired:
                    self._handOver()
            elif self._rearming:
                self._armAgain()
        return bool(self._armed) and not self.threaded

    def _dispatch(self, events: list[tuple[int, int]], ready: set[int]) -> None:
        """L{GatewayReactor.doPoll}'s dispatch, one-shot descriptors last too, making new ones."""
        stayed = self._stayedBefore = self._stayed
        self._stayed = ready
        oneShot = self._oneShot
        if len(events) > 1 and (stayed or oneShot):
            # A one-shot tty armed again is handed back in this turn's
            # second poll, where it was not ready in the first: a flood
            # all the same, served after a keystroke that came meanwhile.
            late = stayed | oneShot
            events = [e for e in events if e[0] not in late] + [e for e in events if e[0] in late]
        dispatch = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            becomes = (fd in stayed and fd not in oneShot and fd not in self._writes
                       and getattr(selectable, "oneShotWhileReady", False))
            try:
                dispatch(selectable, fd, event)
            except STOPS:
                stopFor(self, selectable, fd)
            except BaseException:
                failed(selectable, fd, "an event of its connection")
            if becomes and selectables.get(fd) is selectable and fd in self._reads and fd not in self._writes:
                self._makeOneShot(fd)

    def _makeOneShot(self, fd: int) -> None:
        try:
            self._poller.modify(fd, ARMED)
        except OSError as e:
            if e.errno not in GONE:
                log.failure("making descriptor {fd} one-shot failed", fd=fd)
            return
        self._oneShot.add(fd)
        # Not ready at the next poll: level-triggered again (as when armed
        # again), so that no one-shot descriptor sits armed and idle.
        self._armed.append(fd)
        if self._netCall is None:
            self._netCall = self.callLater(SAFETY_NET, self._checkDisarmed)

    def _backToLevel(self, checked: list[int], ready: set[int]) -> None:
        """One-shot descriptors armed before this turn's poll and not found ready: level-triggered again."""
        for fd in checked:
            if fd in ready or fd not in self._oneShot or fd in self._fired or fd in self._pending:
                continue
            try:
                self._poller.modify(fd, EPOLLIN)
            except OSError as e:
                if e.errno not in GONE:
                    # Still one-shot, and armed: noted when it fires.
                    log.failure("making descriptor {fd} level-triggered again failed", fd=fd)
                    continue
            self._forget(fd)

    def _armAgain(self) -> None:
        """Arm again (in this thread) what fired last turn and is still one-shot, read and registered."""
        rearming, self._rearming = self._rearming, set()
        for fd in rearming:
            if fd not in self._oneShot or fd not in self._reads:
                continue
            self._armOne(fd)

    def _armOne(self, fd: int) -> None:
        """Arm a one-shot descriptor again in this thread, to be checked at the next poll."""
        try:
            self._poller.modify(fd, ARMED)
        except OSError as e:
            if e.errno in GONE:
                # Not in the kernel's set any more (closed without being
                # unregistered): nothing to arm; forgotten.
                self._oneShot.discard(fd)
            else:
                # (ENOMEM: still one-shot and disarmed; the safety net
                # tries again.)
                log.failure("arming descriptor {fd} again failed", fd=fd)
            return
        self._armed.append(fd)

    # -- the safety net -----------------------------------------------------------

    def _checkDisarmed(self) -> None:
        """
        Arm again any one-shot descriptor that nothing will arm or check
        (none, unless a path was missed: a tty disarmed by the kernel
        would never be read again), and say so.  Every one-shot descriptor
        is at all times in one of the reactor's records: fired (disarmed,
        armed again next turn), handed to the helper, or armed and to be
        checked at the next poll.  Run every SAFETY_NET seconds while some
        descriptor is one-shot (O(1) a one-shot descriptor).
        """
        self._netCall = None
        with self._armLock:
            lost = self._oneShot - self._fired - self._rearming - self._pending - set(self._armed)
            for fd in sorted(lost):
                log.warn("one-shot descriptor {fd} had nothing to arm it again: armed again", fd=fd)
                self._armOne(fd)
        if self._oneShot and self._netCall is None:
            self._netCall = self.callLater(SAFETY_NET, self._checkDisarmed)

    # -- the helper thread (threaded) -------------------------------------------

    def _handOver(self) -> None:
        """Give what fired this turn to the helper thread, which arms it again."""
        fired, self._fired = self._fired, set()
        # Added without the lock: only this thread adds, and the helper
        # takes a descriptor only from the batch, after this.
        self._pending |= fired
        if self._work is None:
            self._startHelper()
        assert self._work is not None
        self._work.put(tuple(fired))

    def _startHelper(self) -> None:
        # Started at the first hand-over (after twistd forked, if it does).
        self._work = queue.SimpleQueue()
        self._helper = threading.Thread(target=self._rearmLoop, args=(self._work,),
                                        name="serialgw one-shot re-arm", daemon=True)
        self._helper.start()
        self.addSystemEventTrigger("after", "shutdown", self.stopHelper)

    def _rearmLoop(self, work: queue.SimpleQueue[Any]) -> None:
        poller, lock, pending, armed = self._poller, self._armLock, self._pending, self._armed
        while True:
            batch = work.get()
            if batch is None:
                return
            if callable(batch):
                # (Tests: a step the helper takes in its turn.)
                batch()
                continue
            for fd in batch:
                with lock:
                    if fd not in pending:
                        continue  # Forgotten since: unregistered, changed, or another file.
                    pending.discard(fd)
                    try:
                        poller.modify(fd, ARMED)
                    except ValueError:
                        return  # The reactor's epoll is closed.
                    except OSError as e:
                        if e.errno not in GONE:
                            log.failure("arming descriptor {fd} again failed", fd=fd)
                        continue
                    # (Under the lock: the safety net finds it armed, never between two records.)
                    armed.append(fd)

    def helperStep(self, step: Callable[[], None]) -> None:
        """Have the helper thread call C{step} once it has armed what it was given before (tests)."""
        if self._work is None:
            self._startHelper()
        assert self._work is not None
        self._work.put(step)

    def stopHelper(self) -> None:
        """Stop the helper thread, if there is one (at shutdown)."""
        work, helper = self._work, self._helper
        self._work = self._helper = None
        if work is not None and helper is not None:
            work.put(None)
            helper.join(10)

    # -- registration changes ---------------------------------------------------

    def _forget(self, fd: int) -> None:
        """Not one-shot any more: no state left for this number (under the lock: the helper may hold it)."""
        if self.threaded:
            with self._armLock:
                self._pending.discard(fd)
                self._oneShot.discard(fd)
        else:
            self._oneShot.discard(fd)
        self._fired.discard(fd)
        self._rearming.discard(fd)
        self._stayed.discard(fd)
        self._stayedBefore.discard(fd)

    def _add(self, xer: Any, primary: Any, other: Any, selectables: Any, event: int, antievent: int) -> None:
        fd = xer.fileno()
        if fd in self._oneShot and fd not in primary:
            # Twisted registers or modifies it (level-triggered): a real change.
            self._forget(fd)
        EPollReactor._add(self, xer, primary, other, selectables, event, antievent)

    def _remove(self, xer: Any, primary: Any, other: Any, selectables: Any, event: int, antievent: int) -> None:
        fd = xer.fileno()
        if fd == -1:
            # Closed already: found by identity, as Twisted's _remove does.
            fd = next((known for known, fdes in selectables.items() if fdes is xer), -1)
        if fd in self._oneShot and fd in primary:
            # Twisted unregisters it or leaves the other direction (level-triggered).
            self._forget(fd)
        EPollReactor._remove(self, xer, primary, other, selectables, event, antievent)


class ThreadedOneShotReactor(OneShotReactor):
    """L{OneShotReactor} arming again from a helper thread: the reactor's thread never waits for a tty's worker."""

    threaded = True


READER_ENV = "SERIALGW_READER"


def moversFromEnvironment(environ: Mapping[str, str] = os.environ) -> Optional[str]:
    """
    How C{SERIALGW_READER} has a flooding tty read (L{serialgw.devices.floodread}):
    C{"process"} (unset: the default), C{"thread"}, or C{None} (by the reactor
    itself: C{reactor}, C{off} or C{0}); a clear error for anything else.
    """
    value = environ.get(READER_ENV, "").strip().lower()
    if value in ("0", "off", "reactor"):
        return None
    if value in ("", "thread", "process"):
        return value or "process"
    raise ValueError(f"{READER_ENV}={value!r}: expected process (the default), thread or reactor (none)")


SLICE_ENV = "SERIALGW_SLICE"
# The reactor thread's time slice, seconds (serialgw.app.timeslice).
DEFAULT_SLICE = 100e-6


def sliceFromEnvironment(environ: Mapping[str, str] = os.environ) -> float:
    """
    The reactor thread's time slice in seconds, from C{SERIALGW_SLICE} in
    microseconds (unset: DEFAULT_SLICE; C{0}: the kernel's, as for any
    thread; 100 to 100000, the kernel's bounds); a clear error for anything
    else.
    """
    value = environ.get(SLICE_ENV, "").strip()
    if not value:
        return DEFAULT_SLICE
    try:
        micro = int(value)
    except ValueError:
        micro = -1
    if micro != 0 and not 100 <= micro <= 100000:
        raise ValueError(f"{SLICE_ENV}={value!r}: expected microseconds, 100 to 100000 (0: the kernel's slice)")
    return micro / 1e6


def reactorFromEnvironment(environ: Mapping[str, str] = os.environ) -> GatewayReactor:
    """
    The reactor C{SERIALGW_ONESHOT} and C{SERIALGW_READER} ask for:
    L{GatewayReactor} unless they say otherwise, with the time slice
    C{SERIALGW_SLICE} asks for its thread.
    """
    mode = modeFromEnvironment(environ)
    movers = moversFromEnvironment(environ)
    slice_ = sliceFromEnvironment(environ)
    reactor: GatewayReactor
    if mode == "inline":
        reactor = OneShotReactor()
    elif mode == "thread":
        reactor = ThreadedOneShotReactor()
    else:
        reactor = GatewayReactor()
    reactor.movers = movers
    reactor.timeSlice = slice_
    return reactor
