"""
The connection of a remote device (L{serialgw.devices.remote}) to its
console, one protocol a kind: a raw byte stream (C{tcp:}, C{unix:}), a
telnet client (C{telnet:}), an RFC 2217 client (C{rfc2217://}).  Each hands
the console's bytes and answers to its device and carries what the device
sends; the device decides when the link is read.
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.config.specs import ConfigError, DeviceSpec, SerialSettings
from serialgw.devices.device import HIGH_WATER
from serialgw.logflood import IgnoredInput, clientLog
from serialgw.wire.qmethod import Q
from serialgw.wire.rfc2217 import (
    BREAK_OFF,
    BREAK_ON,
    COM_PORT_OPTION,
    DTR_OFF,
    DTR_ON,
    FLOW_OUT_HARDWARE,
    FLOW_OUT_NONE,
    FLOW_OUT_XONXOFF,
    FLOWCONTROL_RESUME,
    FLOWCONTROL_SUSPEND,
    LINE_ERRORS,
    MODEM_LINES,
    NOTIFY_LINESTATE,
    NOTIFY_MODEMSTATE,
    PARITY_CODES,
    PARITY_VALUES,
    PURGE_DATA,
    RTS_OFF,
    RTS_ON,
    SERVER_OFFSET,
    SET_BAUDRATE,
    SET_CONTROL,
    SET_DATASIZE,
    SET_PARITY,
    SET_STOPSIZE,
    STOPSIZE_CODES,
    STOPSIZE_VALUES,
    flowCode,
    modemLineCode,
)
from serialgw.wire.telnet import TelnetProtocol
from serialgw.wire.telnetcodes import BINARY, BRK, DO, DONT, ECHO, IAC_B, SGA, WILL, WONT

log = Logger()
# The gateway's own errors in handling what a far end says (a traceback:
# a bug its answers reach), limited as those in handling a client's doing
# are (logflood: one budget for them all, OWN_ERRORS, 20 a minute): a far
# end answering the same again and again made one traceback an answer.
farEndLog = clientLog()


class LinkedDevice(typing.Protocol):
    """
    What a link uses of its device (L{serialgw.devices.remote.RemoteDevice}):
    declared here, where the links are, since the device imports them (naming
    the device back was an import cycle, hidden under TYPE_CHECKING).
    """

    name: str
    reactor: Any
    spec: DeviceSpec
    settings: SerialSettings
    modemLines: dict[str, bool]
    modem: Optional[int]
    sink: Any

    def _linkUp(self, link: Any) -> None: ...
    def _linkDown(self, link: Any, reason: Failure) -> None: ...
    def _holdLink(self, why: int) -> None: ...
    def _releaseLink(self, why: int) -> None: ...
    def _checkWatermark(self) -> None: ...
    def _remoteSettings(self, **changes: Any) -> None: ...


class Named(typing.Protocol):
    """A device with its name (L{farEnd}'s; the device's dialing part is one: L{serialgw.devices.remotedial})."""

    name: str


def farEnd(device: Named) -> str:
    """A remote device's far end, as the log limiter's peer."""
    return f"{device.name} (its far end)"

# An RFC 2217 remote's FLOWCONTROL-SUSPEND lasting this many seconds is
# logged (typing is paused meanwhile): one that never ends is not silent.
SUSPEND_WARN = 10.0
# Past this many bytes a console has not taken (our telnet answers to its
# negotiation: typing stops at HIGH_WATER), it is not read until it takes
# them, so one that sends and never reads costs bounded memory.
LINK_LIMIT = 4 * HIGH_WATER
# Why a link is not read (RemoteDevice._held): the line is behind, the
# rest of a busy read waits for the next turn, LINK_LIMIT bytes wait.
HELD_LINE, HELD_BUSY, HELD_FULL = 1, 2, 4


class NoPortControl:
    """Links without com port control: settings, DTR/RTS and purges stay here."""

    # Whether the remote asked us to stop sending (RFC 2217 FLOWCONTROL-SUSPEND).
    suspended = False

    def heldBytes(self) -> int:
        """Typed bytes held back while suspended."""
        return 0

    def control(self, code: int) -> None:
        pass

    def applySettings(self, settings: SerialSettings) -> None:
        pass

    def purge(self, which: int) -> None:
        pass

    def endBreak(self) -> None:
        """A break's time is up (only RFC 2217 has a break that lasts: SET-CONTROL BREAK-ON, then OFF)."""

    def holdInput(self, held: bool) -> None:
        """LINK_LIMIT bytes wait for the console (or no longer): parse nothing more meanwhile."""


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



