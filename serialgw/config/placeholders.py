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
from typing import Any, Optional

from serialgw.config.specs import ConfigError, quote

# The keys whose values are read for {line}: paths, and the strings holding them.
PLACED_KEYS = ("device", "listen", "log")

_BRACES = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")


def expandLine(text: str, name: str, key: str, noLine: str = "") -> str:
    """
    C{text} with C{{line}} made C{name} and C{{{}, C{}}} made one brace;
    ConfigError naming C{key} and the value as typed for any other brace.
    With C{noLine} (why the key is no line's), C{{line}} is refused saying it.
    """
    if "{" not in text and "}" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "{line}" and noLine:
            raise ConfigError(f"{key} {quote(text)}: {{line}} is a line's name, and {noLine}: write the path out "
                              "(a brace itself is written {{ or }})")
        if found == "{line}":
            return name
        if found in ("{{", "}}"):
            return found[0]
        why = f"a lone {quote(found)}" if len(found) == 1 else f"unknown placeholder {quote(found)}"
        raise ConfigError(f"{key} {quote(text)}: {why}: the one placeholder is {{line}}, the line's name; "
                          "a brace itself is written {{ or }}")

    return _BRACES.sub(one, text)


# Paths that are no line's, and why {line} cannot mean anything there: it
# was taken as written (a socket, a key file named '{line}').  Their braces
# are read as a line's paths' are ({{ and }} a brace), by L{noLine}.
NOT_PER_LINE = {
    "ssh listen": "[ssh] serves every line (one listener; the SSH user name picks the line)",
    "ssh host-key": "the SSH listener has one host key for every line",
    "watch-all listen": "[watch-all] shows every line on its listeners",
    "by-name listen": "[by-name] serves every line (a client names the one it wants)",
    "keys-file": "a person's keys are theirs on every line",
    # (Per line, but a lock where no other program looks locks nothing out.)
    "lock-dir": "a line's own lock directory is one where no other program (minicom, cu, ser2net) looks for its "
                "tty's lock: UUCP locks go in one directory for all, e.g. /var/lock",
}


def noLine(text: str, key: str, where: str) -> str:
    """C{text} of a path that is no line's (C{where}: its L{NOT_PER_LINE} entry), its braces read; {line} refused."""
    return expandLine(text, "", key, NOT_PER_LINE[where])


# The command line's options that hold paths: one line, its paths written out.
OPTION_PATHS = ("device", "port", "listen", "lock-dir", "ssh", "ssh-host-key", "authorized-keys", "readonly-keys",
                "watch-all", "status")


def lineInOptions(options: Any) -> Optional[str]:
    """
    Why an option's path holding {line} is refused (it was taken as
    written: a socket named '{line}.sock'), or None: {line} is read in a
    configuration file's paths, one [defaults] value for every line.
    """
    for key in OPTION_PATHS:
        given = options.get(key)
        for value in given if isinstance(given, list) else [given]:
            if isinstance(value, str) and "{line}" in value:
                return (f"--{key} {quote(value)}: {{line}} is read in a configuration file's paths (one [defaults] "
                        "value for every line); on the command line, write the path out")
    return None


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
