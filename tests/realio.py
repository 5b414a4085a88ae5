"""
Helpers for tests with real I/O: a pty master as the far end of a serial
line, a gateway service started on loopback for a test, TCP clients that
collect bytes, and a twistd gateway in a subprocess.
Waiting is on Deferreds, bounded by the test's timeout, never on sleeps;
a wait that does not end fails just before that timeout, saying which line
of the test waited, for what, and what had come (L{watchWaits}).
"""

from __future__ import annotations

import itertools
import json
import linecache
import os
import re
import select
import shutil
import socket
import sys
import tty
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union

from twisted.internet import defer, fdesc, protocol, reactor, task
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IProtocolFactory, IReadDescriptor
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest
from zope.interface import directlyProvides, implementer, providedBy

from serialgw.app.service import GatewayService
from serialgw.config.listeners import parseListener
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.specs import DEFAULT_LOCK_DIR, DeviceSpec, LineConfig
from tests.fakes import CallObserver, observeLog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class _Wait:
    """A wait a test is in: what for, where in the test it was made, since when; how it is given up."""

    what: str
    where: str
    since: float
    state: Callable[[], str]
    forget: Callable[[], None]


# The waits made since the running test's watch began (see watchWaits), not yet over.
_pending: dict[defer.Deferred[Any], _Wait] = {}
# The pty pairs not closed yet: who else has them open is said with a wait that does not end.
_openPtys: weakref.WeakSet[PtyPair] = weakref.WeakSet()


def _caller() -> str:
    """C{FILE:LINE: SOURCE} of the test code that waits: the first frame outside this module."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "?"
    path, number = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(path, number).strip()
    return f"{os.path.relpath(path, REPO)}:{number}: {source}"


def _track(d: defer.Deferred[Any], what: str, state: Callable[[], str], forget: Callable[[], None]) -> None:
    """Keep C{d} among the pending waits until it fires (see watchWaits)."""
    if d.called:
        return
    _pending[d] = _Wait(what, _caller(), reactor.seconds(), state, forget)  # type: ignore[attr-defined]

    def over(result: Any) -> Any:
        _pending.pop(d, None)
        return result

    d.addBoth(over)


def watchWaits(case: Any) -> None:
    """
    For the test C{case}, once (the helpers that take a test call it): a
    little before trial's timeout would end the test with only "still
    running after N secs", each wait on an L{Accumulator} or
    L{EventCounter} still pending fails instead, naming the line of the
    test that waits, what it waited for, for how long, and what the
    stream had by then: the next person knows which wait hung.  Waits of
    earlier tests are not looked at.
    """
    if getattr(case, "_serialgwWaitWatch", None) is not None or not hasattr(case, "getTimeout"):
        return  # (a SynchronousTestCase waits for nothing)
    _pending.clear()
    timeout = float(case.getTimeout())
    # What this process logged last (an in-process gateway's "is locked by
    # process N", a TLS handshake cut after its 10 s), said with the waits.
    recent: deque[LogEvent] = deque(maxlen=RECENT_EVENTS)

    def keep(event: LogEvent) -> None:
        if event.get("log_level") not in (LogLevel.debug, None):
            recent.append(event)

    observer = CallObserver(keep)
    globalLogPublisher.addObserver(observer)
    case.addCleanup(globalLogPublisher.removeObserver, observer)
    # The test's clock started a little earlier (at its method's call).
    margin = max(2.0, timeout / 10)
    call = reactor.callLater(max(0.0, timeout - margin), _expire, timeout, recent)  # type: ignore[attr-defined]
    case._serialgwWaitWatch = call
    case.addCleanup(lambda: call.cancel() if call.active() else None)


# How many of its last log events a test that hangs shows.
RECENT_EVENTS = 12


def _expire(timeout: float, recent: Iterable[LogEvent] = ()) -> None:
    now = reactor.seconds()  # type: ignore[attr-defined]
    waits = list(_pending.items())
    _pending.clear()
    logged = "".join(f"\n    {formatEvent(event)[:300]}" for event in recent)
    if logged:
        logged = f"\n  this process's last log events:{logged}"
    for pty in sorted(_openPtys, key=lambda pty: pty.slaveName):
        for stranger in strangers(pty.slaveName):
            logged += (f"\n  {pty.slaveName}, a pty of this test, is open in pid {stranger}, not a process of this "
                       "test: another program on this machine (a gateway reopening a /dev/pts/N it lost?) has it")
    for d, wait in waits:
        wait.forget()
        d.errback(AssertionError(
            f"{wait.where}\n  still waiting after {now - wait.since:.1f} s (the test's timeout is {timeout:.0f} s) "
            f"for {wait.what}; {wait.state()}{logged}"))


def _descendants(pid: int) -> set[int]:
    """C{pid} and every process below it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    parent = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, todo = set(), [pid]
    while todo:
        found.add(todo[-1])
        todo.extend(children.get(todo.pop(), []))
    return found


