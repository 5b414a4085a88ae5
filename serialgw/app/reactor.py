"""
Twisted's epoll reactor with one method overridden: C{doPoll}, which
waits for and dispatches the ready descriptors of a turn.  It differs from
Twisted's in three ways, and only there:

  - No per-event logging context.  For every ready descriptor Twisted calls
    C{log.callWithLogger}, which asks the selectable for its C{logPrefix}
    and pushes a context dictionary so that legacy C{log.msg} calls get a
    C{system} tag: on a console gateway a third of the Python work of moving
    one byte (13 of 80 microseconds of CPU per single-byte round trip).
    serialgw logs through C{twisted.logger} with named fields, so the tag
    adds nothing.  Dispatch goes straight to C{_doReadOrWrite}
    (Twisted's error handling kept: an exception in C{doRead}/C{doWrite}
    disconnects that selectable only); anything escaping it is logged, so
    one descriptor's failure never stops the loop.
  - Quiet descriptors first.  epoll hands back a level-triggered descriptor
    that stays ready (a flooding line) ahead of one that just became ready
    (a keystroke on a quiet line), so the keystroke waited behind a chunk of
    the flood at each hop.  A descriptor that was also ready last turn now
    goes after those that were not; every ready descriptor is still served
    once per turn, so a flood cannot starve a quiet line, nor the reverse.
  - Busy-polling, adaptively (L{BusyPoll}): while events come within
    C{--busy-poll} microseconds of each other, the reactor polls for the
    next one before it sleeps, so that an answer on its way is caught
    without the wake-up of an idle CPU.

Its C{_doReadOrWrite} is Twisted's (posixbase's, the same in 22.10 and
today's), but an exception of a connection a listener accepted (a
client's bytes that reached a bug of the gateway's) is logged about that
client, within the log limiter's one budget for all clients
(logflood.OWN_ERRORS), as what escapes C{doPoll}'s dispatch of it and a
datagram's handling are: Twisted logged each as an C{Unhandled Error}
traceback, one a connection or a datagram, without bound.

Apart from C{doPoll}, its TCP and unix listening ports, those passed in
by systemd too, accept at most ACCEPTS_PER_TURN connections a turn, and
its UDP ports hand on at most DATAGRAMS_PER_TURN datagrams a turn
(L{serialgw.app.boundedports}).

Until issue 14 it also rewrote C{mainLoop} to skip C{runUntilCurrent} on
turns with no timed call due; C{bench/reactors.py} measured that at
0.7-1.8 us a turn (1.3-3.5 us of CPU per pipe ping-pong in two runs,
nothing outside the noise in serialgw's round trip, its CPU per round trip
or per echoed message at 512 lines), against 5.6-7 us a ping-pong for the
C{doPoll} override, so it went, and with it the reading of Twisted's
timed-call privates.  What is left reads C{_poller}, C{_selectables},
C{_reads}, C{_POLL_*} and C{_disconnectSelectable}, and overrides
C{_doReadOrWrite}, the same in Twisted 22.10 and today's release.

What would make it unnecessary upstream: C{EPollReactor.doPoll} (and the
other posix reactors' C{doIteration}) not wrapping each event in
C{log.callWithLogger} (the legacy C{system} tag could be looked up only
when a legacy observer is there, or when an error is logged), and serving
newly ready descriptors ahead of those that were ready last turn.

It is installed by C{twistd serialgw} when no reactor has been chosen
(C{--reactor} still wins); L{install} is the usual installer.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from typing import Any, Callable, Optional

from twisted.internet import tcp, unix
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.error import ConnectionFdescWentAway, UnsupportedAddressFamily
from twisted.internet.main import CONNECTION_DONE, CONNECTION_LOST
from twisted.logger import Logger

from serialgw.app.boundedports import BoundedTCPPort, BoundedUDPPort, BoundedUNIXPort
from serialgw.app.timeslice import setSlice
from serialgw.logflood import clientLog

log = Logger()
# The gateway's own errors in handling a client's connection or datagram:
# limited (logflood: one budget for all clients).
clientsLog = clientLog()

_NO_FILEDESC = ConnectionFdescWentAway("File descriptor lost")

# epoll's event bits as Twisted's EPollReactor names them, read once: a
# class attribute read through the reactor is no fast lookup in Python
# 3.11 (it is not specialised), and _doReadOrWrite read two or three a
# ready descriptor.
_POLL_IN = EPollReactor._POLL_IN
_POLL_OUT = EPollReactor._POLL_OUT
_POLL_DISCONNECTED = EPollReactor._POLL_DISCONNECTED


def failed(selectable: Any, fd: int, what: str = "handling its connection") -> None:
    """
    Log the exception being handled, raised by C{selectable}'s event: about
    its client when it is a connection a listener accepted (limited: see
    L{clientsLog}), else as the reactor's own.
    """
    if isinstance(selectable, (tcp.Server, unix.Server)):
        from serialgw.clients.transports import peerName

        clientsLog.failure("{peer}: {what} failed (the gateway's error, not the client's): disconnected",
                           peer=peerName(selectable), what=what, fd=fd)
    else:
        log.failure("event on descriptor {fd} ({selectable!r}) failed", fd=fd, selectable=selectable)

# Python's own "stop", raised while an event is handled: a Ctrl-C where
# Twisted's signal handlers are not installed (an embedding's
# run(installSignalHandlers=False)), a sys.exit().  They stop the gateway
# (the reactor's orderly stop: lines closed, clients told), said once, and
# cut no one.  Twisted's dispatch took one out of a doRead as that
# connection's failure (an "Unhandled Error", the connection cut) and one
# out of its connectionLost as the main loop's ("Unexpected error in main
# loop", which goes on): the gateway ran on either way.  Any other
# exception, BaseException's other kinds too, is a failure of that one
# descriptor (L{failed}): the loop goes on with the others.
STOPS = (KeyboardInterrupt, SystemExit)


def stopFor(reactor: Any, selectable: Any, fd: int) -> None:
    """The exception being handled (one of L{STOPS}), raised by C{selectable}'s event: the gateway stops."""
    from twisted.internet.error import ReactorNotRunning

    log.failure("{exception} raised in handling descriptor {fd} ({selectable!r}): the gateway stops",
                exception=sys.exc_info()[0].__name__, fd=fd, selectable=selectable)  # type: ignore[union-attr]
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass  # (stopping already, or not run: nothing to stop)


