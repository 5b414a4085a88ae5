"""
The configuration file (TOML, read with the standard library's tomllib):
defaults, then one table a line.

    [defaults]
    serial = "115200,8N1"
    break-duration = 250          # ms

    [lines.rack4-web1]
    device = "/dev/serial/by-id/usb-FTDI_FT232R_A1-if00-port0"
    serial = "9600,8N1"
    listen = ["telnet::4001,server,nowait", "raw,ro+4101"]

    [lines.vm100]
    device = "unix:/var/run/qemu-server/100.serial0"
    listen = "4002"
    write = ["ops1"]              # who may type (user names; "*": every user)
    read = ["*"]                  # who may watch; neither: every user types

    [ssh]
    listen = "tcp:2222"           # ssh -p 2222 vm100@gateway
    host-key = "/var/lib/serialgw/ssh_host_ed25519_key"

    [users.ops1]                  # also a TLS client certificate's CN
    keys = ["ssh-ed25519 AAAA... ops1@laptop"]
    keys-file = "/etc/serialgw/ops1.pub"
    password = "$scrypt$ln=15,r=8,p=1$..."   # python3 -m serialgw.hashpw; SSH user name ops1+vm100

Every error names the file, the line of the file, and the key.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from serialgw.config.foreign import conserverName
from serialgw.config.gatewaylisteners import parseByName, parseSSHListener, parseWatchAll
from serialgw.config.linetable import LINE_KEYS, nameProblem, readLines
from serialgw.config.listenerspecs import ByNameSpec, WatchAllSpec
from serialgw.config.loops import byNameLoop, watchAllLoop
from serialgw.config.parsers import checkPath
from serialgw.config.passwords import BadHash
from serialgw.config.passwords import parse as parseHash
from serialgw.config.paths import absolute, absoluteListener, baseOf, placeKeys
from serialgw.config.people import DEFAULT_HOST_KEY, MAX_PERSON_SESSIONS, PERSON_SESSIONS, SSHSpec, UserSpec
from serialgw.config.placeholders import noLine
from serialgw.config.reading import MAX_CONFIG_SIZE, readToml
from serialgw.config.sharing import oneLineEach
from serialgw.config.specs import ConfigError, LineConfig, quote
from serialgw.config.spelling import didYouMean
from serialgw.config.sshkeys import KEYS_FILES, PublicKey, readPublicKeys, userOf
from serialgw.config.where import where as _where

# Read here by others (tests, the man page's check) as before the file was split.
__all__ = ["LINE_KEYS", "MAX_CONFIG_SIZE", "FileConfig", "loadConfig", "loadFile", "nameProblem"]

SSH_KEYS = {"listen", "host-key", "sessions-per-person"}
TLS_KEYS = {"sessions-per-person"}
USER_KEYS = {"keys", "keys-file", "password"}


@attrs.frozen
class FileConfig:
    """What a configuration file says: its lines, and the SSH listener with its users (or None)."""

    lines: list[LineConfig]
    ssh: Optional[SSHSpec]
    users: tuple[UserSpec, ...]
    # One view of all consoles ([watch-all]), or None.
    watchAll: Optional[WatchAllSpec] = None
    # Lines given a process with shard = K (see serialgw.config.shard).
    pins: dict[str, int] = attrs.field(factory=dict)
    # The file and its text: where a line's table is, for what is found later (--check, the start).
    path: str = ""
    text: str = attrs.field(default="", repr=False)
    # TLS sessions a person (a client certificate's CN) may have at once, on all lines ([tls] sessions-per-person).
    tlsSessionsPerPerson: int = PERSON_SESSIONS
    # One port for many consoles ([by-name]), or None.
    byName: Optional[ByNameSpec] = None
    # The lines whose tables say enable = false (read and checked, not served).
    disabled: tuple[str, ...] = ()


def loadConfig(path: str) -> list[LineConfig]:
    """Read a configuration file's lines; raise ConfigError naming the file, line and key."""
    return loadFile(path).lines