def strangers(path: str) -> list[str]:
    """The processes outside this one and those it started that have C{path} open: C{"PID (COMMAND LINE)"} each."""
    ours = _descendants(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in ours:
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") != path:
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    command = f.read(300).replace(b"\0", b" ").strip().decode("utf-8", "replace")
            except OSError:
                continue
            found.append(f"{name} ({command})")
            break
    return found


def until(case: Any, predicate: Callable[[], object], what: str, interval: float = 0.01) -> defer.Deferred[None]:
    """
    Fires once C{predicate()} holds, looked at every C{interval} seconds:
    for a state no event says has come (the kernel's, another process's,
    a thread's).  Bounded by C{case}'s timeout; a wait that does not end
    fails before it, naming C{what} (see L{watchWaits}).  What the
    predicate raises fails the wait.
    """
    watchWaits(case)
    d: defer.Deferred[None] = defer.Deferred()
    call: Any = None

    def look() -> None:
        nonlocal call
        call = None
        try:
            held = predicate()
        except BaseException:
            d.errback()
            return
        if held:
            d.callback(None)
        else:
            call = reactor.callLater(interval, look)  # type: ignore[attr-defined]

    def forget() -> None:
        if call is not None and call.active():
            call.cancel()

    look()
    _track(d, what, lambda: "it does not hold yet", forget)
    return d


class Accumulator:
    """
    Bytes arriving over time; Deferreds that fire when a condition holds.
    Kept in one growing buffer (appending 16 MiB in 4 KiB reads to bytes
    copied the whole stream every time: minutes under load); predicates see
    the buffer itself, C{data} and the Deferreds give bytes.
    """

    def __init__(self, name: str = "stream") -> None:
        self.name = name
        self._buffer = bytearray()
        self.ended = False
        self._waiters: list[tuple[Callable[[bytes], bool], defer.Deferred[bytes]]] = []

    @property
    def data(self) -> bytes:
        return bytes(self._buffer)

    def end(self) -> None:
        """No more data will come: what is still awaited fails, showing what came."""
        self.ended = True
        waiters, self._waiters = self._waiters, []
        for _, d in waiters:
            d.errback(AssertionError(f"{self.name} ended; it had sent: {bytes(self._buffer[-2000:])!r}"))

    def add(self, data: bytes) -> None:
        self._buffer += data
        waiters, self._waiters = self._waiters, []
        for predicate, d in waiters:
            if predicate(self._buffer):  # type: ignore[arg-type]
                d.callback(self.data)
            else:
                self._waiters.append((predicate, d))

    def when(self, predicate: Callable[[bytes], bool], what: str = "meet the test's condition") -> defer.Deferred[bytes]:
        """Fires with the data once C{predicate} holds (C{what}: it, in words, for a wait that does not end)."""
        d: defer.Deferred[bytes] = defer.Deferred()
        if predicate(self._buffer):  # type: ignore[arg-type]
            d.callback(self.data)
        elif self.ended:
            d.errback(AssertionError(f"{self.name} ended; it had sent: {bytes(self._buffer[-2000:])!r}"))
        else:
            entry = (predicate, d)
            self._waiters.append(entry)
            _track(d, f"{self.name} to {what}", self._state,
                   lambda: self._waiters.remove(entry) if entry in self._waiters else None)
        return d

    def _state(self) -> str:
        return f"it has {len(self._buffer)} bytes, ending: {bytes(self._buffer[-2000:])!r}"

    def length(self, n: int) -> defer.Deferred[bytes]:
        return self.when(lambda data: len(data) >= n, f"reach {n} bytes")

    def contains(self, needle: bytes) -> defer.Deferred[bytes]:
        return self.when(lambda data: needle in data, f"contain {needle!r}")


@implementer(IReadDescriptor)
class FdReader:
    """
    A descriptor (the reading end of a pipe or FIFO; the base of the pty
    ends below) read in the reactor into C{received} from L{startReading}
    on; written whole by L{write}; closed by L{close}.
    """

    # What a read may raise that means only "nothing to read now".
    nothingNow: tuple[type[OSError], ...] = (BlockingIOError, InterruptedError)
    prefix = "fd-reader"

    def __init__(self, fd: int, name: str = "fd") -> None:
        self.fd = fd
        fdesc.setNonBlocking(fd)
        self.received = Accumulator(name)
        self._reading = False

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return self.prefix

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except self.nothingNow:
            return
        if data:
            self.received.add(data)

    def connectionLost(self, reason: Any) -> None:
        pass

    def startReading(self) -> None:
        if not self._reading:
            self._reading = True
            reactor.addReader(self)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def close(self) -> None:
        if self._reading:
            reactor.removeReader(self)  # type: ignore[attr-defined]
            self._reading = False
        os.close(self.fd)


class PtyPair(FdReader):
    """
    A pty pair standing in for a UART: the gateway opens C{slaveName} as its
    device; the test plays the far end on the master.
    """

    # EIO: no one has the slave open right now.
    nothingNow = (OSError,)
    prefix = "pty-master"

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slaveName = os.ttyname(slave)
        # Keep the slave open until the gateway has it, so the master never
        # sees EIO in between.
        self._slave: Optional[int] = slave
        super().__init__(self.master, f"the pty master of {self.slaveName}")
        _openPtys.add(self)

    def fence(self, marker: bytes = b"\x00fence\x00") -> defer.Deferred[bytes]:
        """
        Write C{marker} on the slave side (as the device's user would): the
        Deferred fires with what the master received up to and including
        it, so everything written to the slave before (by a gateway that
        has ended, say) is in it: no waiting for bytes that may never come.
        Needs the slave end still open here (see L{__init__}).
        """
        assert self._slave is not None
        os.write(self._slave, marker)
        return self.received.contains(marker)

    def close(self) -> None:
        _openPtys.discard(self)
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        super().close()


class TtyEnd(FdReader):
    """
    A program on a tty the gateway made (a C{pty:} device or listener): the
    path opened raw, read in the reactor into C{received} until closed.
    """

    prefix = "tty-end"

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd)
        super().__init__(fd, path)
        self.startReading()


