"""
TLS for listeners and dial-outs: certificates from PEM files, client
certificates required from a CA and restricted by subject CN, servers
verified by name (service-identity, through Twisted's optionsForClientTLS).
"""

from __future__ import annotations

from typing import Any

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.logger import Logger

from serialgw.config import TLSSpec

log = Logger()


class TLSError(Exception):
    """Certificates could not be loaded; the message names the file."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSError(f"cannot read {what} {path!r}: {e.strerror}") from None


def _privateCertificate(spec: TLSSpec) -> ssl.PrivateCertificate:
    try:
        return ssl.PrivateCertificate.loadPEM(_read(spec.cert, "certificate") + b"\n" + _read(spec.key, "key"))
    except TLSError:
        raise
    except Exception as e:
        raise TLSError(f"cannot load certificate {spec.cert!r} with key {spec.key!r}: {e}") from None


def _authorities(path: str) -> list[ssl.Certificate]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        return [
            ssl.Certificate.loadPEM(c.public_bytes(Encoding.PEM))
            for c in x509.load_pem_x509_certificates(_read(path, "CA file"))
        ]
    except TLSError:
        raise
    except Exception as e:
        raise TLSError(f"cannot load CA file {path!r}: {e}") from None


class ServerContextFactory:
    """
    A server context: our certificate; with a CA, client certificates are
    required and verified; with subjects, the client certificate's CN must
    be one of them, or the handshake fails.
    """

    def __init__(self, spec: TLSSpec) -> None:
        self.spec = spec
        certificate = _privateCertificate(spec)
        options: Any
        if spec.ca:
            options = ssl.CertificateOptions(
                privateKey=certificate.privateKey.original,
                certificate=certificate.original,
                verify=True,
                caCerts=[c.original for c in _authorities(spec.ca)],
                requireCertificate=True,
            )
        else:
            options = ssl.CertificateOptions(
                privateKey=certificate.privateKey.original, certificate=certificate.original
            )
        self._context = options.getContext()
        if spec.subjects:
            allowed = set(spec.subjects) | set(spec.readOnlySubjects)

            def verify(connection: Any, x509: Any, errno: int, depth: int, ok: int) -> bool:
                if not ok:
                    return False
                if depth > 0:
                    return True
                cn = x509.get_subject().commonName
                if cn not in allowed:
                    log.warn("TLS client certificate {subject!r} refused: not in {allowed}",
                             subject=cn, allowed=sorted(allowed))
                    return False
                return True

            self._context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)

    def getContext(self) -> Any:
        return self._context


def clientOptions(spec: TLSSpec) -> Any:
    """Client options verifying the server as C{spec.hostname}."""
    authorities = _authorities(spec.ca)
    trust = ssl.trustRootFromCertificates(authorities)
    client = _privateCertificate(spec) if spec.cert else None
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
