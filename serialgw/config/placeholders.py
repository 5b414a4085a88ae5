"""
C{{line}} in a line's paths: the line's name, so that one C{[defaults]}
value serves every line (conserver's C{&} in C{logfile}, ser2net's C{\\N}
in a trace file's name):

    [defaults]
    log = "/var/log/serialgw/{line}.log"
    listen = "unix:/run/serialgw/{line}.sock"

Every brace in C{device}, C{listen} and C{log} is read: C{{line}} is the
name, C{{{} and C{}}} a brace itself, and anything else is refused (an
unknown C{{name}}, a lone brace), so a path can never mean something other
than what is written: no brace is taken as it is by chance.  conserver's
C{&} and ser2net's C{\\N} are not taken: C{&} is an ordinary character in
file names, and a backslash in a TOML basic string is an escape already.
"""

from __future__ import annotations

import re
from typing import Any

from serialgw.config.specs import ConfigError, quote

# The keys whose values are read for {line}: paths, and the strings holding them.
PLACED_KEYS = ("device", "listen", "log")

_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")


def expandLine(text: str, name: str, key: str) -> str:
    """
    C{text} with C{{line}} made C{name} and C{{{}, C{}}} made one brace;
    ConfigError naming C{key} and the value as typed for any other brace.
    """
    if "{" not in text and "}" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "{line}":
            return name
        if found in ("{{", "}}"):
            return found[0]
        why = f"a lone {quote(found)}" if len(found) == 1 else f"unknown placeholder {quote(found)}"
        raise ConfigError(f"{key} {quote(text)}: {why}: the one placeholder is {{line}}, the line's name; "
                          "a brace itself is written {{ or }}")

    return _BRACES.sub(one, text)


def expandValue(value: Any, name: str, key: str) -> Any:
    """
    A raw value of C{key} with C{{line}} expanded: a string, or each string
    of a list (C{listen}); values of another type are left as they are
    (refused later, as typed).
    """
    if isinstance(value, str):
        return expandLine(value, name, key)
    if isinstance(value, list):
        return [expandLine(v, name, key) if isinstance(v, str) else v for v in value]
    return value


def hasPlaceholder(value: Any) -> bool:
    """Whether a raw value (a string, or a list of them) names C{{line}}."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and "{line}" in v.replace("{{", "") for v in items)


def sharedHint(key: str, value: Any) -> str:
    """
    For a [defaults] C{key} whose one value two lines cannot share (a log,
    a device): how {line} makes it each line's own, from conserver's C{&}
    or ser2net's C{\\N} when the value holds one.
    """
    if not isinstance(value, str) or hasPlaceholder(value):
        return ""
    if "&" in value or "\\N" in value:
        said = "conserver's &" if "&" in value else "ser2net's \\N"
        example = value.replace("&", "{line}").replace("\\N", "{line}")
        return f" ({said} is {{line}} here: {quote(example)})"
    if key == "log":
        head = value.rpartition("/")[0]
        return f" (each line its own: {{line}} is the line's name, e.g. {quote(head + '/{line}.log')})"
    return " (each line its own: {line} is the line's name)"