class Collector(protocol.Protocol):
    """A TCP client that keeps everything it receives."""

    def __init__(self) -> None:
        self.received = Accumulator("a client")
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        server = self.transport.getPeer()  # type: ignore[union-attr]
        where = f"{server.host}:{server.port}" if hasattr(server, "port") else getattr(server, "name", server)  # type: ignore[union-attr]
        self.received.name = f"the client of {where!s}"

    def dataReceived(self, data: bytes) -> None:
        self.received.add(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.received.end()
        self.closed.callback(None)


def startedPty(case: Any) -> PtyPair:
    """A pty pair whose master is read from now on, closed when the test ends."""
    watchWaits(case)
    pty = PtyPair()
    case.addCleanup(pty.close)
    pty.startReading()
    return pty


_lockDir: list[str] = []

# The machine's UUCP lock directory, where every program looks (cu,
# minicom, ser2net, another gateway): /var/lock, which is /run/lock.
SHARED_LOCK_DIRS = {os.path.realpath(DEFAULT_LOCK_DIR), "/var/lock", "/run/lock"}


def testLockDir() -> str:
    """
    This test run's UUCP lock directory (made at its first use, removed at
    its end).  Not /var/lock: it is every process's on the machine, where
    a pty's number is another's at once when it goes, and a lock there
    naming it (a gateway still retrying a /dev/pts/N that went, a lock
    outliving its pty for a moment) started a test's line down: what the
    test typed was dropped (tests.app.test_status test_metricsPage, once
    under load).  A gateway's flock on the tty still keeps others off it.
    """
    if not _lockDir:
        import atexit
        import tempfile

        _lockDir.append(tempfile.mkdtemp(prefix="serialgw-test-locks-"))
        atexit.register(shutil.rmtree, _lockDir[0], True)
    return _lockDir[0]


def ptyLine(device: Union[PtyPair, str], *listeners: Union[str, ListenerSpec], name: str = "t",
            **config: Any) -> LineConfig:
    """
    A line called C{name} on a tty device (a pty pair's slave end, or a
    path), with these listeners (text as --listen takes it, or a spec as it
    is) and any other LineConfig fields; its locks in L{testLockDir} unless
    C{lockDir} is given.
    """
    path = device.slaveName if isinstance(device, PtyPair) else device
    specs = tuple(parseListener(spec) if isinstance(spec, str) else spec for spec in listeners)
    config.setdefault("lockDir", testLockDir())
    return LineConfig(name, DeviceSpec("tty", path), listeners=specs, **config)


def startGateway(case: Any, *lines: LineConfig, sharedLocks: bool = False, **options: Any) -> GatewayService:
    """
    A gateway service for C{lines} (GatewayService's keywords as given),
    started now and stopped when the test ends.  A tty line that would
    take its UUCP lock in the machine's lock directory is refused (its
    lock goes in L{testLockDir}: ptyLine's default) unless C{sharedLocks}
    (a test of sharing it with cu or picocom), or the test opens devices
    with an C{openPort} of its own (a fake's takes no lock).
    """
    shared = [line.name for line in lines
              if line.device.kind == "tty" and line.lock and os.path.realpath(line.lockDir) in SHARED_LOCK_DIRS]
    if shared and not sharedLocks and "openPort" not in options:
        raise AssertionError(f"line(s) {shared} would take their UUCP locks in {DEFAULT_LOCK_DIR}, every process's on "
                             "the machine (another's lock for a pty number reused keeps a line down): give them "
                             "lockDir=testLockDir(), or say sharedLocks=True")
    watchWaits(case)
    service = GatewayService(list(lines), **options)
    service.startService()
    case.addCleanup(service.stopService)
    return service


async def ptysLinked(service: Any) -> None:
    """
    Every pty: listener's link made and taken in by the reactor's thread
    (PtyClient.whenLinked): the start waits for it START_WAIT s at most,
    and a loaded machine's thread may be later.
    """
    for line in list(service.lines.values()):
        for client in list(line.clients):
            if hasattr(client, "whenLinked"):
                await client.whenLinked()


class TimersHeld:
    """
    The real reactor for a gateway, but while C{holding}, a timer (a
    C{callLater} with a delay) does not fire: what is done in a turn, or in
    the next (C{callLater(0)}), is done; what waits for time waits until
    the hold ends (then late by as long as it was held).  A test that an
    answer waits for no timer holds them: a timer-bound answer never
    comes, however fast or slow the machine.
    """

    def __init__(self, real: Any = reactor) -> None:
        self._real = real
        self.holding = False
        self._held = task.Clock()
        self._held.advance(real.seconds())
        self._follow = task.LoopingCall(self._catchUp)
        self._follow.clock = real
        self._follow.start(0.01)
        directlyProvides(self, providedBy(real))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _catchUp(self) -> None:
        if not self.holding:
            self._held.advance(max(0.0, self._real.seconds() - self._held.seconds()))

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if delay <= 0:
            return self._real.callLater(0, f, *args, **kw)
        return self._held.callLater(delay + self._real.seconds() - self._held.seconds(), f, *args, **kw)

    def stop(self) -> None:
        """No more following; a timer left (the gateway stopped) is an error, as trial's dirty reactor."""
        self._follow.stop()
        left = self._held.getDelayedCalls()
        if left:
            raise AssertionError(f"timers left: {left}")


def heldTimers(case: Any) -> TimersHeld:
    """A L{TimersHeld} reactor, stopped at the end of C{case} (after the gateways started after it stop)."""
    timers = TimersHeld()
    case.addCleanup(timers.stop)
    return timers


def listenerPort(service: GatewayService, index: int = 0) -> int:
    """The port a gateway's C{index}th listener (in the order its lines name them) is bound to."""
    return int(service.ports[index][1].getHost().port)


def heldUdpPort(case: Any) -> int:
    """
    A UDP port on loopback this test holds (bound, never read) until it
    ends: a netconsole's remote no other program can take meanwhile (a
    port found free, then let go, was anyone's to bind before the test's).
    """
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    case.addCleanup(held.close)
    held.bind(("127.0.0.1", 0))
    return int(held.getsockname()[1])


def heldTCPPort(case: Any) -> int:
    """
    A TCP port on loopback this test holds until it ends, for listeners of
    its own made there (L{listenOnHeld}) and closed in turn: bound, not
    listening (a connect to it is refused while none of them is), with
    SO_REUSEPORT, which they share: a connect or a bind to port 0 is never
    given it, nor a bind naming it without SO_REUSEPORT (with it, only the
    same user's). (A port found free and let go is anyone's until it is
    bound again: another process's connect or bind may take it meanwhile.)
    """
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    case.addCleanup(held.close)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind(("127.0.0.1", 0))
    return int(held.getsockname()[1])


def listenOnHeld(port: int, factory: IProtocolFactory) -> Any:
    """A listener of the reactor's on C{port}, a L{heldTCPPort}: stopListening closes it, the port still held."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (as Twisted's listeners: past TIME_WAIT)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(50)
        listener.setblocking(False)
        return reactor.adoptStreamPort(listener.fileno(), socket.AF_INET, factory)  # type: ignore[attr-defined]
    finally:
        listener.close()  # (the reactor's port has a descriptor of its own)


def netconsolePort(service: GatewayService, line: str = "t", index: int = 0) -> int:
    """The UDP port the C{index}th netconsole of C{line} is bound to (C{@127.0.0.1:0}: the kernel chose it)."""
    from serialgw.clients.netconsole import NetconsoleClient

    consoles = [client for client in service.lines[line].clients if isinstance(client, NetconsoleClient)]
    return int(consoles[index].transport.getHost().port)


_paths = itertools.count(1)


def devicePath(case: Any) -> str:
    """
    A path for a device (a link to a pty) in C{case}'s temporary
    directory, named as no other process's (nor an earlier test's) is: a
    tty's UUCP lock is named after the device (C{/var/lock/LCK..NAME},
    one directory for the whole machine), and every C{mktemp()} path ends
    in C{temp}: two test runs at once found each other's lock on a link
    not there yet ("temp is locked by process N").
    """
    return f"{os.path.abspath(case.mktemp())}-{os.getpid()}-{next(_paths)}"


def readable(fd: Any, timeout: float) -> bool:
    """
    Whether C{fd} (a descriptor, or what has a fileno()) is readable within
    C{timeout} s: poll(), which takes any descriptor; select() refuses 1024
    and above ('filedescriptor out of range in select()': race26's tests.app
    run again and again in one process, in its 8th round).
    """
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def listeningSockets() -> set[tuple[int, Any]]:
    """This process's listening sockets: (descriptor, address) of each."""
    found: set[tuple[int, Any]] = set()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            with socket.socket(fileno=os.dup(fd)) as s:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    found.add((fd, s.getsockname()))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return found


