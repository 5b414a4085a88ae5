"""
A command line serialgw cannot take, told in one line naming what was
given: a word that is no option (a device path as cu and picocom take it:
twistd said "Wrong number of arguments." after a page of help), an option
given twice with two values (the last was taken silently: C{--port 4444
--port raw+4445} served 4445 alone), an option getopt does not know (twistd's
own C{-n} after C{serialgw}).
"""

from __future__ import annotations

import shlex
from typing import Any, Optional

from twisted.python import usage

from serialgw.config.specs import quote

# Given a second time: what to say besides (the others: give it once).
TWICE = {
    "port": "one --port; more listeners are --listen (repeatable)",
    "device": "the options make one line; several lines are a --config file's [lines.NAME] tables",
}
DEVICE_PREFIXES = ("/dev/", "pty:", "rfc2217://", "telnet:")


class GivenOnce(usage.CoerceParameter):
    """An option's value taken as Twisted takes it, a second different one noted (see L{twice})."""

    def __init__(self, options: Any, inner: usage.CoerceParameter) -> None:
        usage.CoerceParameter.__init__(self, options, inner.coerce)
        self.doc = inner.doc
        self.given: Optional[str] = None
        # The first option given twice with two values: (name, first, second).
        self.twice: Optional[tuple[str, str, str]] = None

    def dispatch(self, parameterName: str, value: Optional[str]) -> None:
        if value is not None:
            if self.given is not None and value != self.given and self.twice is None:
                self.twice = (parameterName, self.given, value)
            self.given = value
        usage.CoerceParameter.dispatch(self, parameterName, value)


def givenOnce(options: usage.Options) -> list[GivenOnce]:
    """Every single-valued option of C{options} made to note a second value; the notes."""
    dispatch: dict[str, Any] = options._dispatch  # type: ignore[attr-defined]
    notes = []
    for name, handler in list(dispatch.items()):
        if type(handler) is usage.CoerceParameter:
            dispatch[name] = note = GivenOnce(options, handler)
            notes.append(note)
    return notes


def twice(notes: list[GivenOnce]) -> Optional[str]:
    """Why the command line is refused for an option given twice, or C{None}."""
    for note in notes:
        if note.twice is not None:
            name, first, second = note.twice
            return f"--{name} given twice ({quote(first)}, then {quote(second)}): {TWICE.get(name, 'give it once')}"
    return None


def strayArguments(words: tuple[str, ...]) -> Optional[str]:
    """Why words that are no option are refused (with what they were perhaps meant as), or C{None}."""
    if not words:
        return None
    if len(words) > 1:
        return f"unexpected arguments {' '.join(quote(w) for w in words)}: serialgw takes options only (see --help)"
    word = words[0]
    if word.startswith(DEVICE_PREFIXES):
        meant = f"a device is --device {shlex.quote(word)}"
    elif word.isdigit():
        meant = f"a listener is --port {word}"
    elif word.endswith(".toml"):
        meant = f"a configuration file is --config {shlex.quote(word)}"
    else:
        meant = "see --help"
    return f"unexpected argument {quote(word)}: serialgw takes options only ({meant})"


def unknownOption(error: str) -> str:
    """getopt's refusal (C{option -n not recognized}, C{option --device requires argument}) with where to look."""
    if error.endswith("not recognized"):
        return f"{error} (twistd's own options, such as -n and --pidfile=, go before serialgw; see twistd serialgw --help)"
    return f"{error} (see twistd serialgw --help)"
