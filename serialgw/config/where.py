"""
Where in a TOML file's text a table or a key is, for errors that say
C{FILE:LINE: [table] key: ...}; and tomllib's own errors said that way.

A table or key is found as TOML reads it: a header or key written quoted
(C{[lines."rack4.web1"]}, C{"log-format" = ...}), with dotted keys, or
as an inline table, each part read by tomllib itself.
"""

from __future__ import annotations

import re
import tomllib
from typing import Optional

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*\[(?!\[)\s*({_KEY})\s*\]")
_ASSIGN = re.compile(rf"^\s*({_KEY})\s*=")
_TOMLPLACE = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$", re.S)


def _parts(key: str) -> Optional[tuple[str, ...]]:
    """The key path TOML reads in C{key} (C{lines."a.b"}: C{('lines', 'a.b')}), or None."""
    try:
        node: object = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        return None
    parts: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        ((name, node),) = node.items()
        parts.append(name)
    return tuple(parts)


def fileLines(text: str) -> list[str]:
    """
    The file's lines as TOML and an editor count them: at newlines only
    (str.splitlines also breaks at U+2028, U+0085, ..., which TOML takes in
    a comment or a string: every FILE:LINE after one was a line off).
    """
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")] if text else []

def _paths(text: str) -> list[tuple[int, tuple[str, ...]]]:
    """Each header's and key's line (from 1) with the whole path it names."""
    found = []
    current: tuple[str, ...] = ()
    for number, line in enumerate(fileLines(text), 1):
        header = _HEADER.match(line)
        match = header or _ASSIGN.match(line)
        parts = _parts(match.group(1)) if match else None
        if parts is None:
            continue
        if header:
            current = parts
            found.append((number, parts))
        else:
            found.append((number, current + parts))
    return found


def where(path: str, text: str, table: str, key: Optional[str] = None) -> str:
    """
    C{path:LINE} of a key of a table (C{"lines.NAME"}: the name is one
    part, dots and all), or of the table: its header, a dotted key or an
    inline table naming it; C{path} alone when the text names neither.
    """
    name, dot, rest = table.partition(".")
    wanted = (name, rest) if dot else (name,)
    paths = _paths(text)
    for prefix in ((*wanted, key), wanted) if key is not None else (wanted,):
        found = next((number for number, parts in paths if parts[:len(prefix)] == prefix), None)
        if found is not None:
            return f"{path}:{found}"
    return path


def tablePlaces(path: str, text: str, prefix: str = "lines") -> dict[str, str]:
    """C{path:LINE} of each C{[prefix.NAME]} table, by NAME (the text read once: a farm's thousand lines)."""
    places: dict[str, str] = {}
    for number, parts in _paths(text):
        if len(parts) >= 2 and parts[0] == prefix:
            places.setdefault(parts[1], f"{path}:{number}")
    return places


def tomlError(path: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """
    tomllib's error as C{path:LINE: ...}: its place moved to the front, and
    a key given twice named with its table (tomllib says "Cannot
    overwrite a value" alone).
    """
    place = _TOMLPLACE.match(str(error))
    if place is None:
        end = str(error).removesuffix(" (at end of document)")
        return f"{path}:{len(fileLines(text)) or 1}: {end} (at the end of the file)" if end != str(error) else \
            f"{path}: {error}"
    message, line, column = place.group(1), int(place.group(2)), int(place.group(3))
    if message == "Cannot overwrite a value":
        paths = [(number, parts) for number, parts in _paths(text) if number <= line]
        if paths and paths[-1][0] == line:
            table = next((parts for number, parts in reversed(paths)
                          if _HEADER.match(fileLines(text)[number - 1])), ())
            parts = paths[-1][1]
            inside = parts[len(table):] if parts[:len(table)] == table else parts
            shown = f"[{'.'.join(table)}] " if table else ""
            return (f"{path}:{line}: {shown}{'.'.join(inside)}: given twice (TOML: a key has one value; "
                    "remove one of them)")
    namespace = re.fullmatch(r"Cannot (redefine|mutate immutable) namespace \(((?:'[^']*'(?:, )?)+)\)", message)
    if namespace is not None:
        # tomllib's "Cannot redefine namespace ('lines', 'a')": a dotted key
        # reaching into a table written elsewhere (or an inline one).
        named = ".".join(re.findall(r"'([^']*)'", namespace.group(2)))
        how = "an inline table { ... }, which is whole where it is written" if namespace.group(1) != "redefine" \
            else "a table written in full elsewhere"
        return (f"{path}:{line}: [{named}] is {how}: put this key in it (TOML: a table is written in one place; "
                f"column {column})")
    if message.startswith("Cannot declare ") and message.endswith(" twice"):
        declared = _HEADER.match(fileLines(text)[line - 1]) if line <= len(fileLines(text)) else None
        if declared:
            return f"{path}:{line}: [{declared.group(1)}] declared twice (TOML: one table a name; merge them)"
    return f"{path}:{line}: {message} (column {column})"


class Places:
    """
    C{path:LINE} of a line's key, for what is found after the file was read
    (the filesystem at a start or a reload: a log's directory, a listener's
    address): the key in the line's own table, else in [defaults], else
    the line's table.  The text is read once, when first asked (a farm's
    thousand lines left out by a reload are placed in one pass).
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self._first: Optional[dict[tuple[str, ...], int]] = None

    def _line(self, *parts: str) -> Optional[int]:
        if self._first is None:
            self._first = {}
            for number, found in _paths(self.text):
                for end in range(1, len(found) + 1):
                    self._first.setdefault(found[:end], number)
        return self._first.get(parts)

    def of(self, line: str, key: Optional[str] = None) -> str:
        """C{path:LINE} of C{key} of line C{line} (see above), or of its table; C{path} alone when the text names neither."""
        found = None
        if key is not None:
            found = self._line("lines", line, key) or self._line("defaults", key)
        found = found or self._line("lines", line)
        return f"{self.path}:{found}" if found else self.path
