"""
A line's console log settings (LogSpec): the file, its stamps' format,
rotation, events and marks, what clients typed; checked when made, with
their bounds (log-max-size, log-keep, log-format, log-mark, log-events,
log-typed).  Nothing here does I/O.
"""

from __future__ import annotations

import time
from typing import Callable

import attrs

from serialgw.config.specs import ConfigError, quote

# The most log-max-size takes (0, no limit, aside): 1 TiB.
MAX_LOG_SIZE = 1 << 40


@attrs.frozen
class LogSpec:
    """
    A line's console log: each line of output stamped with the time
    (strftime C{format}); rotated past C{maxSize} bytes and, if C{daily},
    at midnight; C{keep} old files (C{path.1} newest).  C{events}: how the
    line's events are written (L{LOG_EVENTS}: C{serialgw}'s
    C{[serialgw: ...]}, conserver's C{[-- ... -- DATE]}, or C{off});
    C{mark}: minutes between conserver's C{[-- MARK -- DATE]} lines (0: none);
    C{typed}: what clients typed goes to C{path.typed} (L{LOG_TYPED}).
    """

    path: str
    format: str = "%Y-%m-%d %H:%M:%S "
    maxSize: int = 10 * 1024 * 1024
    daily: bool = True
    keep: int = 7
    events: str = attrs.field(default="serialgw", converter=lambda v: _logEvents(v))
    mark: int = 0
    typed: str = attrs.field(default="off", converter=lambda v: _logTyped(v))

    def __attrs_post_init__(self) -> None:
        if not self.path:
            raise ConfigError("log path is empty")
        if not 0 <= self.maxSize <= MAX_LOG_SIZE:
            # (10**30 was taken.)
            raise ConfigError(f"log-max-size must be 0 (no limit) to {MAX_LOG_SIZE} bytes (1 TiB), not {quote(self.maxSize)}")
        if not 0 <= self.keep <= MAX_LOG_KEEP:
            # Every rotation renames them all, on the reactor's thread.
            raise ConfigError(f"log-keep must be 0 to {MAX_LOG_KEEP}, not {quote(self.keep)}")
        if len(self.format) > MAX_LOG_FORMAT:
            # It is written after every newline of device output: a long one
            # would make a chunk of newlines a huge write.
            raise ConfigError(f"log-format must be at most {MAX_LOG_FORMAT} characters, not {len(self.format)}")
        try:
            time.strftime(self.format)
            # The stamp at a date with long names (a Wednesday in September).
            stamp = time.strftime(self.format, (2026, 9, 30, 23, 59, 59, 2, 273, 0))
        except ValueError as e:
            raise ConfigError(f"log-format {quote(self.format)}: {e}") from None
        if len(stamp.encode("utf-8", "replace")) > MAX_LOG_STAMP:
            # Field widths: "%1600c" * 10 stamped 16 KB before every line
            # (a chunk of 64 KiB of newlines, a 1 GB write).
            raise ConfigError(f"log-format {quote(self.format)}: its stamp is {len(stamp.encode('utf-8', 'replace'))} "
                              f"bytes, more than {MAX_LOG_STAMP} (it is written before every line)")
        if not 0 <= self.mark <= MAX_LOG_MARK:
            raise ConfigError(f"log-mark must be 0 (no marks) to {MAX_LOG_MARK} minutes (a week), not {quote(self.mark)}")
        if any(c != "\t" and not c.isprintable() for c in stamp):
            # (%n, a newline: every line of output was cut in two, its second half unstamped.)
            raise ConfigError(f"log-format {quote(self.format)}: its stamp holds a line break or another control "
                              "character (it is written before every line)")


MAX_LOG_KEEP = 1000
# log-mark's most minutes: a week.
MAX_LOG_MARK = 7 * 24 * 60
# How a console log writes the line's events (log-events): true is serialgw, false off.
LOG_EVENTS = ("serialgw", "conserver", "off")


# What a console log's LOG.typed file gets of what clients typed (log-typed): true is text, false off.
LOG_TYPED = ("off", "text", "hexdump")


def _named(key: str, names: tuple[str, ...], yes: str, no: str) -> Callable[[object], str]:
    """A converter of C{key} as given (one of C{names}, or true/false: C{yes}/C{no}); another is refused, quoted."""

    def convert(value: object) -> str:
        if value is True or value is False:
            return yes if value else no
        if isinstance(value, str) and value in names:
            return value
        raise ConfigError(f"{key} must be one of {', '.join(repr(v) for v in names)} (or true/false), not {quote(value)}")

    return convert


_logTyped: Callable[[object], str] = _named("log-typed", LOG_TYPED, "text", "off")
_logEvents: Callable[[object], str] = _named("log-events", LOG_EVENTS, "serialgw", "off")


MAX_LOG_FORMAT = 64
# The most bytes a stamp may be (log-format's output).
MAX_LOG_STAMP = 128
