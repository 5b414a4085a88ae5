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

Everything else sent to the client goes behind the same bound: past it,
whatever the policy, the client's input is held (its transport stops
reading, and what was read but not yet handled waits: at most one read), so
no answer (telnet negotiation, AYT, RFC 2217, the escape menu) is made
until the client has taken what it was sent; text that is not an answer to
its own input (notices) waits in the bounded queue with device output.
The client side of that contract is L{IGuarded}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.protocols.policies import ProtocolWrapper
from zope.interface import Attribute, Interface, implementer

from serialgw.line.tail import Tail
from serialgw.logflood import clientLog

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
        """Its output is past the bound: stop reading it and handling what it sent."""

    def releaseInput() -> None:
        """Its output drained: handle what was held, then read it again."""


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


@implementer(IPushProducer)
class OutputGuard:
    def __init__(self, client: Any, line: Any, bound: int, policy: str) -> None:
        self.client = client
        self.line = line
        self.bound = bound
        self.policy = policy
        self.full = False
        self._reported = 0
        self._held = Tail()

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
            holder.registerProducer(self, True)

    @property
    def dropped(self) -> int:
        """Device output dropped for this client so far."""
        return self._held.dropped

    def hold(self, data: bytes) -> None:
        """
        Device output (policy drop) or text arrived while the client is
        full: keep the newest C{bound} bytes, drop the oldest.
        """
        self._held.add(data, self.bound)

    @property
    def heldBytes(self) -> int:
        """Bytes waiting here (not in the transport) for the client."""
        return len(self._held)

    # IPushProducer: called by the transport

    def pauseProducing(self) -> None:
        if self.full:
            return
        self.full = True
        # Whatever the policy: nothing more from this client is handled (an
        # answer would go past the bound) until it has taken its output.
        self.client.holdInput()
        if self.policy == "disconnect":
            log.warn("{line}: {peer} cannot keep up ({bound} bytes queued): disconnected",
                     line=self.line.name, peer=self.client.peer, bound=self.bound)
            transport = self.client.transport
            if hasattr(transport, "abortConnection"):
                transport.abortConnection()
            else:
                # A stream on file descriptors (stdio, pipe:, file:): no
                # more output for it; it closes once what it holds is read.
                self.line.detach(self.client)
                transport.loseConnection()
        elif self.policy == "block":
            self.line.blockDevice(self.client)
        else:
            log.info("{line}: {peer} cannot keep up: its output is dropped until it does",
                     line=self.line.name, peer=self.client.peer)

    def resumeProducing(self) -> None:
        if not self.full:
            return
        self.full = False
        if self.policy == "block":
            self.line.unblockDevice(self.client)
        held = self._held.take(self.bound)
        dropped, self._reported = self._held.dropped - self._reported, self._held.dropped
        if dropped:
            log.info("{line}: {peer} caught up; the oldest {count} bytes were dropped for it",
                     line=self.line.name, peer=self.client.peer, count=dropped)
            self.client.droppedNotice(dropped)
        if held:
            self.client.deliver(held)
        # Sending what waited may have filled it again: then input stays held.
        if not self.full:
            self.client.releaseInput()

    def stopProducing(self) -> None:
        if self.full and self.policy == "block":
            self.line.unblockDevice(self.client)
        self.full = False