def need(program: str) -> str:
    """The path of C{program} (sbin too: CI's PATH has none, ser2net is there); the test is skipped where it is not installed."""
    path = shutil.which(program) or shutil.which(program, path="/usr/local/sbin:/usr/sbin:/sbin")
    if path is None:
        raise SkipTest(f"{program} is not installed; .ci/run installs it")
    return path


class EventCounter:
    """
    Log events whose format contains a text, counted; a Deferred for the
    n-th, fired on the reactor's next turn (not inside the code that logs).
    """

    def __init__(self, case: Any, text: str) -> None:
        self.text = text
        self.events: list[dict[str, Any]] = []
        self._waiters: list[tuple[int, defer.Deferred[dict[str, Any]]]] = []
        observeLog(case, self)
        watchWaits(case)

    def __call__(self, event: dict[str, Any]) -> None:
        if self.text not in (event.get("log_format") or ""):
            return
        self.events.append(event)
        waiters, self._waiters = self._waiters, []
        for n, d in waiters:
            if len(self.events) >= n:
                reactor.callLater(0, d.callback, self.events[n - 1])  # type: ignore[attr-defined]
            else:
                self._waiters.append((n, d))

    def nth(self, n: int) -> defer.Deferred[dict[str, Any]]:
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        if len(self.events) >= n:
            d.callback(self.events[n - 1])
        else:
            entry = (n, d)
            self._waiters.append(entry)
            _track(d, f"log event {n} saying {self.text!r}", lambda: f"{len(self.events)} came",
                   lambda: self._waiters.remove(entry) if entry in self._waiters else None)
        return d


