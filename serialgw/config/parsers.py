"""
The parsers of single settings: strings in (from the command line or the
TOML file), a value or a L{ConfigError} that quotes the offending text out.
Serial settings (the compact C{115200,8N1} form and the single keys),
paths, open and close strings, milliseconds, on/off, coalescing, devices,
the escape key.  Which keys mean nothing on which device:
L{serialgw.config.devicekeys}; whether a listener's options reach its kind
of client: L{serialgw.config.optionsreach}.  Nothing here does I/O.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Optional

import attrs

from serialgw.config.foreign import deviceWithSettings, ser2netConf, ser2netConnector, ser2netSerial
from serialgw.config.specs import (
    BYTESIZES,
    MAX_BAUD,
    MAX_CLIENTS,
    PARITIES,
    STOPBITS,
    ConfigError,
    DeviceSpec,
    SerialSettings,
    quote,
)


def checkPath(path: str, what: str, unix: bool = False) -> str:
    """
    A path from the configuration (a TOML string may hold C{\\u0000}): a
    file name cannot hold a NUL byte; a unix socket name that starts with
    one is in Linux's abstract namespace (no file: C{"\\u0000name"}).
    """
    if "\0" in path and not (unix and path.startswith("\0")):
        hint = "; an abstract unix socket name starts with it (\"\\u0000NAME\")" if unix else ""
        raise ConfigError(f"{what} {quote(path)}: a file name cannot hold a NUL byte{hint}")
    # Another control character: most likely a TOML escape in a basic string
    # ("/srv/logs\new.log" is a newline), a file made with it in its name.
    control = next((c for c in path if "\0" < c < " " or "\x7f" <= c < "\xa0"), None)
    if control is not None:
        raise ConfigError(f"{what} {quote(path)}: a file name with a control character ({repr(control)[1:-1]}); in a "
                          "TOML string \"...\" a backslash starts an escape: write the path with '/' only, or in '...'")
    return path



def parseLockDir(text: str, what: str) -> str:
    """
    Where UUCP lock files go: an absolute path (every program that locks a
    tty looks in one directory; an empty or relative one was the gateway's
    working directory, / under systemd).
    """
    path = checkPath(text, what)
    if not path.startswith("/"):
        raise ConfigError(f"{what} {quote(text)}: expected an absolute path, e.g. /var/lock or /run/lock")
    return path


def isDecimal(text: str) -> bool:
    """
    ASCII digits only (str.isdigit() also takes '²', which int() refuses),
    and no more of them than int() reads (4300 unless PYTHONINTMAXSTRDIGITS
    says otherwise; past that it raises ValueError, and no setting takes
    such a number).
    """
    limit = sys.get_int_max_str_digits()
    return text.isascii() and text.isdigit() and (len(text) <= limit or not limit)


def writtenNumber(text: Any) -> float:
    """
    A number as written in an option or a listener string, ASCII only:
    float() also reads what nobody types as one, Arabic-Indic digits
    ('١٢' is 12) and underscores ('1_0' is 10), and both were taken (no
    other number of the gateway's is).  ValueError for anything else.
    """
    written = str(text).strip()
    if not written.isascii() or "_" in written:
        raise ValueError(f"not a number as written: {written!r}")
    return float(written)


def parseBaud(text: str) -> int:
    """
    A baud rate: a decimal integer from 1 to L{MAX_BAUD}.
    """
    key = str(text).strip()
    value = int(key) if isDecimal(key) else 0
    if not 0 < value <= MAX_BAUD:
        raise ConfigError(f"baud rate must be 1 to {MAX_BAUD}, not {quote(text)}")
    return value


def parseBytesize(text: str) -> int:
    key = str(text).strip()
    value = int(key) if isDecimal(key) and len(key) < 3 else -1
    if value not in BYTESIZES:
        raise ConfigError(f"byte size must be 5, 6, 7 or 8, not {quote(text)}")
    return value


_PARITY_WORDS = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}


def parseParity(text: str) -> str:
    """
    A parity: a letter (C{N E O M S}) or a word (C{none even odd mark space}).
    """
    key = str(text).strip()
    letter = _PARITY_WORDS.get(key.lower(), key.upper())
    if len(key) == 0 or letter not in PARITIES:
        raise ConfigError(f"parity must be one of N, E, O, M, S, not {quote(text)}")
    return letter


def parseStopbits(text: str) -> float:
    key = str(text).strip()
    if key not in STOPBITS:
        raise ConfigError(f"stop bits must be 1, 1.5 or 2, not {quote(text)}")
    return 1.5 if key == "1.5" else int(key)


def applySingle(settings: SerialSettings, key: str, text: str) -> SerialSettings:
    """
    One of the single settings (C{baud}, C{bytesize}, C{parity},
    C{stopbits}) read from text and applied over C{settings}.
    """
    field, parse = _SINGLES[key]
    return attrs.evolve(settings, **{field: parse(text)})


_FRAMING = re.compile(r"^([5-8])([NEOMS])(1\.5|1|2)$", re.IGNORECASE)


# The flow control words, by the setting each gives (raw and none say nothing: not counted).
_FLOW = {"rtscts": "hardware flow control", "crtscts": "hardware flow control", "hw": "hardware flow control",
         "hardware": "hardware flow control", "xonxoff": "software flow control", "sw": "software flow control",
         "software": "software flow control", "noflow": "noflow"}
_FLOW_CLASHES = {"noflow": ("hardware flow control", "software flow control"),
                 "hardware flow control": ("noflow",), "software flow control": ("noflow",)}


def parseCompact(text: str, base: SerialSettings = SerialSettings()) -> SerialSettings:
    """
    Read the compact form C{BAUD[,FRAMING][,FLOW...]}: C{115200},
    C{9600,7E1}, C{57600,8N2,rtscts}, C{19200,8N1,xonxoff}; C{raw} and
    C{none} are accepted as no-ops (as in remserial's C{-s "9600 raw"}).
    Fields may be separated by commas or spaces.  What is not given keeps its
    value from C{base}.  An empty field (C{115200,,8N1}: two commas, or one
    at an end) and a speed, framing or flow control given twice
    (C{9600,115200}, C{rtscts,rtscts}, C{rtscts,hw}), or C{noflow} beside
    C{rtscts} or C{xonxoff}, are refused, naming the text: which one was
    meant is not known.  C{rtscts,xonxoff} is both (termios has both).
    """
    pieces = str(text).strip().split(",")
    fields = [f for piece in pieces for f in piece.split()]
    if not fields:
        raise ConfigError(f"serial settings are empty: {quote(text)}")
    if any(not piece.strip() for piece in pieces):
        raise ConfigError(f"serial settings {quote(text)} have an empty field (two commas together, or one at an "
                          "end): expected BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], e.g. 115200,8N1")
    changes: dict[str, object] = {}
    given: dict[str, str] = {}
    for field in fields:
        lower = field.lower()
        framing = _FRAMING.match(field)
        what = ("speed" if isDecimal(field) else "framing" if framing else _FLOW.get(lower, ""))
        if what in given:
            said = what if what in _FLOW.values() else f"the {what}"
            raise ConfigError(f"serial settings {quote(text)} give {said} twice ({quote(given[what])} and "
                              f"{quote(field)}): expected one")
        # noflow says no flow control: beside rtscts or xonxoff one of the two is a mistake.
        clash = next((given[w] for w in _FLOW_CLASHES.get(what, ()) if w in given), None)
        if clash is not None:
            raise ConfigError(f"serial settings {quote(text)} give {quote(clash)} and {quote(field)}: noflow turns "
                              "flow control off; give one of them")
        if what:
            given[what] = field
        if isDecimal(field):
            changes["baudrate"] = parseBaud(field)
        elif framing:
            changes["bytesize"] = int(framing.group(1))
            changes["parity"] = framing.group(2).upper()
            changes["stopbits"] = parseStopbits(framing.group(3))
        elif lower in ("rtscts", "crtscts", "hw", "hardware"):
            changes["rtscts"] = True
        elif lower in ("xonxoff", "sw", "software"):
            changes["xonxoff"] = True
        elif lower in ("raw", "none", "noflow"):
            if lower == "noflow":
                changes["rtscts"] = False
                changes["xonxoff"] = False
        elif ser2netSerial(field) is not None:
            raise ConfigError(f"cannot read {quote(field)} in serial settings {quote(text)}: ser2net's form "
                              f"(speed, parity, data bits, stop bits); serialgw writes it {ser2netSerial(field)}")
        else:
            raise ConfigError(
                f"cannot read {quote(field)} in serial settings {quote(text)}: expected "
                "BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], e.g. 115200,8N1"
            )
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


_SINGLES: dict[str, tuple[str, Any]] = {
    "baud": ("baudrate", parseBaud),
    "bytesize": ("bytesize", parseBytesize),
    "parity": ("parity", parseParity),
    "stopbits": ("stopbits", parseStopbits),
}
SINGLE_SETTINGS = tuple(_SINGLES)


# What an open-string or close-string may hold (bytes, breaks not counted),
# and its breaks (each holds the line break-duration, up to 10 s).
MAX_SEND_STRING = 4096
MAX_SEND_BREAKS = 16
_SEND_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "e": b"\x1b", "0": b"\x00"}
_SEND_TOKEN = re.compile(r"\\(x[0-9A-Fa-f]{2}|.?)|[^\\]+", re.DOTALL)


def parseSendString(text: str, what: str = "open-string") -> tuple[bytes, ...]:
    """
    ser2net's openstr/closestr: text (UTF-8) with the escapes C{\\r}
    C{\\n} C{\\t} C{\\e} C{\\0} C{\\\\} and C{\\xNN}, and C{\\b}: a
    break here.  Returns the data between breaks: C{"AT\\r\\bx"} is
    C{(b"AT\\r", b"x")}, one break between; an empty string is C{()}.
    """
    text = str(text)
    parts: list[bytes] = [b""]
    size = 0
    for match in _SEND_TOKEN.finditer(text):
        escape = match.group(1)
        if escape is None:
            chunk = match.group(0).encode("utf-8")
        elif escape == "b":
            parts.append(b"")
            continue
        elif escape.startswith("x") and len(escape) == 3:
            chunk = bytes([int(escape[1:], 16)])
        elif escape in _SEND_ESCAPES:
            chunk = _SEND_ESCAPES[escape]
        else:
            bad = "\\" + escape
            raise ConfigError(f"{what} {quote(text)}: unknown escape {quote(bad)}: expected \\r \\n \\t \\e "
                              "\\0 \\\\ \\xNN or \\b (a break)")
        parts[-1] += chunk
        size += len(chunk)
    if size > MAX_SEND_STRING:
        raise ConfigError(f"{what} {quote(text[:40])}...: {size} bytes, at most {MAX_SEND_STRING}")
    if len(parts) - 1 > MAX_SEND_BREAKS:
        # A million \b held the device for days at each attach.
        raise ConfigError(f"{what} {quote(text[:40])}...: {len(parts) - 1} breaks (\\b), at most {MAX_SEND_BREAKS}")
    return tuple(parts) if text else ()


def describeSendString(parts: tuple[bytes, ...]) -> str:
    """For logs: the data with C{\\b} where the breaks go."""
    return "\\b".join(repr(p)[2:-1] for p in parts)


def parseMilliseconds(text: Any, what: str, limit: float = 10000) -> float:
    """A time in milliseconds, 0 to C{limit}, as seconds; C{what} names the setting."""
    try:
        value = writtenNumber(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= limit:  # NaN fails too
        raise ConfigError(f"{what} must be 0 to {limit:g} milliseconds, not {quote(text)}")
    return value / 1000.0


# The longest idle-timeout and on-demand-linger: a day.
MOST_SECONDS = 86400
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smh]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parseSeconds(given: Any, least: float = 0.0) -> float:
    """
    A time as conserver's idletimeout writes it (C{300}, C{"90s"}, C{"5m"},
    C{"1h"}: seconds, minutes, hours), 0 (off), or C{least} to
    L{MOST_SECONDS} seconds.  A number (TOML's) is seconds.
    """
    if isinstance(given, bool):
        value = -1.0
    elif isinstance(given, (int, float)):
        value = float(given) if abs(given) <= 10 * MOST_SECONDS else -1.0
    else:
        found = _DURATION.fullmatch(str(given)) if isinstance(given, str) and str(given).isascii() else None
        value = float(found.group(1)) * _UNITS[found.group(2)] if found else -1.0
    if not (value == 0 or least <= value <= MOST_SECONDS):  # NaN fails too
        shown = ("true" if given else "false") if isinstance(given, bool) else quote(given)
        span = f"0 (off) or {least:g} to {MOST_SECONDS}" if least else f"0 to {MOST_SECONDS}"
        raise ConfigError(f"expected seconds, {span} (a day), as 300, \"90s\", \"5m\" or \"1h\", not {shown}")
    return value


# The most --busy-poll takes, microseconds: beyond, a wake-up costs less than the CPU burnt waiting.
BUSY_POLL_MOST = 1000


def parseBusyPoll(text: str) -> float:
    """C{--busy-poll}: microseconds, 0 to L{BUSY_POLL_MOST}, as seconds."""
    value = int(text.strip()) if isDecimal(text.strip()) else -1
    if not 0 <= value <= BUSY_POLL_MOST:
        raise ConfigError(f"--busy-poll must be 0 to {BUSY_POLL_MOST} microseconds, not {quote(text)}")
    return value / 1e6


def parseMaxClients(text: str) -> int:
    """C{--max-clients}: 0 (no limit) to L{MAX_CLIENTS} (2**63 was taken)."""
    key = str(text).strip()
    value = int(key) if isDecimal(key) else -1
    if not 0 <= value <= MAX_CLIENTS:
        raise ConfigError(f"--max-clients must be 0 (no limit) to {MAX_CLIENTS}, not {quote(text)}")
    return value


def parseOnOff(text: str, what: str) -> bool:
    """C{on}/C{off} (also C{true}/C{false}, C{1}/C{0}, C{yes}/C{no}); C{what} names the setting."""
    key = str(text).strip().lower()
    if key in ("on", "true", "1", "yes", "high"):
        return True
    if key in ("off", "false", "0", "no", "low"):
        return False
    raise ConfigError(f"{what} must be on or off, not {quote(text)}")


def parseCoalesce(text: str) -> tuple[float, float, bytes]:
    """
    C{MIN_MS,MAX_MS[,STRING]}: e.g. C{2,20} or C{5,50,\\n}; C{off} or
    C{0} is none.  An empty one (a shell variable left unset) is refused,
    not taken as off.
    """
    raw = str(text)
    text = raw.strip()
    if not text:
        raise ConfigError("coalesce is empty: expected MIN_MS,MAX_MS[,STRING] (e.g. 2,20), or off")
    if text.lower() in ("off", "0"):
        return 0.0, 0.0, b""
    # (Spaces around it go; a STRING that is a newline stays: TOML's "5,50,\n" has a real one.)
    parts = raw.lstrip().rstrip(" ").split(",", 2)
    try:
        low, high = writtenNumber(parts[0]) / 1000, writtenNumber(parts[1]) / 1000
    except (ValueError, IndexError):
        raise ConfigError(f"coalesce {quote(text)}: expected MIN_MS,MAX_MS[,STRING], e.g. 2,20 or 5,50,\\n") from None
    if not 0 < low <= high <= 10:
        raise ConfigError(f"coalesce {quote(text)}: expected 0 < MIN_MS <= MAX_MS <= 10000")
    try:
        on = parts[2].encode().decode("unicode_escape").encode("latin-1") if len(parts) > 2 else b""
    except UnicodeDecodeError as e:
        raise ConfigError(f"coalesce {quote(text)}: cannot read STRING {quote(parts[2])}: {e.reason}") from None
    except UnicodeEncodeError:
        raise ConfigError(f"coalesce {quote(text)}: STRING {quote(parts[2])} names a character past \\xff "
                          "(a byte is \\xNN; other text is taken as its UTF-8)") from None
    return low, high, on


def parseDevice(text: str) -> DeviceSpec:
    """
    Read a device:
      - a tty path (C{/dev/ttyS0}, C{/dev/serial/by-id/...});
      - C{pty:LINK}, a pseudo-terminal the gateway creates with a symlink LINK
        to its slave side (C{pty:} alone: no symlink);
      - a console elsewhere: C{telnet:HOST:PORT} (e.g. QEMU's
        C{-serial telnet:...,server}), C{rfc2217://HOST:PORT}, C{tcp:HOST:PORT}
        (raw), C{unix:PATH} (raw, e.g. a Proxmox VM's serial socket).
    """
    original = str(text)
    text = original.strip()
    if text.startswith("pty:"):
        return DeviceSpec("pty", checkPath(text[len("pty:"):], "pty: link"))
    if not text:
        raise ConfigError("device is empty: expected a tty path, pty:LINK, telnet:HOST:PORT, "
                          "rfc2217://HOST:PORT, tcp:HOST:PORT or unix:PATH")
    pasted = ser2netConnector(text) or (ser2netConf(text) if text[:1].isdigit() else None)
    if pasted is not None:
        # (Read as a relative tty path, a ser2net connector was a device "not there now".)
        said = "a ser2net.conf line: " if text[:1].isdigit() else "ser2net's connector form; serialgw writes it "
        raise ConfigError(f"cannot read device {quote(original)}: {said}{pasted}")
    withSettings = deviceWithSettings(text)
    if withSettings is not None:
        # (Read as a tty path, it was a device "not there now".)
        raise ConfigError(f"cannot read device {quote(original)}: a device with its settings (socat's form); "
                          f"serialgw writes it {withSettings}")
    kind, sep, rest = text.partition("://") if "://" in text else text.partition(":")
    kind = kind.lower()
    if not sep or text.startswith("/"):
        return DeviceSpec("tty", checkPath(text, "device"))
    if kind == "unix":
        if not rest:
            raise ConfigError(f"device {quote(original)} names no socket path")
        return DeviceSpec("unix", checkPath(rest, "device unix:", unix=True))
    if kind in ("telnet", "tcp", "rfc2217"):
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]:")
        else:
            host, _, port = rest.rpartition(":")
        if not host or not isDecimal(port) or not 0 < int(port) < 65536:
            raise ConfigError(f"device {quote(original)}: expected {kind}{sep}HOST:PORT")
        return DeviceSpec(kind, host=host, port=int(port))
    raise ConfigError(
        f"unknown device {quote(original)}: expected a tty path, pty:LINK, telnet:HOST:PORT, "
        "rfc2217://HOST:PORT, tcp:HOST:PORT or unix:PATH"
    )


# Escape keys that would take keys a person types all the time: each would
# start an escape command, and the key after it be taken as one (escape=^@
# on telnet: Enter is CR NUL, so a line typed after Enter starting with d
# disconnected, with b sent a break).
_NOT_ESCAPE_KEYS = {
    0x00: "a telnet client's Enter is CR NUL (and Ctrl-Space is NUL)",
    0x0A: "it is Enter (LF)",
    0x0D: "it is Enter (CR)",
    0x1B: "every arrow and function key starts with it",
}

# The escape menu's commands (serialgw.clients.escape): the key twice sends it.
_COMMAND_KEYS = {"b": "break", "k": "break then a key", "w": "who", "r": "replay", "R": "replay N lines",
                 "s": "status", "B": "baud rate", "t": "take write", "o": "only watch", "d": "disconnect",
                 "?": "help", "h": "help"}


def parseEscape(text: str, original: str) -> Optional[int]:
    """C{^]}, C{^A}, ..., C{^?} (a control key), C{off}; one character stands for itself."""
    if text.lower() == "off":
        return None
    key: Optional[int] = None
    if len(text) == 2 and text[0] == "^" and 0x40 <= ord(text[1].upper()) <= 0x5F:
        key = ord(text[1].upper()) - 0x40
    elif text == "^?":
        key = 0x7F
    elif len(text) == 1 and ord(text) < 0x80:
        key = ord(text)
    if key is None:
        # (A key past ASCII is more than one byte in UTF-8, or, as Latin-1, a byte telnet escapes: 0xff is IAC.)
        raise ConfigError(f"escape={quote(text)} in {quote(original)}: expected ^X (a control key), ^? (DEL), one "
                          "ASCII character, or off")
    why = _NOT_ESCAPE_KEYS.get(key)
    character = chr(key)
    if character.isalnum() or character == " ":
        # (escape=5: every 5 typed opened the menu and the key after it was taken as a command.)
        what = "a digit" if character.isdigit() else "a letter" if character.isalpha() else "a space"
        why = (f"it is {what}, typed all the time: each would start an escape command in the middle of normal typing; "
               "punctuation such as ~ or ` is allowed")
    if character in _COMMAND_KEYS:
        # (escape=t: t t sent a t, and nobody could take write.)
        why = f"it is the escape menu's command {chr(key)} ({_COMMAND_KEYS[chr(key)]}), which could not be given"
    if why is not None:
        raise ConfigError(f"escape={quote(text)} in {quote(original)}: it cannot be the escape key: {why} (^] is usual)")
    return key
