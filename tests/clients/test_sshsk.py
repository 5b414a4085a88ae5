"""
Security keys (FIDO: sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)
logging in: their signatures are an authenticator's (OpenSSH's PROTOCOL.u2f),
made here by L{Authenticator}, which OpenSSH's own C{ssh-keygen -Y verify}
takes (L{OpenSSHAgreesTests}).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import subprocess
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from twisted.conch.ssh import keys, userauth
from twisted.conch.ssh.common import MP, NS
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from serialgw.config.people import UserSpec
from tests.clients import test_ssh
from tests.fakes import LogEvents
from tests.realio import need, writeTemp

ED25519_SK = b"sk-ssh-ed25519@openssh.com"
ECDSA_SK = b"sk-ecdsa-sha2-nistp256@openssh.com"


class Authenticator:
    """A FIDO authenticator holding one key, signing as PROTOCOL.u2f says (the flags' bit 0: touched)."""

    def __init__(self, kind: bytes, application: bytes = b"ssh:") -> None:
        self.kind = kind
        self.application = application
        if kind == ED25519_SK:
            self.ed = ed25519.Ed25519PrivateKey.generate()
            point = self.ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            self.blob = NS(kind) + NS(point) + NS(application)
        else:
            self.ec = ec.generate_private_key(ec.SECP256R1())
            point = self.ec.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)
            self.blob = NS(kind) + NS(b"nistp256") + NS(point) + NS(application)
        self.counter = 0

    def line(self, comment: str = "yubi") -> str:
        return f"{self.kind.decode()} {base64.b64encode(self.blob).decode()} {comment}"

    def raw(self, message: bytes) -> bytes:
        if self.kind == ED25519_SK:
            return self.ed.sign(message)
        r, s = decode_dss_signature(self.ec.sign(message, ec.ECDSA(hashes.SHA256())))
        return MP(r) + MP(s)

    def sign(self, data: bytes, flags: int = 0x01) -> bytes:
        self.counter += 1
        tail = struct.pack(">BL", flags, self.counter)
        signed = hashlib.sha256(self.application).digest() + tail + hashlib.sha256(data).digest()
        return NS(self.kind) + NS(self.raw(signed)) + tail


