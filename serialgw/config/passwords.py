"""
Password hashes for SSH password logins (a C{[users.NAME]} table's
C{password}): hashes only, never a password in clear.

Two kinds are taken:

  - C{$scrypt$ln=15,r=8,p=1$SALT$HASH} (SALT and HASH in base64 without
    padding, the PHC string format's way): what C{python -m
    serialgw.hashpw} makes, with the standard library's C{hashlib.scrypt}
    (2**ln blocks of 128 * r bytes: 32 MiB and about 0.1 s of one core by
    default);
  - C{$6$SALT$HASH} and C{$6$rounds=N$SALT$HASH}, SHA-512-crypt, what
    conserver's passwd file, C{/etc/shadow} of old and C{mkpasswd -m
    sha-512} or C{openssl passwd -6} hold: checked by L{sha512Crypt}, the
    algorithm written out here (Python's C{crypt} module is gone in 3.13,
    and no new dependency is needed for it).

Others are refused by name (yescrypt C{$y$}, bcrypt C{$2b$}, MD5-crypt
C{$1$}, ...), as is what looks like a password in clear.  Parsing here is
quick; L{PasswordHash.verify} is not (it is meant to be slow): the SSH
listener runs it off the gateway's thread, a bounded number at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from typing import Optional

import attrs

# scrypt's costs: 2**ln blocks (N), block size r, parallelism p.  Made: ln=15, r=8, p=1 (32 MiB,
# about 0.1 s).  Taken: at most MAX_SCRYPT_MEMORY bytes and MAX_SCRYPT_WORK blocks of 128 bytes (p * r
# * N: 64 times the default, seconds of a core), so that a hash in the file cannot make each login
# attempt take minutes or the gateway's memory.
SCRYPT_LN, SCRYPT_R, SCRYPT_P = 15, 8, 1
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
MAX_SCRYPT_WORK = 64 * 8 * 2**15
SALT_BYTES = 16
# SHA-512-crypt's rounds: 5000 when the hash names none (as crypt(3): 4 ms of Python here); at most
# MAX_SHA_ROUNDS (about 0.1 s), as a hash asking for more would hold a thread for minutes at each
# attempt (crypt(3) takes up to 999999999).  The rounds are Python's: they hold the interpreter, and
# the gateway's thread waited up to 5 ms (the switch interval) each time it woke while one ran, so
# they let it go every SHA_YIELD_EVERY rounds (see sha512Crypt).
SHA_ROUNDS = 5000
MIN_SHA_ROUNDS = 1000
MAX_SHA_ROUNDS = 100000
SHA_YIELD_EVERY = 64
# The longest password checked, bytes (libxcrypt's crypt(3) takes 512): SHA-512-crypt's work grows
# with the square of its length, and an SSH client may send 256 KiB.
MOST_PASSWORD = 1024

_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SCRYPT = re.compile(r"\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
_SHA512 = re.compile(r"\$6\$(?:rounds=(\d{1,9})\$)?([^$]*)\$([./0-9A-Za-z]{86})")

# Kinds refused by their prefix, each said by name.
_OTHERS = {
    "$y$": "yescrypt", "$gy$": "gost-yescrypt", "$7$": "scrypt in crypt(3)'s form", "$2a$": "bcrypt",
    "$2b$": "bcrypt", "$2y$": "bcrypt", "$1$": "MD5-crypt", "$5$": "SHA-256-crypt", "$argon2": "argon2",
    "$pbkdf2": "PBKDF2", "$md5": "Sun MD5-crypt", "$sha1$": "SHA-1-crypt",
}
MAKE_ONE = "make one with: python3 -m serialgw.hashpw (or mkpasswd -m sha-512)"


class BadHash(ValueError):
    """Not a password hash taken here; the message says why, quoting no more than the hash's kind."""


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _unb64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


