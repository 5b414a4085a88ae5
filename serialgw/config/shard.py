"""
A farm bigger than one core: several processes over one configuration
file, each serving its share of the lines (C{--shard I/N}, under systemd
as C{serialgw@I-N.service}).

Which process serves a line depends on its name alone (or on an explicit
C{shard = K} in its table): adding or removing a line never moves another,
and growing from N to N+1 processes moves only the lines that go to the
new one (a jump consistent hash, Lamping and Veach, 2014, over a keyed
BLAKE2b of the name: the same on every machine and every Python, unlike
C{hash()}).

What the whole process owns once (the status endpoint, the SSH listener,
the watch-all listeners) is one per process: a TCP port becomes PORT+I, a
unix socket path PATH.I.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Mapping, Optional, Sequence

import attrs

from serialgw.config.gatewaylisteners import optionsFirst
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, WatchAllSpec
from serialgw.config.parsers import isDecimal
from serialgw.config.people import SSHSpec
from serialgw.config.specs import ConfigError, LineConfig, describeUnix, quote, unixNameLimit

# More processes than any machine has cores for; a typo such as 0/20000 is
# refused rather than starting a process that serves nothing.
MAX_SHARDS = 1024


@attrs.frozen
class Shard:
    """This process's share: number C{index} (from 0) of C{count} processes."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parseShard(text: str) -> Shard:
    """C{I/N}: process I (0 to N-1) of N (1 to L{MAX_SHARDS}); a L{ConfigError} quoting C{text} otherwise."""
    index, slash, count = str(text).strip().partition("/")
    index, count = index.strip(), count.strip()
    if not slash or not isDecimal(index) or not isDecimal(count):
        # A unit of one's own that passes %i (the instance name, 0-2) where
        # the shipped template passes %I (unescaped: 0/2).
        first, dash, second = str(text).strip().partition("-")
        instance = (f" (the instance name as systemd's %i passes it: the unit's command line takes %I, which makes "
                    f"it {first}/{second})" if dash and isDecimal(first) and isDecimal(second) else "")
        raise ConfigError(f"--shard {quote(text)}: expected I/N, this process's number (from 0) of N processes, "
                          f"e.g. 0/2{instance}")
    i, n = int(index), int(count)
    if not 1 <= n <= MAX_SHARDS:
        raise ConfigError(f"--shard {quote(text)}: the number of processes must be 1 to {MAX_SHARDS}, not {n}")
    if i >= n:
        raise ConfigError(f"--shard {quote(text)}: process {i} of {n}: the processes are numbered 0 to {n - 1}")
    return Shard(i, n)


def _key(name: str) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"serialgw-shard").digest()
    return int.from_bytes(digest, "big")


def jumpHash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: a 64-bit key to a bucket 0 to C{buckets}-1."""
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shardOf(name: str, count: int, pins: Mapping[str, int]) -> int:
    """The process (0 to C{count}-1) that serves line C{name}: its C{shard =} key, or its name's hash."""
    if name in pins:
        return pins[name]
    return jumpHash(_key(name), count)


def selectLines(lines: Sequence[LineConfig], shard: Shard, pins: Mapping[str, int]) -> list[LineConfig]:
    """The lines process C{shard} serves, in the file's order."""
    return [line for line in lines if shardOf(line.name, shard.count, pins) == shard.index]


def shiftListener(spec: ListenerSpec, index: int, what: str) -> ListenerSpec:
    """
    Process C{index}'s own copy of a listener every process has one of:
    a TCP port becomes PORT+I (port 0, any free port, stays 0), a unix
    socket path PATH.I.  Anything else (a systemd: socket, TLS, a dial-out)
    cannot be told apart per process: a L{ConfigError} naming C{what}.
    """
    text = spec.text or spec.endpoint
    head, plus, _ = text.partition("+")
    prefix = head + "+" if plus and optionsFirst(head) else ""
    fields = re.split(r"(?<!\\):", spec.endpoint) if spec.kind is ListenerKind.LISTEN and spec.tls is None else []
    word = fields[0].lower() if fields else ""
    # The port, or the unix path: the first positional field after the type, or port= / address=.
    at = next((i for i, f in enumerate(fields[1:], 1) if "=" not in f or f.startswith(("port=", "address="))), None)
    if word in ("tcp", "tcp6") and at is not None:
        name, eq, value = fields[at].rpartition("=")
        if isDecimal(value):
            port = int(value) + index if int(value) else 0
            if port > 65535:
                raise ConfigError(f"{what} {quote(text)}: process {index} would take port {port}, past 65535: "
                                  "give a lower port (process I listens on PORT+I)")
            fields[at] = f"{name}{eq}{port}"
            endpoint = ":".join(fields)
            return attrs.evolve(spec, endpoint=endpoint, text=prefix + endpoint, port=port if spec.port else 0)
    if word == "unix" and at is not None and spec.path:
        path = f"{spec.path}.{index}"
        size, limit = len(os.fsencode(path)), unixNameLimit(path)
        if size > limit:
            raise ConfigError(f"{what} {quote(text)}: process {index} would listen on {quote(describeUnix(path))}, {size} "
                              f"bytes, past the {limit} of a unix socket name: give a shorter path (process I "
                              "listens on PATH.I)")
        # The field is the path as escaped in the string: ".I" needs no escaping.
        fields[at] += f".{index}"
        endpoint = ":".join(fields)
        return attrs.evolve(spec, endpoint=endpoint, text=prefix + endpoint, path=path)
    raise ConfigError(f"{what} {quote(text)}: with --shard every process needs one of its own: a tcp: or tcp6: port "
                      "(process I listens on PORT+I) or a unix: socket (PATH.I)")


def ownListeners(index: int, status: Optional[ListenerSpec], ssh: Optional[SSHSpec],
                 watchAll: Optional[WatchAllSpec]) -> tuple[Optional[ListenerSpec], Optional[SSHSpec],
                                                            Optional[WatchAllSpec]]:
    """Process C{index}'s status endpoint, SSH listener and watch-all listeners (see L{shiftListener})."""
    if status is not None:
        status = shiftListener(status, index, "--status")
    if ssh is not None:
        ssh = attrs.evolve(ssh, listener=shiftListener(ssh.listener, index, "the SSH listener"))
    if watchAll is not None:
        watchAll = attrs.evolve(watchAll, listeners=tuple(shiftListener(spec, index, "watch-all listener")
                                                          for spec in watchAll.listeners))
    return status, ssh, watchAll
