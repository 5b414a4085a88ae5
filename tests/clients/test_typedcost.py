"""
What formatting a client's read for the C{LOG.typed} file costs: it is
done on the reactor's thread, so a 64 KiB paste must not be a step of
Python a byte (it held every line 49-100 ms a read).
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from twisted.trial.unittest import SynchronousTestCase

from serialgw.clients.typed import typedHexdump, typedText

# Every byte value, 256 times: 64 KiB, none of it plain text.
PASTE = bytes(range(256)) * 256


def pythonSteps(format: Callable[[str, bytes], list[str]], data: bytes) -> int:
    """How many Python frames (functions, generator steps) formatting C{data} runs."""
    steps = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal steps
        if event == "call":
            steps += 1

    sys.setprofile(profile)
    try:
        format("127.0.0.1:5000", data)
    finally:
        sys.setprofile(None)
    return steps


class TypedCostTests(SynchronousTestCase):
    def test_textNotAStepAByte(self) -> None:
        """A 64 KiB read as text lines: a few Python steps a line of TEXT_LINE bytes, not one a byte."""
        self.assertLess(pythonSteps(typedText, PASTE), 256)

    def test_hexdumpNotAStepAByte(self) -> None:
        """A 64 KiB read as a hexdump: no Python step per byte (4096 lines, each formatted in C)."""
        self.assertLess(pythonSteps(typedHexdump, PASTE), 256)

    def test_sameLines(self) -> None:
        """The lines are as they were: escapes, a doubled backslash, named CR/LF/tab; offsets, hex, dots, padding."""
        data = b"ls \\ -l\r\n\t\x00\x7f\x80\xff~ -"
        self.assertEqual(typedText("p", data), ["p: ls \\\\ -l\\r\\n\\t\\x00\\x7f\\x80\\xff~ -"])
        self.assertEqual(typedHexdump("p", data), [
            "p: 17 byte(s)",
            "  0000  6c 73 20 5c 20 2d 6c 0d 0a 09 00 7f 80 ff 7e 20  |ls \\ -l.......~ |",
            "  0010  2d" + " " * 45 + "  |-|",
        ])
