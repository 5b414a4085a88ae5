"""
What a slow client may cost: each network client has a bound on the device
output queued towards it (its transport's buffer) and a policy for when it
is full:

  - C{drop}: device output for this client waits in a second bounded
    queue whose oldest bytes are dropped (counted; telnet users get a notice
    when it flows again); everyone else is untouched;
  - C{disconnect}: the client is cut off;
  - C{block}: the line stops reading its device until the client catches up
    (lossless for that client, and so for everyone: one data client only).

The guard is the transport's streaming producer: Twisted pauses it when the
transport's buffer passes C{bufferSize} and resumes it when drained.

Past the bound, whatever the policy, the client's input is still read
and handled: its typing, a Ctrl-C (telnet's IAC IP) into a console that
floods faster than it reads, reaches the device at once.  What it causes
to be answered (telnet negotiation, AYT, RFC 2217 replies, the escape
menu's) goes to its transport past the bound, out of a small answer
budget (L{answerBudget}: ANSWER_BUDGET bytes, at most the bound) that
does not wait behind the held output; once that is spent, its input is
held (its transport stops reading, and what was read but not yet handled
waits: at most one read) until it has taken its output, so a client that
sends and never reads holds at most its bound, its held output, the
budget and one read.  Text that is not an answer to its own input
(notices of the line) waits in the bounded queue with device output.
The client side of that contract is L{IGuarded}.
"""

from __future__ import annotations

import socket
from functools import partial
from typing import Any, Callable, Optional

from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer
from twisted.protocols.policies import ProtocolWrapper
from zope.interface import Attribute, Interface, implementer

from serialgw.line.tail import Tail
from serialgw.logflood import clientLog
from serialgw.wire.sockets import countQueuedOnly

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()


class IGuarded(Interface):
    """
    A client behind an L{OutputGuard}.
    """

    peer = Attribute("The client's address, for messages.")
    transport = Attribute("Its transport (C{abortConnection} for the disconnect policy).")

    def deliver(data: bytes) -> None:
        """Device output (and held text) for the client, encoded for its wire."""

    def droppedNotice(count: int) -> None:
        """C{count} bytes were dropped for the client while it was behind."""

    def holdInput() -> None:
        """
        Its output is past the bound: what it sends is answered out of the
        answer budget (L{OutputGuard.spendAnswer}), or no longer read and
        handled (a client that cannot tell an answer from other output).
        """

    def releaseInput() -> None:
        """Its output drained: handle what was held, then read it again."""

    def logInOrder(emit: Callable[[], None]) -> None:
        """
        A log line about the client (C{emit} writes it): now, or later where
        the log has not said yet that the client came (a connection not
        announced yet), so that the log tells what happened in order.
        """


def bufferHolder(transport: Any) -> Any:
    """
    The file descriptor whose buffer holds what is written to C{transport}:
    itself (TCP, unix); under TLS the TCP transport below (a wrapper answers
    for its transport's attributes, so the test is isinstance); for
    StandardIO (stdio, pipe:) its writer.
    """
    from twisted.internet import stdio

    if isinstance(transport, stdio.StandardIO):
        return transport._writer  # type: ignore[attr-defined]
    if isinstance(transport, ProtocolWrapper):
        return transport.transport
    return transport


def boundKernelQueue(holder: Any, bound: int) -> None:
    """
    On a TCP connection, the kernel too keeps at most about C{bound} bytes
    not sent yet (TCP_NOTSENT_LOWAT): without it, the send buffer of a
    client that never reads grows (autotuned) to tcp_wmem's maximum, 4 MiB,
    before the guard's bound is even reached: 3 MiB of kernel memory per
    stuck client measured, 1.5 GB for 500, past the machine's TCP memory
    pressure mark.  What is in flight (sent, not acknowledged) is not
    counted: a fast far client keeps the kernel's tuning.  An SSH channel
    sets it on its TCP connection (sshsession.ChannelTransport).  Elsewhere
    (unix sockets: a fixed buffer; pipes): nothing.
    """
    if not isinstance(holder, tcp.Connection):
        return
    try:
        sock = holder.getHandle()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, bound)
    except OSError:
        pass


# Linux's value (the socket module has the name on Linux only).
TCP_NOTSENT_LOWAT = 25

# What a client past its bound may be sent in answers to its own input
# (telnet negotiation, AYT, RFC 2217 replies, the escape menu's) before its
# input is held until it has taken its output (at most its bound, when
# that is smaller): a few hundred answers, a few screens of the menu's.
# Its input held at once instead, a person reading a flooding console at
# 20 KB/s over telnet got a Ctrl-C to it 23.6 s late.
ANSWER_BUDGET = 4096


