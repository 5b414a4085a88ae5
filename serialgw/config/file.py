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

Every error names the file, the line of the file, and the key.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from typing import Any, Optional

import attrs

from serialgw.config.listeners import parseListener, parseSSHListener, parseWatchAll
from serialgw.config.parsers import (
    SINGLE_SETTINGS,
    applySingle,
    checkPath,
    parseCoalesce,
    parseCompact,
    parseDevice,
    parseLockDir,
    parseMilliseconds,
    parseOnOff,
    parseSendString,
)
from serialgw.config.paths import absolute, absoluteLine, absoluteListener, baseOf, identity, symlinkHops, whereWritten
from serialgw.config.shard import MAX_SHARDS
from serialgw.config.specs import (
    DEFAULT_BACKLOG,
    DEFAULT_HOST_KEY,
    DEFAULT_LOCK_DIR,
    DEFAULT_MAX_CLIENTS,
    MAX_BACKLOG,
    ConfigError,
    LineConfig,
    ListenerKind,
    LogSpec,
    Rights,
    SerialSettings,
    SSHSpec,
    UserSpec,
    WatchAllSpec,
    ptyLoop,
    quote,
)
from serialgw.config.sshkeys import readKeysFile, readPublicKeys
from serialgw.config.where import tomlError
from serialgw.config.where import where as _where

LINE_KEYS = {
    "device", "serial", "baud", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "listen",
    "break-duration", "signature", "notices", "restore", "mode", "max-clients", "backlog",
    "log", "log-format", "log-max-size", "log-daily", "log-keep", "log-events", "log-mark", "coalesce", "write", "read",
    "open-string", "close-string", "dtr", "rts", "idle-dtr", "idle-rts", "pace", "pace-line",
    "lock", "lock-dir", "shard",
}
SSH_KEYS = {"listen", "host-key"}
# A configuration file is read whole; a farm of thousands of lines is far below this.
MAX_CONFIG_SIZE = 16 << 20
USER_KEYS = {"keys", "keys-file"}


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


# Line and user names: ASCII only, the whole name (re.match with "$" would take a trailing
# newline: [lines."a\n"] reached logs and SSH user names).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def nameProblem(name: str, what: str = "line") -> Optional[str]:
    """Why C{name} cannot name a line (or a user: C{what}), as an error says it; None when it can."""
    return None if NAME.fullmatch(name) else f"{what} name {quote(name)}: letters, digits, '.', '_' and '-' only"


def loadConfig(path: str) -> list[LineConfig]:
    """Read a configuration file's lines; raise ConfigError naming the file, line and key."""
    return loadFile(path).lines


def loadFile(path: str, shards: Optional[int] = None) -> FileConfig:
    """
    Read a configuration file; raise ConfigError naming the file, line and
    key.  With C{shards} (--shard I/N: N), a line's C{shard = K} must be
    one of those processes.
    """
    import tomllib

    try:
        # Not waiting for a writer: a FIFO at the path would otherwise hang
        # the start, or the whole gateway at a SIGHUP reload.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise ConfigError(f"cannot read configuration {quote(path)}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"configuration {quote(path)} is not a regular file ({_kind(mode)})")
        with open(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_CONFIG_SIZE + 1)
    except OSError as e:
        raise ConfigError(f"cannot read configuration {quote(path)}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_CONFIG_SIZE:
        # /dev/zero by mistake would otherwise be read until memory runs out.
        raise ConfigError(f"configuration {quote(path)} is larger than {MAX_CONFIG_SIZE >> 20} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        # TOML is UTF-8: a stray Latin-1 byte must not become U+FFFD in a path.
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start:e.end].hex(" ")
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {bad} at column {column}); a TOML file is UTF-8") from None
    if text.startswith("\ufeff"):
        # tomllib's "Invalid statement (at line 1, column 1)" shows nothing wrong.
        raise ConfigError(f"{path}:1: starts with a byte order mark (bytes ef bb bf): a TOML file has none; "
                          "save it as UTF-8 without one")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(tomlError(path, text, e)) from None
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        raise ConfigError(f"{path}: arrays or tables nested too deep") from None
    except ValueError:
        # tomllib's int() of an integer past Python's limit (4300 digits
        # unless PYTHONINTMAXSTRDIGITS says otherwise; shard = 111...1): no
        # TOMLDecodeError, and no key of ours takes such a number.
        limit = sys.get_int_max_str_digits()
        raise ConfigError(f"{_tooLong(path, text, limit)}: an integer of more than {limit} digits") from None
    base = baseOf(path)
    lines, pins = _lines(path, text, data, base)
    _oneLineEach(path, text, data, lines)
    for name, pin in pins.items():
        if shards is not None and pin >= shards:
            raise ConfigError(f"{_where(path, text, f'lines.{name}', 'shard')}: [lines.{name}] shard: {pin}, but "
                              f"--shard runs {shards} process(es), numbered 0 to {shards - 1}")
    users = _users(path, text, data, base)
    known = {u.name for u in users}
    for config in lines:
        for key, names in (("write", config.rights.write), ("read", config.rights.read)):
            unknown = [n for n in names or () if n != "*" and n not in known]
            if unknown:
                raise ConfigError(f"{_where(path, text, f'lines.{config.name}', key)}: [lines.{config.name}] {key}: "
                                  f"unknown user {quote(unknown[0])} (declared: {', '.join(sorted(known)) or 'none'}; "
                                  "add a [users.NAME] table)")
    return FileConfig(lines, _ssh(path, text, data, users, base), users, _watchAll(path, text, data, base), pins,
                      path, text)


