"""
RFC 2217 (Telnet Com Port Control) for a telnet client of a serial line.

L{ComPortControl} reads a client's COM-PORT-OPTION subnegotiations, carries
them out through the client's line, and answers each one at once with the
state actually in effect.  It also holds the client's masks and flow-control
suspension, and encodes modem-state notifications.  Commands are dispatched
through a table keyed by the command byte (bottom of this module).  The
codes are L{serialgw.wire.rfc2217}'s.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from serialgw import __version__
from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.line.control import SETTING_NAMES
from serialgw.logflood import clientLog
from serialgw.wire.rfc2217 import (
    BREAK_OFF,
    BREAK_ON,
    BREAK_QUERY,
    CISCO_BAUD,
    CISCO_INDEX,
    COM_PORT_OPTION,
    DTR_OFF,
    DTR_ON,
    DTR_QUERY,
    FLOW_DCD,
    FLOW_DSR,
    FLOW_DTR,
    FLOW_IN_HARDWARE,
    FLOW_IN_NONE,
    FLOW_IN_QUERY,
    FLOW_IN_XONXOFF,
    FLOW_OUT_HARDWARE,
    FLOW_OUT_NONE,
    FLOW_OUT_QUERY,
    FLOW_OUT_XONXOFF,
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    MODEM_CD,
    MODEM_CTS,
    MODEM_DSR,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PARITY_CODES,
    PARITY_VALUES,
    PURGE_DATA,
    RTS_OFF,
    RTS_ON,
    RTS_QUERY,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_LINESTATE_MASK,
    SET_MODEMSTATE_MASK,
    SET_PARITY,
    SET_STOPSIZE,
    SIGNATURE,
    STOPSIZE_CODES,
    STOPSIZE_VALUES,
    flowCode,
    modemDelta,
)

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

# Reported for a device without modem lines (a pty): a null-modem cable to a
# program that is there.
NO_MODEM_LINES = MODEM_CTS | MODEM_DSR | MODEM_CD

# While a client has suspended output (FLOWCONTROL-SUSPEND), keep at most
# this much of the device's output for it (and no more than its listener's
# outbuf); older bytes are dropped.
SUSPEND_LIMIT = 1024 * 1024


def defaultSignature(lineName: str) -> str:
    return f"serialgw {__version__} {lineName}"


class ComPortControl:
    """
    One client's RFC 2217 session.

    @ivar client: the telnet client: C{line}, C{role}, C{peer},
        C{sendSubnegotiation(option, payload)}, C{writeData(data)},
        C{ignoredInput(kind)} (counted, not a log line each: logflood).
    """

    def __init__(self, client: Any, signature: Optional[str] = None) -> None:
        self.client = client
        self.line = client.line
        self.signature = signature if signature is not None else defaultSignature(self.line.name)
        self.linestateMask = 0
        self.modemstateMask = 255
        self.suspended = False
        self.held = bytearray()
        self.dropped = 0
        # While suspended: the delta bits of the modem lines that changed,
        # and the line-state bits seen, told once at RESUME.
        self._heldModemDelta = 0
        self._heldLineState = 0
        self.lastModem = self.currentModemState()
        self.clientSignature = b""
        # Settings that changed while the client's output was past its bound: those it knew then (see settingsChanged).
        self._owedSettings: Optional[SerialSettings] = None

    # Replies and notifications

    def reply(self, command: int, value: bytes) -> None:
        self.client.sendSubnegotiation(COM_PORT_OPTION, bytes((command + SERVER_OFFSET,)) + value)

    def start(self) -> None:
        """The option was just negotiated: tell the modem state at once."""
        self.lastModem = self.currentModemState()
        self.reply(NOTIFY_MODEMSTATE, bytes((self.lastModem & self.modemstateMask,)))

    def currentModemState(self) -> int:
        if not self.line.up:
            return NO_MODEM_LINES & ~MODEM_CD
        state = self.line.modemState()
        return NO_MODEM_LINES if state is None else state

    def modemStateChanged(self, state: int) -> None:
        """The device's modem lines changed: notify, masked, with deltas."""
        delta = modemDelta(self.lastModem, state)
        self.lastModem = state
        if self.suspended:
            self._heldModemDelta |= delta
            return
        value = (state | delta) & self.modemstateMask
        if delta & self.modemstateMask:
            self.reply(NOTIFY_MODEMSTATE, bytes((value,)))

    def carrier(self, up: bool) -> None:
        """The device went away (CD off) or came back (its modem state)."""
        state = self.currentModemState() if up else self.lastModem & ~MODEM_CD
        self.modemStateChanged(state)

    def lineStateChanged(self, state: int) -> None:
        """A break or receive error on the device: notify, masked."""
        if self.suspended:
            self._heldLineState |= state
            return
        value = state & self.linestateMask
        if value:
            self.reply(NOTIFY_LINESTATE, bytes((value,)))

    def settingsChanged(self, before: SerialSettings, after: SerialSettings) -> None:
        """
        The settings in effect changed without this client asking (the
        device, back, took less than was kept for it; a remote port
        answered otherwise): each that did is told as the reply to its SET
        command, unasked (pyserial and serialgw's rfc2217:// device take it
        as the value in effect).  While the client's output is past its
        bound, once it drains (L{releaseSettings}): the value then.
        """
        guard = self.client.guard
        if guard is not None and guard.full:
            if self._owedSettings is None:
                self._owedSettings = before
            return
        if after.baudrate != before.baudrate:
            self.reply(SET_BAUDRATE, after.baudrate.to_bytes(4, "big"))
        if after.bytesize != before.bytesize:
            self.reply(SET_DATASIZE, bytes((after.bytesize,)))
        if after.parity != before.parity:
            self.reply(SET_PARITY, bytes((PARITY_VALUES[after.parity],)))
        if after.stopbits != before.stopbits:
            self.reply(SET_STOPSIZE, bytes((STOPSIZE_VALUES[after.stopbits],)))
        if (after.xonxoff, after.rtscts) != (before.xonxoff, before.rtscts):
            self.reply(SET_CONTROL, bytes((flowCode(after, inbound=False),)))

    def releaseSettings(self) -> None:
        """The client's output drained: settings that changed meanwhile are told (as they are now)."""
        before, self._owedSettings = self._owedSettings, None
        if before is not None:
            self.settingsChanged(before, self.line.settings)

    # Data towards the client

    def deliver(self, data: bytes) -> None:
        if not self.suspended:
            self.client.writeData(data)
            return
        self.held += data
        guard = self.client.guard
        excess = len(self.held) - (min(SUSPEND_LIMIT, guard.bound) if guard is not None else SUSPEND_LIMIT)
        if excess > 0:
            del self.held[:excess]
            self.dropped += excess

    def _resume(self) -> None:
        """
        RESUME: the output held, then, once, the modem state now if a line
        changed meanwhile (with the delta of every line that did, even one
        that changed back) and the breaks and errors seen, each masked.
        """
        self.suspended = False
        if self.held:
            data, self.held = bytes(self.held), bytearray()
            self.client.writeData(data)
        delta, self._heldModemDelta = self._heldModemDelta, 0
        if delta & self.modemstateMask:
            self.reply(NOTIFY_MODEMSTATE, bytes(((self.lastModem | delta) & self.modemstateMask,)))
        lineState, self._heldLineState = self._heldLineState, 0
        if lineState & self.linestateMask:
            self.reply(NOTIFY_LINESTATE, bytes((lineState & self.linestateMask,)))

    # Commands

    def handle(self, payload: bytes) -> None:
        """One subnegotiation's payload after the option byte."""
        if not payload:
            self.client.ignoredInput("empty COM-PORT-OPTION")
            return
        command, value = payload[0], payload[1:]
        handler = _HANDLERS.get(command)
        if handler is None:
            self.client.ignoredInput("unknown COM-PORT-OPTION command")
            return
        try:
            handler(self, value)
        except Exception:
            log.failure(
                "{line}: COM-PORT-OPTION {payload!r} from {peer} failed",
                line=self.line.name,
                payload=payload,
                peer=self.client.peer,
            )

    def _change(self, **changes: Any) -> SerialSettings:
        current: SerialSettings = self.line.settings
        if not changes:
            return current
        try:
            wanted = attrs.evolve(current, **changes)
        except ConfigError as e:
            ((field, value),) = changes.items()
            return self._invalid(SETTING_NAMES[field], value, str(e))
        return self.line.clientSettings(self.client, wanted)  # type: ignore[no-any-return]

    def _invalid(self, setting: str, value: object, reason: str) -> SerialSettings:
        """A setting asked for with a value no port takes: refused, counted, logged with why; the settings in effect."""
        self.client.ignoredInput("refused COM-PORT-OPTION setting")
        log.info("{line}: settings from {peer} refused ({asked}): the value is invalid: {reason}", line=self.line.name,
                 peer=self.client.peer, setting=setting, value=value, asked=f"{setting} {value}", reason=reason)
        return self.line.settings  # type: ignore[no-any-return]

    def signatureCommand(self, value: bytes) -> None:
        if value:
            if not self.clientSignature:
                # Said once: a client repeating it is not logged again.
                log.info("{line}: {peer} signs as {signature!r}", line=self.line.name, peer=self.client.peer,
                         signature=value[:256])
            self.clientSignature = value[:256]
            return
        self.reply(SIGNATURE, self.signature.encode("utf-8", "replace"))

    def baudrateCommand(self, value: bytes) -> None:
        if len(value) == 1:
            # Cisco's form: an index (0: a query).
            wanted = CISCO_BAUD.get(value[0])
            if wanted:
                effective = self._change(baudrate=wanted)
            elif value[0]:
                effective = self._invalid("baud rate", f"index {value[0]}", "no such Cisco speed index (3 to 16)")
            else:
                effective = self.line.settings
            self.reply(SET_BAUDRATE, bytes((CISCO_INDEX.get(effective.baudrate, 0),)))
            return
        if len(value) == 4:
            baud = int.from_bytes(value, "big")
            effective = self._change(baudrate=baud) if baud else self.line.settings
        else:
            self.client.ignoredInput("malformed SET-BAUDRATE")
            effective = self.line.settings
        self.reply(SET_BAUDRATE, effective.baudrate.to_bytes(4, "big"))

    def _oneByte(self, value: bytes, name: str) -> bool:
        """Whether C{value} is the one byte a command takes; if not, it is counted as malformed (and taken as a query)."""
        if len(value) == 1:
            return True
        self.client.ignoredInput(f"malformed {name}")
        return False

    def datasizeCommand(self, value: bytes) -> None:
        size = value[0] if self._oneByte(value, "SET-DATASIZE") else 0
        if 5 <= size <= 8:
            effective = self._change(bytesize=size)
        elif size:
            effective = self._invalid("data bits", size, "must be 5 to 8")
        else:
            effective = self.line.settings
        self.reply(SET_DATASIZE, bytes((effective.bytesize,)))

    def parityCommand(self, value: bytes) -> None:
        letter = PARITY_CODES.get(value[0]) if self._oneByte(value, "SET-PARITY") else None
        if letter:
            effective = self._change(parity=letter)
        elif len(value) == 1 and value[0]:
            effective = self._invalid("parity", value[0], "no such SET-PARITY value (1 to 5)")
        else:
            effective = self.line.settings
        self.reply(SET_PARITY, bytes((PARITY_VALUES[effective.parity],)))

    def stopsizeCommand(self, value: bytes) -> None:
        stop = STOPSIZE_CODES.get(value[0]) if self._oneByte(value, "SET-STOPSIZE") else None
        if stop:
            effective = self._change(stopbits=stop)
        elif len(value) == 1 and value[0]:
            effective = self._invalid("stop bits", value[0], "no such SET-STOPSIZE value (1 to 3)")
        else:
            effective = self.line.settings
        self.reply(SET_STOPSIZE, bytes((STOPSIZE_VALUES[effective.stopbits],)))

    def controlCommand(self, value: bytes) -> None:
        if len(value) != 1:
            self.client.ignoredInput("malformed SET-CONTROL")
            return
        code = value[0]
        handler = _CONTROL.get(code)
        if handler is None:
            self.client.ignoredInput("unknown SET-CONTROL value")
            result = flowCode(self.line.settings, inbound=False)
        else:
            result = handler(self, code)
        self.reply(SET_CONTROL, bytes((result,)))

    def notifyLinestateCommand(self, value: bytes) -> None:
        # A client's poll: answer with the line state now (masked).  Only a
        # writer's poll clears what was seen: a reader's must not hide it.
        state = self.line.lineState(clear=self.line.mayWrite(self.client))
        self.reply(NOTIFY_LINESTATE, bytes((state & self.linestateMask,)))

    def notifyModemstateCommand(self, value: bytes) -> None:
        self.reply(NOTIFY_MODEMSTATE, bytes((self.currentModemState() & self.modemstateMask,)))

    def suspendCommand(self, value: bytes) -> None:
        self.suspended = True

    def resumeCommand(self, value: bytes) -> None:
        self._resume()

    def linestateMaskCommand(self, value: bytes) -> None:
        # Watching line errors changes the device's termios (PARMRK): only a
        # writer may; anyone else is answered with its mask unchanged.
        if self._oneByte(value, "SET-LINESTATE-MASK") and self.line.mayWrite(self.client):
            self.linestateMask = value[0]
            self.line.updateLineWatch()
        self.reply(SET_LINESTATE_MASK, bytes((self.linestateMask,)))

    def modemstateMaskCommand(self, value: bytes) -> None:
        if self._oneByte(value, "SET-MODEMSTATE-MASK"):
            self.modemstateMask = value[0]
        self.reply(SET_MODEMSTATE_MASK, bytes((self.modemstateMask,)))

    def purgeCommand(self, value: bytes) -> None:
        which = value[0] if len(value) == 1 else 0
        if which not in (1, 2, 3):
            self.client.ignoredInput("malformed PURGE-DATA")
            return
        receive, transmit = bool(which & 1), bool(which & 2)
        if not self.line.clientPurge(self.client, receive, transmit):
            # A client that may not write (read-only, a watcher, a line let
            # go) purges only what is its own: the output held for it (its
            # share of the receive buffer); of the transmit buffer nothing
            # is its (its input is refused).  The device's queues are the
            # writers': untouched.  Answered with the value, as for a
            # writer: those buffers are empty now (pyserial purges at every
            # open; an answer of 0 made it refuse a read-only port).
            log.debug("{line}: purge from {peer}, which may not write: only its own held output dropped",
                      line=self.line.name, peer=self.client.peer, which=which)
        if receive:
            self.held = bytearray()
        self.reply(PURGE_DATA, bytes((which,)))

    # SET-CONTROL

    def _flow(self, code: int) -> int:
        inbound = code >= FLOW_IN_QUERY
        kind = code - FLOW_IN_QUERY if inbound else code
        if kind == 1:
            self._change(xonxoff=False, rtscts=False)
        elif kind == 2:
            self._change(xonxoff=True, rtscts=False)
        elif kind == 3:
            self._change(xonxoff=False, rtscts=True)
        return flowCode(self.line.settings, inbound)

    def _otherFlow(self, code: int) -> int:
        # DCD, DTR and DSR flow control have no termios setting on Linux:
        # answer with the flow control in effect in that direction.
        return flowCode(self.line.settings, inbound=code == FLOW_DTR)

    def _break(self, code: int) -> int:
        if code == BREAK_ON:
            self.line.clientBreakHold(self.client, True)
        elif code == BREAK_OFF:
            self.line.clientBreakHold(self.client, False)
        return BREAK_ON if self.line.breaking else BREAK_OFF

    def _modem(self, code: int) -> int:
        name, base = ("dtr", DTR_QUERY) if code <= DTR_OFF else ("rts", RTS_QUERY)
        if code == base + 1:
            state = self.line.clientModemLine(self.client, name, True)
        elif code == base + 2:
            state = self.line.clientModemLine(self.client, name, False)
        else:
            state = self.line.modemLines[name]
        return base + 1 if state else base + 2


