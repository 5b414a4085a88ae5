"""
Text of ours (a notice, an answer to an escape command) is not put inside
device output that stopped in the middle of an escape sequence or of a
UTF-8 character: the terminal would read the notice as the rest of it
(C{ESC [ 3} then C{\\r\\n[serialgw: ...]}: the C{[} ended the sequence,
and the device's C{1m} that followed was shown as text).  It waits until
the device's next output ends cleanly, at most L{WAIT} seconds.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

# What device output ends with when it stops inside something: ESC alone,
# a CSI without its final byte, an OSC without its end, an ESC with
# intermediates only, the lead of a UTF-8 character without all of its
# continuation bytes.  Searched in the last TAIL bytes of a chunk (once a
# chunk for the line, not per client).
OPEN = re.compile(
    rb"(?:\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|\][^\x07\x1b]*|[\x20-\x2f]*)"
    rb"|[\xc2-\xdf]|[\xe0-\xef][\x80-\xbf]?|[\xf0-\xf4][\x80-\xbf]{0,2})\Z"
)
TAIL = 64
# Held text is sent after this many seconds whatever the device does.
WAIT = 0.5
# At most this many pieces held for the line; one more sends them all now.
HELD_LIMIT = 256


def endsOpen(data: bytes) -> bool:
    """Whether C{data} ends inside an escape sequence or a UTF-8 character."""
    # Once a chunk of a flood: the regular expression only where it can
    # match (0.3-1 µs a 4 KiB chunk instead of 3 µs).  A sequence has no ESC
    # after its own, so it starts at the last ESC; a UTF-8 character's
    # lead is one of the last three bytes, and it ends in a byte >= 0x80.
    if not data:
        return False
    esc = data.rfind(b"\x1b", -TAIL)
    if esc < 0:
        if data[-1] < 0x80:
            return False
        esc = len(data) - 3
    return OPEN.search(data[max(0, min(esc, len(data) - 3)):]) is not None


def openTail(data: bytes | bytearray) -> int:
    """
    Where what C{data} ends inside (see L{endsOpen}) begins: the escape
    sequence's ESC, the UTF-8 character's lead; C{len(data)} if nothing.
    """
    if not data:
        return 0
    esc = data.rfind(b"\x1b", -TAIL)
    if esc < 0:
        if data[-1] < 0x80:
            return len(data)
        esc = len(data) - 3
    base = max(0, min(esc, len(data) - 3))
    found = OPEN.search(data, base)
    return len(data) if found is None else found.start()


class TextGate:
    """
    Holds clients' text while the line's device output is open (see
    L{endsOpen}), and sends it, in order, once it is not.
    """

    # One a line, in farms of thousands of lines.
    __slots__ = ("clock", "open", "_held", "_call")

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.open = False
        self._held: list[tuple[Any, Callable[[bytes], None], bytes]] = []
        self._call: Optional[Any] = None

    def hold(self, client: Any, write: Callable[[bytes], None], data: bytes) -> bool:
        """Keep C{data} for C{client} (sent by C{write} later): True; False: send it now."""
        if not self.open or self.clock is None:
            return False
        if len(self._held) >= HELD_LIMIT:
            self.release()
            return False
        self._held.append((client, write, data))
        if self._call is None:
            self._call = self.clock.callLater(WAIT, self.release)
        return True

    def deviceOutput(self, data: bytes) -> None:
        """The line handed C{data} to its clients: held text goes once the output ends cleanly."""
        self.open = endsOpen(data)
        if self._held and not self.open:
            self.release()

    def release(self, client: Any = None) -> None:
        """Send the text held (only C{client}'s, given one: it is leaving)."""
        if client is None:
            # Waited for (or given up on): what follows is not held for it.
            self.open = False
            if self._call is not None and self._call.active():
                self._call.cancel()
            self._call = None
            held, self._held = self._held, []
        else:
            held = [h for h in self._held if h[0] is client]
            self.forget(client)
        for _, write, data in held:
            write(data)

    def forget(self, client: Any) -> None:
        """C{client} is gone: its text is dropped (and the timer, with the last held)."""
        self._held = [h for h in self._held if h[0] is not client]
        if not self._held and self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