# The longest busy-poll window, seconds (twistd serialgw --busy-poll, in
# microseconds; 0 turns it off).
DEFAULT_BUSY_POLL = 100e-6


class BusyPoll:
    """
    How long the reactor polls for an event before it sleeps: adaptive, as
    Linux's guest halt-polling (cpuidle-haltpoll) decides how long a vCPU
    polls before it halts.

    Sleeping in C{epoll_wait} and being woken costs the wake-up of an idle
    CPU (a halted vCPU under a hypervisor: tens of microseconds), on each of
    the two hops of a round trip.  Polling for a short while first catches
    an answer that is on its way (a device echoing, a client replying) with
    no wake-up.  The window adapts to what the idle times were: after an
    idle time that a longer window would have caught (at most L{limit}), it
    grows (from L{limit}/4, doubling); after one longer than L{limit}, it
    halves, and below L{limit}/4 it is 0.  So an idle gateway, or one whose
    events are further apart than the limit (a person typing, a serial line
    at a few hundred bytes a second), never polls: it costs CPU only while
    events keep coming within the limit of each other, and then at most
    L{limit} a turn.  A turn that has ready descriptors, or a timed call
    due sooner, polls no longer than that.
    """

    def __init__(self, limit: float = DEFAULT_BUSY_POLL) -> None:
        self.limit = limit
        # How long the next idle turn polls before sleeping.
        self.window = 0.0
        # While above 0 (mover threads run: serialgw.devices.floodread),
        # no polling without sleeping.
        self.suspended = 0
        # While above 0 (mover processes run), the CPU is given up after
        # each empty poll (yieldCPU): a mover at nice 19 on the reactor's
        # CPU waited for the window's end, for each chunk of its flood.
        self.yielding = 0

    def yieldCPU(self) -> None:
        os.sched_yield()

    def configure(self, limit: float) -> None:
        """A new limit (0: off); the window starts again from nothing."""
        self.limit = max(0.0, limit)
        self.window = 0.0

    def idled(self, idle: float) -> None:
        """The reactor waited C{idle} seconds (polling, then asleep) for its last event."""
        limit = self.limit
        if idle > limit:
            window = self.window / 2
            self.window = window if window >= limit / 4 else 0.0
        elif idle > self.window:
            self.window = min(limit, self.window * 2 or limit / 4)

    def wait(self, poll: Callable[[float, int], list[tuple[int, int]]], timeout: float, most: int,
             now: Callable[[], float] = time.monotonic) -> list[tuple[int, int]]:
        """
        Ready events, from C{poll} (epoll's: seconds, -1 for no limit):
        polled without waiting for up to the window (no longer than
        C{timeout}), then waited for.
        """
        if timeout == 0 or not self.limit or self.suspended:
            return poll(timeout, most)
        # A first poll without waiting, even with no window: a turn whose
        # events were ready already was not idle, and adapts nothing.
        started = spent = now()
        window = self.window
        deadline = started + (window if timeout < 0 else min(window, timeout))
        while True:
            events = poll(0, most)
            if events:
                # Ready already, or caught while polling: the window was long enough.
                return events
            spent = now()
            if spent >= deadline:
                break
            if self.yielding:
                self.yieldCPU()
        if timeout > 0:
            timeout = max(0.0, timeout - (spent - started))
        events = poll(timeout, most)
        self.idled(now() - started)
        return events


