"""
A console log's file written off the reactor's thread.  A write that
never returns (a hard-mounted NFS server gone, a FUSE file system stuck)
held every line while it was made on the reactor's thread; a disk slow
over each write held them at its pace.  Now each file has a writer of its
own (L{FileWrites}): a thread, from the file's open to its close, that
runs the file's jobs (writes, rotations, reopens, its close) in the
order they came, each run taking every job of a kind that waits (one
write for many chunks of output).  At most L{QUEUE_BOUND} bytes wait for
it: past that its owner drops what comes, counts it and marks the gap
when the writer has caught up (L{serialgw.clients.consolelog}).

A test drives it without threads: C{inline} runs each job at once on the
caller's thread (a test's clock: no reactor threads), C{held} keeps the
jobs until L{FileWrites.runWaiting} (a writer that hangs until the test
lets it go).
"""

from __future__ import annotations

import errno
import threading
from collections import deque
from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

# Bytes that may wait for one file's writer (past it, its output is dropped, counted, its gap marked).
QUEUE_BOUND = 1 << 20


# A job: what runs it (given the arguments of every such job waiting next to each other, in order), its argument, its bytes.
Job = tuple[Callable[[list[Any]], None], Any, int]

# The writers of files, by path: a log reopened by a reload on its file shares its writer (its order kept),
# and so does a log on a path whose closed writer is still writing.
_shared: dict[str, FileWrites] = {}