@implementer(IPushProducer)
class OutputGuard:
    """
    A client's bound and policy (see the module).  C{fanOut}: the line
    whose device output the client gets, if the client's C{deliver}, while
    this guard is full and drops, does nothing but L{hold} (a line's
    sessions and local clients): then, full, it is taken out of the line's
    fan-out (see C{Line.park}) and costs nothing per chunk; what came
    meanwhile is taken from the line's shared tail, chunks shared, when the
    client next needs its held output (a notice held after it, its
    transport drained, the counts asked for), exactly as if every chunk had
    been held one by one.
    """

    # One per client: no instance dict.
    __slots__ = ("client", "line", "bound", "policy", "fanOut", "full", "answered", "_reported", "_held", "_parkedAt",
                 "_holder")

    def __init__(self, client: Any, line: Any, bound: int, policy: str, fanOut: Any = None) -> None:
        self.client = client
        self.line = line
        self.bound = bound
        self.policy = policy
        self.fanOut = fanOut
        self.full = False
        # Bytes of answers sent past the bound since it was last drained (spendAnswer).
        self.answered = 0
        self._reported = 0
        self._held = Tail()
        # While parked: the fan-out's stream position up to which the
        # line's output is in _held (None: not parked).
        self._parkedAt: Optional[int] = None
        # What it is registered with as the producer (see attach), until letGo.
        self._holder: Any = None

    def attach(self, transport: Any) -> None:
        # Over TLS the bytes wait in the TCP transport under the TLS layer:
        # the bound is set, and the guard registered, there.  Registered with
        # the TLS layer, it would hold back TLS's loseConnection (no close
        # alert goes while a producer is registered): a TLS client could not
        # be disconnected (idle, escape d, reload, stop).  StandardIO (stdio,
        # pipe:) writes through its writer, so the guard goes there.
        holder = bufferHolder(transport)
        if hasattr(holder, "registerProducer") and hasattr(holder, "bufferSize"):
            holder.bufferSize = self.bound
            # (Paused by what is queued, not what a partly done send sent too.)
            countQueuedOnly(holder)
            holder.registerProducer(self, True)
            self._holder = holder
        boundKernelQueue(holder, self.bound)

    @property
    def answerBudget(self) -> int:
        """What answers may take past the bound: ANSWER_BUDGET, at most the bound."""
        return min(ANSWER_BUDGET, self.bound)

    def spendAnswer(self, count: int) -> bool:
        """
        C{count} bytes answering the client's own input were written to
        its transport: while it is past its bound they count against the
        answer budget.  True once that is spent (the client then holds its
        input until it has taken its output).
        """
        if not self.full:
            return False
        self.answered += count
        return self.answered >= self.answerBudget

    @property
    def answersSpent(self) -> bool:
        """Past the bound with the answer budget spent."""
        return self.full and self.answered >= self.answerBudget

    @property
    def dropped(self) -> int:
        """Device output dropped for this client so far."""
        if self._parkedAt is None:
            return self._held.dropped
        # What catching up would drop, without doing it (a status page
        # asks about every client).
        missed = self.fanOut.streamed - self._parkedAt
        return self._held.dropped + max(0, len(self._held) + missed - self.bound)

    def hold(self, data: bytes) -> None:
        """
        Device output (policy drop) or text arrived while the client is
        full: keep the newest C{bound} bytes, drop the oldest.
        """
        if self._parkedAt is not None:
            self._catchUp()
        self._held.add(data, self.bound)

    @property
    def heldBytes(self) -> int:
        """Bytes waiting here (not in the transport) for the client."""
        if self._parkedAt is None:
            return len(self._held)
        return min(self.bound, len(self._held) + self.fanOut.streamed - self._parkedAt)

    def _catchUp(self) -> None:
        """Parked: hold what the line sent since, as holding each chunk would have."""
        streamed = self.fanOut.streamed
        assert self._parkedAt is not None
        self._held.follow(self.fanOut.parkedTail, streamed - self._parkedAt, self.bound)
        self._parkedAt = streamed

    def unpark(self) -> None:
        """Back in the line's fan-out (if parked), what it missed held."""
        if self._parkedAt is not None:
            self._catchUp()
            self._parkedAt = None
            self.fanOut.unpark(self)

    def retune(self, bound: int, policy: str) -> None:
        """
        A reload's new bound and policy for this client, in place: the
        transport's buffer at the new bound from its next write.  Full
        meanwhile: a block that held the device lets it go and drops from
        now on; a drop becomes a block, what it held going to the transport
        at once (at most the old bound past the new one, the order kept) and
        the device held until the client has taken it all; a disconnect
        cuts it.
        """
        if (bound, policy) == (self.bound, self.policy):
            return
        # (Out of the fan-out under the bound it was parked with: the line counts them.)
        self.unpark()
        blocked = self.full and self.policy == "block"
        self.bound, self.policy = bound, policy
        holder = bufferHolder(self.client.transport)
        if hasattr(holder, "bufferSize"):
            holder.bufferSize = bound
        boundKernelQueue(holder, bound)
        if not self.full:
            return
        if blocked and policy != "block":
            self.line.unblockDevice(self.client)
        if policy == "block" and not blocked:
            held = self._held.take(len(self._held))
            if held:
                self.client.deliver(held)
            self.line.blockDevice(self.client)
        elif policy == "drop" and self.fanOut is not None:
            self._parkedAt = self.fanOut.park(self)
        elif policy == "disconnect":
            self._cut()

    # IPushProducer: called by the transport

    def pauseProducing(self) -> None:
        if self.full:
            return
        self.full = True
        self.answered = 0
        # Whatever the policy: answers to what it sends from now on come out
        # of the answer budget (or it is no longer read).
        self.client.holdInput()
        if self.policy == "disconnect":
            self._cut()
        elif self.policy == "block":
            self.line.blockDevice(self.client)
        else:
            self.client.logInOrder(partial(
                log.info, "{line}: {peer} cannot keep up: its output is dropped until it does",
                line=self.line.name, peer=self.client.peer))
            if self.fanOut is not None:
                self._parkedAt = self.fanOut.park(self)

    def _cut(self) -> None:
        """Policy disconnect, past the bound: the client is cut off."""
        self.client.logInOrder(partial(
            log.warn, "{line}: {peer} cannot keep up ({bound} bytes queued): disconnected",
            line=self.line.name, peer=self.client.peer, bound=self.bound))
        transport = self.client.transport
        if hasattr(transport, "abortConnection"):
            transport.abortConnection()
        else:
            # A stream on file descriptors (stdio, pipe:, file:): no
            # more output for it; it closes once what it holds is read.
            self.line.detach(self.client)
            transport.loseConnection()

    def resumeProducing(self) -> None:
        if not self.full:
            return
        self.unpark()
        self.full = False
        self.answered = 0
        if self.policy == "block":
            self.line.unblockDevice(self.client)
        held = self._held.take(self.bound)
        dropped, self._reported = self._held.dropped - self._reported, self._held.dropped
        if dropped:
            self.client.logInOrder(partial(
                log.info, "{line}: {peer} caught up; the oldest {count} bytes were dropped for it",
                line=self.line.name, peer=self.client.peer, count=dropped))
            self.client.droppedNotice(dropped)
        if held:
            self.client.deliver(held)
        # Sending what waited may have filled it again: then input stays held.
        if not self.full:
            self.client.releaseInput()

    def release(self) -> None:
        """
        The client is gone (its line has counted what it dropped): what was
        held for it, and what its lost connection had still to send, are let
        go now.  Client, transport and guard refer to each other: left to
        the cyclic collector, which a gateway moving bytes seldom runs, a
        telnet client's (its own copy of the output) stayed: 500 that never
        read, coming and going, took RSS 186 -> 274 -> 408 MB.
        """
        dropped = self._held.dropped
        self._held = Tail()
        self._held.dropped = dropped
        holder = bufferHolder(self.client.transport)
        if getattr(holder, "disconnected", False) and hasattr(holder, "_tempDataBuffer"):
            # Twisted's FileDescriptor buffers (see wire.sockets.writeNow).
            holder.dataBuffer = b""
            holder.offset = 0
            holder._tempDataBuffer = []
            holder._tempDataLen = 0

    def letGo(self) -> None:
        """
        The client is told to go (disconnect, the stop): what was held for
        it goes to its transport now, and the transport no longer waits on
        this guard, so that it closes once that is written.  Still
        registered and paused, Twisted resumed it when the buffer drained
        instead of closing: a policy=block client that had been full took
        all its output and stayed connected until CLOSE_GRACE cut it (10 s,
        a reset, logged as not taking its last output).
        """
        self.stopProducing()
        held = self._held.take(self.bound)
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.unregisterProducer()
        if held:
            self.client.deliver(held)

    def stopProducing(self) -> None:
        self.unpark()
        if self.full and self.policy == "block":
            self.line.unblockDevice(self.client)
        self.full = False
