"""
A line's console log: device output, each line stamped with the time, and
the line's events (attach, detach, take-over, break, device down/up)
marked; rotated by size and by day, a few old files kept.

The reactor's side stamps the output and hands it to the file's writer
(L{serialgw.clients.logwriter}), which writes, rotates and reopens the
file off the reactor's thread: a disk slow or stuck holds its own log
only.  What the writer does not take (more than QUEUE_BOUND bytes wait
for it) is dropped, counted (C{dropped}) and marked in the log where it
resumes, as a full disk's gap is.  What the writer does on its thread
(output written in batches, gaps marked, reopened, closed) is
L{serialgw.clients.logwrites}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.logmarks import (
    CUT,
    EVENT_HOLD,
    EVENT_WINDOW,
    EVENTS_TOLD,
    EventWindow,
    eventBody,
    markBody,
    nextMark,
    shown,
    ticks,
)
from serialgw.clients.logwriter import attach, detach
from serialgw.clients.logwrites import LogWrites
from serialgw.config.logspec import LogSpec
from serialgw.interfaces import IConsoleLog
from serialgw.line.hub import Line
from serialgw.line.role import Role

log = Logger()


# Seconds a close (a stop, a reload) waits for a writer stuck in a write before it leaves the file to it.
CLOSE_WAIT = 5.0


@implementer(IConsoleLog)
class ConsoleLog(ClientEvents, LogWrites):
    # Called once its first open failed, the log closed (its owner's: see GatewayService._forget).
    gone: Optional[Callable[[], None]] = None
    # Called once its LOG.typed's first open failed, the log running on without it (see GatewayService._typedGone).
    typedGone: Optional[Callable[[], None]] = None

    def __init__(self, line: Line, spec: LogSpec, clock: Any, typedOnly: bool = False,
                 writes: Optional[str] = None) -> None:
        """
        C{typedOnly}: the C{LOG.typed} file of what clients typed
        (log-typed), no client of the line.  C{writes}: how the file is
        written (see L{serialgw.clients.logwriter}): by default off the
        reactor's thread, at once where the clock has no threads (a test's).
        """
        self.line = line
        self.spec = spec
        self.clock = clock
        self.peer = f"log:{spec.path}"
        self.role = Role.READONLY
        self.wakesLine = False
        self.atLineStart = True
        # Output not given to the writer, full (behind a disk slow or
        # stuck): all of it, and since the gap last marked (what was
        # typed, in bytes typed, apart).
        self.dropped = 0
        self._behind = 0
        self._behindTyped = 0
        # Asked of the writer, at a drop: a word once it has caught up, so
        # that the gap is marked then, not only with the next output (a
        # flood that ends while it is behind: the console idle at a prompt).
        self._caughtUpAsked = False
        # The writer's side, from here on (touched on its thread only, once the file is open):
        # bytes not written since a write failed (a full disk): the failure
        # is logged once, and the recovery once, not each chunk of output.
        self.lost = 0
        self._typedLost = 0
        self._failing = False
        # Why the writes failed (the first error), for the line that marks the gap.
        self._failure = ""
        # Whether the file ends at a line start (a line cut by a failing write does not).
        self._fileAtLineStart = True
        self._staleLine = False
        self._moved: Optional[tuple[int, Optional[tuple[int, int]]]] = None
        # What a rotation last found in its way and left alone (said once).
        self._inTheWay: Optional[tuple[str, int, int, int]] = None
        # Events and marks that came inside a line of output: (stamp, text),
        # written when the line ends, or after EVENT_HOLD cutting it.
        self._held: list[tuple[bytes, str]] = []
        self._holdTick: Optional[int] = None
        self._markTick: Optional[int] = None
        self._events = EventWindow(clock, self._untold)
        # What clients typed (log-typed): a file of its own, made 0600 (passwords typed at a login prompt).
        self._mode = 0o600 if typedOnly else 0o640
        self._typed: Optional[ConsoleLog] = None
        # LOG.typed's: the log it is of.
        self._parent: Optional[ConsoleLog] = None
        # Taken by its line (made: a failed first open is its own to say, see _notOpened); closed.
        self._settled = self._closed = False
        self._writes = attach(clock, spec.path, writes)
        # (Opened by its writer: a file system that does not answer holds this log only.)
        self._openLater()
        if typedOnly:
            self._refused()
            return
        if spec.typed != "off":
            try:
                self._typed = ConsoleLog(line, attrs.evolve(spec, path=spec.path + ".typed", events="off", mark=0),
                                         clock, typedOnly=True, writes=writes)
            except OSError:
                self._giveUp()
                raise
            self._typed._parent = self
        try:
            self._refused()
        except OSError:
            if self._typed is not None:
                self._typed._giveUp()
            raise
        self._takeOver()
        line.attach(self)
        line.logs.append(self)
        if spec.mark:
            self._markTick = ticks(clock).at(nextMark(clock.seconds(), spec.mark * 60), self._mark)
        for made in self.files():
            made._settled = True

    def files(self) -> list[ConsoleLog]:
        """The log and its LOG.typed (log-typed)."""
        return [self] if self._typed is None else [self, self._typed]

    def _refused(self) -> None:
        """A first open that failed at once (a writer with no thread: a test's): raised, its writer let go."""
        if self.opening.is_set() and self.openError is not None:
            self._giveUp()
            raise self.openError

    def _giveUp(self) -> None:
        """A log refused while it was made: its writer let go (its descriptor, if opened, closed by it)."""
        self._closed = True
        self._writes.put(self._closeNow, defer.Deferred())
        detach(self._writes)

    def _notOpened(self, e: OSError) -> None:
        """
        (On the reactor's thread.)  Its first open failed once it was
        made (a reload's log; a start's that had not returned while the
        start waited): said, naming the file; the line runs without it
        (without LOG.typed: its log runs on).
        """
        if not self._settled or self._closed:
            return  # (raised by its making, or by the start, which said it; or closed meanwhile)
        parent = self._parent
        log.error("{line}: cannot open log {path}: {reason}; {without}", line=self.line.name, path=self.spec.path,
                  reason=e.strerror or str(e), without="the line runs without it" if parent is None else
                  "its log runs on without it: what is typed is not logged")
        if parent is None:
            self.close()
            if self.gone is not None:
                self.gone()
            return
        if parent._typed is self:
            parent._typed = None
        self._closeWrites()
        if parent.typedGone is not None and not parent._closed:
            parent.typedGone()

    def _takeOver(self) -> None:
        """
        A log of the line on this same path (a reload that changed a log
        key opens the new one before the old closes): where the line of
        output stands, and the events waiting for it, are this one's now
        (a reload inside a line of output put a stamp in its middle); it
        shares the old one's writer, so that its writes come after the
        old one's, and where the file's line stands too if it is the
        same file.  A log of the line on another path (a reload that
        moved it) gives where the line of output stands only.
        """
        others = [other for other in self.line.logs if isinstance(other, ConsoleLog)]
        shared = False
        for other in others:
            if other._writes is self._writes:
                shared = True
                self.atLineStart = other.atLineStart
                self._held, other._held = other._held, []
                if self._held:
                    self._holdTick = ticks(self.clock).at(self.clock.seconds() + EVENT_HOLD, self._holdOver)
                self._writes.put(self._takeOverNow, other)
        if others and not shared:
            # A log on another path (a reload that moved it): where the
            # line of output stands is known, so the new file goes on
            # with it stamped, and a newline that ends it makes no empty
            # stamped line there.
            self.atLineStart = others[-1].atLineStart

    def _write(self, data: bytes, midLine: bool) -> None:
        """
        Append C{data} (stamped); C{midLine}: it goes on a line of output
        already begun (it does not start with a stamp: its own first line's
        is the line's, or it starts with the newline ending that line).
        """
        self._queue(self._writeNow, (data, midLine), len(data))

    def _queue(self, run: Any, arg: Any, size: int, typed: bool = False) -> None:
        """
        A job for the writer, unless QUEUE_BOUND bytes wait for it already
        (its disk slow, or a write that does not return): then it is
        dropped and counted (C{typed}: as bytes typed), said once, and the
        gap marked once the writer has caught up (half of what waited
        written: not a gap a chunk on a disk that stays slow).
        """
        writes = self._writes
        if self._behind or self._behindTyped:
            if writes.waiting > writes.bound // 2:
                self._drop(size, typed)
                return
            writes.put(self._gapNow, (self._behind, self._behindTyped))
            self._behind = self._behindTyped = 0
        if writes.room(size):
            writes.put(run, arg, size)
            return
        log.error("{line}: log {path} is behind: {waiting} bytes wait for its disk (slow, or a write that does not "
                  "return); console output is not logged until they are written", line=self.line.name,
                  path=self.spec.path, waiting=writes.waiting)
        self._drop(size, typed)

    def _drop(self, size: int, typed: bool) -> None:
        self.dropped += size
        if typed:
            self._behindTyped += size
        else:
            self._behind += size
        if not self._caughtUpAsked:
            self._caughtUpAsked = True
            self._writes.after().addCallback(self._caughtUp)

    def _caughtUp(self, _: None) -> None:
        """
        The writer has run what waited at a drop: the gap is marked now
        if no output has marked it meanwhile, once no more than half
        QUEUE_BOUND waits (as L{_queue} marks it); else asked again.
        """
        self._caughtUpAsked = False
        writes = self._writes
        if self._closed or not (self._behind or self._behindTyped):
            return
        if writes.waiting > writes.bound // 2:
            self._caughtUpAsked = True
            writes.after().addCallback(self._caughtUp)
            return
        writes.put(self._gapNow, (self._behind, self._behindTyped))
        writes.put(self._markGapNow, None)
        self._behind = self._behindTyped = 0

    def reopen(self) -> defer.Deferred[int]:
        """
        Open the path again (logrotate moved the file, then SIGUSR1): new
        output goes to a file at the path.  If the path cannot be opened,
        the file in hand is kept.  Fires with how many files were opened
        again (by the writer, after what waited for it): the log and its
        LOG.typed (log-typed), 0 to 2.
        """
        # (LOG.typed too, whether or not the log could be: else it went on into the file logrotate moved.)
        typed: defer.Deferred[int] = defer.succeed(0) if self._typed is None else self._typed.reopen()
        mine: defer.Deferred[int] = self._writes.ask(self._reopenOne, 0)
        return defer.gatherResults([typed, mine]).addCallback(sum)

    def written(self) -> defer.Deferred[None]:
        """Fires once what was given to the writers so far (the log's, LOG.typed's) is written or lost."""
        waits = [log_._writes.after() for log_ in (self, self._typed) if log_ is not None]
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def droppedAll(self) -> int:
        """Bytes dropped, the writer behind: of output and events, and typed (LOG.typed)."""
        return self.dropped + (self._typed.dropped if self._typed is not None else 0)

    def typed(self, peer: str, data: bytes) -> None:
        """What C{peer} typed, as it went to the device: a stamped line (or a hexdump) in C{LOG.typed} (log-typed)."""
        typed = self._typed
        if typed is not None:
            # (Formatted by the writer: a 64 KiB paste's hexdump took 2.3 ms.)
            typed._queue(typed._typedNow, (typed._stamp(), shown(peer), data, self.spec.typed), len(data), typed=True)

    def deliver(self, data: bytes) -> None:
        if self._held and b"\n" in data:
            # Held events go where the line of output under way ends.
            end = data.index(b"\n") + 1
            self._deliver(data[:end])
            self._writeHeld()
            data = data[end:]
        self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        # One stamp a chunk, put after every newline in one call.
        if not data:
            return
        stamp = self._stamp()
        body = data.replace(b"\n", b"\n" + stamp)
        midLine = not self.atLineStart
        if not midLine:
            body = stamp + body
        self.atLineStart = data.endswith(b"\n")
        if self.atLineStart:
            body = body[: len(body) - len(stamp)]
        self._write(body, midLine)

    def event(self, text: str) -> None:
        """One of the line's events, a line of its own (log-events: its form, or none), at most EVENTS_TOLD a window."""
        if self.spec.events == "off" or not self._events.admit():
            return
        self._line(eventBody(self.spec.events, text, self.clock.seconds()))

    def _untold(self, count: int) -> None:
        self._line(eventBody(self.spec.events, f"{count} more event(s) not written (more than {EVENTS_TOLD} in "
                                               f"{EVENT_WINDOW:g} s)", self.clock.seconds()))

    def _mark(self) -> None:
        """conserver's mark, every log-mark minutes whether or not the line said anything (as conserver)."""
        self._markTick = None
        if self not in self.line.logs:
            return  # (cut off after a failure: the line writes to it no more, nor do its marks)
        now = self.clock.seconds()
        due = nextMark(now - 1, self.spec.mark * 60)  # (the boundary this call is for; one missed is not made up)
        self._markTick = ticks(self.clock).at(nextMark(now, self.spec.mark * 60), self._mark)
        self._line(markBody(due if due <= now else now))

    def _line(self, text: str) -> None:
        """A line of the log's own (an event, a mark): now, or once the line of output under way ends."""
        self._held.append((self._stamp(), text))
        if self.atLineStart:
            self._writeHeld()
        elif self._holdTick is None:
            self._holdTick = ticks(self.clock).at(self.clock.seconds() + EVENT_HOLD, self._holdOver)

    def _holdOver(self) -> None:
        self._holdTick = None
        self._writeHeld()

    def _writeHeld(self) -> None:
        """The held lines, in one write; inside a line of output, after a line break, the cut said."""
        ticks(self.clock).cancel(self._holdTick)
        self._holdTick = None
        held, self._held = self._held, []
        if not held:
            return
        cut = not self.atLineStart
        text = b"".join(stamp + (body + (CUT if cut and i == 0 else "")).encode("utf-8", "replace") + b"\n"
                        for i, (stamp, body) in enumerate(held))
        self._write((b"\n" if cut else b"") + text, cut)
        self.atLineStart = True

    def close(self) -> defer.Deferred[None]:
        """
        Closed once what waits for the writer is written; fires then, or
        after CLOSE_WAIT s if the writer is stuck in a write (the file left
        to it, said with what was not written).
        """
        if self._closed:
            return defer.succeed(None)  # (its first open failed: closed then)
        self._closed = True
        self._events.stop()
        self._events.flush()
        self._writeHeld()
        ticks(self.clock).cancel(self._markTick)
        self._markTick = None
        if self in self.line.logs:
            self.line.logs.remove(self)
        # (A reload's log on this file, sharing the writer, marks what this one dropped where it takes output again.)
        heir = next((other for other in self.line.logs if isinstance(other, ConsoleLog)
                     and other._writes is self._writes), None)
        waits = [self._closeWrites(heir)]
        if self._typed is not None:
            waits.append(self._typed._closeWrites(heir._typed if heir is not None else None))
        dropped = self.droppedAll()
        if dropped and self in self.line.clients:
            # (The line's count of what its logs dropped stays with it: a counter never falls.)
            self.line.droppedGone["log"] = self.line.droppedGone.get("log", 0) + dropped
        self.line.detach(self)
        return defer.gatherResults(waits).addCallback(lambda _: None)

    def _closeWrites(self, heir: Optional[ConsoleLog] = None) -> defer.Deferred[None]:
        self._closed = True
        done: defer.Deferred[None] = defer.Deferred()
        writes = self._writes
        if self._behind or self._behindTyped:
            # Output dropped since the gap was last marked (the writer behind): marked at the close, or by its heir.
            if heir is not None and heir._writes is writes:
                heir._behind += self._behind
                heir._behindTyped += self._behindTyped
            else:
                writes.put(self._gapNow, (self._behind, self._behindTyped))
                writes.put(self._lastGapNow, None)
            self._behind = self._behindTyped = 0
        writes.put(self._closeNow, done)
        detach(writes)
        if not done.called:
            def abandon() -> None:
                writes.abandoned = True
                log.error("{line}: log {path} left to its writer, stuck in {what} for {wait} s: {waiting} bytes "
                          "not written", line=self.line.name, path=self.spec.path, wait=f"{CLOSE_WAIT:g}",
                          waiting=writes.waiting, what="a write" if self.opening.is_set() else "its open")
                done.callback(None)

            timer = self.clock.callLater(CLOSE_WAIT, abandon)
            done.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])
        return done
