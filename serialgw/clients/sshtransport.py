"""
One SSH connection once accepted (twisted.conch underneath), with our
limits (L{ServerTransport}): the login must be done within the factory's
C{loginGrace} seconds, and a session asked for within as long again; a
malformed packet ends the connection with one log line (whose fault an
error is: L{serialgw.clients.sshfaults}); a client that does not read is
read on within an answer budget, then not read; the messages and key exchanges a client may cause are bounded
(L{serialgw.clients.sshlimits}).

Its one session (a client of its line) is L{serialgw.clients.sshsession};
keys, people, the connection service and the listener are
L{serialgw.clients.ssh}.
"""

from __future__ import annotations

import struct
import typing
from typing import TYPE_CHECKING, Any, Optional

from twisted.conch.ssh import connection
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.transport import (
    DISCONNECT_KEY_EXCHANGE_FAILED,
    DISCONNECT_PROTOCOL_ERROR,
    DISCONNECT_SERVICE_NOT_AVAILABLE,
    SSHServerTransport,
)
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients import sshlimits
from serialgw.clients.guard import ANSWER_BUDGET, boundKernelQueue
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.sshauth import USER_SIGNATURES
from serialgw.clients.sshfaults import clientsFault, conchLog, messageName, sshPeer, sshSource
from serialgw.clients.transports import SourceCounts, describeAddress
from serialgw.config.sshkeys import asciiName, printable
from serialgw.logflood import clientLog
from serialgw.wire.sockets import countQueuedOnly

# Limited per peer: what a client sends cannot flood the log (logflood).
log = clientLog()

# Answers to a channel open: the gateway opens no channel to a client.
UNASKED = (connection.MSG_CHANNEL_OPEN_CONFIRMATION, connection.MSG_CHANNEL_OPEN_FAILURE)
# A session's output, which the flow bounds: not the answer budget's.
_OUTPUT = (connection.MSG_CHANNEL_DATA, connection.MSG_CHANNEL_EXTENDED_DATA)


# The connection


class TransportFactory(SSHFactory):
    """
    What a connection's transport uses of its listener's factory, which is
    one (L{serialgw.clients.ssh.GatewaySSHFactory}): declared here, since
    ssh.py imports the transport.
    """

    # Seconds a connection has to log in; the clock.
    loginGrace: float
    clock: Any
    # Connections logging in, in all and per address; and they, the oldest first.
    startups: SourceCounts
    pending: dict[ServerTransport, None]

    if TYPE_CHECKING:
        # GatewaySSHFactory's (held to it by tests.test_layers PartStubTests).
        def personSecond(self, person: str) -> sshlimits.Second: ...
        def loggedIn(self, source: str, person: Optional[str] = None) -> None: ...


class OutputFlow(typing.Protocol):
    """A session's output flow (L{serialgw.clients.sshsession}'s), which the transport pauses."""

    def block(self, why: str) -> None: ...
    def unblock(self, why: str) -> None: ...
    def stopProducing(self) -> None: ...


