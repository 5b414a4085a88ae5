"""
The sink of a device (local or remote) before its line takes it: what the
device says is dropped.
"""

from __future__ import annotations

from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.config.specs import SerialSettings
from serialgw.interfaces import IDeviceSink


@implementer(IDeviceSink)
class NoSink:
    """Takes what a device says and does nothing with it: a device's sink until its line takes it."""

    def deviceDataReceived(self, data: bytes) -> None:
        pass

    def deviceWritable(self, writable: bool) -> None:
        pass

    def deviceLost(self, reason: Failure) -> None:
        pass

    def deviceLineState(self, state: int) -> None:
        pass

    def deviceUp(self) -> None:
        pass

    def deviceNotOpened(self, reason: str) -> None:
        pass

    def deviceSettings(self, before: SerialSettings) -> None:
        pass
