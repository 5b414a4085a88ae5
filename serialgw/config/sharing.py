"""
What two lines of one file cannot share: a device, a console log, a file
written (a file: listener), a path the gateway makes (a pty's link, a pipe:
FIFO pair), a loop of pty links, the gateway's one terminal; nor may one
line dial one peer twice.  Refused when
the file is read, so at start, at a reload and by --check alike.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from serialgw.config.listenerspecs import ListenerKind
from serialgw.config.loops import ptyLoop
from serialgw.config.paths import identity, placeKeys, whereWritten
from serialgw.config.placeholders import sharedHint
from serialgw.config.specs import ConfigError, LineConfig, quote
from serialgw.config.thishost import hostAsDialled
from serialgw.config.where import where as _where


def dialledTwice(listeners: Any) -> Optional[tuple[Any, Any, str]]:
    """
    One line's listeners dialling one peer twice (a dial-out named twice,
    or by raw and telnet): the first, the second and the peer, else None.
    The file (L{oneLineEach}) and the command line (--listen) refuse it.
    """
    dialled: dict[tuple[str, int, str], Any] = {}
    for dial in listeners:
        if dial.kind is not ListenerKind.CONNECT:
            continue
        # (One peer however spelt: 127.1 and 127.0.0.1, LOCALHOST and localhost., ::ffff:127.0.0.1.)
        first = dialled.setdefault((hostAsDialled(dial.host), dial.port, os.path.normpath(dial.path) if dial.path
                                    else ""), dial)
        if first is not dial:
            peer = dial.path or (f"[{dial.host}]:{dial.port}" if ":" in dial.host else f"{dial.host}:{dial.port}")
            return first, dial, peer
    return None


def _hint(table: str, data: dict[str, Any], key: str) -> str:  # a [defaults] path two lines share: {line}
    return sharedHint(key, data["defaults"].get(key)) if table == "defaults" else ""


def _suffix(table: str, data: dict[str, Any], key: str) -> str:  # a [defaults] "/var/log/x/{line}": web1, web1.1
    value = data["defaults"].get(key) if table == "defaults" else None
    return " (a suffix after {line}, as '{line}.log', keeps the names apart)" \
        if isinstance(value, str) and value.endswith("{line}") else ""


def _for(table: str, name: str) -> str:  # which line a [defaults] key clashes for ([defaults] alone named no line)
    return f"for line {quote(name)}, " if table == "defaults" else ""


def oneLineEach(path: str, text: str, data: dict[str, Any], lines: list[LineConfig]) -> None:
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
                                      f"{quote(shown)} is line {quote(owner[0])}'s {key}{other} too{why}"
                                      f"{_hint(table, data, key)}")
    # One peer dialled twice by one line (its listen naming a dial-out twice): two connections
    # to the far end, each sent every byte of the device, each typing.  (Two lines may dial one.)
    for config in lines:
        twice = dialledTwice(config.listeners)
        if twice is not None:
            first, dial, peer = twice
            table = f"lines.{config.name}" if "listen" in data["lines"][config.name] else "defaults"
            raise ConfigError(f"{_where(path, text, table, 'listen')}: [{table}] listen: {_for(table, config.name)}"
                              f"{quote(dial.text)} dials {peer}, as line {quote(config.name)}'s listener "
                              f"{quote(first.text)} does: the far end would get every byte twice, and both would type")
    # A file written by two (file: listeners, console logs): their lines
    # interleaved in it and each rotated or truncated the other's.  Paths
    # are compared normalised, and by what they are (a symlink to another's
    # file, a hard link), or where their symlinks lead while not made yet.
    writers: dict[object, tuple[str, str, str]] = {}
    for config in lines:
        written = [("log", config.log.path, config.log.path, "log")] if config.log is not None else []
        if config.log is not None and config.log.typed != "off":  # (log-typed: LOG.typed is the line's too)
            written.append(("log-typed", config.log.path + ".typed", config.log.path + ".typed", "log-typed file"))
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
                                  f"two writers would interleave in one file{_hint(table, data, key)}")
    # A console log's old files (LOG.1 to LOG.KEEP, LOG.typed.1 ...): another
    # file there is renamed by the log's rotation, under its writer (a log
    # "/var/log/x/{line}" and lines web1 and web1.1: web1's rotation moved
    # web1.1's live log to web1.2).
    rotated: dict[str, tuple[str, str, int]] = {}
    for config in lines:
        spec = config.log
        if spec is not None and spec.keep > 0 and (spec.maxSize > 0 or spec.daily):
            rotated[os.path.normpath(spec.path)] = (config.name, "log", spec.keep)
            if spec.typed != "off":
                rotated[os.path.normpath(spec.path + ".typed")] = (config.name, "log-typed file", spec.keep)
    for config in lines if rotated else ():
        for key, claimed in _written(config):
            base, dot, number = os.path.normpath(claimed).rpartition(".")
            # (ASCII digits, a few: int() of '²' or of 5000 digits raises.)
            numbered = dot and number.isascii() and number.isdigit() and number[0] != "0" and len(number) <= 4
            old = rotated.get(base) if numbered else None
            if old is not None and int(number) <= old[2]:
                table = f"lines.{config.name}" if key in data["lines"][config.name] else "defaults"
                raise ConfigError(f"{_where(path, text, table, key)}: [{table}] {key}: {_for(table, config.name)}"
                                  f"{quote(claimed)} is one of line {quote(old[0])}'s old {old[1]}s "
                                  f"({quote(base + '.1')} to {quote(f'{base}.{old[2]}')}: log-keep = {old[2]}): "
                                  f"its rotation would rename this file under its writer{_suffix(table, data, key)}")
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
                                  f"{quote(maker[1])}{_hint(table, data, key)}")
            if claimed:
                paths[os.path.normpath(claimed)] = (config.name, shown)
    loop = ptyLoop(lines, placeKeys)
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


def _written(config: LineConfig) -> list[tuple[str, str]]:
    """The files a line writes, with the key each comes from: its log (and LOG.typed), its file: listeners."""
    found = []
    if config.log is not None:
        found.append(("log", config.log.path))
        if config.log.typed != "off":
            found.append(("log-typed", config.log.path + ".typed"))
    return found + [("listen", spec.path) for spec in config.listeners if spec.kind is ListenerKind.FILE]
