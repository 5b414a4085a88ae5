"""
L{AbsentPort}: the port of a line whose device is not open (not there yet
at the start), so that the line and its device exist, and clients can
attach, before anything is opened; the reopener puts a real port in its
place.

Apart from the real ports because it touches no OS object at all.
"""

from __future__ import annotations

import errno
from typing import Any, Optional

from zope.interface import implementer

from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IPort


@implementer(IPort)
class AbsentPort:
    """
    Stands for a device that is not open (not there yet at start): every
    call that would touch it fails as a vanished device does.
    """

    def __init__(self, name: str, settings: SerialSettings) -> None:
        self.name = name
        self.settings = settings

    def _gone(self) -> OSError:
        return OSError(errno.ENODEV, "not open")

    def fileno(self) -> int:
        return -1

    def read(self) -> bytes:
        raise self._gone()

    def write(self, data: bytes | bytearray) -> int:
        raise self._gone()

    def takeLineState(self) -> int:
        return 0

    def outputPending(self) -> int:
        return 0

    def hungUp(self) -> bool:
        return False

    def watchLineErrors(self, on: bool) -> None:
        pass

    def setBreak(self, on: bool) -> None:
        raise self._gone()

    def apply(self, settings: SerialSettings) -> SerialSettings:
        self.settings = settings
        return settings

    def setModemLine(self, name: str, on: bool) -> None:
        raise self._gone()

    def modemState(self) -> Optional[int]:
        raise self._gone()

    def purge(self, receive: bool, transmit: bool) -> None:
        raise self._gone()

    def startWatching(self, reactor: Any) -> None:
        pass

    def close(self) -> None:
        pass
