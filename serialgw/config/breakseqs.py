"""
A line's break sequences (C{break-sequences}; conserver's C{break N}
blocks and C{breaklist}, sent by its C{^Ecl1}): text a console takes as
a break, each named by one key (C{1} to C{9}, C{a} to C{z}) and sent by
the escape menu's C{l KEY}: Sun's alternate break (C{\\r~^B}) where a
real break cannot go or is kept from halting the host, a service
processor's escape (C{#.}), a real break with keys around it.  Read here
(no I/O): the open-string's escapes (C{\\r \\n \\t \\e \\0 \\\\ \\xNN},
C{\\b} a break) and conserver's (C{\\z} a break, C{\\a \\f \\v}, C{\\ooo}
octal, C{^B} a control key, C{\\^} a caret); at most one break and
L{SEQUENCE_MOST} bytes a sequence.  Anything else is refused naming the
key, the sequence and what is wrong.
"""

from __future__ import annotations

import re
from typing import Any

from serialgw.config.specs import ConfigError, quote

# The names a sequence may have: the key typed after l (conserver's 1-9 and a-z).
NAMES = "123456789abcdefghijklmnopqrstuvwxyz"
# A sequence is at most this many bytes (its break not counted): what a person would type, sent at once.
SEQUENCE_MOST = 256

# A sequence as parts: the data before its break and, with a break, the data after it.
Sequence = tuple[bytes, ...]
Sequences = tuple[tuple[str, Sequence], ...]

_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "e": b"\x1b", "a": b"\x07", "f": b"\x0c",
            "v": b"\x0b", "^": b"^"}
_TOKEN = re.compile(r"\\(x[0-9A-Fa-f]{2}|[0-7]{1,3}|.?)|\^(.?)|[^\\^]+", re.DOTALL)


def parseSequence(text: str) -> Sequence:
    """
    One sequence as written (C{'\\r~^B'}) as its parts: C{(b"\\r~\\x02",)};
    C{'\\b'} (a break alone) is C{(b"", b"")}, C{'x\\zy'} C{(b"x", b"y")}.
    """
    parts: list[bytes] = [b""]
    for match in _TOKEN.finditer(text):
        escape, caret = match.group(1), match.group(2)
        if caret is not None:
            if len(caret) != 1 or not ("@" <= caret.upper() <= "_" or caret == "?"):
                raise ConfigError(f"{quote(text)}: a lone '^' at character {match.start() + 1}: ^ and a letter is "
                                  "that control key (^B), ^? DEL; write \\^ for a caret")
            chunk = b"\x7f" if caret == "?" else bytes((ord(caret.upper()) - 0x40,))
        elif escape is None:
            chunk = match.group(0).encode("utf-8")
        elif escape in ("b", "z"):
            if len(parts) > 1:
                raise ConfigError(f"{quote(text)}: a second break (\\{escape}) at character {match.start() + 1}: at "
                                  "most one break a sequence (a break lasts break-duration; keys go around it)")
            parts.append(b"")
            continue
        elif escape == "d":
            raise ConfigError(f"{quote(text)}: \\d at character {match.start() + 1}: conserver's pause has no "
                              "counterpart here: a sequence is sent at once")
        elif escape.startswith("x") and len(escape) == 3:
            chunk = bytes((int(escape[1:], 16),))
        elif re.fullmatch(r"[0-7]{1,3}", escape):
            if int(escape, 8) > 0xFF:
                raise ConfigError(f"{quote(text)}: \\{escape} at character {match.start() + 1}: an octal byte is "
                                  "\\0 to \\377")
            chunk = bytes((int(escape, 8),))
        elif escape in _ESCAPES:
            chunk = _ESCAPES[escape]
        else:
            bad = "\\" + escape
            raise ConfigError(f"{quote(text)}: unknown escape {quote(bad)} at character {match.start() + 1}: expected "
                              "\\r \\n \\t \\e \\a \\f \\v \\0 \\\\ \\^ \\xNN \\ooo, ^X (a control key), or \\b or \\z "
                              "(a break)")
        parts[-1] += chunk
    size = sum(len(part) for part in parts)
    if size > SEQUENCE_MOST:
        raise ConfigError(f"{quote(text)}: {size} bytes, at most {SEQUENCE_MOST}")
    if size == 0 and len(parts) == 1:
        raise ConfigError(f"{quote(text)}: empty: nothing to send (leave its key out for none)")
    return tuple(parts)


def parseSequences(given: Any) -> Sequences:
    """
    C{break-sequences}: a table of sequences by name (C{{ 2 = '\\r~^B' }}),
    in L{NAMES}' order; C{{}} for none.
    """
    if not isinstance(given, dict):
        raise ConfigError("expected a table of sequences by the key after l, as { 2 = '\\r~^B', 3 = '#.' } (single "
                          f"quotes: literal strings), not {quote(given)}")
    sequences = []
    for name, text in given.items():
        if name not in NAMES or len(name) != 1:
            raise ConfigError(f"{quote(name)}: a sequence's name is one key, 1 to 9 or a to z (the key after l)")
        if not isinstance(text, str):
            raise ConfigError(f"{name}: expected a string (in single quotes: '\\r~^B'), not {quote(text)}")
        if "\b" in text:
            # TOML's own escape: "\b" made a backspace where a break was meant.
            raise ConfigError(f"{name}: a backspace (\\x08) in {quote(text)}: in a TOML string \"...\" \\b is a "
                              "backspace, not a break: write it in single quotes ('\\b', '\\r~^B'); a backspace is "
                              "\\x08")
        try:
            sequences.append((name, parseSequence(text)))
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None
    return tuple(sorted(sequences, key=lambda item: NAMES.index(item[0])))


def shownSequence(parts: Sequence) -> str:
    """A sequence for people: C{\\r~^B}, C{\\b} where its break goes; other bytes C{\\xNN}."""
    shown = []
    for part in parts:
        text = ""
        for byte in part:
            if byte in (0x0D, 0x0A, 0x09):
                text += {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"}[byte]
            elif byte == 0x5C:
                text += "\\\\"
            elif byte < 0x20:
                text += "^" + chr(byte + 0x40)
            elif byte == 0x7F:
                text += "^?"
            elif byte == 0x5E:
                text += "\\^"
            elif byte < 0x7F:
                text += chr(byte)
            else:
                text += f"\\x{byte:02x}"
        shown.append(text)
    return "\\b".join(shown)