def _for(table: str, name: str) -> str:  # which line a [defaults] key clashes for ([defaults] alone named no line)
    return f"for line {quote(name)}, " if table == "defaults" else ""


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def _oneLineEach(path: str, text: str, data: dict[str, Any], lines: list[LineConfig]) -> None:
    """
    A device (a tty, a unix socket, a pty's link) and a console log are one
    line's: on one tty the second line found the UUCP lock the first holds
    (the gateway's own PID) and stayed down; on one log two lines
    interleaved and each rotated it.  Refused when the file is read, so at
    start, at a reload and by --check alike.
    """
    stats: dict[str, Optional[tuple[Any, ...]]] = {}

    def there(claimed: str) -> Optional[tuple[Any, ...]]:
        """What is at a path now (one stat a path: a log is looked at twice below)."""
        if claimed not in stats:
            stats[claimed] = identity(claimed)
        return stats[claimed]

    owners: dict[tuple[str, object], tuple[str, str]] = {}
    for config in lines:
        device = config.device
        claims = []
        if device.kind in ("tty", "unix", "pty") and device.path:
            claims.append(("device", device.path, device.describe()))
        if config.log is not None:
            claims.append(("log", config.log.path, config.log.path))
        for key, claimed, shown in claims:
            # A tty or socket by two paths (a by-id symlink, /dev/ttyUSB0)
            # when both are there now; a pty's link is made by the gateway.
            for what in (os.path.normpath(claimed), there(claimed) if (key, device.kind) != ("device", "pty") else None):
                owner = owners.setdefault((key, what), (config.name, shown)) if what is not None else None
                if owner is not None and owner[0] != config.name:
                    table = f"lines.{config.name}" if key in data["lines"][config.name] else "defaults"
                    other = "" if what == os.path.normpath(claimed) else f" {quote(owner[1])}"
                    why = "" if not other else f": one {'device' if key == 'device' else 'file'} by two paths"
                    raise ConfigError(f"{_where(path, text, table, key)}: [{table}] {key}: {_for(table, config.name)}"
                                      f"{quote(shown)} is line {quote(owner[0])}'s {key}{other} too{why}")
    # A file written by two (file: listeners, console logs): their lines
    # interleaved in it and each rotated or truncated the other's.  Paths
    # are compared normalised, and by what they are (a symlink to another's
    # file, a hard link), or where their symlinks lead while not made yet.
    writers: dict[object, tuple[str, str, str]] = {}
    for config in lines:
        written = [("log", config.log.path, config.log.path, "log")] if config.log is not None else []
        written += [("listen", spec.text, spec.path, f"listener {quote(spec.text)}") for spec in config.listeners
                    if spec.kind is ListenerKind.FILE]
        for key, shown, claimed, thing in written:
            claim = (config.name, thing, claimed)
            for what in (os.path.normpath(claimed), whereWritten(claimed, there(claimed))):
                writer = writers.setdefault(what, claim)
                if writer is claim:
                    continue
                table = f"lines.{config.name}" if key in data["lines"][config.name] else "defaults"
                how = "" if what == os.path.normpath(claimed) else f" by another path ({quote(writer[2])})"
                said = (f"{quote(shown)} writes {quote(claimed)}, as line {quote(writer[0])}'s {writer[1]} does{how}"
                         if key == "listen" else f"{quote(shown)} is line {quote(writer[0])}'s {writer[1]} too{how}")
                raise ConfigError(f"{_where(path, text, table, key)}: [{table}] {key}: {_for(table, config.name)}{said}: "
                                  "two writers would interleave in one file")
    # A path the gateway makes its own for a line: a pty's link (a pty:
    # device's or listener's), a pipe: FIFO pair.  The start took a second
    # pipe: on one pair (the two lines split what was written to it), and
    # a second link failed as "another gateway's" (a device's: down for good).
    paths: dict[str, tuple[str, str]] = {}
    for config in lines:
        made = [("device", config.device.describe(), config.device.path)] if config.device.kind == "pty" else []
        made += [("listen", spec.text, spec.path) for spec in config.listeners
                 if spec.kind in (ListenerKind.PIPE, ListenerKind.PTY)]
        for key, shown, claimed in made:
            maker = paths.get(os.path.normpath(claimed)) if claimed else None
            if maker is not None:
                table = f"lines.{config.name}" if key in data["lines"][config.name] else "defaults"
                raise ConfigError(f"{_where(path, text, table, key)}: [{table}] {key}: {_for(table, config.name)}"
                                  f"{quote(shown)} makes {quote(claimed)}, which line {quote(maker[0])} makes with "
                                  f"{quote(maker[1])}")
            if claimed:
                paths[os.path.normpath(claimed)] = (config.name, shown)
    loop = ptyLoop(lines, symlinkHops)
    if loop is not None:
        table = f"lines.{loop[0]}" if "device" in data["lines"][loop[0]] else "defaults"
        raise ConfigError(f"{_where(path, text, table, 'device')}: [{table}] device: {loop[1]}")
    # The gateway's one terminal is one client (two read its keys in turn
    # and mixed their output on it).
    terminal = [c.name for c in lines for spec in c.listeners if spec.kind is ListenerKind.STDIO]
    if len(terminal) > 1:
        table = f"lines.{terminal[1]}"
        if "listen" not in data["lines"][terminal[1]]:
            table = "defaults"
        raise ConfigError(f"{_where(path, text, table, 'listen')}: [{table}] listen: stdio is line {quote(terminal[0])}'s "
                          "already: the gateway has one terminal")


