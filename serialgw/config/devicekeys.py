"""
Which keys mean nothing on which kind of device, each refusal worded for
the operator (the key was kept and ignored before, the line looking
configured): serial settings, DTR and RTS on a console elsewhere (tcp:,
unix:, telnet:), a lock on any console elsewhere or on a pty the gateway
makes, the modem lines, RTS/CTS and a break's duration on such a pty, a
break (C{\\b}) in an open-string or close-string where none can go, and
on-demand anywhere but a local tty.  Used by the file's line tables and by
the single line of the command line.  Nothing here does I/O.
"""

from __future__ import annotations

import re

from serialgw.config.parsers import SINGLE_SETTINGS, parseCompact
from serialgw.config.specs import DeviceSpec, quote

# The keys (and options of the same names) only a port that carries serial
# settings, DTR and RTS takes: a tty, a pty, an rfc2217:// device.
SERIAL_ONLY = ("serial", *SINGLE_SETTINGS, "xonxoff", "rtscts", "dtr", "rts", "idle-dtr", "idle-rts")


def serialOnlyRefusal(device: DeviceSpec) -> str:
    """
    Why a serial-only key cannot be given for C{device} (a tcp:, unix: or
    telnet: console: it was kept and ignored), or empty where it can.
    """
    what = device.withoutSettings
    return (f"means nothing on device {quote(device.describe())}: a {what} carries no serial settings, DTR or RTS "
            "(the far end's port has its own; an rfc2217:// device carries them): take it out") if what else ""


def deviceKeyRefusal(key: str, device: DeviceSpec) -> str:
    """
    Why C{key} in a line's own table means nothing on C{device} (it was
    kept and ignored, the line looking configured), or empty where it
    does: the serial-only keys and C{restore} (what an RFC 2217 client
    changed, put back) on a device that carries no settings; C{lock} and
    C{lock-dir} on any console elsewhere; C{break-duration} where no break
    has a duration (a raw socket carries none, a telnet console's IAC BRK
    is the far end's to time; an rfc2217:// device's BREAK-ON lasts it).
    """
    if key in ("on-demand", "on-demand-linger") and device.kind != "tty":
        return (f"means nothing on device {quote(device.describe())}: only a local tty is opened on demand (a "
                + ("pty the gateway makes is its own, no other program's to open" if device.kind == "pty" else
                   "console elsewhere is dialed from the start") + "): take it out")
    if device.kind == "pty":
        return ptyKeyRefusal(key, device)
    if key in SERIAL_ONLY or key == "restore":
        return serialOnlyRefusal(device)
    if not device.remote or key not in ("lock", "lock-dir", "break-duration"):
        return ""
    where = f"means nothing on device {quote(device.describe())}"
    if key != "break-duration":
        return (f"{where}: a console elsewhere takes no lock (the UUCP lock and flock are for a local tty; the far "
                "end locks its own port): take it out")
    if device.kind in ("tcp", "unix"):
        return f"{where}: a raw socket cannot carry a break: take it out"
    if device.kind == "telnet":
        return (f"{where}: a telnet console's break is IAC BRK, which has no duration (the far end's break lasts as "
                "long as it makes it; an rfc2217:// device's lasts break-duration): take it out")
    return ""


def ptyKeyRefusal(key: str, device: DeviceSpec) -> str:
    """
    Why C{key} in a line's own table means nothing on a C{pty:} device (a
    pseudo-tty the gateway makes: it was kept and ignored), or empty where
    it does: C{lock} and C{lock-dir} (such a pty takes no lock), the modem
    lines (a pty has none: setting them fails with ENOTTY), C{rtscts} (nor
    RTS/CTS: the kernel keeps CRTSCTS in its termios and ignores it) and
    C{break-duration} (the kernel takes a break on it and does nothing).
    Its other serial settings and C{restore} stay: a program on the pty
    sees them.  (C{rtscts} inside C{serial}: L{ptySerialRefusal}.)
    """
    where = f"means nothing on device {quote(device.describe())}"
    if key in ("lock", "lock-dir"):
        return (f"{where}: a pty the gateway makes takes no lock (the UUCP lock and flock are for a local tty; no "
                "other program opens its master): take it out")
    if key in ("dtr", "rts", "idle-dtr", "idle-rts"):
        return f"{where}: a pty has no modem lines (DTR and RTS are a serial port's): take it out"
    if key == "rtscts":
        return f"{where}: {NO_PTY_FLOW}"
    if key == "break-duration":
        return (f"{where}: a pty cannot carry a break (the kernel takes one on a pty and does nothing; the program on "
                "it is never told): take it out")
    return ""


NO_PTY_FLOW = "a pty has no RTS/CTS lines (hardware flow control is a serial port's): take it out"


def stringBreakRefusal(parts: tuple[bytes, ...], device: DeviceSpec) -> str:
    """
    Why an open-string or close-string (C{parts}, as L{parseSendString}
    reads it) means something that is not so on C{device}, or empty: a
    break (C{\\b}) where none can go (a raw socket, a pty the gateway
    makes; the data around it was written, the break logged as not sent
    at each first or last person).
    """
    if len(parts) < 2:
        return ""
    why = {"tcp": "a raw socket cannot carry a break", "unix": "a raw socket cannot carry a break",
           "pty": "a pty cannot carry a break (the kernel takes one on a pty and does nothing)"}.get(device.kind)
    return f"its \\b (a break) means nothing on device {quote(device.describe())}: {why}: take it out" if why else ""


def ptySerialRefusal(text: str, device: DeviceSpec) -> str:
    """
    Why serial settings C{text} (C{serial}, C{--serial}) mean something
    that is not so on C{device}, or empty: RTS/CTS on a C{pty:} device
    (see L{ptyKeyRefusal}).  C{text} has been read once already.
    """
    if device.kind != "pty" or not parseCompact(text).rtscts:
        return ""
    flow = next(f for f in re.split(r"[,\s]+", text.strip()) if f.lower() in ("rtscts", "crtscts", "hw", "hardware"))
    return f"{quote(flow)} in {quote(text)} means nothing on device {quote(device.describe())}: {NO_PTY_FLOW}"