async def closeClients(*clients: Collector) -> None:
    """Close test clients and wait until each connection is gone."""
    for client in clients:
        client.transport.loseConnection()  # type: ignore[union-attr]
        await client.closed


async def connect(port: int, host: str = "127.0.0.1") -> Collector:
    from twisted.internet.endpoints import TCP4ClientEndpoint

    endpoint = TCP4ClientEndpoint(reactor, host, port)
    client = await endpoint.connect(protocol.Factory.forProtocol(Collector))
    assert isinstance(client, Collector)
    return client


async def connectUnix(path: str) -> Collector:
    from twisted.internet.endpoints import UNIXClientEndpoint

    client = await UNIXClientEndpoint(reactor, path).connect(protocol.Factory.forProtocol(Collector))
    assert isinstance(client, Collector)
    return client


class Clients(list[Collector]):
    """The test clients a test made, to be closed together at its end (its tearDown awaits L{close})."""

    async def connect(self, port: int, host: str = "127.0.0.1") -> Collector:
        """L{connect} to C{port}, kept here to be closed."""
        client = await connect(port, host)
        self.append(client)
        return client

    async def close(self) -> None:
        """Close those still connected and wait until each is gone; forget them all."""
        await closeClients(*[c for c in self if c.transport is not None and not c.closed.called])
        self.clear()


