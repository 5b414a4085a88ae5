"""
The far end of a telnet connection, for tests: the options a gateway's
telnet client offers (L{OFFER}), the answer of a peer that agrees
(L{AGREE}), and a codec that records what it parses (L{TelnetRecorder}).
"""

from __future__ import annotations

from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnet import TelnetProtocol
from serialgw.wire.telnetcodes import BINARY, DO, ECHO, IAC, SB, SE, SGA, WILL, WONT
from serialgw.wire.telnetoptions import MAX_OPTION_CHANGES

# What a telnet client of the gateway sends first: WILL ECHO, SGA, BINARY;
# DO SGA, BINARY, COM-PORT.
OFFER = bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, WILL, BINARY,
               IAC, DO, SGA, IAC, DO, BINARY, IAC, DO, COM_PORT_OPTION])
# A peer agreeing to all of it but COM-PORT, of which it says nothing.
AGREE = bytes([IAC, DO, ECHO, IAC, DO, SGA, IAC, DO, BINARY, IAC, WILL, SGA, IAC, WILL, BINARY])
# A plain telnet peer refusing COM-PORT (RFC 2217).
WONT_COM_PORT = bytes([IAC, WONT, COM_PORT_OPTION])


def cmd(*values: int) -> bytes:
    """Telnet bytes written as numbers: cmd(IAC, DO, ECHO)."""
    return bytes(values)


def toggleAnswers(enables: list[bool], yes: int, no: int, option: int, on: bool = False, changes: int = 0) -> bytes:
    """
    What a codec answers a peer turning one of its options on (True) and off
    (False), each in turn, from C{on} after C{changes} changes: RFC 1143 (a
    change answered, no news not) and MAX_OPTION_CHANGES (an enable past the
    bound refused with C{no}).
    """
    out = b""
    for enable in enables:
        if enable and not on:
            if changes >= MAX_OPTION_CHANGES:
                out += bytes((IAC, no, option))
                continue
            on, changes = True, changes + 1
            out += bytes((IAC, yes, option))
        elif not enable and on:
            on, changes = False, changes + 1
            out += bytes((IAC, no, option))
    return out


def sb(*payload: int) -> bytes:
    """IAC SB COM-PORT-OPTION payload IAC SE, with IAC doubled (RFC 2217)."""
    return bytes([IAC, SB, COM_PORT_OPTION]) + bytes(payload).replace(b"\xff", b"\xff\xff") + bytes([IAC, SE])


class TelnetRecorder(TelnetProtocol):
    """
    A telnet codec that accepts SGA and BINARY both ways and records each
    thing it parses as an event: data (as it came, chunk by chunk),
    commands, subnegotiations, option changes and ignored input.
    """

    def __init__(self) -> None:
        TelnetProtocol.__init__(self)
        self.events: list[tuple[str, object]] = []

    def acceptLocal(self, option: int) -> bool:
        return option in (SGA, BINARY)

    def acceptRemote(self, option: int) -> bool:
        return option in (SGA, BINARY)

    def telnetDataReceived(self, data: bytes) -> None:
        self.events.append(("data", data))

    def telnetCommandReceived(self, command: int) -> None:
        self.events.append(("command", command))

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        self.events.append(("sb", (option, payload)))

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        self.events.append(("option", (option, local, enabled)))

    def telnetIgnored(self, kind: str) -> None:
        self.events.append(("ignored", kind))

    def telnetSynched(self, discarded: int) -> None:
        self.events.append(("synched", discarded))


def joined(events: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """Merge adjacent data events: chunking must not matter."""
    out: list[tuple[str, object]] = []
    for kind, value in events:
        if kind == "data" and out and out[-1][0] == "data":
            out[-1] = ("data", out[-1][1] + value)  # type: ignore[operator]
        else:
            out.append((kind, value))
    return out
