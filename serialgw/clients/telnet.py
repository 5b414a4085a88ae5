"""
A telnet client of a serial line: the session on top of the telnet codec
(L{serialgw.wire.telnet}).

L{TelnetClient} offers a character-at-a-time 8-bit session, takes IAC BRK
as a serial break, answers AYT, and runs RFC 2217 com port control
(L{serialgw.clients.rfc2217}) once COM-PORT-OPTION is agreed.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from serialgw.clients.reading import BUSY, CONTROL_WAIT, DEVICE_BEHIND, TYPED_WAIT
from serialgw.clients.rfc2217 import ComPortControl
from serialgw.clients.session import Session
from serialgw.interfaces import IClient
from serialgw.line.hub import Line
from serialgw.line.role import Role
from serialgw.logflood import IgnoredInput
from serialgw.wire.qmethod import Q
from serialgw.wire.rfc2217 import COM_PORT_OPTION, FLOWCONTROL_RESUME, FLOWCONTROL_SUSPEND
from serialgw.wire.telnet import COMMANDS_PER_TURN, TelnetProtocol
from serialgw.wire.telnetcodes import ABORT, AO, AYT, BINARY, BRK, DM, ECHO, EOF, IP, NAWS, SGA, SUSP, TTYPE

_OWE_MODEM = 1
# What IAC IP (Interrupt Process) reaches the device as: ^C; and RFC 1184's End of File, Suspend and Abort:
# ^D, ^Z, ^\ (a terminal's VEOF, VSUSP, VQUIT, as telnetd gives them).
INTERRUPT = b"\x03"
AS_TYPED = {IP: INTERRUPT, EOF: b"\x04", SUSP: b"\x1a", ABORT: b"\x1c"}
# How long a client may take to answer our DO COM-PORT-OPTION before it is
# taken for a person: until it answers, the notice that the line is down,
# said at connect (and those that follow it meanwhile), waits, lest it go
# into an RFC 2217 program's data; at most HELD_STATE_NOTICES of them (the
# newest).
COM_PORT_WAIT = 1.0
HELD_STATE_NOTICES = 8
# What one COM-PORT-OPTION command counts for of a read's COMMANDS_PER_TURN
# (wire/telnet.py): 16 of them a turn of the reactor.
COM_PORT_COMMAND_COST = 16
# What AYT (Are You There) is answered with.
AYT_ANSWER = b"\r\n[serialgw: yes]\r\n"
# The time one command of COMMANDS_PER_TURN stands for (they cost about 1 ms
# together): a COM-PORT-OPTION command that keeps the reactor longer (a USB
# adapter's tcsetattr or modem-line ioctl is synchronous control transfers,
# 1-5 ms, where a pty's takes 50 us) costs as many as its time, so that a
# read's commands hold every line about 1 ms plus one command, not 16 of them.
COMMAND_SECONDS = 0.001 / COMMANDS_PER_TURN

# Options a serial console speaks, on our side and on the peer's.
LOCAL_OPTIONS = frozenset({BINARY, ECHO, SGA})
REMOTE_OPTIONS = frozenset({BINARY, SGA, NAWS, TTYPE})


@implementer(IClient)
class TelnetClient(Session, TelnetProtocol):
    """
    A telnet client of a serial line: offers a character-at-a-time 8-bit
    session (WILL ECHO, WILL SGA, DO SGA, WILL BINARY, DO BINARY) and, unless
    turned off, RFC 2217 com port control (DO COM-PORT-OPTION); turns IAC
    BRK into a serial break, ignores the other commands.
    """

    def __init__(
        self,
        line: Line,
        role: Role = Role.WRITER,
        rfc2217: bool = True,
        signature: Optional[str] = None,
        listener: Any = None,
        clock: Any = None,
    ) -> None:
        TelnetProtocol.__init__(self)
        self.line = line
        self.role = role
        self.listener = listener
        self.clock = clock
        self.rfc2217 = rfc2217
        self.signature = signature
        self.comPort: Optional[ComPortControl] = None
        # Ignored and malformed input, counted (at most a log line a minute).
        self.ignored = IgnoredInput(lambda: (self.line.name, self.peer), clock)
        # RFC 2217 notifications owed since the output went past its bound.
        self._owed = 0
        self._owedLineState = 0
        self._flowSuspended = False
        # Our COM-PORT-OPTION offer not answered yet (see COM_PORT_WAIT), and
        # the down and back notices held meanwhile.
        self._comPortWait: Any = None
        self._heldStateNotices: list[bytes] = []
        self._attaching = False

    def connectionMade(self) -> None:
        for option in (ECHO, SGA, BINARY):
            self.requestLocal(option)
        for option in (SGA, BINARY):
            self.requestRemote(option)
        if self.rfc2217:
            self.requestRemote(COM_PORT_OPTION)
            clock = self._clock()
            if self.listener is not None and clock is not None:
                self._comPortWait = clock.callLater(COM_PORT_WAIT, self._comPortAnswered)
        self._attaching = True
        try:
            self.startSession()
        finally:
            self._attaching = False

    def _comPortAnswered(self) -> None:
        """
        The client answered our COM-PORT-OPTION offer, or took
        COM_PORT_WAIT seconds not to: a person (or a program without RFC
        2217) is told now that the line was down (and back), in order; an
        RFC 2217 program had CD in NOTIFY-MODEMSTATE instead.
        """
        wait, self._comPortWait = self._comPortWait, None
        if wait is not None and wait.active():
            wait.cancel()
        notices, self._heldStateNotices = self._heldStateNotices, []
        if self.comPort is None and self.wantsNotices():
            for notice in notices:
                self.sendText(notice)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._comPortWait is not None:
            self._comPortWait.cancel()
            self._comPortWait = None
        self.ignored.flush()
        self.stopTurns()
        self.line.forgetControlWaiter(self._controlFree)
        self.endSession()

    def telnetBusy(self) -> bool:
        """
        A read of more commands than one turn handles: the rest is parsed on
        the next turn, the client not read meanwhile (the other lines and
        clients get the reactor in between).
        """
        clock = self._clock()
        return clock is not None and self.busyNextTurn(clock, self._holdBusy)

    # An RFC 2217 command waits for the line's port control (subnegotiationWaits).
    _controlWaiting = False

    # An RFC 2217 command waits for this client's typing before it (subnegotiationWaits).
    _typedWaiting = False
    # Read on while the device holds its typing, for its negotiation and commands (InputReading.readOnWhileHeld).
    commandsReadOn = True

    def subnegotiationWaits(self, option: bytes) -> bool:
        """
        An RFC 2217 command waits, and what follows it, this client not
        read meanwhile: while what this client typed before it waits for
        the device (read on for its escape menu while the device takes no
        input: done now, a new rate or a purge reached the device ahead of
        those bytes), until that has gone (L{typedGone}); and while the
        line's port control has had its turn's time (Line.controlReady).
        """
        if option != bytes((COM_PORT_OPTION,)) or self.comPort is None:
            return False
        if self._waitsForTyped():
            return True
        if self.line.controlReady(self._controlFree):
            return False
        self._controlWaiting = True
        self._pauseReading(CONTROL_WAIT)
        return True

    def commandWaits(self, command: int) -> bool:
        """
        A program's IAC BRK waits, and what follows it, while what it typed
        before waits for the device (read on for its negotiation: see
        L{readOnWhileHeld}), as its RFC 2217 commands do; a person's is
        refused and told (L{Line.clientBreak}).
        """
        return command == BRK and self.escapeMenu is None and self._waitsForTyped()

    def _waitsForTyped(self) -> bool:
        """Whether what this client typed waits for the device: then it is not read, and its wire held, until that has gone (L{typedGone})."""
        if not self.typedWaiting:
            return False
        self._typedWaiting = True
        self._pauseReading(TYPED_WAIT)
        return True

    def typedGone(self) -> None:
        if not self._typedWaiting:
            return
        self._typedWaiting = False
        if not self.inputHeld:
            self.releaseWire()
        if not self._typedWaiting:
            self._resumeReading(TYPED_WAIT)

    def _controlFree(self) -> None:
        self._controlWaiting = False
        if not self.inputHeld:
            self.releaseWire()
        if not self._controlWaiting:
            self._resumeReading(CONTROL_WAIT)

    def crClock(self) -> Any:
        return self._clock()

    def _holdBusy(self, held: bool) -> None:
        if held:
            self._pauseReading(BUSY)
        else:
            self._resumeReading(BUSY)

    def telnetIgnored(self, kind: str) -> None:
        # Counted, and logged at most once a minute: never a line each.
        self.ignored.add(kind)

    def ignoredInput(self, kind: str) -> None:
        """Input from this client was ignored (for ComPortControl too)."""
        self.ignored.add(kind)

    def dataReceived(self, data: bytes) -> None:
        if self._idleCall is not None:
            self.touch()
        if self._introCall is not None:
            # Negotiation counts: a health check sends nothing at all.
            self.introduce()
        if self.escapeMenu is not None and not self.inputHeld:
            self.escapeMenu.newTurn()
        TelnetProtocol.dataReceived(self, data)
        if self._comPortWait is not None and self.side(COM_PORT_OPTION, False).state is not Q.WANTYES:
            self._comPortAnswered()

    @property
    def wantsLineErrors(self) -> bool:
        return self.comPort is not None and bool(self.comPort.linestateMask)

    def defaultNotices(self) -> bool:
        # People at terminals, not programs: data stays data for RFC 2217.
        return self.comPort is None and bool(self.line.notices)

    def writeText(self, data: bytes) -> None:
        self.writeData(data)

    def oursWritten(self, count: int) -> None:
        # Negotiation, AYT's answer, RFC 2217 replies: past the bound, the answer budget's.
        self.answered(count)

    def _outputFull(self) -> bool:
        guard = self.guard
        return guard is not None and guard.full

    def acceptLocal(self, option: int) -> bool:
        return option in LOCAL_OPTIONS or (option == COM_PORT_OPTION and self.rfc2217)

    def acceptRemote(self, option: int) -> bool:
        return option in REMOTE_OPTIONS or (option == COM_PORT_OPTION and self.rfc2217)

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        if option == COM_PORT_OPTION and enabled and self.comPort is None:
            # Either side's COM-PORT-OPTION starts com port control (a
            # program: its bytes are data, and an escape menu is there only
            # if the listener names a key, escape=).
            self.comPort = ComPortControl(self, self.signature)
            self.line.addController(self)
            self.comPort.start()
        elif option == COM_PORT_OPTION and not enabled and self.comPort is not None and not self._comPortInEffect():
            # Off on both sides now (RFC 855: no subnegotiation of an option
            # not in effect): no more RFC 2217 both ways, its bytes plain
            # telnet data, what a SUSPEND held written now.  The settings
            # it made come back when it leaves, as an RFC 2217 client's.
            comPort, self.comPort = self.comPort, None
            self._flowSuspended = False
            if comPort.dropped:
                # Still counted (status, metrics: a counter never goes back), as when it leaves.
                gone = self.line.droppedGone
                gone["suspended"] = gone.get("suspended", 0) + comPort.dropped
            # A BREAK-ON it holds: no BREAK-OFF can come now.
            self.line.endHeldBreak(self, "turned RFC 2217 off")
            if comPort.linestateMask:
                self.line.updateLineWatch()  # its mask no longer asks for line errors
            if comPort.held:
                self._flushAnswers()  # the DONT or WONT first
                self.writeData(bytes(comPort.held))

    def _comPortInEffect(self) -> bool:
        return self.localEnabled(COM_PORT_OPTION) or self.remoteEnabled(COM_PORT_OPTION)

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        if not (self.localEnabled(option) or self.remoteEnabled(option)):
            # RFC 855: ignored; said (counted), as other input that is (a
            # program sending RFC 2217 before, or without, agreeing on it).
            self.telnetIgnored("subnegotiation of an option not in effect")
            return
        if option == COM_PORT_OPTION and self.comPort is not None:
            # (comPort is None while the option is in effect on neither side.)
            if payload[:1] == bytes((FLOWCONTROL_RESUME,)):
                # Held device output is written at once: our answers first.
                self._flushAnswers()
            clock = self._clock()
            start = clock.seconds() if clock is not None else 0.0
            self.comPort.handle(payload)
            took = clock.seconds() - start if clock is not None else 0.0
            # Most reach the device (a settings change is a tcsetattr and a
            # read-back, 45-60 us on a pty): 16 of them a read, as much as
            # 256 other commands (a flood of SET-BAUDRATE held every line
            # 12 ms a read); one the device took longer over, its time (a
            # flood at a USB adapter held every line 16 commands' ioctls).
            self.spendCommands(max(COM_PORT_COMMAND_COST, int(took / COMMAND_SECONDS)) - 1)
            # The line's requests' time this turn (Line.controlReady): however many clients ask, the other lines keep theirs.
            self.line.controlTook(took)

    def telnetDataReceived(self, data: bytes) -> None:
        # One read's pieces between telnet commands share its escape menu's turn.
        self.handleInput(data)

    def telnetCommandReceived(self, command: int) -> None:
        if command == BRK:
            self.line.clientBreak(self)
        elif command == AYT:
            if self.line.textGate.open:
                # Not into device output stopped inside an escape sequence or a UTF-8 character (the
                # terminal took it for the rest: ESC [ 3 then '\r\n[' ended the sequence, the device's
                # '1m' shown as text): it waits with the line's held text, 0.5 s at most (TextGate).
                self.sendAnswer(AYT_ANSWER)
            else:
                # Gathered with the other answers (input is not parsed while
                # the output is full, so this is never past the bound).
                self._answer(AYT_ANSWER)
        elif command in AS_TYPED:
            # Interrupt Process: the device's interrupt character, as if
            # typed (telnetd writes its terminal's VINTR; a shell, a boot
            # loader, a pager all take ^C).  A break it is not: on a Linux
            # console that is SysRq, on some routers a return to ROM.  EOF,
            # SUSP and ABORT likewise (VEOF, VSUSP, VQUIT).
            self.handleInput(AS_TYPED[command])
            # As a command that reaches a device costs (a flood of IP was a
            # write to the device each).
            self.spendCommands(COM_PORT_COMMAND_COST - 1)
        elif command == AO:
            # Abort Output (RFC 854; RFC 1123 3.2.4: answered with a Synch):
            # what waits in the gateway for this client is dropped and the
            # Synch tells the client to drop what it has not shown up to
            # there (see sendSynch).
            self.sendSynch()
        elif command != DM:
            # (A DM ends a Synch: the codec's.)
            self.telnetIgnored("ignored telnet command")

    def outputAborted(self, discarded: int) -> None:
        # Counted with its ignored input: one line a minute at most.
        self.ignored.add("byte of its output dropped by AO", discarded)

    def telnetSynched(self, discarded: int) -> None:
        if discarded:
            self.ignored.add("Synch-discarded byte", discarded)

    # IClient

    def deliver(self, data: bytes) -> None:
        if not self.mayDeliver(data):
            return
        if self.comPort is not None:
            self.comPort.deliver(data)
        else:
            self.writeData(data)

    # RFC 2217 notifications the device causes are not sent while the
    # client's output is past its bound (they answer nothing it sent): once
    # it drains, it is told the state then (modem lines, line state seen
    # meanwhile, flow control).

    def modemStateChanged(self, state: int) -> None:
        if self.comPort is not None:
            if self._outputFull():
                self._owed |= _OWE_MODEM
                return
            self.comPort.modemStateChanged(state)

    def lineStateChanged(self, state: int) -> None:
        if self.comPort is not None:
            if self._outputFull():
                self._owedLineState |= state
                return
            self.comPort.lineStateChanged(state)

    def deviceStateChanged(self, up: bool, notice: bytes) -> None:
        if self.comPort is not None:
            # RFC 2217 clients see carrier: CD drops while the device is gone.
            if self._outputFull():
                self._owed |= _OWE_MODEM
                return
            self.comPort.carrier(up)
        elif self._comPortWait is not None and (self._attaching or self._heldStateNotices):
            # Said once it is known to be a person (see _comPortAnswered).
            if notice:
                self._heldStateNotices.append(notice)
                del self._heldStateNotices[:-HELD_STATE_NOTICES]
        elif notice and self.wantsNotices():
            self.sendText(notice)

    def pauseInput(self) -> None:
        Session.pauseInput(self)
        self._tellFlow()

    def resumeInput(self) -> None:
        Session.resumeInput(self)
        self._tellFlow()

    def _tellFlow(self) -> None:
        """FLOWCONTROL-SUSPEND / RESUME to an RFC 2217 client when the device's state for it changed."""
        if self.comPort is None or self._outputFull():
            return
        suspended = bool(self._readingPaused & DEVICE_BEHIND)
        if suspended != self._flowSuspended:
            self._flowSuspended = suspended
            self.comPort.reply(FLOWCONTROL_SUSPEND if suspended else FLOWCONTROL_RESUME, b"")

    releaseWire = TelnetProtocol.releaseWire

    def releaseInput(self) -> None:
        if self.leaving:
            return
        if self.comPort is not None:
            owed, self._owed = self._owed, 0
            lineState, self._owedLineState = self._owedLineState, 0
            if owed & _OWE_MODEM:
                self.comPort.modemStateChanged(self.comPort.currentModemState())
            if lineState:
                self.comPort.lineStateChanged(lineState)
            self.comPort.releaseSettings()
            self._tellFlow()
        Session.releaseInput(self)