@implementer(IPushProducer)
class ServerTransport(SSHServerTransport):
    """
    conch's server transport; the connection must log in within the
    factory's C{loginGrace} seconds (the key exchange included), and then
    start a session within as long again.

    It is its TCP connection's producer: while more than C{bufferSize}
    waits unsent there, a session's output flow is paused, and the client
    is read on (a person's typing, a Ctrl-C into a flooding console, reaches
    the device at once: it waited until the client had taken its output)
    while what is sent it meanwhile (conch answers many messages, an unknown
    one before login too; window adjusts; its session's answers) stays
    within the answer budget (guard.ANSWER_BUDGET, at most the bound); past
    that it is not read until it has taken its output (a client that sent
    such messages and never read grew the queue without bound).
    """

    _log = conchLog
    factory: TransportFactory
    # No compression: zlib is taken before login, and conch inflates a packet without bound (one
    # connection's 600 KB on the wire inflated to 600 MB; the gateway's RSS went from 55 to 479 MB).
    supportedCompressions = [b"none"]
    # Bytes received before its session started.
    _received = 0
    _grace: Any = None
    # Counted in the factory's startups (in all and its source's) until it starts a session, or is gone.
    _pending = True
    source = ""
    # The TCP connection is gone.
    _lost = False
    # Messages dispatched while pending.
    _messages = 0
    # Its session started: the second its person's messages are counted in (shared by their connections).
    _second: Optional[sshlimits.Second] = None
    # The call that reads the client again once it has sent too many in a second.
    _slowed: Any = None
    _kexes: tuple[float, ...] = ()  # when those the client started in the last minute began
    # The session's output flow, once it has one; whether the TCP buffer is full now.
    flow: Optional[OutputFlow] = None
    _full = False
    # Bytes of messages sent while the TCP buffer is full (the answer budget), and whether they spent it.
    _answered = 0
    _answersSpent = False
    # Bytes of messages conch holds back while a key exchange is under way (sent once it is done);
    # past the TCP connection's bound, the session's output waits too.
    _heldByKex = 0

    def connectionMade(self) -> None:
        self.deadline("did not log in")
        tcp: Any = self.transport
        countQueuedOnly(tcp)
        tcp.registerProducer(self, True)
        # The kernel's unsent queue too (a session sets its outbuf): not the autotuned 4 MiB.
        boundKernelQueue(tcp, tcp.bufferSize)
        SSHServerTransport.connectionMade(self)

    # IPushProducer, for the TCP connection

    def pauseProducing(self) -> None:
        # Read on: what is sent from now on is the answer budget's (sendPacket).  Twisted asks again at
        # every write while full (FileDescriptor._maybePauseProducer): the budget starts only when it fills,
        # else each answer, written, began it anew and it was never spent.
        if not self._full:
            self._answered = 0
        self._full = True
        if self.flow is not None:
            self.flow.block("tcp")

    def resumeProducing(self) -> None:
        self._full = False
        self._answered = 0
        self._answersSpent = False
        tcp: Any = self.transport
        if tcp.disconnecting:
            # Drained while closing: Twisted asks for more instead of closing (without a producer, it closes).
            tcp.unregisterProducer()
            return
        # What the read that spent the budget brought after it, first (its answers may fill the buffer again).
        self._readHeld()
        if self._slowed is None and not self._answersSpent:
            tcp.resumeProducing()
        if self.flow is not None and not self._full:
            self.flow.unblock("tcp")

    def stopProducing(self) -> None:
        if self.flow is not None:
            self.flow.stopProducing()

    def setFlow(self, flow: Optional[OutputFlow]) -> None:
        """The session's output flow (None: no more), paused while the TCP buffer is full, or what a key exchange holds back is past its bound."""
        self.flow = flow
        if flow is not None and self._full:
            flow.block("tcp")
        if flow is not None and self._heldByKex > self._bound():
            flow.block("kex")

    def _bound(self) -> int:
        tcp: Any = self.transport
        return int(tcp.bufferSize)

    def sendPacket(self, messageType: int, payload: bytes) -> None:
        # While a key exchange is under way conch holds every other message
        # back, without bound, and the TCP buffer, empty, paused nothing: a
        # person on a busy line who started a key exchange and never
        # finished it grew the gateway by the line's output (50 MB a second
        # seen, to 850 MB).  Past the bound, the session's output waits (its
        # policy applies) until the key exchange is done.
        # Answers to what the client sends meanwhile (requests with a reply)
        # are held too: past twice the bound and a packet, the connection is
        # cut (a stalled key exchange and 2000 requests a second grew it
        # 270 KB a second for as long as it liked).
        if self._keyExchangeState != self._KEY_EXCHANGE_NONE and not self._allowedKeyExchangeMessageType(messageType):
            self._heldByKex += len(payload) + sshlimits.HELD_MESSAGE_COST
            if self._heldByKex > self._bound():
                if self.flow is not None:
                    self.flow.block("kex")
                if self._heldByKex > 2 * self._bound() + sshlimits.MAX_PACKET:
                    self._heldTooMuch()
                    return
        SSHServerTransport.sendPacket(self, messageType, payload)
        # (The session's output is not an answer: conch sends what it holds as the client's window adjusts let
        # it, bounded by the flow paused here; counted, a person reading slowly behind a flood spent the budget
        # at once and was not read: a live ssh client's ^C waited for ever.)
        if self._full and not self._answersSpent and messageType not in _OUTPUT:
            self._answered += len(payload) + sshlimits.HELD_MESSAGE_COST
            if self._answered >= min(ANSWER_BUDGET, self._bound()):
                # Not read until it has taken its output.
                self._answersSpent = True
                tcp: Any = self.transport
                tcp.pauseProducing()

    def heldForChannel(self, channel: Any) -> int:
        """
        The output (the data of CHANNEL_DATA and CHANNEL_EXTENDED_DATA
        messages) for C{channel} that conch holds back until the key
        exchange under way is done: the session's bytes, as its other held
        output is counted (not the messages' headers).
        """
        remote = getattr(self.service, "channelsToRemoteChannel", {}).get(channel)
        if remote is None:
            return 0
        recipient = struct.pack(">L", remote)
        held = 0
        for messageType, payload in self._blockedByKeyExchange or ():
            if payload[:4] == recipient:
                if messageType == connection.MSG_CHANNEL_DATA:
                    held += len(payload) - 8
                elif messageType == connection.MSG_CHANNEL_EXTENDED_DATA:
                    held += len(payload) - 12
        return held

    def _heldTooMuch(self) -> None:
        tcp: Any = self.transport
        if tcp.disconnecting:
            return
        log.info("ssh: {address}: over {count} bytes held back by a key exchange it has not finished: disconnected",
                 address=sshPeer(self), peer=sshSource(self), count=2 * self._bound() + sshlimits.MAX_PACKET)
        self._blockedByKeyExchange = []
        self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"key exchange not finished")
        self.deadline("did not take its last output", CLOSE_GRACE)

    def _newKeys(self) -> None:
        # The key exchange is done: what it held goes to the TCP connection (whose own bound holds then).
        self._heldByKex = 0
        SSHServerTransport._newKeys(self)
        if self.flow is not None:
            self.flow.unblock("kex")

    def deadline(self, what: str, seconds: float | None = None) -> None:
        """Cut the connection (logged: it C{what}) in C{seconds} (loginGrace), unless something else is waited for first."""
        self._stopWaiting()
        seconds = self.factory.loginGrace if seconds is None else seconds
        self._grace = self.factory.clock.callLater(seconds, self._tooSlow, what, seconds)

    def _stopWaiting(self) -> None:
        if self._grace is not None:
            if self._grace.active():
                self._grace.cancel()
            self._grace = None

    def _tooSlow(self, what: str, seconds: float) -> None:
        self._grace = None
        tcp: Any = self.transport
        log.info("ssh: {address} {what} within {seconds} s: disconnected",
                 address=describeAddress(tcp.getPeer()), peer=sshSource(self), what=what, seconds=seconds)
        tcp.abortConnection()

    def setService(self, service: Any) -> None:
        SSHServerTransport.setService(self, service)
        if isinstance(service, connection.SSHConnection):
            login = getattr(getattr(self, "avatar", None), "login", None)
            self.factory.loggedIn(self.source, login.user if login is not None else None)
            # Still counted among the connections logging in (a person with
            # a key opened any number of them), until it starts a session.
            self.deadline("logged in but started no session")

    def sessionStarted(self, person: str = "") -> None:
        """
        A session of C{person} asked for its line: the connection is in use
        (its session's own limits hold now, and the person's messages a
        second over all their connections).
        """
        self._stopWaiting()
        self._release()
        self._second = self.factory.personSecond(person)

    def finish(self) -> None:
        """
        Close the connection (its session is over, or its person's key was
        taken away); cut it if the client has not taken the rest within
        CLOSE_GRACE s.  (A client that does not read held the connection,
        and its descriptor, for ever, as many times as it liked.)
        """
        if self._lost:
            # Its session ended as the connection went (conch closes it then).
            return
        tcp: Any = self.transport
        tcp.loseConnection()
        self.deadline("did not take its last output", CLOSE_GRACE)

    def _release(self) -> None:
        if self._pending:
            self._pending = False
            self.factory.startups.remove(self.source)
            self.factory.pending.pop(self, None)

    def cut(self) -> None:
        """Cut while logging in: the listener needs its place (its places are the factory's at once)."""
        self._release()
        tcp: Any = self.transport
        if tcp is not None:
            tcp.abortConnection()

    def ssh_SERVICE_REQUEST(self, packet: bytes) -> None:
        # Once (ssh-userauth, which starts the connection service at login):
        # asked again, a logged-in client logged in again, the first person kept for ever.
        if self.service is not None:
            log.info("ssh: {address}: a second service request: disconnected", address=sshPeer(self),
                     peer=sshSource(self))
            self.sendDisconnect(DISCONNECT_SERVICE_NOT_AVAILABLE, b"one service request a connection")
            return
        SSHServerTransport.ssh_SERVICE_REQUEST(self, packet)

    def sendExtInfo(self, extensions: list[tuple[bytes, bytes]]) -> None:
        # RFC 8308 server-sig-algs names the signatures a user's key may
        # make; conch names its host key's, and OpenSSH then will not offer
        # an RSA key (rsa-sha2-*) to an ed25519 host.
        SSHServerTransport.sendExtInfo(self, [
            (name, b",".join(USER_SIGNATURES) if name == b"server-sig-algs" else value) for name, value in extensions
        ])

    def dataReceived(self, data: bytes) -> None:
        # Bounded before a message is whole: bytes before a session, a
        # person's bytes a second after, a packet's length as soon as read.
        tcp: Any = self.transport
        if tcp.disconnecting:
            return
        if self._second is None:
            self._received += len(data)
            if self._received > sshlimits.BYTES_BEFORE_SESSION:
                log.info("ssh: {address} sent over {count} bytes before a session: disconnected",
                         address=sshPeer(self), peer=sshSource(self), count=sshlimits.BYTES_BEFORE_SESSION)
                self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"too much before a session")
                return
        else:
            self._countRate(self._second, len(data))
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        """conch's: C{data} to what was read before, the whole packets there handled (L{getPacket}); a packet's length looked at as soon as read."""
        tcp: Any = self.transport
        SSHServerTransport.dataReceived(self, data)
        first = getattr(self, "first", None)
        if first is not None and not tcp.disconnecting:
            length = struct.unpack(">L", first[:4])[0]
            if length > sshlimits.MAX_PACKET:
                log.info("ssh: {address} sent a packet of {length} bytes (over {most}): disconnected",
                         address=sshPeer(self), peer=sshSource(self), length=length, most=sshlimits.MAX_PACKET)
                self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"packet too long")

    def getPacket(self) -> Optional[bytes]:
        """
        The next packet read, if the client is read now: not once its
        answer budget is spent, nor while it is slowed (its person's
        second); the rest of the read waits, as it came, until it is read
        again (L{_readHeld}).  conch handled every packet of a read: one
        read of 64 KiB of small requests got thousands of answers past
        the bound.
        """
        if self._answersSpent or self._slowed is not None:
            return None
        packet: Optional[bytes] = SSHServerTransport.getPacket(self)
        return packet

    def _readHeld(self) -> None:
        """The client is read again: the packets left of its last read are handled first (as if read now)."""
        tcp: Any = self.transport
        if self.buf and self.gotVersion and not self._answersSpent and self._slowed is None and not tcp.disconnecting:
            self._parse(b"")

    def dispatchMessage(self, messageNum: int, payload: bytes) -> None:
        # A packet cut short (or naming a channel that is not there) ends
        # this connection with one line, not a traceback a packet; what was
        # read after it is not looked at.
        tcp: Any = self.transport
        if tcp.disconnecting:
            return
        self._messages += 1
        if self._pending and self._messages > sshlimits.MESSAGES_BEFORE_SESSION:
            log.info("ssh: {address} sent {count} messages before a session: disconnected", address=sshPeer(self),
                     peer=sshSource(self), count=sshlimits.MESSAGES_BEFORE_SESSION)
            self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"too many messages before a session")
            return
        if self._second is not None:
            self._countRate(self._second)
        if messageNum == sshlimits.MSG_KEXINIT:
            self._kexes = sshlimits.lastMinute(self._kexes, self.factory.clock.seconds())
            if len(self._kexes) > sshlimits.KEX_PER_MINUTE:
                log.info("ssh: {address} started over {n} key exchanges a minute: cut", address=sshPeer(self),
                         peer=sshSource(self), n=len(self._kexes) - 1)
                self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"too many key exchanges")
                return
            second = self._second
            if second is not None:
                second.kexes = sshlimits.lastMinute(second.kexes, self.factory.clock.seconds())
                if len(second.kexes) > sshlimits.PERSON_KEX_PER_MINUTE:
                    log.info("ssh: {address} started a key exchange, over {n} a minute with {person}'s other "
                             "connections: cut", address=sshPeer(self), peer=sshSource(self),
                             n=sshlimits.PERSON_KEX_PER_MINUTE, person=second.person)
                    self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"too many key exchanges")
                    return
        if messageNum in UNASKED and isinstance(self.service, connection.SSHConnection):
            # conch took one naming the session's channel: a confirmation set its packet size anew (1
            # byte: refused at the open, a packet a byte of the line's output), a failure dropped it
            # from the connection's table, so that the connection's end raised KeyError in the reactor
            # and never reached the session: it stayed on its line for good.
            log.info("ssh: {address}: an answer to a channel open the gateway never sent: disconnected",
                     address=sshPeer(self), peer=sshSource(self))
            self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"no channel was opened to the client")
            return
        try:
            SSHServerTransport.dispatchMessage(self, messageNum, payload)
        except Exception as e:
            self._failedMessage(messageNum, e)

    def _failedMessage(self, number: int, e: Exception) -> None:
        """
        Handling message C{number} raised C{e}: a packet cut short, naming
        a channel that is not there, or holding no value (raised by conch's
        or cryptography's reading of it: L{clientsFault}), is the client's
        doing: one line naming what was malformed; anything else is the
        gateway's own error: its traceback, critical (the log limiter counts
        every client's such errors in one budget, logflood.OWN_ERRORS).  Either way this
        connection alone ends (a KeyError, ValueError, IndexError or
        TypeError of ours was taken for a malformed packet, said at info as
        one, its traceback never seen).
        """
        name = messageName(number)
        if clientsFault(e):
            what = "cut short: a field missing at its end" if isinstance(e, TypeError) else printable(repr(e))
            log.info("ssh: {address}: malformed packet (message {number} {name}: {error}): disconnected",
                     address=sshPeer(self), peer=sshSource(self), number=number, name=name, error=what)
            self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"malformed packet")
            return
        log.failure("ssh: {address}: handling its message {number} {name} failed (the gateway's error, not the "
                    "client's): disconnected", failure=Failure(e), address=sshPeer(self), peer=sshSource(self),
                    number=number, name=name)
        self.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, b"internal error")

    def _countRate(self, second: sshlimits.Second, size: int = 0) -> None:
        """One message more (C{size} 0), or C{size} bytes more, of this person's this second: past either bound, not read for the rest of it."""
        clock = self.factory.clock
        now = clock.seconds()
        if not 0.0 <= now - second.start < 1.0:
            second.start, second.count, second.bytes = now, 0, 0
        if size:
            second.bytes += size
            over = second.bytes > sshlimits.BYTES_PER_SECOND
            what, count = "bytes", sshlimits.BYTES_PER_SECOND
        else:
            second.count += 1
            over = second.count > sshlimits.MESSAGES_PER_SECOND
            what, count = "messages", sshlimits.MESSAGES_PER_SECOND
        if over and self._slowed is None:
            # Within the person's log budget, not the connection's: each connection (its own port) had
            # its own, 20 lines a minute, however many connections the person kept or made.
            log.info("ssh: {address} sent more than {count} {what} in a second (with {person}'s other connections): "
                     "not read for the rest of it", address=sshPeer(self), count=count, what=what,
                     person=second.person, peer=f"{second.person}'s SSH connections")
            tcp: Any = self.transport
            tcp.pauseProducing()
            self._slowed = clock.callLater(second.start + 1.0 - now, self._readAgain)

    def _readAgain(self) -> None:
        self._slowed = None
        tcp: Any = self.transport
        self._readHeld()
        if not self._answersSpent and self._slowed is None and not tcp.disconnecting:
            tcp.resumeProducing()

    def sendDisconnect(self, reason: int, desc: bytes) -> None:
        # conch says nothing of a key exchange that failed (nothing in
        # common, a bad key): a client that could never log in was cut
        # without a word for the one who runs the gateway.
        if reason == DISCONNECT_KEY_EXCHANGE_FAILED:
            why = desc.decode("utf-8", "replace") if isinstance(desc, bytes) else str(desc)
            log.info("ssh: {address} ({version}): key exchange failed ({why}): disconnected", address=sshPeer(self),
                     peer=sshSource(self), version=asciiName(getattr(self, "otherVersionString", b"?")),
                     why=printable(why))
        SSHServerTransport.sendDisconnect(self, reason, desc)

    def receiveUnimplemented(self, seqnum: int) -> None:
        # The client did not understand a packet of ours: conch warns, once
        # for every such packet the client cares to send.  Nothing to do.
        pass

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        # The client's goodbye (OpenSSH: code 11, "disconnected by user"), not our error.
        log.debug("ssh: {peer} disconnected: {code} {reason}", peer=sshPeer(self), code=reasonCode,
                  reason=description[:800].decode("utf-8", "replace")[:200])

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._lost = True
        self._stopWaiting()
        if self._slowed is not None and self._slowed.active():
            self._slowed.cancel()
        self._release()
        # conch's, without its log line for every connection.
        if self.service:
            self.service.serviceStopped()
        # conch sets avatar only once logged in, and tests for it so itself (no default to declare).
        if hasattr(self, "avatar"):
            self.logoutFunction()
