"""
TLS for listeners and dial-outs: certificates from PEM files (read and
checked in L{serialgw.clients.tlsfiles}), client certificates required
from a CA and restricted by subject CN, servers verified by name
(service-identity, through Twisted's optionsForClientTLS), and the gate
a connection waits at until its handshake is done.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IHandshakeListener, IOpenSSLContextFactory, IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.tlsfiles import TLSError, caCertificates, privateCertificate, warnValidity
from serialgw.clients.transports import peerName
from serialgw.config.listenerspecs import TLSSpec
from serialgw.logflood import ListenerKey, clientLog

# Failed handshakes, limited per listener (logflood.PeerLimiter).
handshakes = clientLog()
log = Logger()


@implementer(IOpenSSLContextFactory, IOpenSSLServerConnectionCreator)
class ServerContextFactory:
    """
    A server context: our certificate; with a CA, client certificates are
    required and verified; with subjects, the client certificate's CN must
    be one of them, or the handshake fails.
    """

    def __init__(self, spec: TLSSpec) -> None:
        self.spec = spec
        certificate = privateCertificate(spec)
        warnValidity(spec.cert)
        options: Any
        if spec.ca:
            options = ssl.CertificateOptions(
                privateKey=certificate.privateKey.original,
                certificate=certificate.original,
                verify=True,
                caCerts=[c.original for c in caCertificates(spec.ca)],
                requireCertificate=True,
            )
        else:
            options = ssl.CertificateOptions(
                privateKey=certificate.privateKey.original, certificate=certificate.original
            )
        self._context = options.getContext()
        # No renegotiation (a handshake and a signature each, at a client's
        # asking): OpenSSL 3 refuses a client's by default, 1.1 did not.
        self._context.set_options(SSL.OP_NO_RENEGOTIATION)
        self.allowed = set(spec.subjects) | set(spec.readOnlySubjects)
        # The log budget of this listener's refused certificates: a client
        # with one of the CA's certificates cannot flood the log.
        self.logKey = ListenerKey(f"TLS subjects {','.join(sorted(self.allowed))}")
        if spec.ca:
            self._context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, self.verify)

    def verify(self, connection: Any, x509: Any, errno: int, depth: int, ok: int) -> bool:
        """
        OpenSSL's verify callback with ca=: why a client certificate fails
        is kept for the handshake's failure (expired, another CA); with
        subjects=, the client certificate's CN must be one of them.
        """
        gate = _gateOf(connection)
        if not ok:
            if gate is not None and not gate.verifyProblem:
                gate.verifyProblem = VERIFY_ERRORS.get(errno, f"X509 verify error {errno}")
            return False
        if depth > 0 or not self.spec.subjects:
            return True
        cn = x509.get_subject().commonName
        if cn not in self.allowed:
            where, source = "", ""
            if gate is not None:
                where, source = f"{gate.lineName}: " if gate.lineName else "", f" from {peerName(gate.transport)}"
            handshakes.warn("{where}TLS client certificate {subject}{source} refused: not in {allowed}",
                            where=where, subject=quotedName(cn), source=source, allowed=sorted(self.allowed),
                            peer=self.logKey)
            if gate is not None:
                gate.verifyProblem = "its CN is not in subjects= or readonly="
            return False
        return True


    def getContext(self) -> Any:
        return self._context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> Any:
        """
        A connection whose app data is its TLS protocol (as Twisted makes
        them since 23), so that the verify callback finds the handshake's
        gate: with Twisted 22.10's Connection(context, None) a refused
        certificate was said without its line and address.
        """
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        return connection


# OpenSSL's X509_V_ERR codes a peer's certificate most often fails with
# (x509_vfy.h), said after 'certificate verify failed'.
VERIFY_ERRORS = {
    1: "unspecified certificate verification error",
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    23: "certificate revoked",
    24: "invalid CA certificate",
    26: "unsupported certificate purpose",
}

# A certificate's name in a message, at most this many characters.
NAME_SHOWN = 64


def quotedName(name: Optional[str]) -> str:
    """A certificate's CN for the log: quoted, a long one cut (a CN is a peer's to choose), none said."""
    if name is None:
        return "(no CN)"
    if len(name) <= NAME_SHOWN:
        return repr(name)
    return f"{name[:NAME_SHOWN]!r}... ({len(name)} characters)"


def _gateOf(connection: Any) -> Optional[HandshakeGate]:
    """The handshake gate of an OpenSSL connection (Twisted's TLS protocol is its app data), or None."""
    try:
        gate = connection.get_app_data().wrappedProtocol
    except Exception:
        return None
    return gate if isinstance(gate, HandshakeGate) else None


def _verifyResult(connection: Any) -> Optional[int]:
    """
    OpenSSL's verify result of a connection (X509_V_OK is 0), or None.
    pyOpenSSL has no public call for it (SSL_get_verify_result): a
    dial-out's verify callback is Twisted's own; this is the only way to
    say why the server's certificate failed.
    """
    try:
        from OpenSSL.SSL import _lib  # type: ignore[attr-defined]

        return int(_lib.SSL_get_verify_result(connection._ssl))
    except Exception:
        return None


def clientOptions(spec: TLSSpec) -> Any:
    """Client options verifying the server as C{spec.hostname}."""
    authorities = caCertificates(spec.ca)
    trust = ssl.trustRootFromCertificates(authorities)
    client = privateCertificate(spec) if spec.cert else None
    if client is not None:
        warnValidity(spec.cert)
    return ssl.optionsForClientTLS(spec.hostname, trustRoot=trust, clientCertificate=client)


def peerSubject(transport: Any) -> str:
    """The CN of a TLS peer's certificate, or empty."""
    try:
        certificate = transport.getPeerCertificate()
    except Exception:
        return ""
    if certificate is None:
        return ""
    return str(certificate.get_subject().commonName or "")


def caVerifier(path: str) -> Callable[[Any], bool]:
    """
    Whether a TLS connection's peer certificate (with the chain it sent)
    is one the CA file at C{path} verifies now: for a reload that gives a
    listener C{ca=} or another one, so that those connected are held to
    what a new connection is (a CA file that cannot be read verifies
    nobody: it opens no listener either).
    """
    from OpenSSL import crypto

    store = crypto.X509Store()
    try:
        for authority in caCertificates(path):
            store.add_cert(authority.original)
    except TLSError:
        return lambda transport: False

    def verified(transport: Any) -> bool:
        try:
            leaf = transport.getPeerCertificate()
            handle = getattr(transport, "getHandle", None)
            chain = (handle().get_peer_cert_chain() or []) if handle is not None else []
            if leaf is None:
                return False
            crypto.X509StoreContext(store, leaf, chain).verify_certificate()
        except Exception:
            return False
        return True

    return verified


# Twisted 22.10's TLSMemoryBIOFactory takes no clock: that came with the
# aggregation of small writes (Twisted 23.10, twisted#11989), and it is only
# what those writes are flushed by; without it they are written at once.
_FACTORY_TAKES_CLOCK = "clock" in inspect.signature(TLSMemoryBIOFactory.__init__).parameters


class RefusingTLSFactory(TLSMemoryBIOFactory):
    """
    TLS around a factory that may refuse a connection (C{buildProtocol}
    returns None): then the connection is closed at accept, before any TLS,
    instead of a handshake with nobody behind it.
    """

    def __init__(self, contextFactory: Any, isClient: bool, wrappedFactory: Any, clock: Any = None) -> None:
        if _FACTORY_TAKES_CLOCK:
            super().__init__(contextFactory, isClient, wrappedFactory, clock)
        else:
            super().__init__(contextFactory, isClient, wrappedFactory)

    def buildProtocol(self, addr: Any) -> Any:
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            return None
        return self.protocol(self, inner)


@implementer(IHandshakeListener)
class HandshakeGate(Protocol):
    """
    Stands for a client over TLS until its handshake is done and its
    certificate verified: only then is the client connected (attached to its
    line, given its role).  Before, the client does not exist for the line:
    it takes no place under max-clients and no writer role.  A handshake not
    done within C{timeout} seconds is aborted.

    @ivar pending: the gates of one listener whose handshake is under way
        (shared, so the listener can bound them).
    @ivar admit: called with the transport once verified; C{False} closes it.
    """

    transport: Any

    def __init__(self, client: Any, clock: Any, timeout: float, pending: set[Any],
                 admit: Callable[[Any], bool], logKey: str = "TLS", table: Any = None,
                 outgoing: bool = False) -> None:
        self.client = client
        # The handshakes under way in the whole gateway (handshakes.HandshakeTable), or None (a dial-out's).
        self.table = table
        # A dial-out: the gateway connected to the address (a server), it did not come from there.
        self.outgoing = outgoing
        # A dial-out's server's name, as its certificate must give it.
        self.hostname = ""
        # The log budget of the listener's failed handshakes (logflood).
        self.logKey = logKey
        self.clock = clock
        self.timeout = timeout
        self.pending = pending
        self.admit = admit
        self.attached = False
        self._timer: Optional[Any] = None
        # Called once the handshake is done and the peer admitted (a dial-out's backoff: see linkOnHandshake).
        self.whenAdmitted: list[Callable[[], object]] = []
        # Where it comes from, when it began (the factory's count) and its address, for
        # the listener's bound on handshakes under way (LineFactory._roomForHandshake).
        self.source: Any = None
        self.serial = 0
        self.address = ""
        self.lineName = ""
        # Why OpenSSL refused the peer's certificate (a verify callback of ours says it: ServerContextFactory).
        self.verifyProblem = ""

    def connectionMade(self) -> None:
        self.pending.add(self)
        if self.table is not None:
            self.table.add(self)
        if self.clock is not None and self.timeout > 0:
            self._timer = self.clock.callLater(self.timeout, self._expired)

    def forget(self) -> None:
        """No longer under way: out of its listener's handshakes and the gateway's."""
        self.pending.discard(self)
        if self.table is not None:
            self.table.discard(self)

    def describe(self) -> str:
        """The handshake for the log: 'from' a client's address, 'with' a server the gateway dialled."""
        address = peerName(self.transport)
        return f"with {address} (dialled out)" if self.outgoing else f"from {address}"

    def _stopTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _expired(self) -> None:
        self._timer = None
        self.forget()
        # Limited per listener, as failed handshakes: a client that keeps
        # opening stalled handshakes cannot flood the log.
        handshakes.info("{where}TLS handshake {handshake} not done in {seconds} s: disconnected",
                        where=self._where(), handshake=self.describe(), address=peerName(self.transport),
                        seconds=self.timeout, peer=self.logKey)
        self.transport.abortConnection()

    def cut(self) -> None:
        """Cut while its handshake is under way: the listener needs its place."""
        self._stopTimer()
        self.forget()
        if self.transport is not None:
            self.transport.abortConnection()

    def handshakeCompleted(self) -> None:
        self._stopTimer()
        self.forget()
        if getattr(self.transport, "disconnecting", False):
            # Done, but aborted in the doing: Twisted 22.10 checks a dial-out's
            # server name as the handshake ends, and calls this after failing it.
            return
        if not self.admit(self.transport):
            self.transport.loseConnection()
            return
        self.attached = True
        for admitted in self.whenAdmitted:
            admitted()
        self.client.makeConnection(self.transport)

    def dataReceived(self, data: bytes) -> None:
        # TLS hands on application data only after the handshake.
        if self.attached:
            self.client.dataReceived(data)

    def _where(self) -> str:
        return f"{self.lineName}: " if self.lineName else ""

    def _failure(self, reason: Failure) -> Optional[str]:
        """Why the handshake failed, for people; None if it did not fail (the peer closed, a timeout said it)."""
        if reason.check(SSL.Error):
            text = describeSSLError(reason.value)
            if "certificate verify failed" in text:
                problem = self.verifyProblem
                if not problem:
                    code = _verifyResult(getattr(self.transport, "getHandle", lambda: None)())
                    problem = VERIFY_ERRORS.get(code, f"X509 verify error {code}") if code else ""
                if problem:
                    text = f"{text} ({problem})"
            return text
        try:
            from service_identity import VerificationError
        except ImportError:  # (Twisted's tls extra brings it)
            return None
        if reason.check(VerificationError):
            # Twisted's check of a dial-out's server: a certificate of the CA, for another name.
            errors = getattr(reason.value, "errors", None) or [reason.value]
            return (f"the server's certificate is not for {self.hostname or 'the name dialled'} ("
                    + "; ".join(str(e) for e in errors)[:200] + ")")
        return None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.attached and self.transport is not None:
            failure = self._failure(reason)
            if failure is not None:
                # Said (a wrong CA, no certificate, not TLS at all, a server
                # of another name): else the person whose client fails would
                # find nothing in the log. Limited per listener, as a
                # connect flood's refusals.
                handshakes.info("{where}TLS handshake {handshake} failed: {reason}", where=self._where(),
                                handshake=self.describe(), address=peerName(self.transport), reason=failure,
                                peer=self.logKey)
        elif self.attached and reason.check(SSL.Error):
            # A record that does not decrypt, an alert: the client leaves, and the log says why.
            handshakes.info("{where}TLS connection {handshake} broken: {reason}", where=self._where(),
                            handshake=self.describe(), address=peerName(self.transport),
                            reason=describeSSLError(reason.value), peer=self.logKey)
        self._stopTimer()
        self.forget()
        if self.attached:
            self.attached = False
            self.client.connectionLost(reason)


def linkOnHandshake(backoff: Any) -> Callable[[Any], None]:
    """
    A TLS dial-out's C{prepareConnection}: the connection is a link for
    its backoff (L{serialgw.devices.backoff.CarriedBackoff}) once its
    handshake is done and the server verified.  A server that accepts and
    never handshakes (cut after C{handshake=} s) or fails the handshake is
    redialled ever more rarely, as one that closes at once; each cut
    connection counted as a link that stayed up 10 s, and it was redialled
    1 s after, for ever.
    """

    def prepare(gate: Any) -> None:
        backoff.linkMade()
        gate.whenAdmitted.append(backoff.linkUp)

    return prepare


def describeSSLError(error: Any) -> str:
    """OpenSSL's reasons, for people: 'certificate verify failed', not a list of tuples."""
    reasons = [str(entry[-1]) for entry in (error.args[0] if error.args else []) if isinstance(entry, tuple) and entry]
    return "; ".join(r for r in reasons if r) or str(error) or type(error).__name__
