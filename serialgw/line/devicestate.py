"""
The device's state, mixed into L{serialgw.line.hub.Line}: as the device
has it now (settings, modem lines, a break under way, RFC 2217
line-state bits seen), and as it changes, told to every client and the
console logs (down with why, not opened, up again; behind on writing, so
writers are paused; a break or framing error seen on the line).

Apart from the hub because none of it touches the data path: the
device's output and the clients' input are the hub's.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.python.failure import Failure

from serialgw.config.specs import SerialSettings
from serialgw.interfaces import RESTING, IClient, IDevice
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()


class _Line(Protocol):
    """What the mixin uses of its line (L{serialgw.line.hub.Line} has it all)."""

    name: str
    device: IDevice
    clients: list[IClient]
    notices: bool
    up: bool
    _wasUp: bool
    reopens: int
    writable: bool
    _lineState: int
    people: int
    openString: tuple[bytes, ...]
    _openMissed: bool
    idle: Any  # (an IdleString, or None)
    deviceTakes: bool
    initRun: Any  # (an InitRun, or None)

    def flushHeld(self: _Line) -> None: ...
    def recordEvent(self: _Line, text: str, peer: Optional[str] = None, budget: Optional[str] = None) -> None: ...
    def _countUnsent(self: _Line, why: str) -> None: ...
    def _sendString(self: _Line, parts: tuple[bytes, ...], what: str) -> None: ...
    def _downNotice(self: _Line, why: str) -> bytes: ...
    def _deviceEvent(self: _Line, text: str) -> None: ...
    def openedOnDemand(self: _Line) -> bool: ...
    def notOpenedOnDemand(self: _Line, reason: str) -> None: ...
    def peopleMayType(self: _Line, writable: bool) -> None: ...
    def runInitCommand(self: _Line) -> None: ...
    def stopInitCommand(self: _Line, why: str) -> Any: ...
    def _cameUp(self: _Line) -> None: ...


class DeviceState:
    """
    The device's state as it is and as it changes (see the module): the
    L{serialgw.interfaces.IDeviceSink} calls but device output.
    """

    @property
    def settings(self: _Line) -> SerialSettings:
        return self.device.settings  # type: ignore[no-any-return]

    @property
    def modemLines(self: _Line) -> dict[str, bool]:
        return self.device.modemLines  # type: ignore[no-any-return]

    @property
    def breaking(self: _Line) -> bool:
        return bool(self.device.breaking)

    def modemState(self: _Line) -> Optional[int]:
        return self.device.modemState()  # type: ignore[no-any-return]

    def lineState(self: _Line, clear: bool = True) -> int:
        """
        RFC 2217 line-state bits (break, framing, parity) seen since the last
        call that cleared them: an answer to a client's poll.
        """
        state = self._lineState
        if clear:
            self._lineState = 0
        return state

    # As it changes

    def deviceWritable(self: _Line, writable: bool) -> None:
        self.deviceTakes = writable
        run = self.initRun
        if run is not None:
            run.deviceTakes(writable)  # (its output read only while the device takes it)
        self.peopleMayType(writable and run is None)

    def deviceLineState(self: _Line, state: int) -> None:
        self._lineState |= state
        # Within the device's log budget (peer): a noisy line, or a remote RFC 2217 port sending it without
        # end, asked or not, was a log line each.
        log.info("{line}: line state {state:#04x} seen on the device", line=self.name, state=state,
                 peer=self.device.name)
        for client in self.clients:
            client.lineStateChanged(state)

    def deviceLost(self: _Line, reason: Failure) -> None:
        # What it said before it went, held to coalesce, goes before the news.
        self.flushHeld()
        self.up = False
        why = reason.getErrorMessage().rstrip(".")  # "closed cleanly." then "; waiting": one stop
        self._deviceEvent(f"device down ({why}); {len(self.clients)} client(s) stay connected")
        self._countUnsent(why)
        notice = self._downNotice(why)
        for client in list(self.clients):
            client.deviceStateChanged(False, notice)
        self.stopInitCommand("the device is down")

    def deviceNotOpened(self: _Line, reason: str) -> None:
        """Its first open failed or hangs: what was typed meanwhile is lost (logged), the people here told why."""
        self.notOpenedOnDemand(reason)
        self._countUnsent(reason)
        notice = self._downNotice(reason)
        for client in list(self.clients):
            client.deviceStateChanged(False, notice)

    def _deviceEvent(self: _Line, text: str) -> None:
        """
        The device went or came back, said; a remote console's within its
        far host's log budget (IDevice.logBudget: a console server's
        flapping lines), a local device's as the gateway's own news.
        """
        budget = self.device.logBudget
        self.recordEvent(text, self.device.name if budget is not None else None, budget)

    def _downNotice(self: _Line, why: str) -> bytes:
        if not self.notices:
            return b""
        text = f"[serialgw: {self.name} is down: {why}; waiting for it]"
        if why == RESTING:
            text = f"[serialgw: {self.name}'s device is {RESTING}: opened when a client connects]"
        return b"\r\n" + text.encode("utf-8", "replace") + b"\r\n"

    def deviceUp(self: _Line) -> None:
        self._cameUp()
        self.runInitCommand()

    def _cameUp(self: _Line) -> None:
        self.up = True
        if self.idle is not None:
            self.idle.touch()  # (back: idle from now on)
        first, self._wasUp = not self._wasUp, True
        if self.openedOnDemand():
            pass  # (nobody was told it was down: no news, no reopen)
        elif not first or self.clients:
            self.reopens += 0 if first else 1
            self._deviceEvent("device up")
            notice = f"\r\n[serialgw: {self.name} is back]\r\n".encode("utf-8", "replace") if self.notices else b""
            for client in list(self.clients):
                client.deviceStateChanged(True, notice)
        else:
            # Its first coming up (a first open off the reactor thread, a
            # console dialed) is news to nobody: said by the device's side.
            return
        if self._openMissed and self.people:
            self._sendString(self.openString, "open-string")
