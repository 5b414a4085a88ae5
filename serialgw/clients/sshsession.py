"""
One SSH connection's session: a client of its line.

  - L{SSHClient}: the session channel, a client of its line like telnet's:
    C{pty-req} accepted, C{shell} (or C{exec LINE}) attaches, C{break}
    (RFC 4335, OpenSSH's C{~B}) is a serial break; env, X11, agent and port
    forwarding, subsystems refused.  Output is bounded by the listener's
    C{outbuf} through the TCP connection's buffer and the channel's window
    (L{ChannelTransport}).

The connection's transport, with our limits, is
L{serialgw.clients.sshtransport}; keys, people, the connection service and
the listener are L{serialgw.clients.ssh}.
"""

from __future__ import annotations

import struct
import typing
from typing import TYPE_CHECKING, Any, Callable, Optional

from twisted.conch.ssh import common
from twisted.conch.ssh.channel import SSHChannel
from twisted.internet.interfaces import IPushProducer
from twisted.logger import LogLevel
from zope.interface import implementer

from serialgw.clients.base import ClientEvents
from serialgw.clients.guard import boundKernelQueue
from serialgw.clients.session import PERSON_SESSIONS_PER_LINE, Session, sessionsOf
from serialgw.clients.sessionend import CLOSE_GRACE
from serialgw.clients.sshfaults import conchLog
from serialgw.clients.sshtransport import ServerTransport
from serialgw.clients.transports import admittedBy, describeAddress
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.sshkeys import asciiName, printable
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import Peer, clientLog, counted

if TYPE_CHECKING:
    from serialgw.clients.sshauth import Login

# Limited per peer: what a client sends cannot flood the log (logflood).
log = clientLog()

# The most bytes of line names a refused session lists (as [by-name]'s list: one who may use 1000
# lines was sent all their names, up to 130 KB, each time): the rest counted.
LIST_MOST = 4096
# The lines looked at for a person's lists in LIST_WINDOW seconds (a list looks at every line, about
# 1 us each: with 10000 lines a refused session cost the gateway's thread 11 ms, each new connection
# of a person logging in without end, past the key exchange's 2.6 ms).
LIST_WORK = 20000
LIST_WINDOW = 10.0


class SessionGateway(typing.Protocol):
    """
    What a session uses of the SSH side's gateway (L{serialgw.clients.ssh.SSHGateway}):
    declared here, beside the session, since ssh.py imports it.
    """

    spec: ListenerSpec
    clock: Any
    sessionsPerPerson: int

    def attached(self, session: SSHClient) -> None: ...
    def detached(self, session: SSHClient) -> None: ...
    def sessionsOf(self, user: str) -> int: ...
    def line(self, name: str) -> Optional[Line]: ...
    def linesFor(self, user: str) -> list[str]: ...
    def listWork(self, user: str) -> Optional[int]: ...


# The session: a client of a line


@implementer(IPushProducer)
class _Flow:
    """
    The client's output guard is paused while either holds: the TCP
    connection's buffer is past C{outbuf} (this is its producer) or the
    channel's window is used up (the peer has not read).
    """

    def __init__(self) -> None:
        self.guard: Any = None
        self.blocked: set[str] = set()

    def block(self, why: str) -> None:
        if not self.blocked and self.guard is not None:
            self.guard.pauseProducing()
        self.blocked.add(why)

    def unblock(self, why: str) -> None:
        if why in self.blocked:
            self.blocked.discard(why)
            if not self.blocked and self.guard is not None:
                self.guard.resumeProducing()

    # IPushProducer, for the TCP connection

    def pauseProducing(self) -> None:
        self.block("tcp")

    def resumeProducing(self) -> None:
        self.unblock("tcp")

    def stopProducing(self) -> None:
        self.blocked.clear()