class _ExitWatch:
    """A child process's pidfd in the reactor: readable once the process has ended."""

    def __init__(self, reactor: Any, fd: int, ended: Callable[[], None]) -> None:
        self.reactor, self.fd, self.ended = reactor, fd, ended

    def fileno(self) -> int:
        return self.fd

    def _done(self) -> None:
        if self.fd < 0:
            return
        self.reactor._internalReaders.discard(self)
        self.reactor.removeReader(self)
        os.close(self.fd)
        self.fd = -1

    def doRead(self) -> None:
        self._done()
        self.ended()

    def connectionLost(self, reason: Any) -> None:
        self._done()

    def logPrefix(self) -> str:
        return "serialgw child exit"


class GatewayReactor(EPollReactor):
    """
    An epoll reactor that dispatches ready descriptors without a logging
    context, those that just became ready before those that stayed ready.
    """

    # The events of the last turn (which descriptors were ready).
    _previous: list[tuple[int, int]] = []
    # How a tty that keeps coming back full is read: by the reactor (None),
    # or moved into a pipe by a thread or a process of its own
    # (serialgw.devices.floodread; SERIALGW_READER).
    movers: Optional[str] = None
    # How many movers run (at most floodhandoff.MOST_MOVERS).
    moving = 0
    # Asked of the reactor's own thread once it runs (ownThread; set from
    # SERIALGW_SLICE: serialgw.app.oneshot): its time slice (seconds; 0:
    # the kernel's).
    timeSlice = 0.0

    def __init__(self) -> None:
        self.busyPoll = BusyPoll()
        EPollReactor.__init__(self)
        self.callWhenRunning(self.ownThread)

    def ownThread(self) -> None:
        """
        What the reactor asks of its own thread (L{timeSlice}), in that
        thread once it runs: twistd without C{-n} forks after the reactor is
        made, and a thread's slice would not follow it into the daemon.
        """
        if self.timeSlice:
            why = setSlice(self.timeSlice)
            if why is not None:
                log.warn("the reactor's thread keeps the kernel's time slice: {why}", why=why)

    def doPoll(self, timeout: Optional[float]) -> None:
        if timeout is None:
            timeout = -1  # Wait indefinitely.
        try:
            events = self.busyPoll.wait(self._poller.poll, timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        previous, self._previous = self._previous, events
        if len(events) > 1 and previous:
            stayed = {fd for fd, _ in previous}
            events = [e for e in events if e[0] not in stayed] + [e for e in events if e[0] in stayed]
        dispatch = self._doReadOrWrite
        selectables = self._selectables
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except STOPS:
                stopFor(self, selectable, fd)
            except BaseException:
                failed(selectable, fd, "an event of its connection")

    doIteration = doPoll

    def _doReadOrWrite(self, selectable: Any, fd: int, event: int) -> None:
        """
        Twisted's (posixbase._PollLikeMixin's), an exception logged by
        L{failed}, the selectable disconnected; one of L{STOPS} stops the
        gateway (L{stopFor}) and leaves the selectable as it is.
        """
        why: Any = None
        inRead = False
        if event & _POLL_DISCONNECTED and not (event & _POLL_IN):
            # Hung up with nothing left to read: reading, a clean end (or a half-close); else lost.
            if fd in self._reads:
                inRead = True
                why = CONNECTION_DONE
            else:
                why = CONNECTION_LOST
        else:
            try:
                if selectable.fileno() == -1:
                    why = _NO_FILEDESC
                else:
                    if event & _POLL_IN:
                        why = selectable.doRead()
                        inRead = True
                    if not why and event & _POLL_OUT:
                        why = selectable.doWrite()
                        inRead = False
            except STOPS:
                # (Not this connection's doing: left as it is, the stop closes it.)
                stopFor(self, selectable, fd)
                return
            except BaseException as e:
                why = e
                failed(selectable, fd)
        if why:
            self._disconnectSelectable(selectable, why, inRead)

    def watchExit(self, pid: int, ended: Callable[[], None]) -> bool:
        """
        Call C{ended} once child process C{pid} has ended (its pidfd
        readable: it can be collected), without a timer looking again; a
        watch of the reactor's own, as its waker is (not one of the
        gateway's readers: a test's reactor left clean while a mover
        process still ends).  False where pidfds are not there (Linux
        before 5.3): the caller looks again itself.
        """
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return False
        os.set_inheritable(fd, False)
        watch = _ExitWatch(self, fd, ended)
        self._internalReaders.add(watch)
        self.addReader(watch)
        return True

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        listening = BoundedTCPPort(port, factory, backlog, interface, self)
        listening.startListening()
        return listening

    def listenUNIX(self, address: Any, factory: Any, backlog: int = 50, mode: int = 0o666, wantPID: int = 0) -> Any:
        listening = BoundedUNIXPort(address, factory, backlog, mode, self, wantPID)
        listening.startListening()
        return listening

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> Any:
        listening = BoundedUDPPort(port, protocol, interface, maxPacketSize, self)
        listening.startListening()
        return listening

    def adoptStreamPort(self, fileDescriptor: int, addressFamily: int, factory: Any) -> Any:
        """A socket passed in (C{systemd:} listeners) bounded as L{listenTCP}'s and L{listenUNIX}'s."""
        if addressFamily not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            raise UnsupportedAddressFamily(addressFamily)
        listening: Any
        if addressFamily == socket.AF_UNIX:
            listening = BoundedUNIXPort._fromListeningDescriptor(self, fileDescriptor, factory)
        else:
            listening = BoundedTCPPort._fromListeningDescriptor(self, fileDescriptor, addressFamily, factory)
        listening.startListening()
        return listening


def install() -> Any:
    """
    Install L{GatewayReactor} as the global reactor and return it (its
    one-shot variant if C{SERIALGW_ONESHOT} asks for it: L{serialgw.app.oneshot}).
    """
    from twisted.internet.main import installReactor

    from serialgw.app.oneshot import reactorFromEnvironment

    reactor = reactorFromEnvironment()
    installReactor(reactor)
    return reactor


def installIfNoneChosen() -> bool:
    """
    Install L{GatewayReactor} unless a reactor is already installed (by
    C{twistd --reactor}, or by anything that imported the default one).
    Return whether it was installed.
    """
    if "twisted.internet.reactor" in sys.modules:
        return False
    install()
    return True
