"""
A line's banner of its own (C{banner = "..."}, C{--banner}; ser2net's
C{banner: TEXT}): the text a session is greeted with, where the listener's
C{banner} option showed a fixed one.  Read here (no I/O): the escapes
C{\\r \\n \\t \\\\}, the placeholders C{{line}}, C{{device}},
C{{settings}} and C{{port}} (ser2net's C{\\p}: the port the session came
in on) (C{{{}} and C{}}} for braces), at most L{MAX_BANNER}
characters as written; anything else is refused naming the input and
what is wrong (ser2net's escapes with serialgw's spelling).  Filled in for
each session by L{fillBanner}.
"""

from __future__ import annotations

import re

from serialgw.config.specs import ConfigError, quote

# At most this many characters as written (the placeholders add at most a
# line's name, 128, a device's path and its settings).
MAX_BANNER = 512

PLACEHOLDERS = ("line", "device", "settings", "port")
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "\\": "\\"}
# ser2net's banner escapes, as said here.
_SER2NET = {"d": "is {device} here", "B": "is {settings} here", "s": "is {settings} here", "N": "is {line} here",
            "p": "is {port} here"}
_TOKEN = re.compile(r"\\(.?)|\{\{|\}\}|\{([^{}]*)\}?|\}|[^\\{}]+", re.DOTALL)
# (The C1 controls too: U+009B is CSI to a UTF-8 terminal, as ESC [ is.)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def parseBanner(text: str, what: str = "banner") -> str:
    """
    C{text} as a banner: its escapes made characters, its placeholders
    checked and kept for L{fillBanner}.  Raises L{ConfigError} naming
    C{what}, the text (cut when long) and what is wrong.
    """
    shown = quote(text if len(text) <= 40 else text[:40] + "...")
    if not text:
        raise ConfigError(f"{what}: empty: leave it out for the listener option banner's own text")
    if len(text) > MAX_BANNER:
        raise ConfigError(f"{what} {shown}: {len(text)} characters, at most {MAX_BANNER}")
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token, escape, name = match.group(0), match.group(1), match.group(2)
        where = f"at character {match.start() + 1}"
        if token.startswith("\\"):
            if escape in _ESCAPES:
                out.append(_ESCAPES[escape])
                continue
            hint = f"; ser2net's \\{escape} {_SER2NET[escape]}" if escape in _SER2NET else ""
            raise ConfigError(f"{what} {shown}: unknown escape {quote(token)} {where}: expected \\r \\n \\t \\\\ and "
                              f"the placeholders {{line}} {{device}} {{settings}} {{port}}{hint}")
        if token in ("{{", "}}"):
            out.append(token)
        elif token.startswith("{"):
            if not token.endswith("}") or name not in PLACEHOLDERS:
                raise ConfigError(f"{what} {shown}: {quote(token)} {where} is no placeholder: expected {{line}}, "
                                  "{device}, {settings} or {port} ({{ and }} for a brace)")
            out.append(token)
        elif token == "}":
            raise ConfigError(f"{what} {shown}: a lone '}}' {where}: write }}}} for a brace")
        else:
            control = _CONTROL.search(token)
            if control is not None:
                raise ConfigError(f"{what} {shown}: a control character ({control.group(0)!r}) at character "
                                  f"{match.start() + control.start() + 1}: only text, tabs and line ends (\\r \\n)")
            out.append(token)
    return "".join(out)


def fillBanner(banner: str, line: str, device: str, settings: str, port: str = "") -> str:
    """
    A banner read by L{parseBanner} with its placeholders filled in (and
    its braces undoubled); C{port}: the port (a unix socket's path) the
    session came in on, '' where none.
    """
    values = {"{line}": line, "{device}": device, "{settings}": settings, "{port}": port, "{{": "{", "}}": "}"}
    return re.sub(r"\{\{|\}\}|\{(?:line|device|settings|port)\}", lambda m: values[m.group(0)], banner)