class ProcessOutput(protocol.ProcessProtocol):
    """A subprocess whose output (stdout and stderr together) is collected."""

    def __init__(self, name: str = "process") -> None:
        self.output = Accumulator(name)
        self.ended: defer.Deferred[int] = defer.Deferred()
        self.running = True

    def connectionMade(self) -> None:
        self.output.name = f"{self.output.name} (pid {self.transport.pid})'s output"  # type: ignore[union-attr]

    def outReceived(self, data: bytes) -> None:
        self.output.add(data)

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.running = False
        self.output.end()
        code = 0
        if isinstance(reason.value, ProcessTerminated):
            code = reason.value.exitCode if reason.value.exitCode is not None else -1
        elif not isinstance(reason.value, ProcessDone):
            code = -1
        self.ended.callback(code)

    def write(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    def stop(self) -> defer.Deferred[int]:
        if self.running:
            try:
                self.transport.signalProcess("TERM")  # type: ignore[union-attr]
            except Exception:
                pass
        return self.ended


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def gatewayArgv(*args: str) -> list[str]:
    """
    The argv of `twistd -n serialgw ARGS` run from the repo; a line given
    by --device on a tty path takes its UUCP lock in L{testLockDir} unless
    ARGS say --lock-dir or --no-lock (a file's lines: its own lock-dir).
    """
    device = args[args.index("--device") + 1] if "--device" in args[:-1] else ""
    if device.startswith("/") and not {"--lock-dir", "--no-lock"} & set(args):
        args = ("--lock-dir", testLockDir(), *args)
    return TWISTD + ["-n", "--pidfile=", "serialgw", *args]


def spawn(argv: list[str], usePTY: bool = False, env: Optional[dict[str, str]] = None) -> ProcessOutput:
    proc = ProcessOutput(os.path.basename(argv[0]) if argv[0] != sys.executable else "gateway")
    environ = dict(os.environ)
    environ["PYTHONPATH"] = REPO + os.pathsep + environ.get("PYTHONPATH", "")
    if env:
        environ.update(env)
    reactor.spawnProcess(  # type: ignore[attr-defined]
        proc, argv[0], argv, env=environ, path=REPO, usePTY=usePTY
    )
    return proc


def startProcess(case: Any, argv: list[str], usePTY: bool = False, env: Optional[dict[str, str]] = None) -> ProcessOutput:
    """L{spawn} C{argv} now; stopped (TERM, awaited) when the test ends."""
    watchWaits(case)
    proc = spawn(argv, usePTY=usePTY, env=env)
    case.addCleanup(proc.stop)
    return proc


class Processes(list[ProcessOutput]):
    """The processes a test started, to be stopped together at its end (its tearDown awaits L{stop})."""

    def spawn(self, argv: list[str], usePTY: bool = False, env: Optional[dict[str, str]] = None) -> ProcessOutput:
        """L{spawn} C{argv}, kept here to be stopped."""
        proc = spawn(argv, usePTY=usePTY, env=env)
        self.append(proc)
        return proc

    async def stop(self) -> None:
        """Stop each (TERM) in the order started, and wait until it has ended."""
        for proc in self:
            await proc.stop()


LISTENER = re.compile(rb"(telnet|raw) listener ready on 127\.0\.0\.1:(\d+)")


async def listeningPort(proc: ProcessOutput, protocol_: str = "telnet") -> int:
    pattern = re.compile(protocol_.encode() + rb" listener ready on 127\.0\.0\.1:(\d+)")
    data = await proc.output.when(lambda data: pattern.search(data) is not None)
    match = pattern.search(data)
    assert match is not None
    return int(match.group(1))


async def attachStrace(case: Any, gw: ProcessOutput, devicePath: str,
                       spawn: Callable[[list[str]], ProcessOutput]) -> tuple[str, ProcessOutput, int]:
    """
    strace a gateway's ioctls and writes (started with C{spawn}); return
    the trace file, strace, and the gateway's descriptor of C{devicePath}.
    """
    strace = shutil.which("strace")
    if strace is None:
        raise SkipTest("strace is not installed (apt-get install strace); .ci/run installs it")
    pid = gw.transport.pid  # type: ignore[union-attr]
    deviceFd = None
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == devicePath:
                deviceFd = int(fd)
        except OSError:
            pass
    assert deviceFd is not None
    trace = os.path.abspath(case.mktemp())
    tracer = spawn([strace, "-f", "-ttt", "-e", "trace=ioctl,write", "-o", trace, "-p", str(pid)])
    await tracer.output.contains(b"attached")
    return trace, tracer, deviceFd


def breakEvents(trace: str, deviceFd: int, key: str = "h") -> tuple[list[tuple[str, float]], list[str]]:
    """
    From an L{attachStrace} trace: TIOCSBRK, TIOCCBRK and the write of
    C{key} on the device, with their times, in order; and the trace's lines.
    """
    with open(trace) as f:
        lines = f.read().splitlines()
    events = []
    for line in lines:
        m = re.match(rf"\d+ +([\d.]+) ioctl\({deviceFd}, (TIOCSBRK|TIOCCBRK)", line)
        if m:
            events.append((m.group(2), float(m.group(1))))
        m = re.match(rf'\d+ +([\d.]+) write\({deviceFd}, "{key}", 1\)', line)
        if m:
            events.append((f"write {key}", float(m.group(1))))
    return events, lines


def assertBreakThenKey(case: Any, trace: str, deviceFd: int) -> None:
    """
    The device saw TIOCSBRK, TIOCCBRK at least 0.24 s later (within 10 s:
    a break not held for ever), then the write of C{h}.  How long past
    0.25 s is the machine's: a traced gateway on a loaded machine waits
    for the CPU when its timer is due (test_breaks pins the 0.25 s on a
    Clock).
    """
    events, lines = breakEvents(trace, deviceFd)
    case.assertEqual([name for name, _ in events], ["TIOCSBRK", "TIOCCBRK", "write h"], lines[-20:])
    held = events[1][1] - events[0][1]
    case.assertTrue(0.24 <= held < 10.0, held)


def writeTemp(case: Any, text: str) -> str:
    """A file under the test's mktemp() holding C{text}; its path."""
    path = case.mktemp()
    with open(path, "w") as f:
        f.write(text)
    return path


def socketPath(case: Any, name: str = "sock") -> str:
    """
    A path for a unix socket, short enough for AF_UNIX (108 bytes) wherever
    the tests run (trial's temp directory under a test's full id is not),
    removed after the test (L{tests.shortpaths.shortDirectory}: not under
    a long C{TMPDIR} either).
    """
    from tests.shortpaths import shortDirectory

    return os.path.join(shortDirectory(case, "serialgw-"), name)


def linePort(data: bytes, line: str, protocol_: str = "telnet") -> int:
    """The port a gateway's log says a line's listener is ready on."""
    found = re.findall(b"line " + line.encode() + b": " + protocol_.encode()
                       + rb" listener ready on 127\.0\.0\.1:(\d+)", data)
    return int(found[0])


async def statusPage(port: int) -> dict[str, Any]:
    """The status page over HTTP, as JSON."""
    client = await connect(port)
    client.transport.write(b"GET / HTTP/1.0\r\n\r\n")  # type: ignore[union-attr]
    await client.closed
    return json.loads(client.received.data.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]
