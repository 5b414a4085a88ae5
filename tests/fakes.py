"""
Fakes for the seams of the data path; each is checked with verifyObject.
"""

from __future__ import annotations

import errno
import gc
import os
from typing import Any, Callable, Optional

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IClient, IDevice, IPort
from serialgw.line.hub import Line
from serialgw.line.role import Role


@implementer(IPort)
class RecordingPort:
    """
    A serial port that records every call with the clock's time, takes at
    most C{accept} bytes per write (None: all) and reports C{pending} bytes
    in the driver's output queue.
    """

    def __init__(self, clock: Any, accept: Optional[int] = None) -> None:
        self.name = "fake"
        self.clock = clock
        self.accept = accept
        self.pending = 0
        self.events: list[tuple[float, str, Any]] = []
        self.incoming: list[bytes] = []
        self.error: Optional[OSError] = None
        self.settings = SerialSettings()
        self.closed = False
        # RFC 2217 modem-state bits, or None: no modem lines (a pty).
        self.modem: Optional[int] = None
        self.modemError: Optional[OSError] = None
        # The reactor startWatching was given (None: not yet).
        self.watching: Any = None
        self.lineState = 0
        # Whether it hung up (unplugged) without a read seeing it.
        self.hung = False

    def _record(self, what: str, value: Any = None) -> None:
        self.events.append((self.clock.seconds(), what, value))

    def fileno(self) -> int:
        return 99

    def read(self) -> bytes:
        if self.error is not None:
            raise self.error
        return self.incoming.pop(0) if self.incoming else b""

    def write(self, data: bytes | bytearray) -> int:
        if self.error is not None:
            raise self.error
        n = len(data) if self.accept is None else min(self.accept, len(data))
        if n:
            self._record("write", bytes(data[:n]))
        return n

    def outputPending(self) -> int:
        return self.pending

    def hungUp(self) -> bool:
        return self.hung

    def takeLineState(self) -> int:
        state, self.lineState = self.lineState, 0
        return state

    def watchLineErrors(self, on: bool) -> None:
        self._record("watch", on)

    def setBreak(self, on: bool) -> None:
        self._record("break", on)

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self._record("apply", settings)
        self.settings = settings
        return settings

    def setModemLine(self, name: str, on: bool) -> None:
        if self.modem is None:
            raise OSError(errno.ENOTTY, "no modem lines")
        if self.modemError is not None:
            raise self.modemError
        self._record(name, on)

    def modemState(self) -> Optional[int]:
        return self.modem

    def purge(self, receive: bool, transmit: bool) -> None:
        self._record("purge", (receive, transmit))

    def startWatching(self, reactor: Any) -> None:
        self.watching = reactor

    def close(self) -> None:
        self._record("close")
        self.closed = True

    def written(self) -> bytes:
        return b"".join(v for _, what, v in self.events if what == "write")


@implementer(IClient)
class RecordingClient:
    """A client of a line that records what the line tells it."""

    def __init__(self, peer: str = "test:1", role: Role = Role.WRITER) -> None:
        self.peer = peer
        self.role = role
        self.received: list[bytes] = []
        self.modem: list[int] = []
        self.lineStates: list[int] = []
        self.deviceStates: list[tuple[bool, bytes]] = []
        self.notices: list[str] = []
        self.announcements: list[str] = []
        self.paused = 0
        self.resumed = 0
        self.person = False
        self.wakesLine = True
        self.dialled = False
        self.user: Optional[str] = None
        self.comPort: Any = None
        self.wantsLineErrors = False
        self.guard: Any = None
        self.departed = False
        self.typedWaiting = 0
        self.logBudget: Optional[str] = None
        self.disconnected = 0
        self.aborted = 0

    def deliver(self, data: bytes) -> None:
        self.received.append(data)

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def announcement(self, text: str) -> None:
        self.announcements.append(text)

    def modemStateChanged(self, state: int) -> None:
        self.modem.append(state)

    def lineStateChanged(self, state: int) -> None:
        self.lineStates.append(state)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        self.deviceStates.append((up, notice))

    def pauseInput(self) -> None:
        self.paused += 1

    def resumeInput(self) -> None:
        self.resumed += 1

    def disconnect(self, why: Optional[str] = None) -> None:
        self.disconnected += 1

    def dropLeftTyping(self, why: str) -> None:
        pass

    def abort(self) -> bool:
        # No connection to cut: the line detaches it.
        self.aborted += 1
        return False


