"""
ser2net's open- and close-strings, mixed into L{Line}: written when the
first person is announced and when the last one leaves; their parts are
data with a break between each two, in order (a break waits for the one
under way to end).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.internet.interfaces import IDelayedCall

from serialgw.interfaces import IDevice
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# How often an open- or close-string's next break checks that the one
# before it has ended.
STRING_BREAK_POLL = 0.05


class _Line(Protocol):
    """What the mixin uses of its line (L{Line} has it all)."""

    name: str
    device: IDevice
    clock: Any
    bytesToDevice: int
    _stringItems: list[tuple[str, Optional[bytes]]]
    _stringCall: Optional[IDelayedCall]
    _openMissed: bool

    def _sendStringItems(self: _Line) -> None: ...


class OpenCloseStrings:
    """Sends a line's open- and close-strings (see L{Line._countIn} and L{Line.detach})."""

    _stringCall: Optional[IDelayedCall]

    def _sendString(self: _Line, parts: tuple[bytes, ...], what: str) -> None:
        """An open- or close-string: its data, with a break between parts, in order."""
        if not parts:
            return
        # Due while the device is down: the open-string goes when it is
        # back (if someone is still here); a close-string is moot.
        self._openMissed = what == "open-string" and not self.device.up
        if not self.device.up:
            log.info("{line}: {what} not sent: the device is down{later}", line=self.name, what=what,
                     later="; sent when it is back" if self._openMissed else "")
            return
        items: list[tuple[str, Optional[bytes]]] = [(what, parts[0])]
        for data in parts[1:]:
            items += [(what, None), (what, data)]
        self._stringItems += items
        if self._stringCall is None:
            self._sendStringItems()
        log.info("{line}: {what} sent ({size} bytes, {breaks} break(s))", line=self.name, what=what,
                 size=sum(len(p) for p in parts), breaks=len(parts) - 1)

    def _sendStringItems(self: _Line) -> None:
        """
        The strings' data and breaks (None) in order; a break waits for the
        one under way (the string's previous one) to end.
        """
        self._stringCall = None
        items = self._stringItems
        while items:
            what, data = items[0]
            if data is None:
                if self.device.breaking and self.device.up and self.clock is not None:
                    self._stringCall = self.clock.callLater(STRING_BREAK_POLL, self._sendStringItems)
                    return
                if not self.device.sendBreak():
                    log.info("{line}: {what}: break not sent (the device is down, or a break is under way)",
                             line=self.name, what=what)
            elif data:
                self.device.write(data)
                self.bytesToDevice += len(data)
            del items[0]
