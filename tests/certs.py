"""
A throwaway CA with server and client certificates, made at test time.
"""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


class Authority:
    """A CA in C{directory}; C{issue()} writes a certificate and key signed by it."""

    def __init__(self, directory: str, name: str = "serialgw test CA") -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.path = _write(os.path.join(directory, f"{name.replace(' ', '-')}.pem"),
                           self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, dns: str = "", withCN: bool = True, days: float = 0) -> tuple[str, str]:
        """
        Write C{cn}.pem and C{cn}.key; return their paths (C{withCN=False}:
        C{cn} is the O, there is no CN; C{days}: valid from then on for two
        days, a negative number: expired).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn) if withCN else x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if dns:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        certPath = _write(os.path.join(self.directory, f"{cn}.pem"), cert.public_bytes(serialization.Encoding.PEM))
        # (Readable by its owner only, as a key should be: 0644 is warned about.)
        keyPath = _write(
            os.path.join(self.directory, f"{cn}.key"),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        os.chmod(keyPath, 0o600)
        return certPath, keyPath