class SecurityKeyLoginTests(SynchronousTestCase):
    """A person's security key logs in through the gateway's checker, as an authenticator signs: touched."""

    def setUp(self) -> None:
        if not hasattr(keys.Key, "isSecurityKey"):
            raise self.skipTest("this Twisted's conch reads no security key (a keys file holding one is refused)")
        self.ed = Authenticator(ED25519_SK)
        self.ec = Authenticator(ECDSA_SK)
        self.events = LogEvents(self)

    def login(self, key: Authenticator, sign: Any = None, algorithm: bytes = b"") -> tuple[list[int], list[bytes], Any]:
        """One login on a connection of its own: the packets sent, the disconnects' reasons, the person logged in."""
        auth = test_ssh.AuthTests("test_knownKeySigned")
        auth.setUp()
        self.addCleanup(auth.server.serviceStopped)
        auth.factory.setUsers((UserSpec("yubi", (self.ed.line(),), blobs=(self.ed.blob,)),
                               UserSpec("nitro", (self.ec.line(),), blobs=(self.ec.blob,))))
        disconnects: list[bytes] = []
        auth.transport.sendDisconnect = lambda reason, desc: disconnects.append(desc)  # type: ignore[attr-defined,method-assign]
        algorithm = algorithm or key.kind
        head = NS(b"con1") + NS(b"ssh-connection") + NS(b"publickey")
        signed = NS(b"session") + bytes((userauth.MSG_USERAUTH_REQUEST,)) + head + b"\xff" + NS(algorithm) + NS(key.blob)
        signature = (sign or key.sign)(signed)
        auth.server.ssh_USERAUTH_REQUEST(head + b"\xff" + NS(algorithm) + NS(key.blob) + NS(signature))
        person = getattr(auth.transport, "avatar", None)
        return [t for t, _ in auth.transport.packets], disconnects, person.login.user if person else None

    def test_authenticatorSignatureLogsIn(self) -> None:
        """An Ed25519 and an ECDSA security key, touched, log in as their person."""
        self.assertEqual(self.login(self.ed), ([userauth.MSG_USERAUTH_SUCCESS], [], "yubi"))
        self.assertEqual(self.login(self.ec), ([userauth.MSG_USERAUTH_SUCCESS], [], "nitro"))

    def test_notTouchedRefused(self) -> None:
        """A signature whose flags say nobody touched the key (a program on the person's computer having it sign) is refused, as sshd refuses it by default, said, the connection kept: conch never looked at the flags, and it logged in."""
        for key in (self.ed, self.ec):
            self.assertEqual(self.login(key, lambda data, key=key: key.sign(data, flags=0)),
                             ([userauth.MSG_USERAUTH_FAILURE], [], None))
        # (The key asked as another algorithm, ssh-ed25519: conch still reads the signature as the key's.)
        self.assertEqual(self.login(self.ed, lambda data: NS(b"ssh-ed25519") + self.ed.sign(data, flags=0)[30:],
                                    algorithm=b"ssh-ed25519")[2], None)
        said = self.events.at(LogLevel.warn)
        self.assertEqual([e["reason"] for e in said][:2], ["the security key was not touched (user presence)"] * 2)

    def test_otherSignaturesRefused(self) -> None:
        """A signature over other data, the key's own over the data itself (not an authenticator's), one by another application's key, or one with its flags cut, logs nobody in."""
        other = Authenticator(ED25519_SK, application=b"ssh:other")
        forgeries = [
            lambda data: self.ed.sign(data + b"x"),
            lambda data: NS(self.ed.kind) + NS(self.ed.raw(data)) + struct.pack(">BL", 1, 1),
            lambda data: self.ed.sign(data)[:-1],
            lambda data: NS(self.ed.kind) + NS(other.raw(hashlib.sha256(b"ssh:").digest() + b"\x01\0\0\0\1"
                                                         + hashlib.sha256(data).digest())) + b"\x01\0\0\0\1",
        ]
        for forge in forgeries:
            packets, _, person = self.login(self.ed, forge)
            self.assertEqual((person, userauth.MSG_USERAUTH_SUCCESS in packets), (None, False))


class OpenSSHAgreesTests(SynchronousTestCase):
    def test_authenticatorAsOpenSSHVerifies(self) -> None:
        """The tests' authenticator signs as OpenSSH's own check expects (ssh-keygen -Y verify of an SSHSIG file signature, made by each kind of key): what the tests above sign is what a security key signs."""
        keygen = need("ssh-keygen")
        message = b"serialgw security key\n"
        signed = b"SSHSIG" + NS(b"file") + NS(b"") + NS(b"sha512") + NS(hashlib.sha512(message).digest())
        for kind in (ED25519_SK, ECDSA_SK):
            key = Authenticator(kind)
            signature = key.sign(signed)
            wrapped = (b"SSHSIG" + struct.pack(">L", 1) + NS(key.blob) + NS(b"file") + NS(b"") + NS(b"sha512")
                       + NS(signature))
            armoured = base64.encodebytes(wrapped).decode()
            signatureFile = writeTemp(self, f"-----BEGIN SSH SIGNATURE-----\n{armoured}-----END SSH SIGNATURE-----\n")
            allowed = writeTemp(self, f"someone {key.line()}\n")
            done = subprocess.run([keygen, "-Y", "verify", "-f", allowed, "-I", "someone", "-n", "file",
                                   "-s", signatureFile], input=message, capture_output=True, timeout=120,
                                  env={**os.environ, "LC_ALL": "C"})
            self.assertEqual((done.returncode, done.stdout[:14]), (0, b'Good "file" si'), done.stderr)