def loadFile(path: str, shards: Optional[int] = None, held: tuple[UserSpec, ...] = ()) -> FileConfig:
    """
    Read a configuration file; raise ConfigError naming the file, line and
    key.  With C{shards} (--shard I/N: N), a line's C{shard = K} must be
    one of those processes.  C{held}: the people of the running
    configuration (a reload), whose keys stay theirs when copied into
    another person's keys file.
    """
    text, data = readToml(path)
    base = baseOf(path)
    lines, pins = readLines(path, text, data, base)
    oneLineEach(path, text, data, lines)
    for name, pin in pins.items():
        if shards is not None and pin >= shards:
            raise ConfigError(f"{_where(path, text, f'lines.{name}', 'shard')}: [lines.{name}] shard: {pin}, but "
                              f"--shard runs {shards} process(es), numbered 0 to {shards - 1}")
    users, problems = _users(path, text, data, base, held)
    known = {u.name for u in users}
    for config in lines:
        for key, names in (("write", config.rights.write), ("read", config.rights.read), ("admin", config.rights.admin)):
            def place(key: str = key, name: str = config.name) -> str:  # (only for an error: it reads the text)
                return f"{_where(path, text, f'lines.{name}', key)}: [lines.{name}] {key}:"

            unknown = [n for n in names or () if n != "*" and n.removeprefix("!") not in known]
            if unknown:
                hint = conserverName(unknown[0])
                raise ConfigError(f"{place()} {'unknown user' if hint is None else 'cannot read'} {quote(unknown[0])}"
                                  f"{': ' + hint if hint else ''} (declared: {', '.join(sorted(known)) or 'none'}; "
                                  "add a [users.NAME] table)")
            if names and all(n.startswith("!") for n in names):
                # (Read as it is, it gave nobody anything: the list of nobody.)
                raise ConfigError(f"{place()} {quote(names[0])} and no name, nor '*': a name with '!' takes a user out "
                                  f"of the others; {key} = ['*', {quote(names[0])}] is everyone but them")
    watchAll = _watchAll(path, text, data, base)
    byName = _byName(path, text, data, base)
    loop = watchAllLoop(lines, watchAll, shards, pins, placeKeys) or byNameLoop(lines, byName, placeKeys)
    if loop is not None:
        table = f"lines.{loop[0]}" if "device" in data["lines"][loop[0]] else "defaults"
        raise ConfigError(f"{_where(path, text, table, 'device')}: [{table}] device: {loop[1]}")
    served = {config.name for config in lines}
    return FileConfig(lines, _ssh(path, text, data, users, problems, base), users, watchAll, pins, path, text,
                      _tls(path, text, data), byName, tuple(name for name in data.get("lines", {}) if name not in served))


def _sessionsPerPerson(path: str, text: str, table: dict[str, Any], name: str) -> int:
    """[NAME] sessions-per-person (SSH's or TLS's): 1 to MAX_PERSON_SESSIONS, PERSON_SESSIONS if left out."""
    sessions = table.get("sessions-per-person", PERSON_SESSIONS)
    if isinstance(sessions, bool) or not isinstance(sessions, int) or not 1 <= sessions <= MAX_PERSON_SESSIONS:
        raise ConfigError(f"{_where(path, text, name, 'sessions-per-person')}: [{name}] sessions-per-person: expected "
                          f"a number of sessions from 1 to {MAX_PERSON_SESSIONS}, not {quote(sessions)}")
    return sessions


def _onlyKnown(path: str, text: str, where: str, table: dict[str, Any], known: set[str]) -> None:
    """A key of table [where] that is none of C{known}: ConfigError at its FILE:LINE, naming the known ones."""
    for key in table:
        if key not in known:
            raise ConfigError(f"{_where(path, text, where, key)}: unknown key {quote(key)} in [{where}]"
                              f"{didYouMean(key, known)} (known: {', '.join(sorted(known))})")


def _tls(path: str, text: str, data: dict[str, Any]) -> int:
    """
    [tls]: what holds for the TLS clients of every line's listeners,
    those that give a certificate (a person: its CN): sessions-per-person,
    counted apart from [ssh]'s.
    """
    table = data.get("tls", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(path, text, 'tls')}: [tls] must be a table")
    _onlyKnown(path, text, "tls", table, TLS_KEYS)
    return _sessionsPerPerson(path, text, table, "tls")


WATCH_ALL_KEYS = {"listen", "lines"}


def _watchAll(path: str, text: str, data: dict[str, Any], base: str) -> Optional[WatchAllSpec]:
    """[watch-all]: listen (one string or a list) and lines (shell patterns; default every line)."""
    return _gatewayTable(path, text, data, base, "watch-all", parseWatchAll, "tcp:4400:interface=127.0.0.1")


def _byName(path: str, text: str, data: dict[str, Any], base: str) -> Optional[ByNameSpec]:
    """[by-name]: listen (one string or a list) and lines (shell patterns; default every line)."""
    return _gatewayTable(path, text, data, base, "by-name", parseByName, "4000")