WATCH_ALL_KEYS = {"listen", "lines"}


def _watchAll(path: str, text: str, data: dict[str, Any], base: str) -> Optional[WatchAllSpec]:
    """[watch-all]: listen (one string or a list) and lines (shell patterns; default every line)."""
    if "watch-all" not in data:
        return None
    table = data["watch-all"]
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(path, text, 'watch-all')}: [watch-all] must be a table")
    items: dict[str, list[str]] = {}
    for key, item in table.items():
        if key not in WATCH_ALL_KEYS:
            raise ConfigError(f"{_where(path, text, 'watch-all', key)}: unknown key {quote(key)} in [watch-all] "
                              f"(known: {', '.join(sorted(WATCH_ALL_KEYS))})")
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            item = [item]
        if not isinstance(item, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in item):
            raise ConfigError(f"{_where(path, text, 'watch-all', key)}: [watch-all] {key}: expected a string "
                              f"or a list of them, not {quote(item)}")
        items[key] = [str(t) for t in item]
    if items.get("lines") == []:
        # Read as "every line" it showed every console to whoever meant none.
        raise ConfigError(f"{_where(path, text, 'watch-all', 'lines')}: [watch-all] lines: empty: give shell patterns "
                          "of line names, or leave the key out for every line")
    for pattern in items.get("lines", []):
        if not pattern.isprintable():
            # (It reached the log and each watcher's notice as it was.)
            raise ConfigError(f"{_where(path, text, 'watch-all', 'lines')}: [watch-all] lines: pattern {quote(pattern)} "
                              "holds a control character: it can match no line name (letters, digits, '.', '_' and '-')")
    if "listen" not in items:
        raise ConfigError(f"{_where(path, text, 'watch-all')}: [watch-all] listen: missing: "
                          "an endpoint such as \"tcp:4400:interface=127.0.0.1\"")
    try:
        spec = parseWatchAll(items["listen"], items.get("lines", []))
    except ConfigError as e:
        key = "lines" if str(e).startswith("watch-all lines") else "listen"
        raise ConfigError(f"{_where(path, text, 'watch-all', key)}: [watch-all] {key}: {e}") from None
    return attrs.evolve(spec, listeners=tuple(absoluteListener(s, base) for s in spec.listeners))


