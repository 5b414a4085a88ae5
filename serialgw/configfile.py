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

Every error names the file, the line of the file, and the key.
"""

from __future__ import annotations

import re
from typing import Any, Optional

import attrs

from serialgw.config import (
    DEFAULT_BACKLOG,
    DEFAULT_MAX_CLIENTS,
    MAX_BACKLOG,
    SINGLE_SETTINGS,
    ConfigError,
    LineConfig,
    LogSpec,
    SerialSettings,
    applySingle,
    checkPath,
    parseCoalesce,
    parseCompact,
    parseDevice,
)
from serialgw.endpoints import parseListener

LINE_KEYS = {
    "device", "serial", "baud", "bytesize", "parity", "stopbits", "xonxoff", "rtscts", "listen",
    "break-duration", "signature", "notices", "restore", "mode", "max-clients", "backlog",
    "log", "log-format", "log-max-size", "log-daily", "log-keep", "coalesce",
}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def loadConfig(path: str) -> list[LineConfig]:
    """Read a configuration file; raise ConfigError naming the file, line and key."""
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read configuration {path!r}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        # TOML is UTF-8: a stray Latin-1 byte must not become U+FFFD in a path.
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start:e.end].hex(" ")
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte {bad} at column {column}); a TOML file is UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    return _lines(path, text, data)


def _where(path: str, text: str, table: str, key: Optional[str] = None) -> str:
    """C{path:LINE} of a table's header, or of a key inside it."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table.split(".")) + r"\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return path
    if key is not None:
        keyLine = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for i in range(start + 1, len(lines)):
            if lines[i].lstrip().startswith("["):
                break
            if keyLine.match(lines[i]):
                return f"{path}:{i + 1}"
    return f"{path}:{start + 1}"


def _lines(path: str, text: str, data: dict[str, Any]) -> list[LineConfig]:
    for key in data:
        if key not in ("defaults", "lines"):
            raise ConfigError(f"{path}: unknown top-level key {key!r} (expected [defaults] and [lines.NAME])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{_where(path, text, 'defaults')}: [defaults] must be a table")
    lines = data.get("lines", {})
    if not isinstance(lines, dict) or not lines:
        raise ConfigError(f"{path}: no lines: add a table such as [lines.ttyS0] with device = ... and listen = ...")
    configs = []
    for name, table in lines.items():
        where = f"lines.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(path, text, 'lines')}: lines.{name} must be a table")
        if not NAME.match(name):
            raise ConfigError(f"{_where(path, text, where)}: line name {name!r}: letters, digits, '.', '_' and '-' only")
        merged = {**defaults, **table}
        for key in merged:
            if key not in LINE_KEYS:
                table_ = where if key in table else "defaults"
                raise ConfigError(f"{_where(path, text, table_, key)}: unknown key {key!r} in [{table_}] "
                                  f"(known: {', '.join(sorted(LINE_KEYS))})")
        try:
            configs.append(_line(name, merged))
        except _KeyError as e:
            table_ = "defaults" if e.key in defaults and e.key not in table else where
            raise ConfigError(f"{_where(path, text, table_, e.key)}: [{table_}] {e.key}: {e.message}") from None
    return configs


_LOG_KEYS: dict[str, tuple[str, type]] = {
    "log-format": ("format", str),
    "log-max-size": ("maxSize", int),
    "log-daily": ("daily", bool),
    "log-keep": ("keep", int),
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
            item = float(item)
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise _KeyError(key, f"expected {kind.__name__}, not {item!r}")
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
            settings = parsed(key, lambda t, k=key, base=settings: applySingle(base, k, t), str(table[key]))
    for key in ("xonxoff", "rtscts"):
        if key in table:
            settings = attrs.evolve(settings, **{key: value(key, bool)})
    listen = table.get("listen", [])
    if isinstance(listen, (str, int)) and not isinstance(listen, bool):
        listen = [listen]
    if not isinstance(listen, list) or not listen or not all(isinstance(t, (str, int)) for t in listen):
        raise _KeyError("listen", f"expected a listener or a list of them, not {listen!r}")
    listeners = tuple(parsed("listen", parseListener, str(t)) for t in listen)
    milliseconds = value("break-duration", float, 250.0)
    if not 0 < milliseconds <= 10000:
        raise _KeyError("break-duration", f"expected 1 to 10000 milliseconds, not {milliseconds!r}")
    mode = value("mode", str, "shared")
    if mode not in ("shared", "exclusive"):
        raise _KeyError("mode", f"expected shared or exclusive, not {mode!r}")
    maxClients = value("max-clients", int, DEFAULT_MAX_CLIENTS)
    backlog = value("backlog", int, DEFAULT_BACKLOG)
    if maxClients < 0 or backlog < 0:
        raise _KeyError("max-clients" if maxClients < 0 else "backlog", "expected a number >= 0")
    if backlog > MAX_BACKLOG:
        raise _KeyError("backlog", f"expected at most {MAX_BACKLOG} bytes, not {backlog}")
    log = None
    if "log" in table:
        # Only the keys given: LogSpec's own defaults fill the rest (read
        # from the class, a frozen attrs field is a slot descriptor).
        given = {field: value(key, kind) for key, (field, kind) in _LOG_KEYS.items() if key in table}
        try:
            log = LogSpec(path=parsed("log", lambda t: checkPath(t, "log"), value("log", str)), **given)
        except ConfigError as e:
            raise _KeyError(next((k for k in _LOG_KEYS if str(e).startswith(k)), "log"), str(e)) from None
    coalesce = parsed("coalesce", parseCoalesce, str(table.get("coalesce", "off")))
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
    )
