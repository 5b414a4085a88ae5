"""
OpenSSH public keys as the configuration names them: key lines
(authorized_keys format, without options) for the C{[users.NAME]} tables,
and the single-line C{--authorized-keys} / C{--readonly-keys} files.  An
error names the file (or table), the line and what is wrong with the key.
"""

from __future__ import annotations

import base64
from typing import Optional

import attrs
from twisted.conch.ssh import keys

from serialgw.config.paths import NotRegular, openRegular
from serialgw.config.specs import ConfigError, UserSpec, quote
from serialgw.config.where import fileLines

# Key types a public key line may start with (OpenSSH's names).
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
MAX_KEYS_FILE = 1024 * 1024
# Keys a file (or a [users.NAME] table) may hold: each is read at every reload, about 28 us, twice:
# the file off the gateway's thread, then the key ring on it.  A person's 1 MiB file of 12633 keys
# held every line 0.35 s of CPU at each reload (0.6 s under load; at 115200 baud, 7 KB of a line's
# output for a 4 KB tty buffer); 1024 keys, 27 ms.
MAX_KEYS = 1024


def fingerprint(key: keys.Key) -> str:
    """A key's fingerprint as OpenSSH prints it: C{SHA256:...}."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


@attrs.frozen
class PublicKey:
    """One public key line: the key (as its wire blob), its comment, its fingerprint."""

    blob: bytes
    comment: str
    fingerprint: str
    text: str


# How much of a line that is no key an error quotes: enough to recognise
# an options list or a mistyped key type, too little to carry a secret into
# the log when the path leads somewhere else (a symlink to /etc/shadow
# would show its user name and hash method, not the hash).
QUOTED = 16


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:64]


def readPublicKeys(text: str, source: str, most: Optional[int] = MAX_KEYS) -> list[PublicKey]:
    """
    OpenSSH public key lines (C{TYPE BASE64 [COMMENT]}); blank lines and
    C{#} comments are skipped.  Options (C{from=}, C{command=}, ...) are
    refused rather than ignored: a restriction must not silently vanish.
    An error names C{source} and the line; so does a key past C{most}
    (None: no bound, for the keys a file or a table gave already).
    """
    found: list[PublicKey] = []
    for number, raw in enumerate(fileLines(text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(found) == most:
            raise ConfigError(f"{source}:{number}: more than {most} keys (each is read at every reload, "
                              "on the gateway's thread)")
        fields = line.split(None, 2)
        if fields[0] not in KEY_TYPES:
            raise ConfigError(
                f"{source}:{number}: expected a public key (TYPE BASE64 [COMMENT], TYPE one of "
                f"{', '.join(sorted(KEY_TYPES))}), not {quote(printable(line[:QUOTED]))}...; "
                "authorized_keys options (from=, command=, ...) are not supported"
            )
        try:
            blob = base64.b64decode(fields[1] if len(fields) > 1 else "", validate=True)
            key = keys.Key.fromString(blob)
        except Exception:
            raise ConfigError(f"{source}:{number}: cannot read the {fields[0]} key") from None
        if key.sshType().decode() != fields[0]:
            raise ConfigError(f"{source}:{number}: the key says {key.sshType().decode()}, the line {fields[0]}")
        comment = printable(fields[2].strip()) if len(fields) > 2 else ""
        found.append(PublicKey(key.blob(), comment, fingerprint(key), f"{fields[0]} {fields[1]}"))
    return found


def readKeysFile(path: str) -> list[PublicKey]:
    """The public keys in a file (authorized_keys format); ConfigError names the file."""
    try:
        # Not waited on: a FIFO or a device there (a keys file in a person's
        # home) would stop the reactor at a reload; not opened either.
        with open(openRegular(path), "rb") as f:
            raw = f.read(MAX_KEYS_FILE + 1)
    except NotRegular:
        raise ConfigError(f"keys file {quote(path)} is not a regular file") from None
    except OSError as e:
        raise ConfigError(f"cannot read keys file {quote(path)}: {e.strerror}") from None
    if len(raw) > MAX_KEYS_FILE:
        raise ConfigError(f"keys file {quote(path)} is over {MAX_KEYS_FILE} bytes")
    return readPublicKeys(raw.decode("utf-8", "replace"), path)


def usersFromFile(path: str) -> list[UserSpec]:
    """
    The people in an authorized_keys file (single-line mode): each key's
    comment names its person (its fingerprint when it has none).
    """
    people: dict[str, list[str]] = {}
    for key in readKeysFile(path):
        if key.comment == "*":
            # The line's write/read lists are these names, and "*" there means every user.
            raise ConfigError(f"keys file {quote(path)}: key {key.fingerprint} has the comment '*', which would "
                              "name every user (a read-only key could type): give it another comment")
        people.setdefault(key.comment or key.fingerprint, []).append(key.text)
    return [UserSpec(name, tuple(texts)) for name, texts in people.items()]