def _users(path: str, text: str, data: dict[str, Any], base: str) -> tuple[UserSpec, ...]:
    tables = data.get("users", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{_where(path, text, 'users')}: users must be tables, [users.NAME]")
    users = []
    owner: dict[bytes, str] = {}
    for name, table in tables.items():
        where = f"users.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, 'users')}: users.{name} must be a table")
        problem = nameProblem(name, "user")
        if problem is not None:
            raise ConfigError(f"{_where(path, text, where)}: {problem}")
        for key in table:
            if key not in USER_KEYS:
                raise ConfigError(f"{_where(path, text, where, key)}: unknown key {quote(key)} in [{where}] "
                                  f"(known: {', '.join(sorted(USER_KEYS))})")
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
        if "keys-file" in table:
            if not isinstance(table["keys-file"], str):
                raise ConfigError(f"{_where(path, text, where, 'keys-file')}: [{where}] keys-file: expected a path")
            try:
                found += readKeysFile(absolute(checkPath(table["keys-file"], "keys-file"), base))
            except ConfigError as e:
                raise ConfigError(f"{_where(path, text, where, 'keys-file')}: [{where}] keys-file: {e}") from None
        for key in found:
            other = owner.setdefault(key.blob, name)
            if other != name:
                raise ConfigError(f"{_where(path, text, where)}: key {key.fingerprint} is both {other}'s and {name}'s")
        users.append(UserSpec(name, tuple(k.text for k in found)))
    return tuple(users)


def _ssh(path: str, text: str, data: dict[str, Any], users: tuple[UserSpec, ...], base: str) -> Optional[SSHSpec]:
    if "ssh" not in data:
        return None
    table = data["ssh"]
    if not isinstance(table, dict):
        raise ConfigError(f"{_where(path, text, 'ssh')}: [ssh] must be a table")
    for key in table:
        if key not in SSH_KEYS:
            raise ConfigError(f"{_where(path, text, 'ssh', key)}: unknown key {quote(key)} in [ssh] "
                              f"(known: {', '.join(sorted(SSH_KEYS))})")
    if not isinstance(table.get("listen"), str):
        raise ConfigError(f"{_where(path, text, 'ssh', 'listen')}: [ssh] listen: expected an endpoint "
                          "such as \"tcp:2222:interface=127.0.0.1\"")
    hostKey = table.get("host-key", DEFAULT_HOST_KEY)
    if not isinstance(hostKey, str) or not hostKey:
        raise ConfigError(f"{_where(path, text, 'ssh', 'host-key')}: [ssh] host-key: expected a path")
    try:
        checkPath(hostKey, "host-key")
    except ConfigError as e:
        raise ConfigError(f"{_where(path, text, 'ssh', 'host-key')}: [ssh] host-key: {e}") from None
    if not any(u.keys for u in users):
        raise ConfigError(f"{_where(path, text, 'ssh')}: [ssh]: nobody could log in: "
                          "add [users.NAME] tables with keys or keys-file")
    try:
        listener = parseSSHListener(table["listen"])
    except ConfigError as e:
        raise ConfigError(f"{_where(path, text, 'ssh', 'listen')}: [ssh] listen: {e}") from None
    return SSHSpec(absoluteListener(listener, base), absolute(hostKey, base), users)


def _tooLong(path: str, text: str, limit: int) -> str:
    """C{path:LINE} of the first run of more than C{limit} digits (tomllib reads no other number past Python's limit)."""
    match = re.search(rf"[0-9](?:_?[0-9]){{{limit},}}", text)
    return f"{path}:{text.count(chr(10), 0, match.start()) + 1}" if match else path


