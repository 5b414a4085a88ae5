"""
Writing to a stream connection (TCP, unix): at once when nothing is queued
(L{writeNow}), without Nagle's delay (L{noDelay}), its producer paused by
what waits unsent (L{countQueuedOnly}).  Used by the codecs'
users on both sides: client sessions and remote devices' links.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


def noDelay(transport: Any) -> None:
    """
    Send small writes at once (TCP_NODELAY): a keystroke or a prompt must
    not wait for Nagle's algorithm.  Not TCP (a unix socket, a pipe): nothing.
    """
    # TCP transports (Twisted's, or an SSH channel's over one) have it; others do not.
    setNoDelay = getattr(transport, "setTcpNoDelay", None)
    if setNoDelay is None:
        return
    try:
        setNoDelay(True)
    except OSError:
        pass


def writeNow(transport: Any, data: bytes) -> None:
    """
    Write to a client without waiting for the reactor's next turn: on a
    plain TCP or unix connection with nothing queued, send at once; what the
    socket does not take, and every other case, goes through
    C{transport.write}.  This is the device-to-network hot path: one
    C{send} instead of queue, epoll_ctl, epoll_wait, send, epoll_ctl.

    What a send leaves waits in the transport as Twisted's own C{doWrite}
    leaves a buffer partly sent: C{data} itself, with the offset reached,
    not a copy of its rest.  Twisted keeps it until the socket takes it,
    for as long as a client that never reads stays full, and C{data} is
    the chunk the line handed every client: a copy was each such client's
    own (500 of them grew the gateway's RSS by 7.7-8.1 MB against 1.3
    without, with a mover's 16 KiB reads; 2.4 with a tty's 4 KiB).
    """
    if _sendsNow(transport):
        try:
            sent = transport.socket.send(data)
        except OSError:  # BlockingIOError included: all of it goes through write
            sent = 0
        if sent == len(data):
            return
        if sent:
            # (Empty before: _sendsNow.)
            transport.dataBuffer, transport.offset = data, sent
            # Its producer paused as by a write() of the rest: the rest past its bufferSize.  (Twisted's
            # own check counts the whole buffer, what was sent too: a client whose socket took all but 100
            # bytes of a 16 KiB chunk was paused at outbuf=1024, a policy=disconnect one cut.)
            if (transport.producer is not None and transport.streamingProducer
                    and len(data) - sent > transport.bufferSize):
                transport.producerPaused = True
                transport.producer.pauseProducing()
            transport.startWriting()
            return
    transport.write(data)


def countQueuedOnly(transport: Any) -> None:
    """
    Have a TCP or unix transport pause its streaming producer when what it
    holds unsent passes its C{bufferSize}, not what it holds and has sent.
    Twisted's own check (C{FileDescriptor._isSendBufferFull}, 22.10 and
    today's) counts the whole buffer of a send it left partly done,
    C{offset} bytes sent included: the next write after a 16 KiB chunk the
    socket took all but 100 bytes of (by L{writeNow}, or by Twisted's own
    C{doWrite}, whose buffer is up to C{SEND_LIMIT}, 128 KiB) paused it with
    110 bytes queued: a client with outbuf=1024 and policy=disconnect was
    cut, a drop one parked, a remote device's writers held.  Others
    (StringTransport, an SSH channel, stdio's writer): nothing.
    """
    if isinstance(transport, abstract.FileDescriptor) and hasattr(transport, "_isSendBufferFull"):
        # (Set, not put in vars(): in Python 3.11 asking an instance for its __dict__ makes it a dict of
        # its own, and a method looked up on such an instance is not specialised: doRead, on every read.)
        transport._isSendBufferFull = _QueuedPastBound(transport)  # type: ignore[method-assign]
        ownWriteDefaults(transport)


# Twisted's class defaults that _sendsNow reads on every write (FileDescriptor's, tcp.Connection's), as
# a connection's own (ownWriteDefaults): Python 3.11 looks a class attribute up through an instance the
# slow way (not specialised).  Twisted sets each on the instance when it changes.
_WRITE_DEFAULTS = ("dataBuffer", "disconnecting", "_writeDisconnected", "TLS")


def ownWriteDefaults(transport: Any) -> None:
    """The class defaults L{_sendsNow} reads, set on a plain TCP or unix C{transport} itself (same values)."""
    if isinstance(transport, _SOCKET_TRANSPORTS):
        for name in _WRITE_DEFAULTS:
            if hasattr(transport, name):
                setattr(transport, name, getattr(transport, name))


class _QueuedPastBound:
    """A transport's check of its buffer, by what waits unsent in it (weakly held: no cycle keeps a transport alive)."""

    __slots__ = ("transport",)

    def __init__(self, transport: Any) -> None:
        self.transport = weakref.ref(transport)

    def __call__(self) -> bool:
        transport = self.transport()
        if transport is None:
            return False
        return bool(len(transport.dataBuffer) - transport.offset + transport._tempDataLen > transport.bufferSize)


def _sendsNow(transport: Any) -> bool:
    """A plain TCP or unix connection with nothing queued: a send now keeps the order."""
    return bool(
        isinstance(transport, _SOCKET_TRANSPORTS)
        and not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport.TLS
    )


def sendUrgent(transport: Any, data: bytes) -> bool:
    """
    Send C{data} with its last byte as TCP urgent data (telnet's Synch: IAC
    DM, the DM urgent), when it can go now in order: a plain TCP connection
    with nothing queued before it.  The last byte goes alone with MSG_OOB
    (the kernel marks the last byte a send takes: a partial send of all
    of it put the mark before the DM); what the kernel has no room for now
    waits (L{sendUrgentLater}).  False: nothing was sent (the caller writes
    it as usual, not urgent).
    """
    if not _sendsNow(transport) or not isinstance(transport, tcp.Connection):
        return False
    try:
        sock = transport.getHandle()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
    except OSError:
        return False
    sent = 0
    try:
        if len(data) > 1:
            sent = sock.send(data[:-1])
        if sent == len(data) - 1:
            sent += sock.send(data[-1:], socket.MSG_OOB)
    except OSError:
        # (No room now: the rest waits; a connection gone is Twisted's to see at its next write.)
        pass
    if not sent:
        return False
    if sent < len(data):
        sendUrgentLater(transport, data[sent:])
    return True


def dropsOnAbort(transport: Any) -> bool:
    """A plain TCP connection (no TLS): a telnet AO drops what waits in it for the peer (L{takeQueued})."""
    return isinstance(transport, tcp.Connection) and not transport.TLS


def urgentCapable(transport: Any) -> bool:
    """A plain TCP connection (no TLS, not a unix socket), open and not closing: it can carry TCP urgent data."""
    if (not isinstance(transport, tcp.Connection) or transport.TLS or not transport.connected
            or transport.disconnecting or transport._writeDisconnected):
        return False
    try:
        return transport.getHandle().family in (socket.AF_INET, socket.AF_INET6)
    except OSError:
        return False


def queuedBytes(transport: Any) -> int:
    """What waits in Twisted's buffers of a TCP or unix transport, not yet handed to the kernel (0 for others)."""
    buffer = getattr(transport, "dataBuffer", None)
    if buffer is None:
        return 0
    return int(len(buffer) - transport.offset + transport._tempDataLen)


def takeQueued(transport: Any) -> Optional[bytes]:
    """
    Take back what a plain TCP connection holds for its peer in Twisted's
    buffers, not yet handed to the kernel (a telnet AO: output the peer
    asked not to see, our own telnet bytes among it to be written again).
    None elsewhere: TLS's bytes there are records, a unix socket carries no
    Synch to tell the peer, and a connection closing keeps its last words.
    """
    if not urgentCapable(transport):
        return None
    queued = bytes(transport.dataBuffer[transport.offset:]) + b"".join(transport._tempDataBuffer)
    # A Synch waiting there (sendUrgentLater) goes with the rest: no urgent byte marked later.
    vars(transport).pop("writeSomeData", None)
    transport.dataBuffer = b""
    transport.offset = 0
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return queued


def sendUrgentLater(transport: Any, data: bytes) -> None:
    """
    Queue C{data} on a plain TCP connection, its last byte to go as TCP
    urgent data when its turn comes (L{sendUrgent} found no room in the
    kernel: a peer that reads slowly).  The transport's next sends stop
    short of that byte, then send it alone with MSG_OOB (the mark on it,
    not before it); what is written meanwhile follows it.  (Twisted's own
    buffer and writer: no timer, no other watch.)
    """
    ahead = queuedBytes(transport) + len(data) - 1
    transport.write(data)
    plain = type(transport).writeSomeData

    def writeSomeData(chunk: Any) -> Any:
        nonlocal ahead
        if ahead:
            sent = plain(transport, chunk[:ahead])
            if isinstance(sent, int) and sent > 0:
                ahead -= sent
            return sent
        del transport.writeSomeData  # (once: the class's from now on)
        try:
            return transport.socket.send(chunk[:1], socket.MSG_OOB)
        except BlockingIOError:
            transport.writeSomeData = writeSomeData
            return 0
        except OSError:
            return plain(transport, chunk)

    transport.writeSomeData = writeSomeData


def urgentWatch(transport: Any) -> Optional[Callable[[], bool]]:
    """
    For a plain TCP connection, a function telling whether TCP urgent data
    is waiting unread (a telnet Synch on its way, its DM not read yet: what
    is read until then comes before it).  Linux ends a read at the urgent
    mark, so a read made while this is true holds only data before the
    mark.  None for other transports (TLS, a unix socket, an SSH channel:
    no urgent data).
    """
    if not isinstance(transport, tcp.Connection) or transport.TLS:
        return None
    try:
        sock = transport.getHandle()
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLPRI)
    except (OSError, ValueError):
        return None

    def pending() -> bool:
        try:
            return any(events & select.POLLPRI for _, events in poller.poll(0))
        except OSError:
            return False

    return pending


def urgentInline(transport: Any) -> None:
    """
    Keep TCP urgent data in the stream (SO_OOBINLINE).  Telnet's Synch
    (RFC 854) is IAC DM with the DM sent as urgent data: Linux takes the
    urgent byte out of the stream otherwise: Debian telnet's C{send synch}
    (its IAC urgent) put a stray 0xF2 on the device, and a peer whose DM is
    urgent lost the byte after it (read as the IAC's command).  Not a plain TCP connection (TLS, a unix
    socket, an SSH channel): nothing.
    """
    if not isinstance(transport, tcp.Connection):
        return
    try:
        sock = transport.getHandle()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    except OSError:
        pass


import select  # noqa: E402
import socket  # noqa: E402
import weakref  # noqa: E402

from twisted.internet import abstract, tcp  # noqa: E402

_SOCKET_TRANSPORTS = (tcp.Connection,)
