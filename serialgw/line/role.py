"""
What a client may do on its line.
"""

from __future__ import annotations

from enum import Enum


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