def _gatewayTable(path: str, text: str, data: dict[str, Any], base: str, name: str, parse: Callable[..., Any],
                  example: str) -> Any:
    """A gateway's table of listeners serving many lines ([watch-all], [by-name]): read by C{parse}; None if absent."""
    if name not in data:
        return None
    table = data[name]
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(path, text, name)}: [{name}] must be a table")
    _onlyKnown(path, text, name, table, WATCH_ALL_KEYS)
    items: dict[str, list[str]] = {}
    for key, item in table.items():
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            item = [item]
        if not isinstance(item, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in item):
            raise ConfigError(f"{_where(path, text, name, key)}: [{name}] {key}: expected a string "
                              f"or a list of them, not {quote(item)}")
        items[key] = [str(t) for t in item]
    if items.get("lines") == []:
        # Read as "every line" it showed every console to whoever meant none.
        raise ConfigError(f"{_where(path, text, name, 'lines')}: [{name}] lines: empty: give shell patterns "
                          "of line names, or leave the key out for every line")
    for pattern in items.get("lines", []):
        if not pattern.isprintable():
            # (It reached the log and each watcher's notice as it was.)
            raise ConfigError(f"{_where(path, text, name, 'lines')}: [{name}] lines: pattern {quote(pattern)} "
                              "holds a control character: it can match no line name (letters, digits, '.', '_' and '-')")
    if "listen" not in items:
        raise ConfigError(f"{_where(path, text, name)}: [{name}] listen: missing: "
                          f"an endpoint such as \"{example}\"")
    try:
        spec = parse([noLine(t, "listen", f"{name} listen") for t in items["listen"]], items.get("lines", []))
    except ConfigError as e:
        key = "lines" if str(e).startswith(f"{name} lines") else "listen"
        raise ConfigError(f"{_where(path, text, name, key)}: [{name}] {key}: {e}") from None
    return attrs.evolve(spec, listeners=tuple(absoluteListener(s, base) for s in spec.listeners))


def _users(path: str, text: str, data: dict[str, Any], base: str,
           held: tuple[UserSpec, ...] = ()) -> tuple[tuple[UserSpec, ...], tuple[str, ...]]:
    """
    The people, and what was wrong with their keys files.  A keys file may
    be a person's own (in their home): one that cannot be read, or holds a
    line that is no key, gives its person no keys (said), and a key in it
    that is another person's too is left out (theirs if in their table,
    nobody's if in their file too); before, any of these refused the whole
    file, so that a person could keep the gateway from starting and every
    reload from applying (the one taking their own right away too).  Keys
    in the file itself (C{keys}) are the writer's: their errors refuse it.
    """
    tables = data.get("users", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{_where(path, text, 'users')}: users must be tables, [users.NAME]")
    inline: dict[str, list[PublicKey]] = {}
    filed: dict[str, tuple[str, list[PublicKey]]] = {}
    problems: list[str] = []
    wanted: dict[str, str] = {}
    owner: dict[bytes, str] = {}
    hashes: dict[str, str] = {}
    for name, table in tables.items():
        where = f"users.{name}"
        problem = nameProblem(name, "user")
        if problem is not None:
            raise ConfigError(f"{_where(path, text, where)}: {problem}")
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, 'users')}: users.{name} must be a table")
        _onlyKnown(path, text, where, table, USER_KEYS)
        keys = table.get("keys", [])
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"{_where(path, text, where, 'keys')}: [{where}] keys: expected a public key "
                              f"line or a list of them, not {quote(keys)}")
        try:
            found = readPublicKeys("\n".join(keys), f"[{where}] keys: key")
        except ConfigError as e:
            # (Placed only then: finding a key in the text reads the whole file.)
            raise ConfigError(f"{_where(path, text, where, 'keys')}: {e}") from None
        for key in found:
            other = owner.setdefault(key.blob, name)
            if other != name:
                raise ConfigError(f"{_where(path, text, where)}: key {key.fingerprint} is both {other}'s and {name}'s")
        inline[name] = found
        if "password" in table:
            hashes[name] = _password(path, text, where, table["password"])
        if "keys-file" in table:
            if not isinstance(table["keys-file"], str):
                raise ConfigError(f"{_where(path, text, where, 'keys-file')}: [{where}] keys-file: expected a path")
            try:
                # (The path is the file's writer's: a mistake there refuses it.)
                keysFile = absolute(checkPath(noLine(table["keys-file"], "keys-file", "keys-file"), "keys-file"), base)
            except ConfigError as e:
                raise ConfigError(f"{_where(path, text, where, 'keys-file')}: [{where}] keys-file: {e}") from None
            wanted[name] = keysFile
    # All at once, each in a thread of its own, for READ_LIMIT s at most: one on a hung file system (a
    # person's home on NFS) held the reload for ever, and every reload after it waited.
    read = KEYS_FILES.readAll(set(wanted.values()))
    for name, keysFile in wanted.items():
        got = read[keysFile]
        if isinstance(got, ConfigError):
            where = f"users.{name}"
            problems.append(f"{_where(path, text, where, 'keys-file')}: [{where}] keys-file: {got}: "
                            f"{name} has no keys from it")
        else:
            filed[name] = (keysFile, got)
    # (The files read again at the next reload only if they changed: those of this configuration.)
    KEYS_FILES.keep(set(wanted.values()))
    claims: dict[bytes, list[str]] = {}
    for name, (_, found) in filed.items():
        for key in found:
            claims.setdefault(key.blob, []).append(name)
    # A key in two keys files stays with whoever had it in the running
    # configuration (else anyone could take another's key away by copying
    # it into their own file); at the start, or if neither had it: nobody's.
    before = _holders(held, {b for b, names in claims.items() if len(names) > 1})
    users = []
    for name in tables:
        theirs = list(inline[name])
        keysFile, found = filed.get(name, ("", []))
        left: dict[bytes, str] = {}
        for key in found:
            others = sorted({owner.get(key.blob) or name, *claims[key.blob]} - {name})
            keeper = before.get(key.blob) if key.blob not in owner and before.get(key.blob) in claims[key.blob] else None
            if not others or keeper == name:
                theirs.append(key)
            elif owner.get(key.blob) != name and key.blob not in left:
                left[key.blob] = (f"{key.fingerprint} is {owner[key.blob]}'s ([users.{owner[key.blob]}] keys)"
                                  if key.blob in owner else
                                  f"{key.fingerprint} is {keeper}'s (theirs before this reload; in their keys file "
                                  "too)" if keeper is not None else
                                  f"{key.fingerprint} is in the keys file of {' and '.join(others)} too: nobody's")
        if left:
            # (One line a file, however many: each reload says it again.)
            first, more = next(iter(left.values())), len(left) - 1
            problems.append(f"{_where(path, text, f'users.{name}', 'keys-file')}: [users.{name}] keys-file "
                            f"{quote(keysFile)}: not {name}'s: key {first}" + (f"; and {more} more" if more else ""))
        users.append(attrs.evolve(userOf(name, theirs), password=hashes.get(name, "")))
    return tuple(users), tuple(problems)


