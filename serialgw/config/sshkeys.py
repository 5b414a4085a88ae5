"""
OpenSSH public keys as the configuration names them: key lines
(authorized_keys format, without options) for the C{[users.NAME]} tables,
and the single-line C{--authorized-keys} / C{--readonly-keys} files.  An
error names the file (or table), the line and what is wrong with the key.
"""

from __future__ import annotations

import base64
import os
import queue
import threading
import time
from typing import Optional

import attrs
from twisted.conch.ssh import keys

from serialgw.config.paths import NotRegular, openRegular
from serialgw.config.people import UserSpec
from serialgw.config.specs import ConfigError, quote
from serialgw.config.where import fileLines

# Key types a public key line may start with (OpenSSH's names).
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
MAX_KEYS_FILE = 1024 * 1024
# Keys a file (or a [users.NAME] table) may hold: each is read (26 us an ed25519 key, 69 an
# ecdsa-sha2-nistp521 one) off the gateway's thread, at every reload its file changed (a table's, at
# every reload); the key ring is made of what was read.  (It read each key again on the gateway's
# thread: a person's 1 MiB file of 12633 keys held every line 0.35 s of CPU at each reload; 50
# people of 1024 keys, 1.2 s.)
MAX_KEYS = 1024
# Keys read between two moments the reading lets another thread run (about 1 ms).
YIELD_EVERY = 32


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
    # Its line in the file, and its comment whole (C{comment} is cut: a person's name in single-line mode).
    line: int = 0
    whole: str = ""


# How much of a line that is no key an error quotes: enough to recognise
# an options list or a mistyped key type, too little to carry a secret into
# the log when the path leads somewhere else (a symlink to /etc/shadow
# would show its user name and hash method, not the hash).
QUOTED = 16


# The most characters of a name a client gives (an SSH user name, a certificate's CN, a request's) a
# message shows; past them its length is said.
NAME_SHOWN = 64


def printable(text: str) -> str:
    """
    A name a client gave, for a message: what cannot be shown as C{?}; its
    first L{NAME_SHOWN} characters, and past them its length
    (C{bbb...... (1048576 characters)}: it was cut without a word).
    """
    # (Its first 64 characters only are looked at: a client's 256 KiB name, a global request's each
    # time, cost 7 ms of the gateway's thread, a person flooding them 14% of a core.)
    shown = "".join(c if c.isprintable() else "?" for c in text[:NAME_SHOWN])
    return shown if len(text) <= NAME_SHOWN else f"{shown}... ({len(text)} characters)"


def printableBytes(raw: bytes, encoding: str = "utf-8") -> str:
    """
    A name a client sent (bytes: an SSH user name, a request's), for a
    message as L{printable} says it, its length past L{NAME_SHOWN}
    characters said in bytes (C{... (1048576 bytes)}); only its first
    4 * NAME_SHOWN bytes are read.
    """
    text = raw[:4 * NAME_SHOWN].decode(encoding, "replace")
    if len(text) <= NAME_SHOWN and len(raw) <= 4 * NAME_SHOWN:
        return printable(text)
    return f"{printable(text[:NAME_SHOWN])}... ({len(raw)} bytes)"


def asciiName(raw: bytes) -> str:
    """
    A name the protocol says is ASCII (an SSH method, service, request or
    channel type, a key's algorithm), as a client sent it, for the log: its
    first L{NAME_SHOWN} bytes, printable ASCII as it is and every other byte
    (a quote and a backslash too) as C{\\xNN}, and past them its length in
    bytes (C{\\xff\\xfe}, C{AAA... (100000 bytes)}).  Read as ASCII with
    replacement, what was sent could not be told: every byte past 127 came
    out as U+FFFD, a control byte as C{?}.
    """
    shown = "".join(chr(b) if 32 <= b < 127 and b not in (39, 92) else f"\\x{b:02x}" for b in raw[:NAME_SHOWN])
    return shown if len(raw) <= NAME_SHOWN else f"{shown}... ({len(raw)} bytes)"


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
            raise ConfigError(f"{source}:{number}: more than {most} keys (each is read at the reloads that "
                              "find it changed, up to 70 us of CPU)")
        if len(found) % YIELD_EVERY == YIELD_EVERY - 1:
            # The interpreter let go now and then: read on a reload's thread,
            # the gateway's thread waited for it 5 ms (the switch interval) at
            # each wake-up (p50 of a 1 ms tick's lateness 5.3 ms, now 0.7 ms,
            # reading 50 files of 1024 keys: 1.8 s, as before).
            time.sleep(0)
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
        whole = fields[2].strip() if len(fields) > 2 else ""
        found.append(PublicKey(key.blob(), printable(whole), fingerprint(key), f"{fields[0]} {fields[1]}", number, whole))
    return found


def wallClock() -> int:
    """The time (ns) as a file's change time says it (a test's own)."""
    return time.time_ns()


