"""
RFC 1143's Q method: the state of one side of one telnet option, so that
negotiation never loops (L{serialgw.wire.telnet} keeps one L{Side} per
option and side).
"""

from __future__ import annotations

from enum import Enum
from typing import Optional


class Q(Enum):
    """RFC 1143's states of one side of one option."""

    NO = "no"
    YES = "yes"
    WANTNO = "wantno"
    WANTYES = "wantyes"




class Side:
    """
    One side of one option as RFC 1143 keeps it: ours ("us": the peer says
    DO/DONT, we WILL/WONT) or the peer's ("him": it says WILL/WONT, we
    DO/DONT).  C{queued} is the RFC's OPPOSITE bit.  Each method returns
    what we send (C{yes}, C{no} or None) and the change to tell, if any.
    """

    __slots__ = ("state", "queued", "yes", "no")

    def __init__(self, yes: int, no: int) -> None:
        self.state, self.queued, self.yes, self.no = Q.NO, False, yes, no

    def ask(self, enable: bool) -> Optional[int]:
        """We want it enabled (or disabled)."""
        if self.state is Q.WANTYES or self.state is Q.WANTNO:
            # A request under way: ours waits for its answer if it is the
            # opposite; if not, a queued opposite is dropped.
            self.queued = self.state is (Q.WANTNO if enable else Q.WANTYES)
        elif self.state is not (Q.YES if enable else Q.NO):
            self.state = Q.WANTYES if enable else Q.WANTNO
            return self.yes if enable else self.no
        return None

    def enable(self, accept: bool) -> tuple[Optional[int], Optional[bool]]:
        """The peer said WILL (or DO); C{accept}: may it, if it is news."""
        state, queued, self.queued = self.state, self.queued, False
        if state is Q.NO:
            self.state = Q.YES if accept else Q.NO
            return (self.yes, True) if accept else (self.no, None)
        if state is Q.WANTYES and queued:  # agreed, but we want it off now
            self.state = Q.WANTNO
            return self.no, None
        if state is Q.WANTNO and not queued:  # our disable answered by enable: an error
            self.state = Q.NO
            return None, None
        self.state = Q.YES  # agreed (or already on)
        return None, None if state is Q.YES else True

    def disable(self) -> tuple[Optional[int], Optional[bool]]:
        """The peer said WONT (or DONT)."""
        state, queued, self.queued = self.state, self.queued, False
        if state is Q.WANTNO and queued:  # agreed, but we want it on again
            self.state = Q.WANTYES
            return self.yes, None
        self.state = Q.NO
        if state is Q.YES:
            return self.no, False
        return None, False if state is Q.WANTNO else None  # agreed; refused (WANTYES); or nothing
