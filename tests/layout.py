"""
What an object keeps in its own __dict__ (tests.line.test_layout,
tests.devices.test_layout): Python 3.11 keeps at most SHARED_KEYS names
of a class's instances inline; past them an instance's __dict__ is a
table of its own, where attribute reads and method calls on it are not
specialised.
"""

from __future__ import annotations

from typing import Any

# CPython 3.11's SHARED_KEYS_MAX_SIZE (Objects/dictobject.c).
SHARED_KEYS = 30


def ownNames(obj: Any) -> tuple[set[str], set[str]]:
    """The names in C{obj}'s __dict__: those no class of its has a default for, and the others."""
    own = set(vars(obj))
    defaulted = {name for name in own if any(name in vars(k) for k in type(obj).__mro__)}
    return own - defaulted, defaulted