# A keys file changed less than this (ns) before it was read is read again
# next time: a change within the same tick of the kernel's clock, to the
# same size, would leave its times and size as they were (git's "racy" files).
RACY = 1_000_000_000


def monotonic() -> float:
    """The clock of the reload's wait for its keys files (a test's own)."""
    return time.monotonic()


# Seconds a reload waits for its keys files (all read at once, each in a thread of its own): one not
# read by then (a hung file system: a person's home on NFS) gives its person no keys at this reload.
READ_LIMIT = 5.0
# Keys files read at once, at most.
MAX_READERS = 64


class _Reading:
    """A keys file being read in a thread of its own: what it gave (keys, or ConfigError), its path put in C{done} then."""

    def __init__(self, files: KeysFiles, path: str, done: queue.SimpleQueue[str]) -> None:
        self.finished = threading.Event()
        self.result: list[PublicKey] | _Fetched | ConfigError = ConfigError("not read")
        self.thread = threading.Thread(target=self._run, args=(files, path, done), name="serialgw-keys-file",
                                       daemon=True)
        self.thread.start()

    def _run(self, files: KeysFiles, path: str, done: queue.SimpleQueue[str]) -> None:
        try:
            self.result = files.fetch(path)
        except ConfigError as e:
            self.result = e
        except Exception as e:  # (a mistake of ours: said as the file's, never lost in a thread)
            self.result = ConfigError(f"cannot read keys file {quote(path)}: {e!r}")
        self.finished.set()
        done.put(path)


@attrs.frozen
class _Fetched:
    """A keys file's bytes as read, to be parsed: its identity then (L{KeysFiles}), when it was read."""

    identity: tuple[int, ...]
    started: int
    raw: bytes = attrs.field(repr=False)


@attrs.frozen
class _Read:
    """A keys file as read: its identity then, and its keys or what was wrong."""

    identity: tuple[int, ...]
    keys: tuple[PublicKey, ...]
    error: Optional[str]


