"""
The connection of a remote device (L{serialgw.devices.remote}) to its
console, one protocol a kind: a raw byte stream (C{tcp:}, C{unix:}) and a
telnet client (C{telnet:}) here, an RFC 2217 client (C{rfc2217://}) in
L{serialgw.devices.comportlink}; what they share is
L{serialgw.devices.linkbase}.  Each hands the console's bytes and answers to
its device and carries what the device sends; the device decides when the
link is read.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.devices.linkbase import HELD_BUSY, LinkedDevice, NoPortControl
from serialgw.logflood import IgnoredInput
from serialgw.wire.rfc2217 import COM_PORT_OPTION
from serialgw.wire.telnet import TelnetProtocol
from serialgw.wire.telnetcodes import BINARY, BRK, DO, DONT, ECHO, IAC_B, SGA, WILL, WONT

log = Logger()


class RawLink(NoPortControl, Protocol):
    """Bytes both ways; a break cannot be sent on a raw socket."""

    transport: Any

    def __init__(self, device: LinkedDevice) -> None:
        self.device = device

    # Whether the far end's first bytes are still to be looked at (see dataReceived).
    _first = True

    def connectionMade(self) -> None:
        self.device._linkUp(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.device._linkDown(self, reason)

    def dataReceived(self, data: bytes) -> None:
        if self._first:
            self._first = False
            if data[:1] == IAC_B and len(data) > 2 and data[1] in _NEGOTIATIONS and self.device.spec.kind == "tcp":
                # A telnet server given as tcp: (its negotiation reaches the console's people as output).
                address = self.device.name[len("tcp:"):]
                log.warn("{device}: the far end speaks telnet (it began with IAC {command} {option}): then say "
                         "telnet:{address} (or rfc2217://{address}); as tcp: its negotiation is console output",
                         device=self.device.name, command=_NEGOTIATIONS[data[1]],
                         option=_OPTION_NAMES.get(data[2], str(data[2])), address=address)
        self.device.sink.deviceDataReceived(data)

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def sendBreak(self) -> bool:
        log.info("{device}: a raw socket cannot carry a break", device=self.device.name)
        return False



class TelnetLink(NoPortControl, TelnetProtocol):
    """
    A telnet client to a console: binary both ways, the far end echoes;
    breaks go as IAC BRK.
    """

    transport: Any

    def __init__(self, device: LinkedDevice) -> None:
        TelnetProtocol.__init__(self)
        self.device = device
        # What the console sends that makes no sense (garbage: a wrong port
        # or speed), counted and logged at most once a minute.
        self.ignored = IgnoredInput(lambda: (device.name, "the console"), device.reactor)

    def connectionMade(self) -> None:
        self.requestLocal(BINARY)
        self.requestRemote(BINARY)
        self.requestRemote(SGA)
        self._answerCall = self.device.reactor.callLater(NEGOTIATION_WAIT, self._notAnswered)
        self.device._linkUp(self)

    # Whether the far end has said any negotiation, and the call that says it has not (NEGOTIATION_WAIT).
    _negotiated = False
    _answerCall: Any = None

    def _negotiate(self, command: int, option: int) -> None:
        self._negotiated = True
        TelnetProtocol._negotiate(self, command, option)
        if self._answerCall is not None and self._answered():
            if self._answerCall.active():
                self._answerCall.cancel()
            self._answerCall = None

    def _answered(self) -> bool:
        """Whether what NEGOTIATION_WAIT waits for has come: a word of telnet."""
        return self._negotiated

    def _notAnswered(self) -> None:
        """NEGOTIATION_WAIT seconds without a word of telnet from the far end: said once (a raw socket?)."""
        self._answerCall = None
        if not self._negotiated:
            name = self.device.name
            log.warn("{device}: no answer to the telnet negotiation in {wait:.0f} s (a raw socket? then say "
                     "tcp:{address}): {what}", device=name, wait=NEGOTIATION_WAIT, address=name.split(":", 1)[1].lstrip("/"),
                     what=self._unansweredCost)

    # What a raw socket's silence costs, for the log.
    _unansweredCost = "our negotiation went to it as data, and its 0xff bytes are read as telnet commands"

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._answerCall is not None and self._answerCall.active():
            self._answerCall.cancel()
        self._answerCall = None
        self.stopTurns()
        self.ignored.flush()
        self.device._linkDown(self, reason)

    def telnetIgnored(self, kind: str) -> None:
        self.ignored.add(kind)

    def telnetBusy(self) -> bool:
        return self.busyNextTurn(self.device.reactor, self._holdBusy)

    def crClock(self) -> Any:
        return self.device.reactor

    def _holdBusy(self, held: bool) -> None:
        if held:
            self.device._holdLink(HELD_BUSY)
        else:
            self.device._releaseLink(HELD_BUSY)

    def holdInput(self, held: bool) -> None:
        self.inputHeld = held
        if not held and self._busyCall is None:
            self.releaseWire()

    def acceptLocal(self, option: int) -> bool:
        return option in (BINARY, SGA)

    def acceptRemote(self, option: int) -> bool:
        return option in (BINARY, SGA, ECHO)

    def telnetDataReceived(self, data: bytes) -> None:
        self.device.sink.deviceDataReceived(data)

    def send(self, data: bytes) -> None:
        self.writeData(data)

    def sendBreak(self) -> bool:
        self.sendCommand(BRK)
        return True


# A far end that says no telnet negotiation in this many seconds is said to be one that speaks none (a raw
# socket given as telnet: or rfc2217://: our negotiation is typed into its console); an rfc2217:// one that
# has not answered COM-PORT-OPTION by then carries no settings until it does.
NEGOTIATION_WAIT = 10.0
# A tcp: device's first bytes that are telnet negotiation: a telnet server given as tcp:.
_NEGOTIATIONS = {WILL: "WILL", WONT: "WONT", DO: "DO", DONT: "DONT"}
_OPTION_NAMES = {BINARY: "BINARY", ECHO: "ECHO", SGA: "SGA", 24: "TERMINAL-TYPE", 31: "NAWS", COM_PORT_OPTION: "COM-PORT-OPTION"}