class ComPortLink(TelnetLink):
    """
    An RFC 2217 client: settings, breaks (SET-CONTROL BREAK ON/OFF), DTR/RTS,
    purges and modem state travel to the remote port; its answers are the
    truth the device reports.
    """

    def __init__(self, device: LinkedDevice) -> None:
        TelnetLink.__init__(self, device)
        self.comPort = False
        self.suspended = False
        # Typed while the remote has us suspended: bounded, because writers
        # are paused as soon as it suspends (at most what they had read).
        self._held = bytearray()
        # When the remote suspended us, and the call that says it is lasting.
        self._suspendedAt = 0.0
        self._suspendCall: Any = None
        self._suspendSaid = False

    def connectionMade(self) -> None:
        self.requestLocal(COM_PORT_OPTION)
        TelnetLink.connectionMade(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Not a resume: the link's loss is said by the device.
        self._suspendSaid = False
        self._suspension(False)
        TelnetLink.connectionLost(self, reason)

    def _suspension(self, suspended: bool) -> None:
        """The remote suspended or resumed us: said in the log once it has lasted SUSPEND_WARN s."""
        if suspended == self.suspended:
            return
        self.suspended = suspended
        clock = self.device.reactor
        if suspended:
            self._suspendedAt = clock.seconds()
            self._suspendCall = clock.callLater(SUSPEND_WARN, self._suspendLasts)
            return
        if self._suspendCall is not None and self._suspendCall.active():
            self._suspendCall.cancel()
        self._suspendCall = None
        if self._suspendSaid:
            self._suspendSaid = False
            log.info("{device}: the remote takes input again (FLOWCONTROL-RESUME) after {seconds:.0f} s",
                     device=self.device.name, seconds=clock.seconds() - self._suspendedAt)

    def _resume(self) -> None:
        """Not suspended any more: what was typed meanwhile is sent."""
        self._suspension(False)
        held, self._held = bytes(self._held), bytearray()
        if held:
            self.writeData(held)
        self.device._checkWatermark()

    def _suspendLasts(self) -> None:
        self._suspendCall = None
        self._suspendSaid = True
        log.warn("{device}: the remote asked us to stop sending (FLOWCONTROL-SUSPEND) {seconds:.0f} s ago: "
                 "typing is paused until it resumes", device=self.device.name, seconds=SUSPEND_WARN)

    def acceptLocal(self, option: int) -> bool:
        return option == COM_PORT_OPTION or TelnetLink.acceptLocal(self, option)

    def acceptRemote(self, option: int) -> bool:
        return option == COM_PORT_OPTION or TelnetLink.acceptRemote(self, option)

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        if option == COM_PORT_OPTION and enabled and not self.comPort:
            self.comPort = True
            self.applySettings(self.device.settings)
            for name, on in self.device.modemLines.items():
                self.control(modemLineCode(name, on))
        elif (option == COM_PORT_OPTION and not enabled and self.comPort
              and not (self.localEnabled(COM_PORT_OPTION) or self.remoteEnabled(COM_PORT_OPTION))):
            # The remote turned it off on both sides: a plain telnet link
            # from now on (RFC 855: no subnegotiation of an option not in
            # effect; a break goes as IAC BRK), what a SUSPEND held sent.
            self.comPort = False
            if self.suspended:
                self._flushAnswers()  # our WONT or DONT first
                self._resume()

    _unansweredCost = "settings, DTR and RTS do not reach it, and our negotiation went to it as data"
    # Whether NEGOTIATION_WAIT has passed since the connection was made.
    _waited = False

    def _notAnswered(self) -> None:
        self._waited = True
        TelnetLink._notAnswered(self)
        if self._negotiated and self.unansweredComPort:
            name = self.device.name
            log.warn("{device}: no answer to COM-PORT-OPTION in {wait:.0f} s (a telnet console without RFC 2217? "
                     "then say telnet:{address}): settings, DTR and RTS do not reach it", device=name,
                     wait=NEGOTIATION_WAIT, address=name[len("rfc2217://"):])

    def _answered(self) -> bool:
        # (Com port control taken or refused: nothing more to wait for.)
        return self.comPort or self.refusedComPort

    @property
    def unansweredComPort(self) -> bool:
        """NEGOTIATION_WAIT has passed with our COM-PORT-OPTION neither taken nor refused."""
        return self._waited and not self.comPort and not self.refusedComPort

    @property
    def refusedComPort(self) -> bool:
        """The far end answered our COM-PORT-OPTION (WILL and DO) with neither in effect: no com port control."""
        return (not self.comPort and self.side(COM_PORT_OPTION, True).state is Q.NO
                and self.side(COM_PORT_OPTION, False).state is Q.NO)

    def _negotiate(self, command: int, option: int) -> None:
        TelnetLink._negotiate(self, command, option)
        if option == COM_PORT_OPTION and self.refusedComPort and not self._refusalSaid:
            self._refusalSaid = True
            name = self.device.name
            log.warn("{device}: the far end refused com port control (RFC 2217): settings, DTR and RTS do not reach "
                     "it, breaks go as IAC BRK (a plain telnet port? then say telnet:{address})", device=name,
                     address=name[len("rfc2217://"):])

    # Whether the far end's refusal of com port control was said (once a link).
    _refusalSaid = False

    def command(self, command: int, value: bytes) -> None:
        if self.comPort:
            self.sendSubnegotiation(COM_PORT_OPTION, bytes((command,)) + value)

    def heldBytes(self) -> int:
        return len(self._held)

    def send(self, data: bytes) -> None:
        if self.suspended:
            self._held += data
        else:
            self.writeData(data)

    def sendBreak(self) -> bool:
        if not self.comPort:
            return TelnetLink.sendBreak(self)
        self.control(BREAK_ON)
        return True

    def endBreak(self) -> None:
        if self.comPort:
            self.control(BREAK_OFF)

    def control(self, code: int) -> None:
        self.command(SET_CONTROL, bytes((code,)))

    def applySettings(self, settings: SerialSettings) -> None:
        self.command(SET_BAUDRATE, settings.baudrate.to_bytes(4, "big"))
        self.command(SET_DATASIZE, bytes((settings.bytesize,)))
        self.command(SET_PARITY, bytes((PARITY_VALUES[settings.parity],)))
        self.command(SET_STOPSIZE, bytes((STOPSIZE_VALUES[settings.stopbits],)))
        self.control(flowCode(settings, inbound=False))

    def purge(self, which: int) -> None:
        self.command(PURGE_DATA, bytes((which,)))

    # Whether an answer that makes no sense was logged in full (once a link).
    _answerSaid = False

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        if option != COM_PORT_OPTION or not payload:
            return
        command, value = payload[0] - SERVER_OFFSET, payload[1:]
        device = self.device
        try:
            if command == SET_BAUDRATE and len(value) == 4:
                device._remoteSettings(baudrate=int.from_bytes(value, "big"))
            elif command == SET_DATASIZE and len(value) == 1 and 5 <= value[0] <= 8:
                device._remoteSettings(bytesize=value[0])
            elif command == SET_PARITY and len(value) == 1 and value[0] in PARITY_CODES:
                device._remoteSettings(parity=PARITY_CODES[value[0]])
            elif command == SET_STOPSIZE and len(value) == 1 and value[0] in STOPSIZE_CODES:
                device._remoteSettings(stopbits=STOPSIZE_CODES[value[0]])
            elif command == SET_CONTROL and len(value) == 1 and value[0] in _OUTBOUND_FLOW:
                # (Both xonxoff and rtscts asked go as hardware: an answer of that changes nothing.)
                if value[0] != flowCode(device.settings, inbound=False):
                    device._remoteSettings(xonxoff=value[0] == FLOW_OUT_XONXOFF, rtscts=value[0] == FLOW_OUT_HARDWARE)
            elif command == SET_CONTROL and len(value) == 1 and value[0] in _MODEM_ANSWERS:
                # DTR or RTS as the far port has it (one it would not change stays as it was).
                device.modemLines[_MODEM_ANSWERS[value[0]][0]] = _MODEM_ANSWERS[value[0]][1]
            elif command == NOTIFY_MODEMSTATE and len(value) == 1:
                device.modem = value[0] & MODEM_LINES
            elif command == NOTIFY_LINESTATE and len(value) == 1 and value[0] & LINE_ERRORS:
                device.sink.deviceLineState(value[0] & LINE_ERRORS)
            elif command == FLOWCONTROL_SUSPEND:
                self._suspension(True)
                device._checkWatermark()
            elif command == FLOWCONTROL_RESUME:
                self._resume()
        except ConfigError as e:
            if not self._answerSaid:
                # The first said in full; any more counted with the garbage.
                self._answerSaid = True
                log.warn("{device}: RFC 2217 answer {payload!r} ignored: {reason}", device=device.name,
                         payload=payload, reason=str(e))
            self.ignored.add("bad RFC 2217 answer")
        except Exception:
            farEndLog.failure("{device}: handling RFC 2217 answer {payload!r} failed (the gateway's error, not the far "
                              "end's)", device=device.name, payload=payload, peer=farEnd(device))


# A far end that says no telnet negotiation in this many seconds is said to be one that speaks none (a raw
# socket given as telnet: or rfc2217://: our negotiation is typed into its console); an rfc2217:// one that
# has not answered COM-PORT-OPTION by then carries no settings until it does.
NEGOTIATION_WAIT = 10.0
# A tcp: device's first bytes that are telnet negotiation: a telnet server given as tcp:.
_NEGOTIATIONS = {WILL: "WILL", WONT: "WONT", DO: "DO", DONT: "DONT"}
_OPTION_NAMES = {BINARY: "BINARY", ECHO: "ECHO", SGA: "SGA", 24: "TERMINAL-TYPE", 31: "NAWS", COM_PORT_OPTION: "COM-PORT-OPTION"}

# The far port's SET-CONTROL answers taken as the truth: its outbound flow control, and DTR and RTS.
_OUTBOUND_FLOW = (FLOW_OUT_NONE, FLOW_OUT_XONXOFF, FLOW_OUT_HARDWARE)
_MODEM_ANSWERS = {DTR_ON: ("dtr", True), DTR_OFF: ("dtr", False), RTS_ON: ("rts", True), RTS_OFF: ("rts", False)}


def linkHeldBytes(link: Any) -> int:
    """Typed bytes a link holds back (RFC 2217 suspension); any other protocol holds none."""
    return link.heldBytes() if isinstance(link, NoPortControl) else 0
