"""
A telnet connection's options (RFC 855, 1143): each side of each option
kept as L{serialgw.wire.qmethod} says (so negotiation never loops), our
requests (WILL/WONT, DO/DONT), the peer's answered through the hooks
that accept an option (unknown ones refused at once), and an option
changed too often refused (MAX_OPTION_CHANGES).  The base of
L{serialgw.wire.telnet.TelnetProtocol}, which parses the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from serialgw.wire.qmethod import Q, Side
from serialgw.wire.telnetcodes import DO, DONT, IAC, WILL, WONT
from serialgw.wire.telnetout import TelnetOutput

# An option that has changed (on or off, on one side) this many times on one
# connection is refused from then on.  RFC 1143 keeps two codecs that follow
# it out of loops; a peer of RFC 854 alone that answers each change is not
# (one that turns BINARY on and off in its first flight, crossing our DO,
# looped with us for ever, one negotiation each way a round trip).  People
# and programs change an option a few times, a loop this many in a moment.
MAX_OPTION_CHANGES = 100

_YES = Q.YES  # read for every chunk of data (is the peer in BINARY?)


class TelnetOptions(TelnetOutput):
    """The options of one telnet connection (set up by L{serialgw.wire.telnet.TelnetProtocol})."""

    # RFC 1143's "us" and "him", per option; how often each side of each option changed.
    _us: dict[int, Side]
    _him: dict[int, Side]
    _changes: dict[tuple[int, bool], int]

    if TYPE_CHECKING:
        # (TelnetProtocol's hook: declared for mypy alone, as a stub at run time would shadow it in the MRO, and
        # naming TelnetProtocol would be an import cycle; tests.test_layers.PartStubTests.)
        def telnetIgnored(self, kind: str) -> None: ...

    # Hooks

    def acceptLocal(self, option: int) -> bool:
        """May we enable C{option} on our side (peer sent DO)?"""
        return False

    def acceptRemote(self, option: int) -> bool:
        """May the peer enable C{option} (peer sent WILL)?"""
        return False

    def telnetOptionChanged(self, option: int, local: bool, enabled: bool) -> None:
        """An option was enabled or disabled on one side."""

    # Options

    def localEnabled(self, option: int) -> bool:
        side = self._us.get(option)
        return side is not None and side.state is _YES

    def remoteEnabled(self, option: int) -> bool:
        side = self._him.get(option)
        return side is not None and side.state is _YES

    def requestLocal(self, option: int, enable: bool = True) -> None:
        """Ask to enable (WILL) or disable (WONT) an option on our side."""
        self._send(self.side(option, True).ask(enable), option)

    def requestRemote(self, option: int, enable: bool = True) -> None:
        """Ask the peer to enable (DO) or disable (DONT) an option."""
        self._send(self.side(option, False).ask(enable), option)

    def side(self, option: int, local: bool) -> Side:
        """Our side (C{local}) or the peer's of C{option}, as RFC 1143 keeps it."""
        sides = self._us if local else self._him
        side = sides.get(option)
        if side is None:
            side = sides[option] = Side(WILL, WONT) if local else Side(DO, DONT)
        return side

    def _send(self, command: Optional[int], option: int) -> None:
        if command is not None:
            self._answer(bytes((IAC, command, option)))

    def _negotiate(self, command: int, option: int) -> None:
        """The peer said WILL or WONT (its side), DO or DONT (ours)."""
        local = command >= DO
        side = self.side(option, local)
        if command == WILL or command == DO:
            accept = side.state is Q.NO and (self.acceptLocal if local else self.acceptRemote)(option)
            if accept and self._changes.get((option, local), 0) >= MAX_OPTION_CHANGES:
                # A negotiation loop: refused (said once, then counted).
                accept = False
                self.telnetIgnored("option turned on and off too often")
            send, change = side.enable(accept)
        else:
            send, change = side.disable()
        self._send(send, option)
        if change is not None:
            self._changes[option, local] = self._changes.get((option, local), 0) + 1
            self.telnetOptionChanged(option, local, change)
