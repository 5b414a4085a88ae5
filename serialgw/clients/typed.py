"""
What clients typed, as it went to the device (ser2net's trace-write):
the lines a console log's C{LOG.typed} file gets (log-typed), each read
of a client one stamped line naming who typed it, as text with what
cannot be shown escaped, or as a hexdump.  It holds whatever was typed,
passwords at a login prompt too: made mode 0600, off by default.
"""

from __future__ import annotations

# A client's read is written this many bytes a line at most (a 64 KiB paste: a few lines).
TEXT_LINE = 1024
HEX_LINE = 16

# A hexdump's printable column: printable ASCII as itself, any other byte as '.'.
_DOTTED = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))

# Each read is formatted on the reactor's thread: a byte at a time in
# Python, a 64 KiB paste held every line 49-77 ms (text) or 80-100 ms
# (hexdump) a read, measured under load (12 and 19 ms of CPU unloaded); in
# C (a codec, bytes.hex, bytes.translate) 0.15 and 2.3 ms.


def typedText(peer: str, data: bytes) -> list[str]:
    """
    C{data} from C{peer} as text lines: C{PEER: ls -l\\r}; a byte that is
    not printable ASCII (a control key, a byte of UTF-8) as C{\\xNN}, a
    backslash doubled, so each line is read back to the bytes typed.
    """
    lines = []
    for start in range(0, len(data), TEXT_LINE):
        chunk = data[start:start + TEXT_LINE]
        # (Printable ASCII as itself, the backslash doubled, CR, LF, tab
        # named, any other byte as \xNN: unicode_escape of the bytes as Latin-1.)
        lines.append(f"{peer}: " + chunk.decode("latin-1").encode("unicode_escape").decode("ascii"))
    return lines


def typedHexdump(peer: str, data: bytes) -> list[str]:
    """C{data} from C{peer} as a hexdump: C{PEER:} then 16 bytes a line, offset, hex and printable ASCII."""
    lines = [f"{peer}: {len(data)} byte(s)"]
    shown = data.translate(_DOTTED).decode("ascii")
    hexes = data.hex(" ")
    width = 3 * HEX_LINE - 1
    for start in range(0, len(data), HEX_LINE):
        lines.append(f"  {start:04x}  {hexes[3 * start:3 * start + width]:<47}  |{shown[start:start + HEX_LINE]}|")
    return lines