def _lines(path: str, text: str, data: dict[str, Any], base: str) -> tuple[list[LineConfig], dict[str, int]]:
    for key in data:
        if key not in ("defaults", "lines", "ssh", "users", "watch-all"):
            raise ConfigError(f"{path}: unknown top-level key {quote(key)} "
                              "(expected [defaults], [lines.NAME], [ssh], [users.NAME] and [watch-all])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{_where(path, text, 'defaults')}: [defaults] must be a table")
    lines = data.get("lines", {})
    if not isinstance(lines, dict):
        raise ConfigError(f"{_where(path, text, 'lines')}: lines: expected tables [lines.NAME] (one a line, with "
                          f"device = ... and listen = ...), not {quote(lines)}")
    if not lines:
        raise ConfigError(f"{path}: no lines: add a table such as [lines.ttyS0] with device = ... and listen = ...")
    if "shard" in defaults:
        raise ConfigError(f"{_where(path, text, 'defaults', 'shard')}: [defaults] shard: a line's own key "
                          "(in [lines.NAME]): it gives that line to one process of --shard I/N")
    configs = []
    pins: dict[str, int] = {}
    for name, table in lines.items():
        where = f"lines.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, where)}: lines.{name} must be a table, not {quote(table)}")
        problem = nameProblem(name)
        if problem is not None:
            raise ConfigError(f"{_where(path, text, where)}: {problem}")
        merged = {**defaults, **table}
        for key in merged:
            if key not in LINE_KEYS:
                table_ = where if key in table else "defaults"
                raise ConfigError(f"{_where(path, text, table_, key)}: unknown key {quote(key)} in [{table_}] "
                                  f"(known: {', '.join(sorted(LINE_KEYS))})")
        if "shard" in table:
            pin = table["shard"]
            if not isinstance(pin, int) or isinstance(pin, bool) or not 0 <= pin < MAX_SHARDS:
                raise ConfigError(f"{_where(path, text, where, 'shard')}: [{where}] shard: expected the number of "
                                  f"a process of --shard I/N, 0 to {MAX_SHARDS - 1}, not {quote(pin)}")
            pins[name] = pin
            del merged["shard"]
        try:
            configs.append(absoluteLine(_line(name, merged), base))
        except _KeyError as e:
            table_ = "defaults" if e.key in defaults and e.key not in table else where
            raise ConfigError(f"{_where(path, text, table_, e.key)}: [{table_}] {e.key}: {e.message}") from None
    return configs, pins


_LOG_KEYS: dict[str, tuple[str, type]] = {
    "log-format": ("format", str), "log-max-size": ("maxSize", int),
    "log-daily": ("daily", bool), "log-keep": ("keep", int),
    "log-events": ("events", object), "log-mark": ("mark", int),  # (log-events: a name or true/false, see LogSpec)
}


class _KeyError(Exception):
    def __init__(self, key: str, message: str) -> None:
        Exception.__init__(self, key, message)
        self.key = key
        self.message = message


