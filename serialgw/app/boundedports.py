"""
The reactor's listening ports, bounded a turn (see L{serialgw.app.reactor},
whose listen methods make them, for systemd's passed sockets too): a TCP
or unix listening socket accepts at most ACCEPTS_PER_TURN connections a
turn, a UDP port (a netconsole's) hands on at most DATAGRAMS_PER_TURN
datagrams a turn, with the kernel's count of those it dropped
(SO_RXQ_OVFL); the rest wait for the next turns, the other lines served
meanwhile.
"""

from __future__ import annotations

import socket
import sys

from twisted.internet import tcp, udp, unix
from twisted.logger import Logger

from serialgw.logflood import peerLimiter

# The gateway's own errors in handling a client's datagram: limited (logflood: one budget for all clients); the
# namespace its events had before this module was split from reactor.
clientsLog = Logger(namespace="serialgw.app.reactor", observer=peerLimiter)


# The most connections a listening socket accepts in one turn.  Twisted's
# port accepts up to numberAccepts (100 at first, 20 more each time it takes
# them all) in one doRead, and each new connection's start (telnet's offer,
# a banner, the replay of a backlog, a watch-all view) is made there: a
# burst of 50 telnet connections held every line 13 ms in one turn.  The
# rest are taken on the next turns (the socket is ready again, and served
# after the descriptors that were not).
ACCEPTS_PER_TURN = 8


class BoundedTCPPort(tcp.Port):
    """A TCP listening port that accepts at most ACCEPTS_PER_TURN connections a turn."""

    def doRead(self) -> None:
        self.numberAccepts = min(self.numberAccepts, ACCEPTS_PER_TURN)
        tcp.Port.doRead(self)


class BoundedUNIXPort(unix.Port):
    """A unix listening socket that accepts at most ACCEPTS_PER_TURN connections a turn."""

    def doRead(self) -> None:
        self.numberAccepts = min(self.numberAccepts, ACCEPTS_PER_TURN)
        unix.Port.doRead(self)

# The most datagrams a UDP port (a netconsole's) hands on in one turn.
# Twisted's reads until maxThroughput bytes (256 KiB) a turn: empty
# datagrams without end, and 262144 one-byte ones; a flood of them held
# every line up to 0.9 s at a time.
DATAGRAMS_PER_TURN = 64


# Linux's SO_RXQ_OVFL (not in Python's socket module): each datagram read
# after some were dropped carries the kernel's count of them.
SO_RXQ_OVFL = 40


class BoundedUDPPort(udp.Port):
    """
    A UDP port that hands on at most DATAGRAMS_PER_TURN datagrams (and, as
    Twisted's, maxThroughput bytes) a turn; the rest wait in the kernel's
    buffer (and past it are dropped there, as UDP is: the kernel's count of
    them goes to the protocol's C{kernelDropped}, if it has one, with the
    next datagram read).  Twisted's own C{doRead}, with the count added: it
    reads C{udp}'s private error sets.
    """

    def startListening(self) -> None:
        udp.Port.startListening(self)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        except OSError:
            pass

    def doRead(self) -> None:
        read = 0
        dropped = getattr(self.protocol, "kernelDropped", None)
        for _ in range(DATAGRAMS_PER_TURN):
            if read >= self.maxThroughput:
                return
            try:
                data, ancillary, _flags, addr = self.socket.recvmsg(self.maxPacketSize, socket.CMSG_SPACE(4))
            except OSError as e:
                if e.args[0] in udp._sockErrReadIgnore:  # type: ignore[attr-defined]
                    return
                if e.args[0] in udp._sockErrReadRefuse:  # type: ignore[attr-defined]
                    if self._connectedAddr:
                        self.protocol.connectionRefused()
                    return
                raise
            read += len(data)
            if self.addressFamily == socket.AF_INET6:
                addr = addr[:2]
            try:
                for level, kind, value in ancillary:
                    if (level, kind) == (socket.SOL_SOCKET, SO_RXQ_OVFL) and dropped is not None:
                        dropped(int.from_bytes(value[:4], sys.byteorder))
                self.protocol.datagramReceived(data, addr)
            except BaseException:
                # (The gateway's error in handling a client's datagram: limited, as failed says.)
                clientsLog.failure("a datagram from {address} failed", address=addr, peer=f"udp:{addr[0]}:{addr[1]}")
