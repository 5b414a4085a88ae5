"""
RFC 2217 (Telnet Com Port Control) for a telnet client of a serial line.

L{ComPortControl} reads a client's COM-PORT-OPTION subnegotiations, carries
them out through the client's line, and answers each one at once with the
state actually in effect.  It also holds the client's masks and flow-control
suspension, and encodes modem-state notifications.  Commands are dispatched
through a table keyed by the command byte (bottom of this module).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs

from serialgw import __version__
from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.logflood import clientLog

# Limited per peer: a client's input cannot flood the log (logflood).
log = clientLog()

COM_PORT_OPTION = 44
SERVER_OFFSET = 100

SIGNATURE = 0
SET_BAUDRATE = 1
SET_DATASIZE = 2
SET_PARITY = 3
SET_STOPSIZE = 4
SET_CONTROL = 5
NOTIFY_LINESTATE = 6
NOTIFY_MODEMSTATE = 7
FLOWCONTROL_SUSPEND = 8
FLOWCONTROL_RESUME = 9
SET_LINESTATE_MASK = 10
SET_MODEMSTATE_MASK = 11
PURGE_DATA = 12

# SET-PARITY values and pyserial's letters.
PARITY_CODES = {1: "N", 2: "O", 3: "E", 4: "M", 5: "S"}
PARITY_VALUES = {letter: code for code, letter in PARITY_CODES.items()}
# SET-STOPSIZE values.
STOPSIZE_CODES = {1: 1, 2: 2, 3: 1.5}
STOPSIZE_VALUES = {1: 1, 2: 2, 1.5: 3}

# Cisco IOS sends SET-BAUDRATE as one byte, an index into this table.
CISCO_BAUD = {
    3: 300, 4: 600, 5: 1200, 6: 2400, 7: 4800, 8: 9600, 9: 14400, 10: 19200,
    11: 28800, 12: 38400, 13: 57600, 14: 115200, 15: 230400, 16: 460800,
}
CISCO_INDEX = {baud: index for index, baud in CISCO_BAUD.items()}

# SET-CONTROL values.
FLOW_OUT_QUERY, FLOW_OUT_NONE, FLOW_OUT_XONXOFF, FLOW_OUT_HARDWARE = 0, 1, 2, 3
BREAK_QUERY, BREAK_ON, BREAK_OFF = 4, 5, 6
DTR_QUERY, DTR_ON, DTR_OFF = 7, 8, 9
RTS_QUERY, RTS_ON, RTS_OFF = 10, 11, 12
FLOW_IN_QUERY, FLOW_IN_NONE, FLOW_IN_XONXOFF, FLOW_IN_HARDWARE = 13, 14, 15, 16
FLOW_DCD, FLOW_DTR, FLOW_DSR = 17, 18, 19

# Modem-state bits.
MODEM_CTS, MODEM_DSR, MODEM_RI, MODEM_CD = 0x10, 0x20, 0x40, 0x80
DELTA_CTS, DELTA_DSR, TRAILING_RI, DELTA_CD = 0x01, 0x02, 0x04, 0x08
# Reported for a device without modem lines (a pty): a null-modem cable to a
# program that is there.
NO_MODEM_LINES = MODEM_CTS | MODEM_DSR | MODEM_CD

# While a client has suspended output (FLOWCONTROL-SUSPEND), keep at most
# this much of the device's output for it (and no more than its listener's
# outbuf); older bytes are dropped.
SUSPEND_LIMIT = 1024 * 1024


def modemDelta(previous: int, state: int) -> int:
    """The delta bits for a change of modem lines from C{previous} to C{state}."""
    changed = previous ^ state
    delta = 0
    if changed & MODEM_CTS:
        delta |= DELTA_CTS
    if changed & MODEM_DSR:
        delta |= DELTA_DSR
    if previous & MODEM_RI and not state & MODEM_RI:
        delta |= TRAILING_RI
    if changed & MODEM_CD:
        delta |= DELTA_CD
    return delta


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
        self.lastModem = self.currentModemState()
        self.clientSignature = b""

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
        value = (state | delta) & self.modemstateMask
        if delta & self.modemstateMask and not self.suspended:
            self.reply(NOTIFY_MODEMSTATE, bytes((value,)))

    def carrier(self, up: bool) -> None:
        """The device went away (CD off) or came back (its modem state)."""
        state = self.currentModemState() if up else self.lastModem & ~MODEM_CD
        self.modemStateChanged(state)

    def lineStateChanged(self, state: int) -> None:
        """A break or receive error on the device: notify, masked."""
        value = state & self.linestateMask
        if value and not self.suspended:
            self.reply(NOTIFY_LINESTATE, bytes((value,)))

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
        self.suspended = False
        if self.held:
            data, self.held = bytes(self.held), bytearray()
            self.client.writeData(data)

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
            self.client.ignoredInput("COM-PORT-OPTION setting refused")
            log.debug("{line}: setting from {peer} refused: {reason}", line=self.line.name, peer=self.client.peer,
                      reason=str(e))
            return current
        return self.line.clientSettings(self.client, wanted)  # type: ignore[no-any-return]

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
            # Cisco's form: an index.
            wanted = CISCO_BAUD.get(value[0])
            effective = self._change(baudrate=wanted) if wanted else self.line.settings
            self.reply(SET_BAUDRATE, bytes((CISCO_INDEX.get(effective.baudrate, 0),)))
            return
        if len(value) == 4:
            baud = int.from_bytes(value, "big")
            effective = self._change(baudrate=baud) if baud else self.line.settings
        else:
            self.client.ignoredInput("malformed SET-BAUDRATE")
            effective = self.line.settings
        self.reply(SET_BAUDRATE, effective.baudrate.to_bytes(4, "big"))

    def datasizeCommand(self, value: bytes) -> None:
        size = value[0] if len(value) == 1 else 0
        effective = self._change(bytesize=size) if 5 <= size <= 8 else self.line.settings
        self.reply(SET_DATASIZE, bytes((effective.bytesize,)))

    def parityCommand(self, value: bytes) -> None:
        letter = PARITY_CODES.get(value[0]) if len(value) == 1 else None
        effective = self._change(parity=letter) if letter else self.line.settings
        self.reply(SET_PARITY, bytes((PARITY_VALUES[effective.parity],)))

    def stopsizeCommand(self, value: bytes) -> None:
        stop = STOPSIZE_CODES.get(value[0]) if len(value) == 1 else None
        effective = self._change(stopbits=stop) if stop else self.line.settings
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
        if len(value) == 1 and self.line.mayWrite(self.client):
            self.linestateMask = value[0]
            self.line.updateLineWatch()
        self.reply(SET_LINESTATE_MASK, bytes((self.linestateMask,)))

    def modemstateMaskCommand(self, value: bytes) -> None:
        if len(value) == 1:
            self.modemstateMask = value[0]
        self.reply(SET_MODEMSTATE_MASK, bytes((self.modemstateMask,)))

    def purgeCommand(self, value: bytes) -> None:
        which = value[0] if len(value) == 1 else 0
        if which not in (1, 2, 3):
            self.client.ignoredInput("malformed PURGE-DATA")
            return
        receive, transmit = bool(which & 1), bool(which & 2)
        if not self.line.clientPurge(self.client, receive, transmit):
            # Refused (not a writer): nothing was purged, and the answer says
            # so (0: no buffer) instead of echoing the request as done.
            self.reply(PURGE_DATA, b"\x00")
            return
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


def flowCode(settings: SerialSettings, inbound: bool) -> int:
    """The SET-CONTROL value for the flow control in C{settings} (outbound or inbound)."""
    base = FLOW_IN_QUERY if inbound else FLOW_OUT_QUERY
    if settings.rtscts:
        return base + 3
    if settings.xonxoff:
        return base + 2
    return base + 1


def modemLineCode(name: str, on: bool) -> int:
    """The SET-CONTROL value that sets DTR or RTS (C{name}) on or off."""
    if name == "dtr":
        return DTR_ON if on else DTR_OFF
    return RTS_ON if on else RTS_OFF


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