@attrs.frozen
class PasswordHash:
    """One hash, read: its kind, costs, salt and digest (L{parse} makes it)."""

    kind: str  # "scrypt" or "sha512-crypt"
    text: str = attrs.field(repr=False)
    salt: bytes = attrs.field(repr=False)
    digest: bytes = attrs.field(repr=False)
    ln: int = 0
    r: int = 0
    p: int = 0
    rounds: int = 0

    def verify(self, password: bytes) -> bool:
        """Whether C{password} is the one hashed (slow, by design: run it off the gateway's thread)."""
        if self.kind == "scrypt":
            made = hashlib.scrypt(password, salt=self.salt, n=2**self.ln, r=self.r, p=self.p,
                                  maxmem=2 * 128 * self.r * 2**self.ln + 1024 * 1024, dklen=len(self.digest))
        else:
            made = sha512Crypt(password, self.salt, self.rounds)
        return hmac.compare_digest(made, self.digest)

    def describe(self) -> str:
        """Its kind and costs, for people (C{scrypt ln=15,r=8,p=1}; never its salt or digest)."""
        if self.kind == "scrypt":
            return f"scrypt ln={self.ln},r={self.r},p={self.p}"
        return f"sha512-crypt rounds={self.rounds}"


def parse(text: str) -> PasswordHash:
    """A password hash read; L{BadHash} saying what is wrong (quoting at most its kind's prefix)."""
    if not text.startswith("$"):
        raise BadHash(f"not a password hash (it does not start with '$'): a password in clear is not taken; {MAKE_ONE}")
    match = _SCRYPT.fullmatch(text)
    if match is not None:
        ln, r, p = (int(g) for g in match.groups()[:3])
        try:
            salt, digest = _b64(match[4]), _b64(match[5])
        except ValueError:
            raise BadHash("an scrypt hash whose salt or hash is not base64") from None
        if not 1 <= ln <= 24 or not 1 <= r <= 64 or not 1 <= p <= 16:
            raise BadHash(f"an scrypt hash with ln={ln},r={r},p={p}: expected ln 1 to 24, r 1 to 64, p 1 to 16")
        if 128 * r * 2**ln > MAX_SCRYPT_MEMORY or p * r * 2**ln > MAX_SCRYPT_WORK:
            raise BadHash(f"an scrypt hash with ln={ln},r={r},p={p}: over {MAX_SCRYPT_MEMORY // 2**20} MiB or "
                          f"{MAX_SCRYPT_WORK // (SCRYPT_R * 2**SCRYPT_LN)} times the cost of ln={SCRYPT_LN},r={SCRYPT_R},"
                          f"p={SCRYPT_P} a login attempt; {MAKE_ONE}")
        if len(salt) < 8 or len(digest) < 16:
            raise BadHash(f"an scrypt hash with a salt of {len(salt)} byte(s) and a hash of {len(digest)}: expected "
                          "at least 8 and 16")
        return PasswordHash("scrypt", text, salt, digest, ln=ln, r=r, p=p)
    match = _SHA512.fullmatch(text)
    if match is not None:
        rounds = SHA_ROUNDS if match[1] is None else int(match[1])
        salt = match[2].encode("utf-8")
        if len(salt) > 16:
            raise BadHash("a SHA-512-crypt hash ($6$) whose salt is over 16 bytes")
        if not MIN_SHA_ROUNDS <= rounds <= MAX_SHA_ROUNDS:
            raise BadHash(f"a SHA-512-crypt hash ($6$) of {rounds} rounds: taken here from {MIN_SHA_ROUNDS} to "
                          f"{MAX_SHA_ROUNDS} (each login attempt costs them); {MAKE_ONE}")
        return PasswordHash("sha512-crypt", text, salt, _crypt64Decode(match[3]), rounds=rounds)
    if text.startswith("$scrypt$"):
        raise BadHash("an scrypt hash not of the form $scrypt$ln=N,r=N,p=N$SALT$HASH (base64, no padding)")
    if text.startswith("$6$"):
        raise BadHash("a SHA-512-crypt hash not of the form $6$SALT$HASH or $6$rounds=N$SALT$HASH (86 characters "
                      "of hash)")
    for prefix, name in _OTHERS.items():
        if text.startswith(prefix):
            raise BadHash(f"a {name} hash ({prefix}...): not taken here (scrypt and SHA-512-crypt are); {MAKE_ONE}")
    raise BadHash(f"not a password hash taken here (scrypt, $scrypt$..., or SHA-512-crypt, $6$...); {MAKE_ONE}")


