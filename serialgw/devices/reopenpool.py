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
  - at most C{OPEN_THREADS} opens run at once (more wait for a thread);
  - the threads are daemon threads and never joined: the process stops
    without waiting for an open that hangs.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool

from serialgw.interfaces import IPort

# Opens that may run at once, each a line's (at most one a device).
OPEN_THREADS = 32


def _daemonThread(*args: Any, **kwargs: Any) -> threading.Thread:
    return threading.Thread(*args, daemon=True, **kwargs)


class DeviceOpens:
    """
    Runs device opens off the reactor thread, on C{pool} (by default a
    L{ThreadPool} of C{OPEN_THREADS} daemon threads, started at its first
    open), one a device at a time.
    """

    def __init__(self, pool: Optional[Any] = None) -> None:
        self._pool = pool
        # Device name -> when its open was asked for (reactor time).
        self.inFlight: dict[str, float] = {}

    @property
    def pool(self) -> Any:
        if self._pool is None:
            pool = ThreadPool(minthreads=0, maxthreads=OPEN_THREADS, name="serialgw-device-open")
            pool.threadFactory = _daemonThread  # type: ignore[assignment]
            pool.start()
            self._pool = pool
        return self._pool

    def busy(self, name: str) -> bool:
        """Whether an open of C{name} is under way (it may hang)."""
        return name in self.inFlight

    def open(self, reactor: Any, name: str, opener: Callable[[], IPort]) -> Deferred[IPort]:
        """C{opener()} on the pool; its result (or failure) on the reactor thread."""
        self.inFlight[name] = reactor.seconds()

        def done(result: Any) -> Any:
            self.inFlight.pop(name, None)
            return result

        d: Deferred[IPort] = threads.deferToThreadPool(reactor, self.pool, opener)
        return d.addBoth(done)


# The process's device opens (one reactor, one pool).
deviceOpens = DeviceOpens()