class ChannelTransport:
    """
    What a L{Session} needs of its transport, for an SSH channel: writes go
    into the channel; C{loseConnection} ends the session (exit status 0, or
    1 and why on standard error when the gateway ended it: L{SSHClient.end});
    C{abortConnection} cuts the TCP connection; the output guard registers
    here and is paused through L{_Flow}.
    """

    def __init__(self, channel: SSHClient) -> None:
        self.channel = channel
        self.flow = _Flow()

    @property
    def tcp(self) -> Any:
        conn: Any = self.channel.conn
        return conn.transport.transport

    @property
    def bufferSize(self) -> int:
        return int(self.tcp.bufferSize)

    @bufferSize.setter
    def bufferSize(self, size: int) -> None:
        # The guard's bound is the TCP connection's: Twisted's buffer and
        # the kernel's unsent queue (without it, a client that stops reading
        # had its channel window, 2 MiB for OpenSSH, queued in the kernel).
        self.tcp.bufferSize = size
        boundKernelQueue(self.tcp, size)

    def write(self, data: bytes) -> None:
        self.channel.write(data)

    def loseConnection(self) -> None:
        why = self.channel.endedBecause
        self.channel.end(0 if why is None else 1, why)

    def abortConnection(self) -> None:
        self.tcp.abortConnection()

    def getPeer(self) -> Any:
        return self.tcp.getPeer()

    def getHost(self) -> Any:
        return self.tcp.getHost()

    def setTcpKeepAlive(self, on: bool) -> None:
        self.tcp.setTcpKeepAlive(on)

    def setTcpNoDelay(self, on: bool) -> None:
        self.tcp.setTcpNoDelay(on)

    def pauseProducing(self) -> None:
        """Stop taking the client's input (see L{SSHClient.pauseReading})."""
        self.channel.pauseReading()

    def resumeProducing(self) -> None:
        self.channel.resumeReading()

    @property
    def server(self) -> Optional[ServerTransport]:
        """The SSH transport, the TCP connection's producer (a test's stub is not)."""
        conn: Any = self.channel.conn
        transport = conn.transport if conn is not None else None
        return transport if isinstance(transport, ServerTransport) else None

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.flow.guard = producer
        server = self.server
        if server is not None:
            server.setFlow(self.flow)
        else:
            self.tcp.registerProducer(self.flow, True)

    def unregisterProducer(self) -> None:
        if self.flow.guard is not None:
            self.flow.guard = None
            server = self.server
            if server is not None:
                server.setFlow(None)
            else:
                self.tcp.unregisterProducer()


