"""
A remote device's RFC 2217 client (C{rfc2217://}): a telnet link
(L{serialgw.devices.remotelinks.TelnetLink}) that carries settings, breaks,
DTR/RTS and purges to the remote port and takes its answers as the truth
the device reports; held back while the remote suspends us.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from serialgw.config.specs import ConfigError, SerialSettings
from serialgw.devices.linkbase import LinkedDevice, farEnd, farEndLog
from serialgw.devices.remotelinks import NEGOTIATION_WAIT, TelnetLink
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

# (The namespace the links logged on before this module was their module's.)
log = Logger(namespace="serialgw.devices.remotelinks")

# An RFC 2217 remote's FLOWCONTROL-SUSPEND lasting this many seconds is
# logged (typing is paused meanwhile): one that never ends is not silent.
SUSPEND_WARN = 10.0


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


# The far port's SET-CONTROL answers taken as the truth: its outbound flow control, and DTR and RTS.
_OUTBOUND_FLOW = (FLOW_OUT_NONE, FLOW_OUT_XONXOFF, FLOW_OUT_HARDWARE)
_MODEM_ANSWERS = {DTR_ON: ("dtr", True), DTR_OFF: ("dtr", False), RTS_ON: ("rts", True), RTS_OFF: ("rts", False)}
