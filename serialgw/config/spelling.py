"""
The name an operator most likely meant when a key, table or listener option
is none the gateway knows: a slip of the keyboard (C{max-client},
C{lisen}), C{_} for C{-} (C{max_clients}), capitals (C{Device}), another
program's name for it (pyserial's C{baudrate}).  An error
that lists forty names and leaves the reader to find the one they meant
says C{did you mean 'max-clients'?} first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Optional

# How alike two names must be (difflib's ratio) to be offered: 'lisen' and
# 'listen' are 0.91, 'log-size' and 'log-max-size' 0.8; 'baudrate' and
# 'baud' (0.67) are not offered.
CUTOFF = 0.8

# Other programs' names for a key (pyserial's baudrate, stty's and cu's
# speed, picocom's databits), too far from it to be found as slips.
SYNONYMS = {"baudrate": "baud", "baud-rate": "baud", "speed": "baud", "bitrate": "baud",
            "databits": "bytesize", "data-bits": "bytesize"}


def nearest(word: str, known: Iterable[str]) -> Optional[str]:
    """The one of C{known} that C{word} is most likely a slip of, or None when none is near."""
    names = list(known)
    folded = word.strip().lower().replace("_", "-")
    if folded in names:
        return folded
    if SYNONYMS.get(folded) in names:
        return SYNONYMS[folded]
    close = difflib.get_close_matches(folded, names, n=1, cutoff=CUTOFF)
    return close[0] if close else None


def didYouMean(word: str, known: Iterable[str], shown: str = "'{}'") -> str:
    """
    C{": did you mean 'NAME'?"} for the name of C{known} nearest C{word}
    (written as C{shown}: C{"[{}.NAME]"} for a table), or C{""}.
    """
    near = nearest(word, known)
    return f": did you mean {shown.format(near)}?" if near is not None and near != word else ""