class KeysFiles:
    """
    The keys files read lately, by path: one whose identity (device, inode,
    size, change and modification times) is the same at the next reload is
    not read again, its keys (or its error) taken as they were.  Each reload
    keeps only its own (L{keep}).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, _Read] = {}
        # Readings not done when a reload stopped waiting (a hung file system): at most one a path.
        self._hung: dict[str, _Reading] = {}

    def readAll(self, paths: set[str], limit: Optional[float] = None) -> dict[str, list[PublicKey] | ConfigError]:
        """
        The keys of each of C{paths}, or why not: read at once, each in a
        thread of its own (MAX_READERS at a time), for C{limit} s
        (L{READ_LIMIT}) in all; one not read by then is said so, its reading
        left to go on, and at the next reloads said still not read, no other
        reading of it started, until it is done.
        """
        limit = READ_LIMIT if limit is None else limit
        got: dict[str, list[PublicKey] | ConfigError] = {}
        todo = []
        for path in sorted(paths, reverse=True):
            hung = self._hung.get(path)
            if hung is not None and not hung.finished.is_set():
                got[path] = ConfigError(f"keys file {quote(path)} still not read, since an earlier reload (a hung "
                                        "file system?)")
            else:
                self._hung.pop(path, None)
                todo.append(path)
        done: queue.SimpleQueue[str] = queue.SimpleQueue()
        running: dict[str, _Reading] = {}
        deadline = monotonic() + limit
        while todo or running:
            while todo and len(running) < MAX_READERS:
                path = todo.pop()
                running[path] = _Reading(self, path, done)
            try:
                path = done.get(timeout=max(0.0, deadline - monotonic()))
            except queue.Empty:
                break
            result = running.pop(path).result
            if isinstance(result, _Fetched):
                # Parsed here, one file at a time (see L{fetch}); not counted in the wait.
                began = monotonic()
                try:
                    result = self.parse(path, result)
                except ConfigError as e:
                    result = e
                deadline += monotonic() - began
            got[path] = result
        for path, reading in running.items():
            self._hung[path] = reading
            got[path] = ConfigError(f"keys file {quote(path)} not read within {limit:g} s (a hung file system?)")
        for path in todo:
            got[path] = ConfigError(f"keys file {quote(path)} not read: the reload's {limit:g} s for keys files were "
                                    f"over, {len(running)} of them not read (a hung file system?)")
        # (One still hung is kept though its path left the configuration: put back, it is not read again.)
        for path in [p for p, reading in self._hung.items() if p not in paths and reading.finished.is_set()]:
            del self._hung[path]
        return got

    def read(self, path: str) -> list[PublicKey]:
        """The public keys in a file (authorized_keys format); ConfigError names the file."""
        got = self.fetch(path)
        return got if isinstance(got, list) else self.parse(path, got)

    def fetch(self, path: str) -> list[PublicKey] | _Fetched:
        """
        A file's keys as read before if it is unchanged, else what it
        holds now, to L{parse}; ConfigError names the file.  (Only this may
        wait on the file system: a reload's readers do it, each in a thread
        of its own, and parse what they fetched on its own thread, one file
        at a time: 50 threads parsing at once took the interpreter from the
        gateway's thread for 64-103 ms, p99 of a 1 ms tick's lateness.)
        """
        try:
            # Not waited on: a FIFO or a device there (a keys file in a person's
            # home) would stop the reactor at a reload; not opened either.
            with open(openRegular(path), "rb") as f:
                st = os.fstat(f.fileno())
                identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                with self._lock:
                    known = self._files.get(path)
                if known is not None and known.identity == identity:
                    if known.error is not None:
                        raise ConfigError(known.error)
                    return list(known.keys)
                started = wallClock()
                raw = f.read(MAX_KEYS_FILE + 1)
        except NotRegular:
            raise ConfigError(f"keys file {quote(path)} is not a regular file") from None
        except OSError as e:
            raise ConfigError(f"cannot read keys file {quote(path)}: {e.strerror}") from None
        return _Fetched(identity, started, raw)

    def parse(self, path: str, fetched: _Fetched) -> list[PublicKey]:
        """The keys of what L{fetch} found (kept for the next reload if the file had not changed lately)."""
        identity, started, raw = fetched.identity, fetched.started, fetched.raw
        found: list[PublicKey] = []
        error: Optional[str] = None
        try:
            if len(raw) > MAX_KEYS_FILE:
                raise ConfigError(f"keys file {quote(path)} is over {MAX_KEYS_FILE} bytes")
            found = readPublicKeys(raw.decode("utf-8", "replace"), path)
        except ConfigError as e:
            error = str(e)
        # (A change after the fstat makes its change time later than any kept.)
        if identity[4] < started - RACY:
            with self._lock:
                self._files[path] = _Read(identity, tuple(found), error)
        if error is not None:
            raise ConfigError(error)
        return found

    def keep(self, paths: set[str]) -> None:
        """Forget the files but C{paths} (those of the configuration just read)."""
        with self._lock:
            for path in [p for p in self._files if p not in paths]:
                del self._files[path]


# The process's (a reload reads them on its thread, one reload at a time).
KEYS_FILES = KeysFiles()


def readKeysFile(path: str) -> list[PublicKey]:
    """The public keys in a file (authorized_keys format); ConfigError names the file; unchanged since last read, not read again (L{KeysFiles})."""
    return KEYS_FILES.read(path)


def readAtStart(paths: set[str]) -> dict[str, list[PublicKey]]:
    """
    The keys of C{paths} (single-line mode's --authorized-keys and
    --readonly-keys, at the start and by --check), read as a reload reads
    keys files (L{KeysFiles.readAll}: each in a thread of its own, READ_LIMIT
    s at most); ConfigError for one that could not be read, or not in time.
    (Read on the gateway's thread, a file on a hung file system hung the
    start for ever, before anything was said.)
    """
    got = KEYS_FILES.readAll(paths)
    for path in sorted(paths):
        found = got[path]
        if isinstance(found, ConfigError):
            raise found
    return {path: found for path, found in got.items() if not isinstance(found, ConfigError)}


def usersFromFile(path: str, keys: Optional[list[PublicKey]] = None) -> list[UserSpec]:
    """
    The people in an authorized_keys file (single-line mode): each key's
    comment names its person (its fingerprint when it has none).  C{keys}:
    the file's, read already (L{readAtStart}); else it is read now, the same way.
    """
    people: dict[str, list[PublicKey]] = {}
    for key in readAtStart({path})[path] if keys is None else keys:
        if key.comment == "*":
            # The line's write/read lists are these names, and "*" there means every user.
            raise ConfigError(f"keys file {quote(path)}:{key.line}: key {key.fingerprint} has the comment '*', "
                              "which would name every user (a read-only key could type): give it another comment")
        if key.comment.startswith("!"):
            # ("!NAME" in the line's write/read lists takes NAME out of them; it names nobody.)
            raise ConfigError(f"keys file {quote(path)}:{key.line}: key {key.fingerprint} has the comment "
                              f"{quote(key.comment)}, which would take {quote(key.comment[1:])} out of the line's "
                              "people: give it another comment")
        name = key.comment or key.fingerprint
        theirs = people.setdefault(name, [])
        if theirs and theirs[0].whole != key.whole:
            # Two comments cut (or shown) alike made one person of two, silently.
            raise ConfigError(f"keys file {quote(path)}:{key.line}: the key's comment differs from line "
                              f"{theirs[0].line}'s, but names the same person {quote(name)} (a person is named by a "
                              "comment's first 64 printable characters, others shown as '?'): make them differ there, "
                              "or the same")
        theirs.append(key)
    return [userOf(name, found) for name, found in people.items()]


def userOf(name: str, found: list[PublicKey]) -> UserSpec:
    """A person of the keys read (their blobs kept: the key ring reads no key again)."""
    return UserSpec(name, tuple(k.text for k in found), tuple(k.blob for k in found))
