"""
RFC 2217 (Telnet Com Port Control Option): the codes both sides speak.

Command numbers (a server answers with the number plus SERVER_OFFSET), the
values of SET-PARITY, SET-STOPSIZE and SET-CONTROL, the modem-state and
line-state bits, Cisco's one-byte baud rates, and the few encodings built
from them.  The server side is L{serialgw.clients.rfc2217}, the client side
a remote device's link (L{serialgw.devices.remote}).
"""

from __future__ import annotations

from serialgw.config.specs import SerialSettings

COM_PORT_OPTION = 44
SERVER_OFFSET = 100

# Commands (client to server; the server's answer is the same plus SERVER_OFFSET).
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

# Modem-state bits: the lines (high nibble) and their deltas (low nibble).
MODEM_CTS, MODEM_DSR, MODEM_RI, MODEM_CD = 0x10, 0x20, 0x40, 0x80
DELTA_CTS, DELTA_DSR, TRAILING_RI, DELTA_CD = 0x01, 0x02, 0x04, 0x08
MODEM_LINES = MODEM_CTS | MODEM_DSR | MODEM_RI | MODEM_CD

# Line-state bits a serial line's errors are told by (the others, data
# ready, transmitter empty and timeout, say nothing about the line).
LINE_OVERRUN, LINE_PARITY, LINE_FRAMING, LINE_BREAK = 0x02, 0x04, 0x08, 0x10
LINE_ERRORS = LINE_OVERRUN | LINE_PARITY | LINE_FRAMING | LINE_BREAK


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