@implementer(IDevice)
class RecordingDevice:
    """
    A device that records writes, breaks and control; refuses a break while
    busy; takes settings as C{accept} says (default: all).
    """

    def __init__(self, settings: SerialSettings = SerialSettings()) -> None:
        # Nameless: a line's status shows an empty device name.
        self.name = ""
        self.events: list[tuple[str, Any]] = []
        self.lockedBy: Optional[int] = None
        self.logBudget: Optional[str] = None
        self.breakDuration = 0.25
        self.breaks = 0
        self.dropped = 0
        self.unsent = 0
        self.started = 0
        self.closed = False
        self.busy = False
        self.breaking = False
        self.up = True
        self.holding = False
        self.downReason: Optional[str] = None
        # Why a break cannot reach the far end ("" when it can).
        self.noBreak = ""
        # Why it carries no settings ("" when it does).
        self.noSettings = ""
        self.settings = settings
        self.modemLines = {"dtr": True, "rts": True}
        self.modem: Optional[int] = None
        self.watching = False
        self.accept: Any = lambda settings: settings
        # Bytes it has not handed on (queuedBytes): a test sets it.
        self.queued = 0
        # Why a reopen is refused ("" none: see reopen).
        self.noReopen = ""
        self.readDelivered = 0

    def write(self, data: bytes, source: Any = None) -> None:
        self.events.append(("write", data))

    def dropQueuedFrom(self, source: Any) -> int:
        return 0

    def queuedBytes(self) -> int:
        return self.queued

    def sendBreak(self, duration: Optional[float] = None) -> bool:
        if self.busy or self.breaking or self.noBreak:
            return False
        self.events.append(("break", duration))
        self.breaking = True
        return True

    def stopBreak(self) -> None:
        self.events.append(("break-off", None))
        self.breaking = False

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self.events.append(("apply", settings))
        self.settings = self.accept(settings)
        return self.settings

    def setModemLine(self, name: str, on: bool) -> bool:
        self.events.append((name, on))
        self.modemLines[name] = on
        return on

    def modemState(self) -> Optional[int]:
        return self.modem

    def purge(self, receive: bool, transmit: bool) -> None:
        self.events.append(("purge", (receive, transmit)))

    def watchLineErrors(self, on: bool) -> None:
        self.watching = on

    def deliverRead(self) -> None:
        self.readDelivered += 1

    def pauseReading(self) -> None:
        self.events.append(("pause", None))

    def resumeReading(self) -> None:
        self.events.append(("resume", None))

    def start(self) -> None:
        self.started += 1

    def reopen(self, why: str) -> Optional[str]:
        """Recorded; refused with C{noReopen} when a test sets it (the line is told nothing: a test does that)."""
        self.events.append(("reopen", why))
        return self.noReopen or None

    def close(self) -> None:
        self.closed = True
        self.up, self.downReason = False, "closed"
        # What it had not sent is dropped, never sent.
        self.dropped += self.queued
        self.unsent += self.queued
        self.queued = 0


class PausableTransport(StringTransport):
    """A StringTransport that counts producer pauses and resumes."""

    def __init__(self) -> None:
        StringTransport.__init__(self)
        self.pauses = 0
        self.resumes = 0

    def pauseProducing(self) -> None:
        self.pauses += 1
        StringTransport.pauseProducing(self)

    def resumeProducing(self) -> None:
        self.resumes += 1
        StringTransport.resumeProducing(self)


class BoundedTransport(StringTransport):
    """
    A StringTransport standing for a socket whose peer does not read: what
    is written stays in C{value()}; while more than C{bufferSize} bytes wait,
    every write pauses a streaming producer, as Twisted's FileDescriptor
    does; L{drain} is the peer reading it all (the producer resumes).
    C{producerState} tells whether the transport reads ("producing") or not.
    """

    bufferSize = 65536

    def __init__(self) -> None:
        StringTransport.__init__(self)
        self.producerPaused = False
        self.most = 0

    def write(self, data: bytes) -> None:
        StringTransport.write(self, data)
        waiting = len(self.io.getvalue())
        self.most = max(self.most, waiting)
        if self.producer is not None and self.streaming and waiting > self.bufferSize:
            self.producerPaused = True
            self.producer.pauseProducing()

    @property
    def dataBuffer(self) -> bytes:
        """What waits, where Twisted's FileDescriptor keeps it (a remote device's queuedBytes looks there)."""
        return self.value()

    def drain(self) -> bytes:
        """The peer reads everything written so far; return it."""
        data = self.value()
        self.clear()
        if self.producer is not None and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()
        return data


