"""
UDP netconsole, in QEMU's C{udp:[rhost]:rport[@[srcip]:srcport]} form: device
output goes as datagrams to rhost:rport from srcport; datagrams that reach
srcport from an allowed address go to the device.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.config.listenerspecs import UDPSpec
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import ListenerKey, clientLog

log = Logger()
# Refused datagrams: each names its sender, any one may send a flood (and
# from any address it likes): limited by the port's one budget (logflood).
refusals = clientLog()

# Device output is cut into datagrams of at most this size: under a
# 1500-byte MTU with IPv6 and UDP headers, so never fragmented.
MAX_DATAGRAM = 1400

# Datagrams to the device are read whole up to UDP's own limit: Twisted's
# default read size (8192) silently cut a longer one short.
MAX_INPUT_DATAGRAM = 65535

# A remote host name that does not resolve is looked up again after 1 s,
# doubling up to this (as a remote console is redialled).
RESOLVE_MAX_DELAY = 30.0


@implementer(IClient)
class NetconsoleClient(ClientEvents, DatagramProtocol):
    """
    One UDP peer of a line.  It attaches when its port starts listening and
    detaches when it stops.
    """

    transport: Any
    # No "Starting protocol <... object at 0x...>" from Twisted: the line logs it.
    noisy = False

    def __init__(self, line: Line, spec: UDPSpec, role: Role = Role.WRITER, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        self.reactor = reactor
        self.line = line
        self.spec = spec
        self.role = role
        host = f"[{spec.remoteHost}]" if ":" in spec.remoteHost else spec.remoteHost
        self.peer = f"udp:{host}:{spec.remotePort}"
        self.allow = [ipaddress.ip_network(a, strict=False) for a in spec.allow]
        self.remote: Optional[tuple[str, int]] = None
        self.refused = 0
        # Its refusals' one log budget (see refusals).
        self.refusalKey = ListenerKey(f"{line.name}'s netconsole {self.peer}")
        self.sent = 0
        # Datagrams the kernel refused (no route, a broadcast address), in
        # all and since the last one that went.
        self.unsent = 0
        self._failing = 0
        # Bytes of device output not sent: those datagrams', and what came
        # before the remote name resolved (the status page's "dropped").
        self.unsentBytes = 0
        # Datagrams for the device the kernel dropped (the port's buffer
        # full: the device behind, a flood), and when and at what count it
        # was last said.
        self.dropped = 0
        self._droppedSaid = 0
        self._droppedSaidAt: Optional[float] = None
        self._droppedCall: Any = None
        # Datagrams to a port nobody may listen on: not a client to wait for.
        self.wakesLine = False
        # A remote host name's lookups: how many failed, the next one, and
        # which start of the port they belong to (a stop ends them).
        self._lookups = 0
        self._lookupCall: Any = None
        self._started = 0
        # While its port closes: who waits for that (see close).
        self._closed: Optional[list[Deferred[None]]] = None

    def startProtocol(self) -> None:
        host = self.spec.remoteHost
        self._started += 1
        try:
            ipaddress.ip_address(host)
            self.remote = (host, self.spec.remotePort)
        except ValueError:
            # A name: looked up until it resolves (DNS may not be up yet at
            # boot); output before that is dropped.
            self._lookups = 0
            self._lookUp(self._started)
        self.line.attach(self)

    def _lookUp(self, started: int) -> None:
        self._lookupCall = None
        host = self.spec.remoteHost

        def found(address: str) -> None:
            if started != self._started:
                return
            self.remote = (address, self.spec.remotePort)
            if self._lookups:
                log.info("{line}: {host} resolved to {address} after {count} attempts", line=self.line.name,
                         host=host, address=address, count=self._lookups + 1)

        def failed(f: Any) -> None:
            if started != self._started:
                return
            if not self._lookups:
                log.error("{line}: cannot resolve {host}: {reason}; trying again with backoff (its output is "
                          "dropped until it resolves)", line=self.line.name, host=host, reason=f.getErrorMessage().rstrip("."))
            delay = min(RESOLVE_MAX_DELAY, 2.0 ** self._lookups)
            self._lookups += 1
            self._lookupCall = self.reactor.callLater(delay, self._lookUp, started)

        self.reactor.resolve(host).addCallbacks(found, failed)

    def stopProtocol(self) -> None:
        self._started += 1
        for call in (self._lookupCall, self._droppedCall):
            if call is not None and call.active():
                call.cancel()
        self._lookupCall = self._droppedCall = None
        self.line.detach(self)
        if self.unsentBytes:
            # Kept in the line's count of what clients gone had dropped (the metrics' policy="unsent").
            gone = self.line.droppedGone
            gone["unsent"] = gone.get("unsent", 0) + self.unsentBytes
            self.unsentBytes = 0

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            source = ipaddress.ip_address(addr[0].split("%")[0])
        except ValueError:
            source = None
        if source is not None and source.version == 6 and source.ipv4_mapped is not None:
            # An IPv4 peer on an IPv6 port (a v6 remote): the address allow= names.
            source = source.ipv4_mapped
        if source is None or not any(source in network for network in self.allow):
            self.refused += 1
            refusals.warn("{line}: datagram from {source} refused ({count} so far): not in {allow}",
                          line=self.line.name, source=addr[0], count=self.refused, allow=",".join(self.spec.allow),
                          peer=self.refusalKey)
            return
        self.line.clientData(self, data)

    def kernelDropped(self, total: int) -> None:
        """
        The kernel's count of datagrams it dropped on this port since it
        opened (with the next datagram read: see the reactor's
        BoundedUDPPort): said at once, then at most once a minute.
        """
        if total <= self.dropped:
            return
        self.dropped = total
        if self._droppedCall is not None:
            return
        now = self.reactor.seconds()
        if self._droppedSaidAt is None or now - self._droppedSaidAt >= 60:
            self._sayDropped()
        else:
            self._droppedCall = self.reactor.callLater(self._droppedSaidAt + 60 - now, self._sayDropped)

    def _sayDropped(self) -> None:
        self._droppedCall = None
        if self.role is Role.READONLY:
            # (None of them was for the device.)
            log.warn("{line}: {count} datagram(s) for read-only netconsole {peer} dropped by the kernel ({total} in all): they came "
                     "faster than they are read (each refused: it takes none)", line=self.line.name, peer=self.peer,
                     count=self.dropped - self._droppedSaid, total=self.dropped)
        else:
            log.warn("{line}: {count} datagram(s) for the device dropped by the kernel ({total} in all): they came "
                     "faster than the device took them", line=self.line.name, count=self.dropped - self._droppedSaid,
                     total=self.dropped)
        self._droppedSaid, self._droppedSaidAt = self.dropped, self.reactor.seconds()

    def connectionRefused(self) -> None:
        # Nobody listens at the remote end (yet): datagrams are dropped, as
        # netconsole does.
        pass

    def pauseInput(self) -> None:
        # The device is behind: datagrams wait in the kernel's buffer (and
        # past it are dropped there, as UDP is) instead of in ours.
        if self.transport is not None:
            self.transport.stopReading()

    def resumeInput(self) -> None:
        if self.transport is not None:
            self.transport.startReading()

    # IClient

    def disconnect(self, why: Optional[str] = None) -> None:
        """Its port stops listening (and it leaves the line)."""
        self.close()

    def close(self) -> Optional[Deferred[None]]:
        """
        Stop listening, once; fires when the port is closed (None: it was
        not listening).  A removed line's clients are disconnected and its
        closers run in the same turn: the port stopped twice ran Twisted's
        connectionLost twice (a logged AssertionError, and the first
        stop's Deferred never fired).
        """
        if self._closed is None:
            stopped = self.transport.stopListening() if self.transport is not None else None
            if stopped is None:
                return None
            self._closed = []
            stopped.addBoth(self._portClosed)
        waiter: Deferred[None] = Deferred()
        self._closed.append(waiter)
        return waiter

    def _portClosed(self, result: Any) -> None:
        waiters, self._closed = self._closed or [], None
        for waiter in waiters:
            waiter.callback(None)

    def deliver(self, data: bytes) -> None:
        if self.remote is None or self.transport is None:
            self.unsentBytes += len(data)
            return
        for start in range(0, len(data), MAX_DATAGRAM):
            datagram = data[start:start + MAX_DATAGRAM]
            try:
                self.transport.write(datagram, self.remote)
            except OSError as e:
                # Said once, then counted until datagrams go again.
                if not self._failing:
                    log.warn("{line}: datagrams to {peer} cannot be sent: {reason} (counted until they can)",
                             line=self.line.name, peer=self.peer, reason=e)
                self._failing += 1
                self.unsent += 1
                self.unsentBytes += len(datagram)
                continue
            self.sent += 1
            if self._failing:
                log.info("{line}: datagrams to {peer} are sent again ({count} were not)", line=self.line.name,
                         peer=self.peer, count=self._failing)
                self._failing = 0


