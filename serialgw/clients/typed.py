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

# The bytes shown as themselves in a text line: printable ASCII but the backslash.
_SHOWN = {b: chr(b) for b in range(0x20, 0x7F) if b != 0x5C}
_NAMED = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}


def typedText(peer: str, data: bytes) -> list[str]:
    """
    C{data} from C{peer} as text lines: C{PEER: ls -l\\r}; a byte that is
    not printable ASCII (a control key, a byte of UTF-8) as C{\\xNN}, a
    backslash doubled, so each line is read back to the bytes typed.
    """
    lines = []
    for start in range(0, len(data), TEXT_LINE):
        chunk = data[start:start + TEXT_LINE]
        lines.append(f"{peer}: " + "".join(_SHOWN.get(b) or _NAMED.get(b) or f"\\x{b:02x}" for b in chunk))
    return lines


def typedHexdump(peer: str, data: bytes) -> list[str]:
    """C{data} from C{peer} as a hexdump: C{PEER:} then 16 bytes a line, offset, hex and printable ASCII."""
    lines = [f"{peer}: {len(data)} byte(s)"]
    for start in range(0, len(data), HEX_LINE):
        chunk = data[start:start + HEX_LINE]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        shown = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"  {start:04x}  {hexes:<47}  |{shown}|")
    return lines
