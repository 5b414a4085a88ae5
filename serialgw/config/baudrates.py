"""
Baud rates an operator most likely did not mean: C{--baud 11520} (a digit
of 115200 left out) sets the device to 11520 and the console prints
garbage, said by nothing.  Odd rates are real (an ESP8266's boot ROM talks
at 74880, DMX512 and 3D printers' Marlin at 250000, MIDI at 31250), so a
rate is never refused: one neither standard nor a known odd one is
warned of (C{--check}, the start's log, a reload's), naming the standard
rate it is most likely a slip of.
"""

from __future__ import annotations

import math
import os.path
from typing import Optional

# The rates termios has a name for (Linux's B50 ... B4000000), and those
# Windows' and many terminal programs' menus offer besides (14400, 28800,
# 56000, 76800, 128000, 256000).
STANDARD = (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 14400, 19200, 28800, 38400,
            56000, 57600, 76800, 115200, 128000, 230400, 256000, 460800, 500000, 576000, 921600, 1000000,
            1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000)

# Odd rates real devices use: K-line (ISO 9141) 10400, MIDI 31250, 62500,
# the ESP8266 boot ROM 74880, 125000, DMX512 and Marlin 250000, and the
# UART clock's fractions 1843200 and 3686400.
KNOWN_ODD = (10400, 31250, 62500, 74880, 125000, 250000, 1843200, 3686400)


def _oneSlip(typed: str, rate: str) -> bool:
    """C{typed} is C{rate} with one digit left out, added, changed, or two neighbours swapped."""
    if abs(len(typed) - len(rate)) > 1 or typed == rate:
        return False
    if len(typed) == len(rate):
        differ = [i for i in range(len(typed)) if typed[i] != rate[i]]
        return len(differ) == 1 or (len(differ) == 2 and differ[1] == differ[0] + 1
                                    and typed[differ[0]] == rate[differ[1]] and typed[differ[1]] == rate[differ[0]])
    short, long = sorted((typed, rate), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def nearestStandard(rate: int) -> int:
    """
    The standard rate C{rate} is most likely a slip of: one a slip of the
    keyboard away (11520 of 115200, 19220 of 19200), of several the one
    that begins as C{rate} does the longest (96000: 9600, not 56000), then
    the nearest by ratio; with none a slip away, the nearest by ratio
    (270000: 256000).
    """
    typed = str(rate)
    slips = [s for s in STANDARD if _oneSlip(typed, str(s))]
    if slips:
        return min(slips, key=lambda s: (-len(os.path.commonprefix([typed, str(s)])), abs(math.log(s / rate))))
    return min(STANDARD, key=lambda s: abs(math.log(s / rate)))


def unusualBaud(rate: int) -> Optional[str]:
    """
    Why C{rate} is worth a warning (C{"baud rate 11520 is neither a
    standard rate nor a known odd one: did you mean 115200? ..."}), or
    L{None} for a standard or known odd rate.
    """
    if rate in STANDARD or rate in KNOWN_ODD:
        return None
    return (f"baud rate {rate} is neither a standard rate nor a known odd one (such as 74880 or 250000): did you "
            f"mean {nearestStandard(rate)}? (set as given)")