def make(password: bytes, ln: int = SCRYPT_LN, salt: Optional[bytes] = None) -> str:
    """An scrypt hash of C{password}, with a random salt (slow, by design)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(password, salt=salt, n=2**ln, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=2 * 128 * SCRYPT_R * 2**ln + 1024 * 1024, dklen=32)
    return f"$scrypt$ln={ln},r={SCRYPT_R},p={SCRYPT_P}${_unb64(salt)}${_unb64(digest)}"


# SHA-512-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", the algorithm glibc's
# crypt(3) runs for $6$), written from its specification.

# The order its 64 bytes are written in: 21 groups of three, then the last byte alone.
_ORDER = [(j * 22 % 63, (j * 22 + 21) % 63, (j * 22 + 42) % 63) for j in range(21)]


def _crypt64Decode(text: str) -> bytes:
    """The 64 bytes of a SHA-512-crypt hash's 86 characters (the inverse of L{_crypt64Encode})."""
    out = bytearray(64)
    values = [_CRYPT64.index(c) for c in text]
    for n, group in enumerate(_ORDER):
        w = sum(v << (6 * i) for i, v in enumerate(values[4 * n:4 * n + 4]))
        out[group[0]], out[group[1]], out[group[2]] = w >> 16 & 0xFF, w >> 8 & 0xFF, w & 0xFF
    w = values[84] | values[85] << 6
    if w > 0xFF:
        raise BadHash("a SHA-512-crypt hash ($6$) whose last characters are not a hash's")
    out[63] = w
    return bytes(out)


def _crypt64Encode(raw: bytes) -> str:
    chars = []
    for a, b, c in _ORDER:
        w = raw[a] << 16 | raw[b] << 8 | raw[c]
        chars += [_CRYPT64[w >> (6 * i) & 0x3F] for i in range(4)]
    chars += [_CRYPT64[raw[63] & 0x3F], _CRYPT64[raw[63] >> 6]]
    return "".join(chars)


def sha512Crypt(password: bytes, salt: bytes, rounds: int = SHA_ROUNDS) -> bytes:
    """The 64 bytes SHA-512-crypt makes of C{password} with C{salt} (at most 16 bytes) and C{rounds}."""
    sha = hashlib.sha512
    salt = salt[:16]
    n = len(password)
    b = sha(password + salt + password).digest()
    a = sha(password + salt + b * (n // 64) + b[:n % 64])
    bits = n
    while bits:
        a.update(b if bits & 1 else password)
        bits >>= 1
    c = a.digest()
    # (The password n times: fed, not made: password * n held n * n bytes, 900 MB for 30000.)
    digest = sha()
    for _ in range(n):
        digest.update(password)
    dp = digest.digest()
    p = (dp * (n // 64 + 1))[:n]
    ds = sha(salt * (16 + c[0])).digest()
    s = ds[:len(salt)]
    # The rounds' inputs: the odd/even and every-third/seventh pattern of the specification.
    for i in range(rounds):
        if not i % SHA_YIELD_EVERY:
            # The interpreter let go (a thread's rounds held the gateway's thread 5 ms at a time:
            # a client's password attempts in a row made every line's round trip 10 ms, seen live).
            time.sleep(0)
        h = sha(p if i & 1 else c)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(c if i & 1 else p)
        c = h.digest()
    return c


def sha512CryptText(password: bytes, salt: str, rounds: Optional[int] = None) -> str:
    """The whole C{$6$...} hash crypt(3) would write (C{rounds=} in it when given)."""
    head = "$6$" + (f"rounds={rounds}$" if rounds is not None else "") + salt[:16]
    return f"{head}${_crypt64Encode(sha512Crypt(password, salt.encode('utf-8'), rounds or SHA_ROUNDS))}"