@implementer(IClient)
class SSHClient(Session, ClientEvents, SSHChannel):
    """
    A session channel: a person at a terminal on a line.  The requests it
    takes are in C{requests}, keyed by name; the others are refused.
    """

    _log = conchLog
    name = b"session"
    # A logged-in user who asked for a shell has said enough: announced at once.
    quietStart = False

    def __init__(self, gateway: SessionGateway, login: Login, **kwargs: Any) -> None:
        SSHChannel.__init__(self, **kwargs)
        self.gateway = gateway
        self.login = login
        self.user = login.user
        self.listener = gateway.spec
        self.clock = gateway.clock
        self.line: Any = None
        self.pty = False
        self.readingPaused = False
        self.asked = False
        self.ended = False
        self.droppedAtEnd = 0
        self.transport = ChannelTransport(self)
        # What its sessions say counts against their person's log budget too (logflood): each
        # session, a new connection, had its own, so a person reconnecting in a loop wrote 20 more
        # lines a connection (a few connections a second, each logging a refused request).
        self.logBudget = f"{login.user}'s SSH sessions"

    def logPrefix(self) -> str:
        return "ssh"

    def describePeer(self) -> str:
        return f"{self.user} ({describeAddress(self.transport.getPeer())})"

    # Channel events

    def channelOpen(self, specificData: bytes) -> None:
        # Named from the start: what it asks before it attaches is logged (and limited) as this peer.
        self.peer = Peer(self.describePeer())

    def requestReceived(self, requestType: bytes, data: bytes) -> Any:
        handler = self.requests.get(requestType)
        if handler is None:
            # OpenSSH sends LANG with every session: not worth a line at info.
            log.emit(LogLevel.debug if requestType == b"env" else LogLevel.info, "ssh: {peer}: '{request}' refused",
                     peer=self.peer, request=asciiName(requestType), budget=self.logBudget)
            return False
        try:
            return handler(self, data)
        except Exception:
            # (conch answers a failed request with a refusal, or leaves its Deferred's error unseen: an
            # error of ours here was never said.)
            log.failure("ssh: {peer}: handling its '{request}' request failed (the gateway's error, not the "
                        "client's): refused", peer=self.peer, request=asciiName(requestType))
            return False

    def dataReceived(self, data: bytes) -> None:
        if self.line is not None:
            self.fromPeer(data)

    def extReceived(self, dataType: int, data: bytes) -> None:
        pass

    # The client's input has ended (CHANNEL_EOF): see eofReceived.
    inputEnded = False

    def eofReceived(self) -> None:
        """
        No more input (C{ssh -n}, a pipe or file that ended: C{ssh -T gw <
        file}): the session stays, its output going on until the client
        closes the channel, as conserver's does (an C{ssh -n} that records a
        console must go on), and unlike a TCP half-close, which a read
        cannot tell from a close.  In exclusive mode, once what it sent has
        gone to the line (none waits here: L{_watchOnceInputGone}), a writer
        only watches, announced: it will type no more, and it held the
        line's one write for good (a person coming after it only watched).
        In shared mode, where everyone writes, its role is kept, unsaid.
        """
        log.debug("ssh: {peer}: end of input", peer=self.peer)
        self.inputEnded = True
        self._watchOnceInputGone()

    def _watchOnceInputGone(self) -> None:
        """
        Its input ended and none of it waits here (held behind its output,
        typed ahead while the device took none, a key the escape menu holds
        for its next turn): on an exclusive line a writer only watches from
        now on (the line's L{onlyWatch}).  Looked at again as what waits goes (L{releaseInput},
        L{typedGone}); what already went to the device's queue goes on.  One
        watching when its input ends chooses to watch, unsaid: a quiet
        writer's going (a health check's, L{serialgw.line.role.heirOf})
        passes it over, as it will type nothing (it was handed the write
        for good).
        """
        if not self.inputEnded or self.line is None or self.leaving or self.role is Role.READONLY:
            return
        if self.line.mode != "exclusive":
            return
        if self.role is Role.WRITER and (self.inputHeld or self._heldInput or self._typedAhead or self._tlsLeft):
            return
        self.line.onlyWatch(self)

    def releaseInput(self) -> None:
        Session.releaseInput(self)
        self._watchOnceInputGone()

    def typedGone(self) -> None:
        Session.typedGone(self)
        self._watchOnceInputGone()

    def closeReceived(self) -> None:
        # The client takes nothing more: what waits for its window is dropped,
        # so the channel closes now (conch would wait for the window forever).
        self.buf, self.extBuf = b"", []
        SSHChannel.loseConnection(self)

    def closed(self) -> None:
        self.gateway.detached(self)
        if self.line is not None:
            self.endSession()
        self.transport.unregisterProducer()
        # One session a connection: with it, the connection ends.
        transport: Any = self.conn.transport if self.conn is not None else None
        if isinstance(transport, ServerTransport):
            transport.finish()
        else:
            self.transport.tcp.loseConnection()

    def stopWriting(self) -> None:
        self.transport.flow.block("window")

    def addWindowBytes(self, data: int) -> None:
        """
        The client took some output: what waits for its window goes first,
        and only once none waits is the output guard resumed.  Conch resumes
        it first, and the guard's held output (up to C{outbuf}) and the
        device's joined what waited (C{self.buf}, not bounded): a client
        reading slowly under a flood had 9 to 15 MB waiting there, copied
        whole at every window adjust, and the gateway went 55 -> 113 MB RSS.
        Now what waits is at most C{outbuf} or one chunk of device output.
        """
        self.remoteWindowLeft += data
        if self.buf:
            waiting, self.buf = self.buf, b""
            # (Past the window: the rest waits again, and the flow stays blocked.)
            self.write(waiting)
        if self.extBuf:
            extended, self.extBuf = self.extBuf, []
            for dataType, text in extended:
                self.writeExtended(dataType, text)
        if not self.buf and not self.extBuf and not self.areWriting and not self.closing:
            self.areWriting = True
            self.startWriting()

    def startWriting(self) -> None:
        self.transport.flow.unblock("window")

    def end(self, status: int, why: Optional[str] = None) -> None:
        """
        Tell the client the exit status and close the channel; C{why} (the
        gateway ended the session) on its standard error first, as a
        refused session's: a session whose right, key or line a reload took
        away exited 0, as if the person had left, and said why only where
        the line's notices were on.
        """
        if self.ended:
            return
        self.ended = True
        if self.conn is not None and not self.closing:
            if why is not None:
                newline = "\r\n" if self.pty else "\n"
                self.writeExtended(1, f"serialgw: {why}{newline}".encode("utf-8", "replace"))
            self.conn.sendRequest(self, b"exit-status", struct.pack(">L", status))
            if not self.areWriting:
                # A client that does not read (its window is used up) is not
                # waited for: what it has not taken is dropped (counted: at a
                # stop's cut, L{heldOutput}).
                self.droppedAtEnd = self._channelBuffered()
                self.buf, self.extBuf = b"", []
            SSHChannel.loseConnection(self)

    def _channelBuffered(self) -> int:
        # What conch's channel holds beyond the client's window: output, standard error.
        return len(self.buf) + sum(len(data) for _, data in self.extBuf)

    def heldOutput(self) -> int:
        """
        Its guard's, what the channel holds beyond the client's window, what
        its end dropped from there (a client that did not read), and what a
        key exchange its client began and has not finished holds back (its
        data in the messages conch keeps meanwhile): output bytes, all.
        """
        return Session.heldOutput(self) + self._channelBuffered() + self.droppedAtEnd + self._heldByKeyExchange()

    def _heldByKeyExchange(self) -> int:
        transport: Any = self.conn.transport if self.conn is not None else None
        return int(transport.heldForChannel(self)) if transport is not None else 0

    def connectionBuffer(self) -> Any:
        """The TCP connection's (shared by the sessions of one SSH connection)."""
        return self.transport.tcp

    # Requests

    def _pty(self, data: bytes) -> bool:
        # Size and TERM do not matter: the bytes go to the line as typed.
        self.pty = True
        return True

    def _windowChange(self, data: bytes) -> bool:
        return True

    def _shell(self, data: bytes) -> bool:
        return self.attach(self.login.line)

    def _exec(self, data: bytes) -> bool:
        try:
            command = common.getNS(data)[0].decode("utf-8", "replace").strip()
        except Exception:
            return False
        return self.attach(command or self.login.line)

    def _break(self, data: bytes) -> bool:
        # RFC 4335: the length asked for is ignored; the line's break duration holds.
        # Told to go (its rights or key taken away, idle, escape d): its
        # channel closes, but the client may go on asking until it is cut.
        if self.line is None or self.leaving:
            return False
        return self.line.clientBreak(self)

    requests: dict[bytes, Callable[[SSHClient, bytes], bool]] = {
        b"pty-req": _pty,
        b"window-change": _windowChange,
        b"shell": _shell,
        b"exec": _exec,
        b"break": _break,
    }

    def attach(self, name: str) -> bool:
        """Join line C{name} if this person may; else list the lines they may use and exit 1."""
        if self.asked or self.ended:
            return False
        self.asked = True
        transport: Any = self.conn.transport if self.conn is not None else None
        if isinstance(transport, ServerTransport):
            transport.sessionStarted(self.login.user)
        self.listener = spec = self.gateway.spec  # (as a reload may have changed it since the channel opened)
        newline = "\r\n" if self.pty else "\n"
        if not admittedBy(spec.allow, self.transport.getPeer()):
            log.info("ssh: {peer} asked for a session: not in {allow}", peer=self.peer, allow=",".join(spec.allow),
                     budget=self.logBudget)
            self.clock.callLater(0, self._refuse, f"serialgw: your address is no longer allowed{newline}")
            return True
        line = self.gateway.line(name)
        right = line.rights.of(self.login.user) if line is not None else None
        if line is None or right is None:
            log.info("ssh: {peer} asked for {name!r}: not a line they may use", peer=self.peer,
                     name=printable(name), budget=self.logBudget)
            text = f"serialgw: {printable(name)!r} is not a line you may use; "
            used = self.gateway.listWork(self.login.user)
            if used is not None:
                log.info("ssh: {peer}: its lines not listed: {used} lines looked at for {user}'s lists in {window:g} s "
                         "(at most {most})", peer=self.peer, used=used, user=self.login.user, window=LIST_WINDOW,
                         most=LIST_WORK, budget=self.logBudget)
                text += (f"not listed: you asked for lists too often (at most {LIST_WORK} lines looked at in "
                         f"{LIST_WINDOW:g} s); ask again in a few seconds{newline}")
                self.clock.callLater(0, self._refuse, text)
                return True
            mine = self.gateway.linesFor(self.login.user)
            if not mine:
                text += f"you may use none{newline}"
            else:
                text += f"your lines:{newline}"
                listed = shown = 0
                for n in mine:
                    if shown and listed + len(n) + len(newline) > LIST_MOST:
                        break
                    text += f"{n}{newline}"
                    listed += len(n) + len(newline)
                    shown += 1
                if shown < len(mine):
                    text += f"and {len(mine) - shown} more{newline}"
            self.clock.callLater(0, self._refuse, text)
            return True
        if line.full() and not line.kickOld:
            log.warn("{line}: {peer} refused: {clients} already (max-clients)", line=line.name,
                     peer=self.peer, count=line.maxClients, clients=counted(line.maxClients, "client"),
                     budget=self.logBudget)
            self.clock.callLater(0, self._refuse,
                                 f"serialgw: {line.name} is full ({counted(line.maxClients, 'client')}){newline}")
            return True
        sessions = sessionsOf(line, self.login.user)
        if sessions >= PERSON_SESSIONS_PER_LINE:
            # One person, a read-only one too, took every place (max-clients): the writers were kept out.
            log.warn("{line}: {peer} refused: {count} sessions of {user} there already", line=line.name,
                     peer=self.peer, count=sessions, user=self.login.user, budget=self.logBudget)
            self.clock.callLater(0, self._refuse, f"serialgw: {line.name}: you have {sessions} sessions there already "
                                 f"(at most {PERSON_SESSIONS_PER_LINE} a person){newline}")
            return True
        sessions, most = self.gateway.sessionsOf(self.login.user), self.gateway.sessionsPerPerson
        if sessions >= most:
            # 8 a line alone let a person with read = ["*"] on 1000 lines hold 8000 sessions (3 GB).
            log.warn("ssh: {peer} refused a session on {line}: {user} has {sessions} already, on all lines "
                     "(at most {most} a person: [ssh] sessions-per-person)", peer=self.peer, line=line.name,
                     user=self.login.user, count=sessions, sessions=counted(sessions, "session"), most=most,
                     budget=self.logBudget)
            self.clock.callLater(0, self._refuse, f"serialgw: you have {counted(sessions, 'session')} already, on all lines "
                                 f"(at most {most} a person){newline}")
            return True
        self.role = Role.WRITER if right == "write" and not spec.readOnly else Role.READONLY
        # kick-old-user: the oldest makes room for a person admitted (full without it: refused above); a read-only
        # one takes only a read-only one's place.
        if not line.makeRoom(self.describePeer(), self.logBudget, readOnly=self.role is Role.READONLY):
            log.warn("{line}: {peer} refused: {clients} already (max-clients; a read-only session takes only a "
                     "read-only one's place)", line=line.name, peer=self.peer, count=line.maxClients,
                     clients=counted(line.maxClients, "client"), budget=self.logBudget)
            self.clock.callLater(0, self._refuse,
                                 f"serialgw: {line.name} is full ({counted(line.maxClients, 'client')}){newline}")
            return True
        self.line = line
        self.gateway.attached(self)
        self.startSession()
        self._watchOnceInputGone()  # (its input ended before its shell request)
        return True

    def _refuse(self, text: str) -> None:
        if self.conn is None or self.closing:
            return
        self.writeExtended(1, text.encode("utf-8", "replace"))
        self.end(1)
        server = self.transport.server
        if server is not None:
            # Nothing holds it now: a client that never closes the channel is cut.
            server.deadline("did not close its refused session", CLOSE_GRACE)

    # IClient

    def defaultNotices(self) -> bool:
        return bool(self.line.notices)

    def deliver(self, data: bytes) -> None:
        if not self.mayDeliver(data):
            return
        self.write(data)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        if notice and self.wantsNotices():
            self.sendText(notice)

    # Reading the client (the Session pauses it while the device is behind
    # or this client's output is past its bound and its answer budget
    # spent): the channel's window is
    # not opened again, so the client may send at most the window's rest.
    # The TCP connection is still read: the client's window adjusts for our
    # output must come in.

    def pauseReading(self) -> None:
        self.readingPaused = True

    def resumeReading(self) -> None:
        self.readingPaused = False
        if self.conn is not None and not self.localClosed and self.localWindowLeft < self.localWindowSize // 2:
            self.conn.adjustWindow(self, self.localWindowSize - self.localWindowLeft)

