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
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()


@implementer(IPushProducer)
class OutputGuard:
    def __init__(self, client: Any, line: Any, bound: int, policy: str) -> None:
        self.client = client
        self.line = line
        self.bound = bound
        self.policy = policy
        self.full = False
        self.dropped = 0
        self._droppedSinceNotice = 0
        self._held: deque[bytes] = deque()
        self._heldSize = 0

    def attach(self, transport: Any) -> None:
        # Over TLS the bytes wait in the TCP transport under the TLS layer,
        # which passes the producer on to it.
        holder: Any = transport if hasattr(transport, "bufferSize") else getattr(transport, "transport", None)
        if hasattr(transport, "registerProducer") and hasattr(holder, "bufferSize"):
            holder.bufferSize = self.bound
            transport.registerProducer(self, True)

    def hold(self, data: bytes) -> None:
        """
        Device output arrived while the client is full (policy drop): keep
        the newest C{bound} bytes, drop the oldest.
        """
        self._held.append(data)
        self._heldSize += len(data)
        while self._heldSize > self.bound:
            excess = self._heldSize - self.bound
            first = self._held[0]
            if len(first) <= excess:
                self._held.popleft()
                cut = len(first)
            else:
                self._held[0] = first[excess:]
                cut = excess
            self._heldSize -= cut
            self.dropped += cut
            self._droppedSinceNotice += cut

    # IPushProducer: called by the transport

    def pauseProducing(self) -> None:
        if self.full:
            return
        self.full = True
        if self.policy == "disconnect":
            log.warn("{line}: {peer} cannot keep up ({bound} bytes queued): disconnected",
                     line=self.line.name, peer=self.client.peer, bound=self.bound)
            self.client.transport.abortConnection()
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
            return
        if self._droppedSinceNotice:
            dropped, self._droppedSinceNotice = self._droppedSinceNotice, 0
            log.info("{line}: {peer} caught up; the oldest {count} bytes were dropped for it",
                     line=self.line.name, peer=self.client.peer, count=dropped)
            self.client.droppedNotice(dropped)
        if self._held:
            held, self._held, self._heldSize = b"".join(self._held), deque(), 0
            self.client.deliver(held)

    def stopProducing(self) -> None:
        if self.full and self.policy == "block":
            self.line.unblockDevice(self.client)
        self.full = False
