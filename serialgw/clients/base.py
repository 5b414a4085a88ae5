"""
What every client of a line answers by default: clients that have nothing
to do with an event (files, datagrams, logs, watch-all views) inherit these
answers and override what matters to them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


class ClientEvents:
    """
    Default answers to the line's events for clients that have nothing to
    do with them (files, datagrams, raw streams): override what matters.
    By default a client is no person, wakes its line, has no user, no RFC
    2217 control and no output guard, and its connection (if any) is
    another's to close.
    """

    person = False
    wakesLine = True
    dialled = False
    user: Optional[str] = None
    comPort: Any = None
    guard: Any = None
    departed = False
    logBudget: Optional[str] = None

    @property
    def wantsLineErrors(self) -> bool:
        return False

    @property
    def typedWaiting(self) -> int:
        return 0

    def disconnect(self, why: Optional[str] = None) -> None:
        pass

    def abort(self) -> bool:
        return False

    def dropLeftTyping(self, why: str) -> None:
        pass

    def modemStateChanged(self, state: int) -> None:
        pass

    def lineStateChanged(self, state: int) -> None:
        pass

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        pass

    def pauseInput(self) -> None:
        pass

    def resumeInput(self) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def announcement(self, text: str) -> None:
        pass

    def logInOrder(self, emit: Callable[[], None]) -> None:
        emit()
