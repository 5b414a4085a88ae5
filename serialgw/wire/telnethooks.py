"""
What a telnet codec's user (a client session, a remote device's link)
overrides, with the defaults L{serialgw.wire.telnet.TelnetProtocol} has:
data, commands and subnegotiations received, a Synch's end, input ignored;
whether a busy read's rest, a command or a subnegotiation waits (held until
the user calls C{releaseWire}); and, for a user with a reactor, the next
turn that parses a busy read's rest (L{TelnetHooks.busyNextTurn}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from twisted.logger import Logger

from serialgw.logflood import peerLimiter
from serialgw.wire.telnetoptions import TelnetOptions

# Limited per peer: a client's input cannot flood the log (logflood).  (The namespace its lines had in
# serialgw.wire.telnet, before the hooks were split from it, which an operator may filter on.)
log = Logger(namespace="serialgw.wire.telnet", observer=peerLimiter)


class TelnetHooks(TelnetOptions):
    """The hooks of L{serialgw.wire.telnet.TelnetProtocol} (see the module)."""

    # The codec's, which this part works on.
    inputHeld: bool
    _urgent: Optional[Callable[[], bool]]
    _commandsLeft: int

    if TYPE_CHECKING:
        # (TelnetProtocol's: declared for mypy alone, as a stub at run time would shadow it in the MRO, and naming
        # TelnetProtocol would be an import cycle; tests.test_layers.PartStubTests.)
        def releaseWire(self) -> None: ...

    # Hooks

    def telnetDataReceived(self, data: bytes) -> None:
        """Data from the peer, with IAC IAC undone and NVT CR NUL made CR."""

    def telnetCommandReceived(self, command: int) -> None:
        """A command other than negotiation: BRK, NOP, AYT, ..."""

    def telnetSubnegotiation(self, option: int, payload: bytes) -> None:
        """A whole subnegotiation, IAC IAC undone."""

    def telnetSynched(self, discarded: int) -> None:
        """
        A Synch's DM: C{discarded} bytes of data before it were discarded.
        Counted as ignored input (a log line each, not naming the peer, was
        a log a peer could flood: one Synch a read).
        """
        if discarded:
            self.telnetIgnored("Synch discarding data")

    def telnetIgnored(self, kind: str) -> None:
        """
        Input was ignored: C{kind} says what ("malformed subnegotiation",
        "oversized subnegotiation", ...).  Subclasses count it (logflood).
        """
        log.info("telnet: {kind} ignored", kind=kind)

    def telnetBusy(self) -> bool:
        """
        This call of dataReceived has handled COMMANDS_PER_TURN commands and
        more follow.  Return C{True} to have the rest held (as while
        C{inputHeld}): the subclass stops reading the peer and calls
        L{releaseWire} on a later turn of the reactor, so that the other
        lines get theirs.  C{False} (this default, for a codec without a
        reactor) handles the next COMMANDS_PER_TURN now.
        """
        return False

    def subnegotiationWaits(self, option: bytes) -> bool:
        """
        A subnegotiation of C{option} (its first byte; empty: none) is
        complete: return C{True} to have it, and what follows, held (as
        while C{inputHeld}) until the subclass calls L{releaseWire}.
        C{False} (this default): handled now.
        """
        return False

    def commandWaits(self, command: int) -> bool:
        """
        A command other than negotiation (BRK, AYT, ...) is read: return
        C{True} to have it, and what follows, held as L{subnegotiationWaits}
        does.  C{False} (this default): handled now.
        """
        return False

    # The turn that parses the rest of a busy read (busyNextTurn).
    _busyCall: Any = None

    def busyNextTurn(self, clock: Any, hold: Callable[[bool], None]) -> bool:
        """
        L{telnetBusy} for a subclass with a reactor: C{hold(True)} stops
        reading the peer, the rest is parsed on the next turn of C{clock},
        then C{hold(False)} (unless that parse was busy again).
        """
        if self._busyCall is None:
            hold(True)
            self._busyCall = clock.callLater(0, self._nextTurn, hold)
        return True

    def _nextTurn(self, hold: Callable[[bool], None]) -> None:
        self._busyCall = None
        if not self.inputHeld:
            self.releaseWire()
        if self._busyCall is None:
            hold(False)

    def stopTurns(self) -> None:
        """The connection is gone: no next turn (nor a CR's NUL to send, nor urgent data to look for)."""
        self._urgent = None
        call, self._busyCall = self._busyCall, None
        if call is not None and call.active():
            call.cancel()
        self.stopWaitingForCR()

    def spendCommands(self, count: int) -> None:
        """
        The command just handled cost as much as C{count} more of this
        read's COMMANDS_PER_TURN (a subclass's command that reaches a device).
        """
        self._commandsLeft -= count
