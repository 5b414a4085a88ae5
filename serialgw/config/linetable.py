"""
One [lines.NAME] table (over [defaults]) read into a LineConfig: its keys,
their types and bounds; an error names the key and the table it came from.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import attrs

from serialgw.config.banner import parseBanner
from serialgw.config.breakseqs import parseSequences
from serialgw.config.devicekeys import deviceKeyRefusal, ptySerialRefusal, stringBreakRefusal
from serialgw.config.foreign import foreignKey, foreignTable
from serialgw.config.listeners import parseListener
from serialgw.config.logspec import LogSpec
from serialgw.config.parsers import (
    MOST_SECONDS,
    SINGLE_SETTINGS,
    applySingle,
    checkPath,
    parseCoalesce,
    parseCompact,
    parseDevice,
    parseLockDir,
    parseMilliseconds,
    parseOnOff,
    parseSeconds,
    parseSendString,
)
from serialgw.config.paths import absoluteLine
from serialgw.config.people import Rights
from serialgw.config.placeholders import PLACED_KEYS, expandValue, hasPlaceholder, noLine
from serialgw.config.shard import MAX_SHARDS
from serialgw.config.specs import (
    DEFAULT_BACKLOG,
    DEFAULT_LOCK_DIR,
    DEFAULT_MAX_CLIENTS,
    MAX_BACKLOG,
    MAX_CLIENTS,
    ConfigError,
    LineConfig,
    SerialSettings,
    quote,
)
from serialgw.config.spelling import didYouMean, nearest
from serialgw.config.where import where as _where

LINE_KEYS = {
    "device", "serial", "baud", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "listen",
    "break-duration", "signature", "notices", "restore", "mode", "max-clients", "backlog",
    "log", "log-format", "log-max-size", "log-daily", "log-keep", "log-events", "log-mark", "log-typed", "coalesce",
    "write", "read", "admin",
    "open-string", "close-string", "dtr", "rts", "idle-dtr", "idle-rts", "pace", "pace-line",
    "lock", "lock-dir", "shard", "on-demand", "kick-old-user", "banner",
    "on-demand-linger", "idle-timeout", "idle-string", "init-command", "init-timeout", "enable",
    "init-spin-max", "init-spin-window", "break-sequences", "close-on", "aliases",
}

# An init-command's length at most, characters (a longer one goes in a script).
INIT_COMMAND_MOST = 4096
# close-on at most, bytes: what a device says (a modem's NO CARRIER, a shell's logout).
CLOSE_ON_MOST = 256
# init-spin-max at most: runs started within init-spin-window.
INIT_SPIN_MOST = 1000
# aliases at most, a line (conserver's aliases: a console's other names).
ALIASES_MOST = 16

# Line and user names: ASCII only, the whole name (re.match with "$" would take a trailing
# newline: [lines."a\n"] reached logs and SSH user names).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# A name is in every log line, notice and status entry of its line (and is an SSH user name):
# 128 characters take a /dev/serial/by-id/ name whole; none had a bound (100,000 were taken).
MAX_NAME = 128
# At most this much of a name too long is shown in the error.
NAME_SHOWN = 64


def nameProblem(name: str, what: str = "line") -> Optional[str]:
    """Why C{name} cannot name a line (or a user: C{what}), as an error says it (a long name cut); None when it can."""
    if len(name) > MAX_NAME:
        return f"{what} name {quote(name[:NAME_SHOWN])}... ({len(name)} characters): at most {MAX_NAME} characters"
    if NAME.fullmatch(name):
        return None
    if name and NAME.fullmatch("a" + name[1:]):
        # ('..', '-a': every character allowed, "letters, digits, ... only" said nothing.)
        return (f"{what} name {quote(name)}: starts with {name[0]!r}: the first character is a letter or a digit "
                "(then letters, digits, '.', '_' and '-')")
    return f"{what} name {quote(name)}: letters, digits, '.', '_' and '-' only"


# The top-level tables, as an error shows each.
_TABLES = {"defaults": "[defaults]", "lines": "[lines.NAME]", "ssh": "[ssh]", "tls": "[tls]", "users": "[users.NAME]",
           "watch-all": "[watch-all]", "by-name": "[by-name]"}


def readLines(path: str, text: str, data: dict[str, Any], base: str) -> tuple[list[LineConfig], dict[str, int]]:
    for key in data:
        if key not in _TABLES:
            hint = foreignTable(key)
            near = nearest(key, _TABLES)
            if hint is None and near is not None:
                hint = f"did you mean {_TABLES[near]}?"
            raise ConfigError(f"{_where(path, text, key)}: unknown top-level key {quote(key)}{': ' + hint if hint else ''} "
                              "(expected [defaults], [lines.NAME], [ssh], [tls], [users.NAME], [watch-all] and [by-name])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{_where(path, text, 'defaults')}: [defaults] must be a table")
    lines = data.get("lines", {})
    if isinstance(lines, list):
        # [[lines]]: TOML's array of tables (where() finds no [lines] header: name its line here).
        found = re.search(r"^\s*\[\[\s*lines\s*\]\]", text, re.MULTILINE)
        place = f"{path}:{text.count(chr(10), 0, found.start()) + 1}" if found else path
        raise ConfigError(f"{place}: [[lines]] is an array of tables, the lines without names: write one table a "
                          "line, [lines.NAME], with device = ... and listen = ...")
    if not isinstance(lines, dict):
        raise ConfigError(f"{_where(path, text, 'lines')}: lines: expected tables [lines.NAME] (one a line, with "
                          f"device = ... and listen = ...), not {quote(lines)}")
    if not lines:
        raise ConfigError(f"{path}: no lines: add a table such as [lines.ttyS0] with device = ... and listen = ...")
    if "shard" in defaults:
        raise ConfigError(f"{_where(path, text, 'defaults', 'shard')}: [defaults] shard: a line's own key "
                          "(in [lines.NAME]): it gives that line to one process of --shard I/N")
    if "aliases" in defaults:
        raise ConfigError(f"{_where(path, text, 'defaults', 'aliases')}: [defaults] aliases: a line's own key "
                          "(in [lines.NAME]): other names of that line, each naming one line only")
    configs = []
    pins: dict[str, int] = {}
    # Each alias read so far, and its line's name (one alias names one line only).
    owners: dict[str, str] = {}
    for name, table in lines.items():
        where = f"lines.{name}"
        problem = nameProblem(name)
        if problem is not None:
            raise ConfigError(f"{_where(path, text, where)}: {problem}")
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, where)}: lines.{name} must be a table, not {quote(table)}")
        merged = {**defaults, **table}
        for key in merged:
            if key not in LINE_KEYS:
                table_ = where if key in table else "defaults"
                hint = foreignKey(key) or didYouMean(key, LINE_KEYS).removeprefix(": ")
                raise ConfigError(f"{_where(path, text, table_, key)}: unknown key {quote(key)} in [{table_}]"
                                  f"{': ' + hint if hint else ''} (known: {', '.join(sorted(LINE_KEYS))})")
        # ser2net's enable: off: a line kept in the file, checked, not served.
        enabled = merged.pop("enable", True)
        if not isinstance(enabled, bool):
            table_ = where if "enable" in table else "defaults"
            raise ConfigError(f"{_where(path, text, table_, 'enable')}: [{table_}] enable: expected true or false, not "
                              f"{_shown(enabled)}{_unquoted('enable', bool, enabled)}")
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
            # A [defaults] value with {line} fails for some lines only: say which.
            which = f"for line {quote(name)}, " if table_ == "defaults" and e.key in PLACED_KEYS and \
                hasPlaceholder(defaults[e.key]) else ""
            raise ConfigError(f"{_where(path, text, table_, e.key)}: [{table_}] {e.key}: {which}{e.message}") from None
        # A line's own dtr (baud, lock, ...) on a device where it means
        # nothing: kept and ignored, the line looked configured.  From
        # [defaults] it is for the lines that take it: silent.
        for key in table:
            refusal = deviceKeyRefusal(key, configs[-1].device)
            if key == "serial" and not refusal:
                refusal = ptySerialRefusal(str(table[key]), configs[-1].device)
            if key in ("open-string", "close-string", "idle-string") and not refusal:
                parts = {"open-string": configs[-1].openString, "close-string": configs[-1].closeString,
                         "idle-string": configs[-1].idleString}[key]
                refusal = stringBreakRefusal(parts, configs[-1].device)
            if key == "break-sequences" and not refusal:
                # (From [defaults] a break sequence is for the lines that carry a break: l says why on the others.)
                refusal = next((f"{name}: {why}" for name, parts in configs[-1].breakSequences
                                if (why := stringBreakRefusal(parts, configs[-1].device))), "")
            if refusal:
                raise ConfigError(f"{_where(path, text, where, key)}: [{where}] {key}: {refusal}")
        if configs[-1].device.kind == "pty" and configs[-1].settings.rtscts:
            # [defaults]' RTS/CTS, for the ttys: a pty has none (it was set in its termios, and said to be on).
            configs[-1] = attrs.evolve(configs[-1], settings=attrs.evolve(configs[-1].settings, rtscts=False))
        # A line's own log-typed (log-mark, ...) without log: no file at all,
        # and no word said (an audit trail asked for and none kept).  From
        # [defaults] it is for the lines that log: silent.
        _orphans(path, text, where, table, configs[-1])
        orphan = next((key for key in table if key in _LOG_KEYS), None)
        if orphan is not None and configs[-1].log is None:
            raise ConfigError(f"{_where(path, text, where, orphan)}: [{where}] {orphan}: needs log = PATH on this "
                              f"line (or in [defaults]): without a console log, {orphan} makes no file and does nothing")
        _aliasesFree(path, text, lines, name, configs[-1].aliases, owners)
        if not enabled:
            configs.pop()
            pins.pop(name, None)
    if not configs:
        raise ConfigError(f"{path}: every line has enable = false: nothing to serve (set enable = true on one, or "
                          "leave the key out)")
    return configs, pins


def _aliasesFree(path: str, text: str, lines: dict[str, Any], name: str, aliases: tuple[str, ...],
                 owners: dict[str, str]) -> None:
    """
    Line C{name}'s aliases name no other line (its name, a line with
    enable = false too: it may be turned on) and no other line's alias
    (C{owners}: those read so far, each with its line; this line's added).
    """
    where = f"lines.{name}"
    for alias in aliases:
        if alias in lines:
            raise ConfigError(f"{_where(path, text, where, 'aliases')}: [{where}] aliases: {quote(alias)} is the name "
                              f"of [lines.{alias}]: an alias names one line only")
        if alias in owners:
            raise ConfigError(f"{_where(path, text, where, 'aliases')}: [{where}] aliases: {quote(alias)} is an alias "
                              f"of [lines.{owners[alias]}] already: an alias names one line only")
    owners.update((alias, name) for alias in aliases)


def _aliases(name: str, given: Any) -> tuple[str, ...]:
    """A line's aliases (one string or a list): names as a line's, none its own or twice, at most ALIASES_MOST."""
    items = [given] if isinstance(given, str) else given
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _KeyError("aliases", f"expected a line's other names (a string or a list of them), not {_shown(given)}")
    if len(items) > ALIASES_MOST:
        raise _KeyError("aliases", f"{len(items)} aliases, at most {ALIASES_MOST}")
    seen: set[str] = set()
    for item in items:
        problem = nameProblem(item, "alias")
        if problem is not None:
            raise _KeyError("aliases", problem)
        if item == name:
            raise _KeyError("aliases", f"{quote(item)} is this line's own name: an alias is another name")
        if item in seen:
            raise _KeyError("aliases", f"{quote(item)} is given twice")
        seen.add(item)
    return tuple(items)


_LOG_KEYS: dict[str, tuple[str, type]] = {
    "log-format": ("format", str),
    "log-max-size": ("maxSize", int),
    "log-daily": ("daily", bool),
    "log-keep": ("keep", int),
    "log-events": ("events", object),  # a name or true/false: LogSpec says which
    "log-mark": ("mark", int),
    "log-typed": ("typed", object),
}


def _orphans(path: str, text: str, where: str, table: dict[str, Any], config: LineConfig) -> None:
    """
    A line's own on-demand-linger without on-demand, idle-string without
    idle-timeout, init-timeout without init-command: refused (nothing would happen, unsaid).  From [defaults]
    each is for the lines that take it: silent.
    """
    for key, needs, given in (("on-demand-linger", "on-demand = true", config.onDemand),
                              ("idle-string", "idle-timeout", config.idleTimeout > 0),
                              ("init-timeout", "init-command", bool(config.initCommand)),
                              ("init-spin-max", "init-command", bool(config.initCommand)),
                              ("init-spin-window", "init-command", bool(config.initCommand))):
        if key in table and not given:
            raise ConfigError(f"{_where(path, text, where, key)}: [{where}] {key}: needs {needs} on this line (or in "
                              f"[defaults]): without it, {key} does nothing")


def initTimeoutSeconds(given: Any) -> Optional[float]:
    """init-timeout (--init-timeout): 1 s to a day (never 0: an init-command is always bounded); None if not that."""
    try:
        value = parseSeconds(given, 1.0)
    except ConfigError:
        value = 0.0
    return value or None


def initTimeoutRefusal(shown: str) -> str:
    """Why an init-timeout shown as C{shown} is refused."""
    return (f"expected seconds, 1 to {MOST_SECONDS} (a day), as 60, \"90s\", \"5m\" or \"1h\" (an init-command is "
            f"always bounded: 60 when left out), not {shown}")


def initCommandRefusal(command: str, leftOut: str) -> Optional[str]:
    """Why an init-command is refused (empty, too long, a NUL), or None; C{leftOut}: how to have none."""
    if not command.strip():
        return f"empty: nothing to run; {leftOut} for none"
    if len(command) > INIT_COMMAND_MOST:
        return (f"{len(command)} characters: at most {INIT_COMMAND_MOST} (a longer one goes in a script, "
                "init-command = \"/path/to/script\")")
    if "\0" in command:
        return "a NUL (\\0) in it: a command line cannot hold one"
    return None


def _initTimeout(given: Any) -> float:
    value = initTimeoutSeconds(given)
    if value is None:
        raise _KeyError("init-timeout", initTimeoutRefusal(_shown(given)))
    return value


def _initSpin(table: dict[str, Any]) -> tuple[int, float]:
    """init-spin-max (runs: 1 to INIT_SPIN_MOST) and init-spin-window (seconds: 1 to a day), 5 and 10 left out."""
    most = table.get("init-spin-max", 5)
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= INIT_SPIN_MOST:
        raise _KeyError("init-spin-max", f"expected runs, 1 to {INIT_SPIN_MOST} (at most that many init-command starts "
                                         f"within init-spin-window), not {_shown(most)}")
    window = initTimeoutSeconds(table.get("init-spin-window", 10))
    if window is None:
        raise _KeyError("init-spin-window", f"expected seconds, 1 to {MOST_SECONDS} (a day), as 10, \"90s\", \"5m\" or "
                                            "\"1h\" (the starts are always bounded: 10 when left out), not "
                                            f"{_shown(table['init-spin-window'])}")
    return most, window


def _closeOn(text: str) -> bytes:
    """close-on (ser2net's closeon): the open-string's escapes, no break, 1 to CLOSE_ON_MOST bytes."""
    try:
        parts = parseSendString(text, "close-on")
    except ConfigError as e:
        raise _KeyError("close-on", str(e).removeprefix("close-on ")) from None
    if len(parts) > 1:
        raise _KeyError("close-on", f"{quote(text)}: a break (\\b) is nothing a device sends: close-on is text it "
                                    "sends (\\r \\n \\t \\e \\0 \\\\ \\xNN)")
    if not parts or not parts[0]:
        raise _KeyError("close-on", "empty: it would match anything; leave close-on out for none")
    if len(parts[0]) > CLOSE_ON_MOST:
        raise _KeyError("close-on", f"{quote(text[:40])}...: {len(parts[0])} bytes, at most {CLOSE_ON_MOST}")
    return parts[0]


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string (in quotes)"}


def _unquoted(key: str, kind: type, item: Any) -> str:
    """C{" (without quotes: log-keep = 7)"} for a number or true/false written in quotes; empty otherwise."""
    bare = item.strip() if isinstance(item, str) else ""
    if kind is bool and bare.lower() in ("true", "false"):
        return f" (without quotes: {key} = {bare.lower()})"
    if kind is int and re.fullmatch(r"[0-9]{1,20}", bare) or kind is float and re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,20})?", bare):
        return f" (without quotes: {key} = {bare})"
    return ""


def _shown(item: Any) -> str:
    """A value in an error as TOML writes it (true, not True; a string quoted)."""
    return ("true" if item else "false") if isinstance(item, bool) else quote(item)


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
            # (Python's names, "expected int, not True", are no TOML's.)
            raise _KeyError(key, f"expected {_KINDS.get(kind, kind.__name__)}, not {_shown(item)}{_unquoted(key, kind, item)}")
        return item

    def parsed(key: str, parse: Any, raw: Any) -> Any:
        try:
            return parse(raw)
        except ConfigError as e:
            raise _KeyError(key, str(e)) from None

    # {line} in paths: one [defaults] value for every line (serialgw.config.placeholders).
    table = {**table, **{key: parsed(key, lambda v, k=key: expandValue(v, name, k), table[key])
                         for key in PLACED_KEYS if key in table}}
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
        # The value as written (2**63, not 9.223372036854776e+18).
        raise _KeyError("break-duration", f"expected 1 to 10000 milliseconds, not {quote(table['break-duration'])}")
    mode = value("mode", str, "shared")
    if mode not in ("shared", "exclusive"):
        raise _KeyError("mode", f"expected shared or exclusive, not {quote(mode)}")
    maxClients = value("max-clients", int, DEFAULT_MAX_CLIENTS)
    if not 0 <= maxClients <= MAX_CLIENTS:
        raise _KeyError("max-clients", f"expected 0 (no limit) to {MAX_CLIENTS} clients, not {maxClients}")
    kickOld = value("kick-old-user", bool, False)
    if kickOld and not maxClients:
        raise _KeyError("kick-old-user", "means nothing with max-clients = 0 (no limit): the line is never full, "
                                         "nobody makes room; give max-clients (ser2net's max-connections)")
    backlog = value("backlog", int, DEFAULT_BACKLOG)
    if not 0 <= backlog <= MAX_BACKLOG:
        raise _KeyError("backlog", f"expected 0 to {MAX_BACKLOG} bytes, not {backlog}")
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

    # (Checked as a number, read as written: 2**63 said as such, not 9.223372036854776e+18.)
    pace = {key: parsed(key, lambda t, k=key: parseMilliseconds(t, k), table[key] if value(key, float) else 0.0)
            for key in ("pace", "pace-line")}
    for key in ("open-string", "close-string", "idle-string", "close-on"):
        if "\b" in value(key, str, ""):
            # TOML's own escape: "\r\b" (the README's example) sent a backspace where a break was meant.
            raise _KeyError(key, "a backspace (\\x08) in it: in a TOML string \"...\" \\b is a backspace, not "
                                 "serialgw's break: write the string in single quotes ('\\r\\b': a literal string keeps "
                                 "its backslashes), or \\\\b for the break; a backspace is \\\\x08")
    strings = {key: parsed(key, lambda t, k=key: parseSendString(t, k), value(key, str, ""))
               for key in ("open-string", "close-string", "idle-string")}
    # (An idle-string a second at most: each one written to the device, told, logged.)
    seconds = {key: parsed(key, lambda t, least=least: parseSeconds(t, least), table.get(key, 0))
               for key, least in (("on-demand-linger", 0.0), ("idle-timeout", 1.0))}
    initCommand = value("init-command", str, "")
    refusal = initCommandRefusal(initCommand, "leave init-command out") if "init-command" in table else None
    if refusal is not None:
        raise _KeyError("init-command", refusal)
    initTimeout = _initTimeout(table.get("init-timeout", 60))
    initSpinMost, initSpinWindow = _initSpin(table)
    if "idle-string" in table and not strings["idle-string"]:
        raise _KeyError("idle-string", "empty: nothing to send; leave idle-timeout out (or 0) for no idle-string")

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
        rights=Rights(write=names("write"), read=names("read"), admin=names("admin")),
        openString=strings["open-string"],
        closeString=strings["close-string"],
        dtr=onOff("dtr"),
        rts=onOff("rts"),
        idleDtr=onOff("idle-dtr"),
        idleRts=onOff("idle-rts"),
        pace=pace["pace"],
        paceLine=pace["pace-line"],
        lock=value("lock", bool, True),
        lockDir=parsed("lock-dir", lambda t: parseLockDir(noLine(t, "lock-dir", "lock-dir"), "lock-dir"),
                       value("lock-dir", str, DEFAULT_LOCK_DIR)),
        onDemand=value("on-demand", bool, False),
        onDemandLinger=seconds["on-demand-linger"],
        idleTimeout=seconds["idle-timeout"],
        idleString=strings["idle-string"] if "idle-string" in table else (b"\n",),
        initCommand=initCommand,
        initTimeout=initTimeout,
        initSpinMost=initSpinMost,
        initSpinWindow=initSpinWindow,
        kickOldUser=kickOld,
        banner=parsed("banner", parseBanner, value("banner", str)) if "banner" in table else None,
        closeOn=_closeOn(value("close-on", str)) if "close-on" in table else b"",
        aliases=_aliases(name, table["aliases"]) if "aliases" in table else (),
        **({"breakSequences": parsed("break-sequences", parseSequences, table["break-sequences"])}
           if "break-sequences" in table else {}),
    )
