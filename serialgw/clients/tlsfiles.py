"""
The files TLS is given: a certificate and its key, a CA bundle, each a
PEM file read whole and bounded (a regular file, at most
L{MAX_PEM_FILE}), checked (a key that is not the certificate's, one with a
passphrase, cert= and key= swapped) and refused naming the file
(L{TLSError}); a certificate's validity period, and the warnings about a
file (expired, a key others may read) said once for each file and
content, not once a listener.

Apart from L{serialgw.clients.tls} (contexts, verification, the
handshake gate) because it is only about files: C{--check} reads them
too, without making any context.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Optional

from twisted.internet import ssl
from twisted.logger import Logger

from serialgw.config.listenerspecs import TLSSpec
from serialgw.config.paths import NotRegular, openRegular

log = Logger()


class TLSError(Exception):
    """Certificates could not be loaded; the message names the file."""


# A PEM file we read whole: a certificate, a key, a CA bundle (Debian's
# ca-certificates.crt is 220 KB).
MAX_PEM_FILE = 4 << 20


def readPem(path: str, what: str) -> bytes:
    """
    A PEM file, read on the reactor (a reload): a regular file of at most
    MAX_PEM_FILE bytes.  A FIFO there hung the gateway; /dev/zero filled
    its memory.
    """
    try:
        # Not opened unless a regular file: a tty there would become the
        # gateway's controlling terminal.
        with open(openRegular(path), "rb") as f:
            data = f.read(MAX_PEM_FILE + 1)
    except NotRegular:
        raise TLSError(f"{what} {path!r} is not a regular file") from None
    except OSError as e:
        raise TLSError(f"cannot read {what} {path!r}: {e.strerror}") from None
    if len(data) > MAX_PEM_FILE:
        raise TLSError(f"{what} {path!r} is larger than {MAX_PEM_FILE >> 20} MiB")
    return data


def privateCertificate(spec: TLSSpec) -> ssl.PrivateCertificate:
    """
    The certificate (the first in its file) and its key, read by
    cryptography: OpenSSL's own reading of a passphrase-protected key asked
    for the passphrase on the gateway's terminal, holding the start (or a
    reload, and every line) until someone typed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import crypto

    certData, keyData = readPem(spec.cert, "certificate"), readPem(spec.key, "key")
    try:
        certificate = x509.load_pem_x509_certificates(certData)[0]
    except Exception:
        if b"PRIVATE KEY-----" in certData and b"-----BEGIN CERTIFICATE-----" in keyData:
            raise TLSError(f"certificate {spec.cert!r} holds no PEM certificate but a private key, and key "
                           f"{spec.key!r} a certificate: are cert= and key= swapped?") from None
        raise TLSError(f"certificate {spec.cert!r} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(keyData, None)
    except TypeError:
        raise TLSError(f"key {spec.key!r} is encrypted (a passphrase): the gateway cannot ask for one; give it the "
                       "key unencrypted, readable by it only") from None
    except Exception:
        raise TLSError(f"key {spec.key!r} holds no PEM private key") from None
    try:
        st = os.stat(spec.key)
    except OSError:
        st = None
    mode = st.st_mode & 0o777 if st is not None else 0
    if mode & 0o004 and _firstTime(("mode", spec.key, _stamp(st), mode)):
        log.warn("key {path!r} may be read by every user (mode {mode:04o}): chmod o-r it", path=spec.key, mode=mode)
    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*public) != key.public_key().public_bytes(*public):
        raise TLSError(f"key {spec.key!r} is not the key of certificate {spec.cert!r}")
    try:
        return ssl.PrivateCertificate.fromCertificateAndKeyPair(
            ssl.Certificate(crypto.X509.from_cryptography(certificate)),
            ssl.KeyPair(crypto.PKey.from_cryptography_key(key)))  # type: ignore[arg-type]
    except Exception as e:
        raise TLSError(f"cannot load certificate {spec.cert!r} with key {spec.key!r}: {e}") from None


def validityProblem(path: str) -> Optional[str]:
    """
    Why the certificate in C{path} (its first) would be refused now by TLS
    peers: expired, or not valid yet (a clock, or a certificate issued
    for later); None if it is valid or cannot be read (loading says why).
    """
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificates(readPem(path, "certificate"))[0]
    except Exception:
        return None
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    who = f"certificate {path!r}" + (f" (CN {names[0].value!r})" if names else "")
    now = datetime.datetime.now(datetime.UTC)
    notBefore, notAfter = validity(certificate)
    if now > notAfter:
        return (f"{who} expired on {notAfter:%Y-%m-%d %H:%M} UTC: TLS peers will refuse it "
                "(certificate expired)")
    if now < notBefore:
        return (f"{who} is not valid before {notBefore:%Y-%m-%d %H:%M} UTC: TLS peers will "
                "refuse it (certificate is not yet valid; is this machine's clock right?)")
    return None


def validity(certificate: Any) -> tuple[datetime.datetime, datetime.datetime]:
    """
    A cryptography certificate's validity period, as aware UTC times.
    cryptography 42 added C{not_valid_before_utc}/C{not_valid_after_utc};
    the releases before it (41 is Ubuntu 24.04's) have only the naive
    C{not_valid_before}/C{not_valid_after}, in UTC: every TLS listener
    failed to start there ('no attribute not_valid_after_utc').
    """
    if hasattr(certificate, "not_valid_after_utc"):
        return certificate.not_valid_before_utc, certificate.not_valid_after_utc
    utc = datetime.UTC
    return certificate.not_valid_before.replace(tzinfo=utc), certificate.not_valid_after.replace(tzinfo=utc)


# What the warnings about a certificate or key file said (see _firstTime).
_said: dict[tuple[Any, ...], None] = {}
SAID_KEPT = 1024


def _stamp(st: Optional[os.stat_result]) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) if st is not None else ()


def _firstTime(said: tuple[Any, ...]) -> bool:
    """
    Whether a warning about a file is said for the first time: once a file
    and content (its stamp), not once a listener, so that a farm whose 1000
    listeners (or dial-outs) share one certificate says it once, not 1000
    times at every start and reload; a file rewritten is said again.
    C{--check} says it every time (it asks L{validityProblem}).
    """
    if said in _said:
        return False
    if len(_said) >= SAID_KEPT:
        _said.clear()
    _said[said] = None
    return True


def warnValidity(path: str) -> None:
    """The certificate in C{path} expired or not valid yet: warned, once for the file and its content."""
    problem = validityProblem(path)
    if problem is not None:
        try:
            st: Optional[os.stat_result] = os.stat(path)
        except OSError:
            st = None
        if _firstTime(("validity", path, _stamp(st), problem)):
            log.warn("{problem}", problem=problem)


def caCertificates(path: str) -> list[ssl.Certificate]:
    """The certificates of a CA file (every one in it); a L{TLSError} naming it when there is none."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    data = readPem(path, "CA file")
    try:
        found = x509.load_pem_x509_certificates(data)
    except Exception:
        # (cryptography's own words: 'Unable to load PEM file. See https://... MalformedFraming'.)
        but = " but a private key" if b"PRIVATE KEY-----" in data else ""
        raise TLSError(f"CA file {path!r} holds no PEM certificate{but}") from None
    try:
        return [ssl.Certificate.loadPEM(c.public_bytes(Encoding.PEM)) for c in found]
    except Exception as e:
        raise TLSError(f"cannot load CA file {path!r}: {e}") from None