_HANDLERS: dict[int, Callable[[ComPortControl, bytes], None]] = {
    SIGNATURE: ComPortControl.signatureCommand,
    SET_BAUDRATE: ComPortControl.baudrateCommand,
    SET_DATASIZE: ComPortControl.datasizeCommand,
    SET_PARITY: ComPortControl.parityCommand,
    SET_STOPSIZE: ComPortControl.stopsizeCommand,
    SET_CONTROL: ComPortControl.controlCommand,
    NOTIFY_LINESTATE: ComPortControl.notifyLinestateCommand,
    NOTIFY_MODEMSTATE: ComPortControl.notifyModemstateCommand,
    FLOWCONTROL_SUSPEND: ComPortControl.suspendCommand,
    FLOWCONTROL_RESUME: ComPortControl.resumeCommand,
    SET_LINESTATE_MASK: ComPortControl.linestateMaskCommand,
    SET_MODEMSTATE_MASK: ComPortControl.modemstateMaskCommand,
    PURGE_DATA: ComPortControl.purgeCommand,
}

_CONTROL: dict[int, Callable[[ComPortControl, int], int]] = {
    FLOW_OUT_QUERY: ComPortControl._flow,
    FLOW_OUT_NONE: ComPortControl._flow,
    FLOW_OUT_XONXOFF: ComPortControl._flow,
    FLOW_OUT_HARDWARE: ComPortControl._flow,
    BREAK_QUERY: ComPortControl._break,
    BREAK_ON: ComPortControl._break,
    BREAK_OFF: ComPortControl._break,
    DTR_QUERY: ComPortControl._modem,
    DTR_ON: ComPortControl._modem,
    DTR_OFF: ComPortControl._modem,
    RTS_QUERY: ComPortControl._modem,
    RTS_ON: ComPortControl._modem,
    RTS_OFF: ComPortControl._modem,
    FLOW_IN_QUERY: ComPortControl._flow,
    FLOW_IN_NONE: ComPortControl._flow,
    FLOW_IN_XONXOFF: ComPortControl._flow,
    FLOW_IN_HARDWARE: ComPortControl._flow,
    FLOW_DCD: ComPortControl._otherFlow,
    FLOW_DTR: ComPortControl._otherFlow,
    FLOW_DSR: ComPortControl._otherFlow,
}