@implementer(ILogObserver)
class CallObserver:
    """
    An L{ILogObserver} that hands each event to a plain function (such as
    C{events.append}); Twisted accepts the bare function at run time, but
    its type is not an C{ILogObserver}.
    """

    def __init__(self, observe: Callable[[LogEvent], None]) -> None:
        self.observe = observe

    def __call__(self, event: LogEvent) -> None:
        self.observe(event)


def observeLog(case: SynchronousTestCase, observe: Callable[[LogEvent], None]) -> None:
    """
    Hand every event of the global log publisher to C{observe} until
    C{case} ends; as in a fresh process, no earlier test has spent a peer's
    log budget (see L{serialgw.logflood.PeerLimiter}: 20 lines a minute a
    name, and tests share names within a minute: addresses such as
    192.0.2.7:40000, a pty client's pty:/dev/pts/N, the pty numbers
    reused at once), nor a second budget (a person's SSH sessions': the
    tests' ops1 spent its own thousands of times a minute, so whether a
    test saw a session's line hung on which tests ran in the last minute).
    """
    from tests import freshLogBudgets

    freshLogBudgets()
    observer = CallObserver(observe)
    globalLogPublisher.addObserver(observer)
    case.addCleanup(globalLogPublisher.removeObserver, observer)

class Lines:
    """A gateway as its status page and metrics read it: its lines by name."""

    def __init__(self, *lines: Line) -> None:
        self.lines = {line.name: line for line in lines}
        # Each line's listeners as the status page shows them (GatewayService.listenersOf).
        self.listeners: dict[str, list[dict[str, Any]]] = {}
        # Its SSH listener's configuration (GatewayService.ssh): the page's "ssh" part; None: no SSH listener.
        self.ssh: Any = None

    def listenersOf(self, name: str) -> list[dict[str, Any]]:
        return self.listeners.get(name, [])


class LogEvents:
    """The log's events while a test runs, kept in C{events}."""

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: list[LogEvent] = []
        observeLog(case, self.events.append)

    def at(self, level: LogLevel) -> list[LogEvent]:
        """serialgw's events at C{level}."""
        return [e for e in self.events if e.get("log_level") == level and e.get("log_namespace", "").startswith("serialgw")]


def flap(clock: Any, upFor: float) -> float:
    """
    On a MemoryReactorClock: the far end takes the pending unix dial, keeps
    it C{upFor} s and closes it; the seconds until the next dial.
    """
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import StringTransport
    from twisted.python.failure import Failure

    dials = len(clock.unixClients)
    link = clock.unixClients[-1][1].buildProtocol(None)
    link.makeConnection(StringTransport())
    clock.advance(upFor)
    link.connectionLost(Failure(ConnectionDone()))
    waited = 0.0
    while len(clock.unixClients) == dials:
        clock.advance(0.5)
        waited += 0.5
    return waited


class ThreadedReactorClock(MemoryReactorClock):
    """A MemoryReactorClock with callFromThread (a signal handler's way in): the call runs on the next turn (advance(0))."""

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        self.callLater(0, f, *args, **kw)


def oneTurn(clock: Any) -> None:
    """
    Run the calls of a C{Clock} due now, and not those they make: a reactor
    runs a C{callLater(0)} made during a turn on its next turn, where
    C{Clock.advance(0)} would run it at once.
    """
    due = [call for call in clock.getDelayedCalls() if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


def openDescriptors() -> set[tuple[int, str]]:
    """
    This process's open descriptors, each with what it is (its link in
    /proc/self/fd), garbage collected first: a test asserts that none is
    added (C{openDescriptors() - before}), not that the set is the same,
    as what an earlier test left for the collector may be closed while it
    runs (seen on CI: a descriptor of the set taken before gone after), and
    a number taken again for something else is still told apart.
    """
    gc.collect()
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
        except OSError:
            pass  # the listing's own descriptor, closed since
    return found
