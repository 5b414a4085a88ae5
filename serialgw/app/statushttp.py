"""
The status endpoint's HTTP, whatever its pages say (L{serialgw.app.status}):
the site (L{StatusSite}: connections bounded in all and from one address),
each page rendered at most once a second, a slice of lines a turn of the
reactor (L{ThrottledPage}), and the channel (L{StatusChannel}: GET and HEAD
only, small requests, deadlines, bounded pipelining, half-closes).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, cast

from twisted.copyright import version as twistedVersion
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.logger import ILogObserver, Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from serialgw.clients.transports import SourceCounts, describeAddress, peerName, sourceOf
from serialgw.config.specs import quote
from serialgw.logflood import ListenerKey, PeerLimiter, peerLimiter

# In the namespace its lines had in serialgw.app.status, which an operator may filter on.
log = Logger(namespace="serialgw.app.status")
# A page's rendering failing (the gateway's error, each client's GET may reach it): limited
# (logflood: one budget for all clients' such errors).
clientsLog = Logger(namespace="serialgw.app.status", observer=peerLimiter)


# Twisted 23.10's channel buffers what follows a request until it is
# answered (raw mode from allContentReceived); before (22.10), it went on
# parsing pipelined requests in the same read, answering them all at once.
# StatusChannel does the buffering itself there.
_PARSES_PAST_REQUEST = tuple(int(n) for n in twistedVersion.split(".")[:2]) < (23, 10)


# Twisted's own line for a request's failure, said by StatusRequest in its place.
_UNSAID = Logger(observer=cast(ILogObserver, lambda event: None))


class StatusRequest(Request):
    """
    A status request whose processing fails at once (an exception out of
    finding or rendering its page: the gateway's error, any client's GET
    may reach it) is logged naming the client, within the log limiter's
    one budget for such errors (L{clientsLog}), and answered 500 as
    Twisted answers it; Twisted's C{processingFailed} logged a traceback a
    request, naming nobody, past the limiter.
    """

    def processingFailed(self, reason: Any) -> Any:
        clientsLog.failure("status: {peer}'s {method} of {path} failed (the gateway's error, not the client's): "
                           "answered 500", failure=reason, peer=describeAddress(self.getClientAddress()),
                           method=quote(self.method.decode("latin-1")), path=quote(self.path.decode("latin-1")))
        self._log = _UNSAID
        return Request.processingFailed(self, reason)


class StatusSite(Site):
    """
    The status endpoint's site: no access-log line per GET (scrapers come
    every few seconds), and at most C{maxConnections} connections at once,
    C{maxPerAddress} of them from one IP address: more are closed at
    accept.  Each holds a descriptor until it is answered or cut
    (L{StatusChannel}'s timeouts); without a bound, a thousand silent
    connections took every descriptor the process may have (1024 under
    systemd), and the lines' own clients were closed at accept; without
    the bound per address, one client trickling headers on 64 connections,
    each reopened when it was cut, kept everyone else out.  (A unix
    socket's clients have no address: the file mode decides who they are.)
    Refusals are logged at most once a minute in all, and once a minute for
    each address held at its bound.
    """

    noisy = False
    requestFactory = StatusRequest
    maxConnections = 64
    maxPerAddress = 8
    refused = 0
    _toldAt: Optional[float] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Site.__init__(self, *args, **kwargs)
        self.sources = SourceCounts()
        # The budget of what its connections say of themselves (each a new peer: see StatusChannel._expired).
        self.logKey = ListenerKey("the status endpoint")
        # One line a minute per address held at its bound (and the count left out).
        self._perAddressLog = Logger(observer=PeerLimiter(burst=1, now=lambda: float(self.reactor.seconds())))

    @property
    def connections(self) -> int:
        return self.sources.total

    def log(self, request: Any) -> None:
        pass

    def buildProtocol(self, addr: Any) -> Any:
        source = sourceOf(addr)
        if self.connections >= self.maxConnections:
            self.refused += 1
            now = self.reactor.seconds()
            if self._toldAt is None or not self._toldAt <= now < self._toldAt + 60:
                # Said at most once a minute: a connect flood cannot flood the log.
                self._toldAt = now
                log.warn("status: connection from {peer} refused: {count} open already ({refused} refused so far)",
                         peer=describeAddress(addr), count=self.connections, refused=self.refused)
            return None
        if isinstance(addr, (IPv4Address, IPv6Address)) and self.sources.of(source) >= self.maxPerAddress:
            self.refused += 1
            self._perAddressLog.warn(
                "status: connection from {peer} refused: {count} open from there already (at most {most} of {all})",
                peer=source, count=self.sources.of(source), most=self.maxPerAddress, all=self.maxConnections)
            return None
        protocol = Site.buildProtocol(self, addr)
        if protocol is not None:
            protocol.source = source
        return protocol


class ThrottledPage(Resource):
    """
    A page rendered at most once every C{interval} seconds however often it
    is asked for, and never stale: a request waits for the next rendering
    that starts after it came (at once if the last started C{interval} ago),
    which answers every request waiting (each connection has at most one).
    A rendering takes one part of the page (C{renderParts}: a slice of
    lines) a turn of the reactor, so the other lines are served in between.
    So the cost of a status page on the reactor does not grow with polling,
    nor holds it long on a large farm.  The page is the same for every
    request (its headers are copied).
    """

    isLeaf = True

    def __init__(self, page: Any, clock: Any, interval: float = 1.0) -> None:
        Resource.__init__(self)
        self.page = page
        self.clock = clock
        self.interval = interval
        self.renders = 0
        self._last: Optional[float] = None
        # Waiting for the next rendering; answered by the one under way.
        self._waiting: list[Any] = []
        self._rendering: list[Any] = []
        self._parts: Optional[Iterator[bytes]] = None
        self._body: list[bytes] = []
        # The page's headers, as its rendering set them on the request it began for.
        self._headers: list[tuple[bytes, list[bytes]]] = []
        self._call: Any = None

    def render(self, request: Any) -> Any:
        if self.clock is None:
            return b"".join(self.page.renderParts(request))
        self._waiting.append(request)
        request.notifyFinish().addErrback(lambda _: self._forget(request))
        self._schedule()
        return NOT_DONE_YET

    def _schedule(self) -> None:
        """The next rendering, for those waiting: at once (a page of one part is answered now), or when due."""
        if self._call is not None or self._parts is not None or not self._waiting:
            return
        now = self.clock.seconds()
        last = self._last
        if last is None or not last <= now < last + self.interval:
            self._start()
        else:
            self._call = self.clock.callLater(last + self.interval - now, self._start)

    def _forget(self, request: Any) -> None:
        for requests in (self._waiting, self._rendering):
            if request in requests:
                requests.remove(request)
        if not self._waiting and self._parts is None and self._call is not None:
            self._call.cancel()
            self._call = None

    def _start(self) -> None:
        self._call = None
        self._rendering, self._waiting = self._waiting, []
        self._last = self.clock.seconds()
        self.renders += 1
        self._parts = self.page.renderParts(self._rendering[0])
        # Kept now: that request may go before the page is done (the others are answered with them).
        self._headers = list(self._rendering[0].responseHeaders.getAllRawHeaders())
        self._step()

    def _step(self) -> None:
        """A part of the page this turn (the first turn two: a page of one part is answered at once); the answer at the end."""
        self._call = None
        assert self._parts is not None
        try:
            for _ in range(1 if self._body else 2):
                self._body.append(next(self._parts))
        except StopIteration:
            self._answer(b"".join(self._body))
        except Exception:
            asking = self._rendering[0] if self._rendering else None
            clientsLog.failure("status: rendering {path} failed", path=asking.path if asking is not None else b"",
                               peer=describeAddress(asking.getClientAddress()) if asking is not None else "?")
            self._answer(None)
        else:
            self._call = self.clock.callLater(0, self._step)

    def _answer(self, body: Optional[bytes]) -> None:
        waiting, self._rendering, self._parts, self._body = self._rendering, [], None, []
        if body is None:
            for request in waiting:
                request.setResponseCode(500)
                request.finish()
        elif waiting:
            for request in waiting:
                for name, values in self._headers:
                    request.responseHeaders.setRawHeaders(name, values)
                request.setHeader(b"content-length", str(len(body)).encode())
                request.write(body)
                request.finish()
        self._schedule()


@implementer(IHalfCloseableProtocol)
class StatusChannel(HTTPChannel):
    """
    HTTP for the status endpoint, whatever the path:

      - GET and HEAD only: any other method is answered 405 as soon as its
        request line is read, and the connection closed (a body is never
        read); a GET with a body is answered 413;
      - requests are small: 8 KiB of request line and headers, 50 headers;
      - from the connection (or the previous answer) to the end of the next
        request's headers at most C{requestTimeout} seconds, so a client
        trickling a byte at a time is cut; idle for C{idleTimeout}, cut;
      - pipelining is bounded: while the client does not read what it was
        sent (the transport's buffer is full), no further request is
        answered nor read, and after C{idleTimeout} it is cut.
    """

    transport: Any
    requestTimeout = 10.0
    idleTimeout = 30.0
    MAX_LENGTH = 8192
    totalHeadersSize = 8192
    maxHeaders = 50
    METHODS = (b"GET", b"HEAD")

    def __init__(self) -> None:
        HTTPChannel.__init__(self)
        self._deadline: Any = None
        self._checked = False
        self._heldRequest: Any = None
        self._counted = False
        # The client shut its side of the connection (readConnectionLost).
        self._inputEnded = False
        # Where it comes from (L{sourceOf}), set by L{StatusSite}.
        self.source = ""

    def connectionMade(self) -> None:
        if isinstance(self.factory, StatusSite):
            # Counted while open: StatusSite refuses past its bound.
            self._counted = True
            self.factory.sources.add(self.source)
        HTTPChannel.connectionMade(self)
        self._startDeadline(self.requestTimeout)

    def _startDeadline(self, seconds: float) -> None:
        self._stopDeadline()
        self._deadline = self.callLater(seconds, self._expired)

    def _stopDeadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        # (Within the endpoint's log budget: each connection is a new peer, and 64 at a time cut every
        # 10 s were a line each.)
        clientsLog.info("status: {peer} sent no whole request in time: disconnected", peer=peerName(self.transport),
                        budget=self.factory.logKey if isinstance(self.factory, StatusSite) else None)
        self.transport.abortConnection()

    def _refuse(self, status: bytes) -> None:
        self._stopDeadline()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
        self.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        HTTPChannel.lineReceived(self, line)
        # HTTPChannel's own: the request line's method, once it is read.
        command = getattr(self, "_command", None)
        if command is not None and not self._checked:
            self._checked = True
            if command not in self.METHODS:
                self._refuse(b"405 Method Not Allowed")

    def lineLengthExceeded(self, line: bytes) -> None:
        # One line past MAX_LENGTH: answered as a request past totalHeadersSize
        # is (LineReceiver's own only dropped the connection, without a word).
        self._stopDeadline()
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.loseConnection()

    def allHeadersReceived(self) -> None:
        if self.length != 0:
            # A body (Content-Length or chunked) on a GET: not read.
            self._refuse(b"413 Content Too Large")
            return
        self._stopDeadline()
        HTTPChannel.allHeadersReceived(self)

    def allContentReceived(self) -> None:
        self._checked = False
        if _PARSES_PAST_REQUEST:
            self.setRawMode()
        HTTPChannel.allContentReceived(self)

    def rawDataReceived(self, data: bytes) -> None:
        if _PARSES_PAST_REQUEST and self._handlingRequest:
            # HTTPChannel.dataReceived buffers it (a request is under way);
            # requestDone replays it in line mode.
            self._dataBuffer.append(data)
            return
        HTTPChannel.rawDataReceived(self, data)

    def requestDone(self, request: Any) -> None:
        if self._waitingForTransport and self.persistent:
            # The client is not reading: answer nothing more it pipelined,
            # read nothing more, until it does (or the deadline cuts it).
            self._heldRequest = request
            self._networkProducer.pauseProducing()
            self._startDeadline(self.idleTimeout)
            return
        self._finish(request)

    def _finish(self, request: Any) -> None:
        self._startDeadline(self.requestTimeout)
        HTTPChannel.requestDone(self, request)
        # (What it had pipelined was parsed in that call: the next request, if whole, is under way, or
        # answered already, this called again inside it.)
        if self._inputEnded and not self._handlingRequest and not self.transport.disconnecting:
            self.loseConnection()

    def resumeProducing(self) -> None:
        HTTPChannel.resumeProducing(self)
        if self._heldRequest is not None:
            request, self._heldRequest = self._heldRequest, None
            self._finish(request)

    def readConnectionLost(self) -> None:
        # The client sent its requests and shut its side (printf ... | socat, nc -N): each whole one is
        # answered, in order, then the connection closed (see _finish).  Twisted's HTTPChannel took that
        # end of input for the connection's: a request waiting for its page's next rendering (up to a
        # second) was answered to nobody; made not persistent, the connection closed after the first
        # request and those pipelined behind it were never answered.
        self._inputEnded = True
        if not self._handlingRequest:
            self.loseConnection()

    def writeConnectionLost(self) -> None:
        # (Never for TCP: its side is shut only by closing.)
        pass

    def connectionLost(self, reason: Any = None) -> None:
        if self._counted:
            self._counted = False
            self.factory.sources.remove(self.source)
        self._stopDeadline()
        self._heldRequest = None
        HTTPChannel.connectionLost(self, reason)
