"""
The SSH host key file read at start (L{loadHostKey}): what is said of a
file that holds no key it can read.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.sshhostkey import SSHError, loadHostKey


class NotAKeyTests(SynchronousTestCase):
    def write(self, data: bytes) -> str:
        path = self.mktemp()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return path

    def test_notAKeyNotQuoted(self) -> None:
        """A host key path that leads to another secret (a password hash) is refused without a word of what it holds."""
        shadow = b"root:$6$saltsalt$" + b"h" * 86 + b":19000:0:99999:7:::\n"
        path = self.write(shadow)
        self.assertEqual(str(self.assertRaises(SSHError, loadHostKey, path)),
                         f"cannot read SSH host key {path!r}: it holds no private key (OpenSSH or PEM)")

    def test_bigFileSaidShort(self) -> None:
        """A large file that is no key (1 MiB of zeros) is refused in one short line, not its bytes quoted (4 MB)."""
        path = self.write(b"\0" * (1 << 20))
        e = self.assertRaises(SSHError, loadHostKey, path)
        self.assertEqual(str(e), f"cannot read SSH host key {path!r}: it holds no private key (OpenSSH or PEM)")

    def test_brokenKeySaidShort(self) -> None:
        """A key of a known kind that is broken inside is refused with conch's reason (short: it quotes no file)."""
        path = self.write(b"-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n")
        e = self.assertRaises(SSHError, loadHostKey, path)
        self.assertTrue(str(e).startswith(f"cannot read SSH host key {path!r}: "), str(e))
        self.assertLess(len(str(e)), 200 + len(path))
