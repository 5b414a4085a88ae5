"""
What a client may do on its line.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Sequence


class Role(Enum):
    """
    What a client may do on its line.

      - C{WRITER}: send data, breaks and settings;
      - C{WATCHER}: read only for now, may become a writer (take-over);
      - C{READONLY}: read only, always.
    """

    WRITER = "writer"
    WATCHER = "watcher"
    READONLY = "read-only"


def heirOf(clients: Sequence[Any], place: int) -> Any:
    """
    In exclusive mode, who writes once a writer that came and went without
    a word (a health check) has left from C{place} in C{clients}: the first
    person watching who attached after it (only it kept them watching), or None.
    """
    return next((c for c in clients[place:] if c.person and c.role is Role.WATCHER), None)
