"""
What is written to a local device while its first open is under way (a
line a reload adds, or whose device it changes; one whose open at start
had not returned in START_WAIT s: its C{downReason} L{OPENING}): a client
may connect and type before the open returns, a few milliseconds for a
tty that opens at once.  That is held, not dropped as what is written to
a device that is down (gone, not there) is: bounded as the device's queue
is (its writers paused past the high-water mark), written once the device
opens (after an open-string its line sends then), and dropped, counted
unsent and logged, if the open fails or is said stuck (typing is not kept
for a hung open).

L{EarlyHold} is a part of L{serialgw.devices.device.SerialDevice}, kept
apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from twisted.logger import Logger

from serialgw.devices.reopen import OPENING

log = Logger()


class EarlyHold:
    """The first open's hold of a L{serialgw.devices.device.SerialDevice}."""

    # The device's, which this part works on.
    name: str
    up: bool
    closed: bool
    downReason: Optional[str]
    dropped: int
    unsent: int
    sink: Any
    # What is held (the device's own, made with it).
    _early: bytearray

    if TYPE_CHECKING:
        # (The device's other parts': declared for mypy alone, as a stub at run time would shadow the real one in
        # SerialDevice's MRO, and naming SerialDevice would be an import cycle; tests.test_layers.PartStubTests.)
        def write(self, data: bytes, source: Any = None) -> None: ...
        def _checkWatermark(self) -> None: ...

    @property
    def holding(self) -> bool:
        """Whether what it is written is held for it, though it is not up: its first open is under way."""
        return not self.up and not self.closed and self.downReason == OPENING

    def _hold(self, data: bytes) -> bool:
        """Held, if it is holding (see L{holding}): whether it was."""
        if not self.holding:
            return False
        self._early += data
        self._checkWatermark()
        return True

    def _writeEarly(self) -> None:
        """It opened, and its line was told (an open-string sent): what was held is written now."""
        early, self._early = self._early, bytearray()
        if early:
            self.write(bytes(early))

    def notOpened(self) -> None:
        """Its first open failed, or hangs: what was held is dropped (counted unsent), its line told."""
        self._dropEarly()
        try:
            self.sink.deviceNotOpened(self.downReason or "")
        except Exception:
            log.failure("{device}: handling the failed open failed", device=self.name)

    def _dropEarly(self) -> None:
        lost, self._early = len(self._early), bytearray()
        self.dropped += lost
        self.unsent += lost
        self._checkWatermark()