class FileWrites:
    """One file's jobs, run in order off the reactor's thread, at most C{bound} bytes of them waiting."""

    def __init__(self, reactor: Any, name: str, mode: str = "thread", bound: int = QUEUE_BOUND) -> None:
        self.reactor = reactor
        self.name = name
        self.mode = mode
        self.bound = bound
        # Bytes of the jobs not yet run (put adds, the writer takes away once each has run).
        self.waiting = 0
        self.users = 0
        self._jobs: deque[Job] = deque()
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._thread: Optional[threading.Thread] = None
        self._asleep = False
        self._closed = False
        # Its owner gave up waiting for it (stuck in a write), and said so.
        self.abandoned = False

    def room(self, size: int) -> bool:
        """Whether C{size} more bytes may wait (a job of any size when none waits)."""
        return self.waiting == 0 or self.waiting + size <= self.bound

    def put(self, run: Callable[[list[Any]], None], arg: Any, size: int = 0) -> None:
        """Run C{run([arg, ...])} after every job put before it."""
        if self.mode == "inline":
            self.waiting += size
            self._run([(run, arg, size)])
            return
        with self._lock:
            self.waiting += size
            self._jobs.append((run, arg, size))
            if self.mode == "thread":
                if self._thread is None:
                    self._start()
                elif self._asleep:
                    self._more.notify()

    def _start(self) -> None:
        """
        Its thread, from the file's open to its close (started on the
        first write instead, 1024 logs marked at once took 43 ms of the
        reactor's thread in one turn, against 10 with their threads there).
        """
        self._thread = threading.Thread(target=self._loop, name=f"serialgw writer {self.name}", daemon=True)
        self._thread.start()

    def runWaiting(self) -> None:
        """A C{held} writer's jobs, run now on the caller's thread (a test letting a hung writer go)."""
        with self._lock:
            jobs = list(self._jobs)
            self._jobs.clear()
        self._run(jobs)

    def close(self) -> None:
        """No more jobs will come: the thread ends once it has run those waiting."""
        with self._lock:
            self._closed = True
            if self._asleep:
                self._more.notify()

    def after(self) -> defer.Deferred[None]:
        """Fires on the reactor's thread once the jobs put before it have run (written, or lost)."""
        return self.ask(_nothing, None)

    def ask(self, work: Callable[[], Any], failed: Any) -> defer.Deferred[Any]:
        """
        C{work()} run by the writer after the jobs put before it; fires on
        the reactor's thread with what it returned (C{failed} if it raised:
        the failure is logged).
        """
        done: defer.Deferred[Any] = defer.Deferred()
        self.put(self._answer, (work, failed, done))
        return done

    def _answer(self, asked: list[tuple[Callable[[], Any], Any, defer.Deferred[Any]]]) -> None:
        for work, failed, done in asked:
            try:
                result = work()
            except Exception:
                result = failed
                self.tell(log.failure, "writing {name} failed", Failure(), name=self.name)
            self.tell(fire, done, result)

    def tell(self, say: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """C{say(...)} on the reactor's thread (the writer's words, logged there)."""
        if self.mode == "thread":
            self.reactor.callFromThread(say, *args, **kwargs)
        else:
            say(*args, **kwargs)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    if self._closed:
                        self._thread = None
                        return
                    self._asleep = True
                    self._more.wait()
                    self._asleep = False
                jobs = list(self._jobs)
                self._jobs.clear()
            self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        """Each run of jobs of one kind next to each other, in one call."""
        start = 0
        while start < len(jobs):
            run = jobs[start][0]
            end = start + 1
            while end < len(jobs) and jobs[end][0] == run:
                end += 1
            try:
                run([arg for _, arg, _ in jobs[start:end]])
            except Exception:
                self.tell(log.failure, "writing {name} failed", Failure(), name=self.name)
            finally:
                size = sum(size for _, _, size in jobs[start:end])
                if size:
                    with self._lock:
                        self.waiting -= size
            start = end


def attach(reactor: Any, path: str, mode: Optional[str] = None) -> FileWrites:
    """The writer of the file at C{path} (shared while it is in use); C{mode}: by default a thread where the reactor has them."""
    writes = _shared.get(path)
    if writes is not None and writes._closed:
        with writes._lock:
            if writes._thread is not None or writes._jobs:
                # (Closed but still writing: a log on its path again comes after what it has to write.)
                writes._closed = False
            else:
                writes = None
    if writes is None:
        if mode is None:
            mode = "thread" if IReactorThreads.providedBy(reactor) else "inline"
        writes = FileWrites(reactor, path, mode)
        if mode == "thread":
            with writes._lock:
                try:
                    writes._start()
                except RuntimeError as e:
                    # (The process may start no more threads: systemd's TasksMax, ulimit -u.)
                    raise OSError(errno.EAGAIN, f"cannot start its writer thread ({e}): are the "
                                  "process's threads limited (systemd's TasksMax, ulimit -u)?") from e
        _shared[path] = writes
    writes.users += 1
    return writes


def detach(writes: FileWrites) -> None:
    """One user of C{writes} is done: the last closes it."""
    writes.users -= 1
    if writes.users <= 0:
        writes.close()


# Seconds the gateway's stop waits for writers closed with output still to write (a file: output's).
STOP_WAIT = 5.0


def drained(clock: Any, wait: float = STOP_WAIT) -> defer.Deferred[None]:
    """
    Fires once every writer closed with jobs left (a file: output closed
    at stop) has run them, or after C{wait} s, naming those stuck in a
    write with the bytes they did not write (the process may then end
    without them).
    """
    left = {w: w.after() for w in list(_shared.values())
            if w.mode != "inline" and w._closed and not w.abandoned and (w._jobs or w._thread is not None)}
    if not left:
        return defer.succeed(None)
    over: defer.Deferred[None] = defer.Deferred()

    def giveUp() -> None:
        for writes, done in left.items():
            if not done.called:
                writes.abandoned = True
                log.error("{name}: left to its writer, stuck in a write for {wait} s: {waiting} bytes not written",
                          name=writes.name, wait=f"{wait:g}", waiting=writes.waiting)
        over.callback(None)

    timer = clock.callLater(wait, giveUp)

    def one(_: Any) -> None:
        if all(done.called for done in left.values()) and timer.active():
            timer.cancel()
            over.callback(None)

    for done in left.values():
        done.addCallback(one)
    return over


def written() -> defer.Deferred[None]:
    """
    Fires (on the reactor's thread) once every writer working in a thread
    has run the jobs put before this call: what a line had logged is then
    in its file (a test reading a log, a status page's sizes).
    """
    waits = [w.after() for w in list(_shared.values()) if w.mode == "thread" and not w.abandoned]
    return defer.gatherResults(waits).addCallback(lambda _: None)


def fire(done: defer.Deferred[Any], result: Any = None) -> None:
    """C{done}'s result, unless it was given one already (its owner gave up waiting for the writer)."""
    if not done.called:
        done.callback(result)


def _nothing() -> None:
    pass