def _password(path: str, text: str, where: str, value: Any) -> str:
    """[users.NAME] password: a hash (serialgw.config.passwords), checked; an error quotes none of it."""
    if not isinstance(value, str):
        raise ConfigError(f"{_where(path, text, where, 'password')}: [{where}] password: expected a password hash "
                          f"in a string, not a {type(value).__name__}")
    try:
        parseHash(value)
    except BadHash as e:
        raise ConfigError(f"{_where(path, text, where, 'password')}: [{where}] password: {e}") from None
    return value


def _holders(held: tuple[UserSpec, ...], wanted: set[bytes]) -> dict[bytes, str]:
    """Whose each of the C{wanted} keys was among C{held} (the running configuration's people)."""
    if not wanted:
        return {}
    found: dict[bytes, str] = {}
    for user in held:
        if len(user.blobs) == len(user.keys):
            found.update((blob, user.name) for blob in user.blobs if blob in wanted)
            continue
        for line in user.keys:
            try:
                keys = readPublicKeys(line, "key")
            except ConfigError:
                continue
            found.update((k.blob, user.name) for k in keys if k.blob in wanted)
    return found


def _ssh(path: str, text: str, data: dict[str, Any], users: tuple[UserSpec, ...], problems: tuple[str, ...],
         base: str) -> Optional[SSHSpec]:
    if "ssh" not in data:
        return None
    table = data["ssh"]
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(path, text, 'ssh')}: [ssh] must be a table")
    _onlyKnown(path, text, "ssh", table, SSH_KEYS)
    if not isinstance(table.get("listen"), str):
        raise ConfigError(f"{_where(path, text, 'ssh', 'listen')}: [ssh] listen: expected an endpoint "
                          "such as \"tcp:2222:interface=127.0.0.1\"")
    hostKey = table.get("host-key", DEFAULT_HOST_KEY)
    if not isinstance(hostKey, str) or not hostKey:
        raise ConfigError(f"{_where(path, text, 'ssh', 'host-key')}: [ssh] host-key: expected a path")
    try:
        hostKey = checkPath(noLine(hostKey, "host-key", "ssh host-key"), "host-key")
    except ConfigError as e:
        raise ConfigError(f"{_where(path, text, 'ssh', 'host-key')}: [ssh] host-key: {e}") from None
    if not any(u.keys or u.password for u in users) and not problems:
        # (With problems, the people's files are to blame: said as such, not a refusal.)
        raise ConfigError(f"{_where(path, text, 'ssh')}: [ssh]: nobody could log in: "
                          "add [users.NAME] tables with keys, keys-file or password")
    try:
        listener = parseSSHListener(noLine(table["listen"], "listen", "ssh listen"))
    except ConfigError as e:
        raise ConfigError(f"{_where(path, text, 'ssh', 'listen')}: [ssh] listen: {e}") from None
    sessions = _sessionsPerPerson(path, text, table, "ssh")
    return SSHSpec(absoluteListener(listener, base), absolute(hostKey, base), users, problems, sessions)