def _line(name: str, table: dict[str, Any]) -> LineConfig:
    def value(key: str, kind: type, default: Any = None) -> Any:
        if key not in table:
            return default
        item = table[key]
        if kind is float and isinstance(item, int) and not isinstance(item, bool):
            try:
                item = float(item)
            except OverflowError:
                # TOML integers have no limit (10**400); float() does.
                raise _KeyError(key, f"out of range: {item}") from None
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise _KeyError(key, f"expected {kind.__name__}, not {quote(item)}")
        return item

    def parsed(key: str, parse: Any, raw: Any) -> Any:
        try:
            return parse(raw)
        except ConfigError as e:
            raise _KeyError(key, str(e)) from None

    if "device" not in table:
        raise _KeyError("device", "missing: a tty path, pty:LINK, telnet:HOST:PORT, rfc2217://HOST:PORT, ...")
    device = parsed("device", parseDevice, value("device", str))
    settings = SerialSettings()
    if "serial" in table:
        settings = parsed("serial", lambda t: parseCompact(t, settings), value("serial", str))
    for key in SINGLE_SETTINGS:
        if key in table:
            given = table[key]
            if isinstance(given, bool) or (isinstance(given, float) and key in ("baud", "bytesize")):
                # str() made 9600.0 '9600.0', refused as if out of range, and true 'True'.
                shown = str(given).lower() if isinstance(given, bool) else given
                example = {"baud": "9600", "bytesize": "8"}.get(key)
                raise _KeyError(key, f"expected a whole number ({example} or \"{example}\"), not {shown}" if example
                                else f"expected a number or a string, not {shown}")
            settings = parsed(key, lambda t, k=key, base=settings: applySingle(base, k, t), str(given))
    for key in ("xonxoff", "rtscts"):
        if key in table:
            settings = attrs.evolve(settings, **{key: value(key, bool)})
    if "listen" not in table:
        raise _KeyError("listen", "missing: a listener (4001, tcp:4001:interface=127.0.0.1, ...) or a list of them")
    listen = table["listen"]
    if isinstance(listen, (str, int)) and not isinstance(listen, bool):
        listen = [listen]
    if not isinstance(listen, list) or not listen or not all(isinstance(t, (str, int)) for t in listen):
        raise _KeyError("listen", f"expected a listener or a list of them, not {quote(listen)}")
    listeners = tuple(parsed("listen", parseListener, str(t)) for t in listen)
    milliseconds = value("break-duration", float, 250.0)
    if not 1 <= milliseconds <= 10000:
        raise _KeyError("break-duration", f"expected 1 to 10000 milliseconds, not {quote(milliseconds)}")
    mode = value("mode", str, "shared")
    if mode not in ("shared", "exclusive"):
        raise _KeyError("mode", f"expected shared or exclusive, not {quote(mode)}")
    maxClients = value("max-clients", int, DEFAULT_MAX_CLIENTS)
    backlog = value("backlog", int, DEFAULT_BACKLOG)
    if maxClients < 0 or backlog < 0:
        raise _KeyError("max-clients" if maxClients < 0 else "backlog",
                        f"expected a number >= 0, not {maxClients if maxClients < 0 else backlog}")
    if backlog > MAX_BACKLOG:
        raise _KeyError("backlog", f"expected at most {MAX_BACKLOG} bytes, not {backlog}")
    # Only the keys given: LogSpec's own defaults fill the rest (read from
    # the class, a frozen attrs field is a slot descriptor).  Checked on a
    # line without log too (from [defaults], or a mistake), then dropped.
    given = {field: value(key, kind) for key, (field, kind) in _LOG_KEYS.items() if key in table}
    try:
        logPath = parsed("log", lambda t: checkPath(t, "log"), value("log", str)) if "log" in table else None
        log: Optional[LogSpec] = LogSpec(path="(no log)" if logPath is None else logPath, **given)
    except ConfigError as e:
        raise _KeyError(next((k for k in _LOG_KEYS if str(e).startswith(k)), "log"), str(e)) from None
    if logPath is None:
        log = None
    coalesce = parsed("coalesce", parseCoalesce, str(table.get("coalesce", "off")))

    def onOff(key: str) -> Optional[bool]:
        if key not in table:
            return None
        item = table[key]
        if isinstance(item, bool):
            return item
        if not isinstance(item, str):
            raise _KeyError(key, f'expected "on" or "off", not {quote(item)}')
        return bool(parsed(key, lambda t: parseOnOff(t, key), item))

    pace = {key: parsed(key, lambda t, k=key: parseMilliseconds(t, k), value(key, float, 0.0))
            for key in ("pace", "pace-line")}
    strings = {key: parsed(key, lambda t, k=key: parseSendString(t, k), value(key, str, ""))
               for key in ("open-string", "close-string")}

    def names(key: str) -> Optional[tuple[str, ...]]:
        if key not in table:
            return None
        items = [table[key]] if isinstance(table[key], str) else table[key]
        if not isinstance(items, list) or not all(isinstance(n, str) for n in items):
            raise _KeyError(key, f'expected user names (a list; "*": every user), not {quote(table[key])}')
        return tuple(items)

    return LineConfig(
        coalesceMin=coalesce[0],
        coalesceMax=coalesce[1],
        coalesceOn=coalesce[2],
        mode=mode,
        maxClients=maxClients,
        backlog=backlog,
        log=log,
        name=name,
        device=device,
        settings=settings,
        listeners=listeners,
        breakDuration=milliseconds / 1000.0,
        restoreSettings=value("restore", bool, True),
        signature=value("signature", str),
        notices=value("notices", bool, True),
        rights=Rights(write=names("write"), read=names("read")),
        openString=strings["open-string"],
        closeString=strings["close-string"],
        dtr=onOff("dtr"),
        rts=onOff("rts"),
        idleDtr=onOff("idle-dtr"),
        idleRts=onOff("idle-rts"),
        pace=pace["pace"],
        paceLine=pace["pace-line"],
        lock=value("lock", bool, True),
        lockDir=parsed("lock-dir", lambda t: parseLockDir(t, "lock-dir"), value("lock-dir", str, DEFAULT_LOCK_DIR)),
    )
