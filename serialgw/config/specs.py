"""
Value objects for a gateway's configuration: frozen, checked when made
(a L{ConfigError} quotes the bad value), with the limits and defaults they
use: a line's (L{LineConfig}), its device's and its serial settings.  What a
listener is, is L{serialgw.config.listenerspecs}'; who may use a line and
the people who log in, L{serialgw.config.people}'; a console log's
settings, L{serialgw.config.logspec}'s.  The parsers that make them from
text are L{serialgw.config.parsers} (single settings and devices),
L{serialgw.config.listeners} (listener strings) and L{serialgw.config.file}
(the TOML file).  Nothing here does I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import attrs

from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.people import Rights

if TYPE_CHECKING:
    from serialgw.config.logspec import LogSpec


class ConfigError(ValueError):
    """
    A setting could not be understood; the message quotes the bad value.
    """


# The most characters of a value a message shows; past it the value is cut and its length said.  A
# file's 15 MiB key, listener or serial was quoted whole: its one error line 15-30 MiB on stderr and in
# the log (and so on every reload of it).
SHOWN = 256


def quote(value: object) -> str:
    """
    A value for a message, as the user typed it: text in single quotes
    with only what cannot be shown escaped (C{'\\q'} is a backslash and
    a q; repr doubled the backslash, as if two were typed); a number, list
    or table from the file as Python writes it.  Past L{SHOWN} characters
    its first ones, and its length: C{'kkk...'... (15728640 characters)}.
    """
    if not isinstance(value, str):
        text = repr(value)
        return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"
    shown = value[:SHOWN]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return f"'{shown}'" if len(value) <= SHOWN else f"'{shown}'... ({len(value)} characters)"


def isAbstract(path: str | bytes) -> bool:
    """A unix socket name in Linux's abstract namespace (no file)."""
    return path[:1] in ("\0", b"\0")


def describeUnix(path: str | bytes) -> str:
    """A unix socket name for messages: an abstract one as C{@NAME}, as ss(8) and systemd show it."""
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    return "@" + path[1:].replace("\0", "@") if isAbstract(path) else path


def unixNameLimit(path: str | bytes) -> int:
    """
    The most bytes C{path} may take to name a unix socket: sun_path holds
    108, a file's path with its NUL (107), an abstract name without (108).
    """
    return 108 if isAbstract(path) else 107


# The parities and stop bits there are, as written: config knows no driver
# (serialgw.devices translates them for pyserial and termios).
PARITIES = {letter: letter for letter in "NEOMS"}
STOPBITS: dict[str, float] = {"1": 1, "1.5": 1.5, "2": 2}
BYTESIZES = (5, 6, 7, 8)


@attrs.frozen
class SerialSettings:
    """
    How a serial line is framed and paced.

    @ivar parity: one of C{N E O M S} (pyserial's letters).
    @ivar stopbits: 1, 1.5 or 2.
    """

    baudrate: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    xonxoff: bool = False
    rtscts: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.baudrate, int) or not 0 < self.baudrate <= MAX_BAUD:
            raise ConfigError(f"baud rate must be 1 to {MAX_BAUD}, not {quote(self.baudrate)}")
        if self.bytesize not in BYTESIZES:
            raise ConfigError(f"byte size must be 5, 6, 7 or 8, not {quote(self.bytesize)}")
        if self.parity not in PARITIES:
            raise ConfigError(f"parity must be one of N, E, O, M, S, not {quote(self.parity)}")
        if self.stopbits not in (1, 1.5, 2):
            raise ConfigError(f"stop bits must be 1, 1.5 or 2, not {quote(self.stopbits)}")

    def describe(self) -> str:
        """
        The compact form that L{parseCompact} reads, e.g. C{115200,8N1}.
        """
        stop = "1.5" if self.stopbits == 1.5 else str(int(self.stopbits))
        text = f"{self.baudrate},{self.bytesize}{self.parity}{stop}"
        if self.rtscts:
            text += ",rtscts"
        if self.xonxoff:
            text += ",xonxoff"
        return text


# The highest speed termios takes (pyserial passes a custom speed as a
# signed 32-bit int); RFC 2217's four bytes and a typed number go higher.
MAX_BAUD = 2**31 - 1


REMOTE_DEVICES = ("telnet", "tcp", "unix", "rfc2217")
# The remote devices that carry no serial settings, DTR or RTS (an rfc2217:// one does): what each is, for people.
NO_SETTINGS = {"tcp": "raw socket", "unix": "raw socket", "telnet": "telnet console"}


@attrs.frozen
class DeviceSpec:
    """
    Where a line's bytes come from.

    @ivar kind: C{"tty"} (a serial device path), C{"pty"} (a pseudo-terminal
        the gateway creates; C{path} is then the symlink to make, or empty),
        or a console elsewhere: C{"telnet"}, C{"tcp"} (raw), C{"rfc2217"}
        (C{host}, C{port}), C{"unix"} (raw, C{path}).
    """

    kind: str
    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def remote(self) -> bool:
        return self.kind in REMOTE_DEVICES

    @property
    def withoutSettings(self) -> str:
        """What a remote device that carries no serial settings is (C{'raw socket'}, C{'telnet console'}); else empty."""
        return NO_SETTINGS.get(self.kind, "")

    def describe(self) -> str:
        if self.kind == "pty":
            return f"pty:{self.path}"
        # An IPv6 address in brackets (which colon ends it; pyserial's URL form).
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.kind == "rfc2217":
            return f"rfc2217://{host}:{self.port}"
        if self.kind in ("telnet", "tcp"):
            return f"{self.kind}:{host}:{self.port}"
        if self.kind == "unix":
            return f"unix:{describeUnix(self.path)}"
        return self.path


# Where UUCP lock files go (FHS; Debian links it to /run/lock).
DEFAULT_LOCK_DIR = "/var/lock"

# Device output a line keeps for replay: about 200 lines of console; at most 64 MiB.
DEFAULT_BACKLOG = 16 * 1024
MAX_BACKLOG = 64 * 1024 * 1024
# Network clients a line takes at most (0: no limit): every client costs
# memory (its output bound), so there is always a cap unless one says none.
DEFAULT_MAX_CLIENTS = 64
# The most max-clients takes (0, no limit, aside): each client is a socket
# and up to its outbuf of memory; a line for more people than this is a
# mistake (2**63 was taken).
MAX_CLIENTS = 65536
# A line's break sequences unless it says (conserver's first three): l 1 a break, l 2 Sun's alternate break
# (Enter ~ ^B), l 3 '#.' (a service processor's escape, Sun's LOM).
DEFAULT_BREAK_SEQUENCES: tuple[tuple[str, tuple[bytes, ...]], ...] = (
    ("1", (b"", b"")), ("2", (b"\r~\x02",)), ("3", (b"#.",)))


@attrs.frozen
class LineConfig:
    """
    Everything about one serial line: its device and how clients reach it.
    """

    name: str
    device: DeviceSpec
    settings: SerialSettings = SerialSettings()
    listeners: tuple[ListenerSpec, ...] = ()
    breakDuration: float = 0.25
    restoreSettings: bool = True
    signature: Optional[str] = None
    notices: bool = True
    # Sessions: "shared" (everyone writes) or "exclusive" (one writer, the
    # first to attach; the others watch until they take over).
    mode: str = "shared"
    maxClients: int = DEFAULT_MAX_CLIENTS
    # Device output kept for replay (bytes; 0: none).
    backlog: int = DEFAULT_BACKLOG
    log: Optional[LogSpec] = None
    # Coalescing of device output (off by default): wait coalesceMin seconds
    # after the last byte, at most coalesceMax after the first, or until
    # coalesceOn (e.g. b"\n") arrives.
    coalesceMin: float = 0.0
    coalesceMax: float = 0.0
    coalesceOn: bytes = b""
    # Who may write and who may read, by user name (SSH keys, TLS CNs).
    rights: Rights = Rights()
    # ser2net's openstr/closestr: written to the device when the first
    # person attaches and the last one leaves; the data between breaks
    # (see parseSendString).
    openString: tuple[bytes, ...] = ()
    closeString: tuple[bytes, ...] = ()
    # DTR and RTS while people are attached, and while nobody is (idle;
    # None: as while attached).  None: left as the device has them.
    dtr: Optional[bool] = None
    rts: Optional[bool] = None
    idleDtr: Optional[bool] = None
    idleRts: Optional[bool] = None
    # Pacing for slow devices (seconds; 0: off): at least pace between
    # bytes written to the device, at least paceLine after each CR.
    pace: float = 0.0
    paceLine: float = 0.0
    # UUCP lock files for a local tty (LCK..NAME in lockDir); ptys the
    # gateway makes and remote devices take none.
    lock: bool = True
    lockDir: str = DEFAULT_LOCK_DIR
    # A banner of the line's own (serialgw.config.banner: escapes made
    # characters, placeholders kept); None: the listener option banner's text.
    banner: Optional[str] = None
    # ser2net's kickolduser: a full line (maxClients) makes room for a
    # newcomer, its oldest person told why and disconnected.
    kickOldUser: bool = False
    # Open the device only while a client wants it (conserver's ondemand,
    # ser2net's way): a local tty only (see opensOnDemand).
    onDemand: bool = False
    # Seconds an on-demand device stays open after the last client that wanted it left (0: closed at once).
    onDemandLinger: float = 0.0
    # conserver's idletimeout and idlestring: after idleTimeout seconds with
    # nothing read from the device nor written to it (0: never), idleString
    # is written to it (the data between breaks, as openString).
    idleTimeout: float = 0.0
    idleString: tuple[bytes, ...] = (b"\n",)
    # conserver's initcmd: a command run by /bin/sh -ec each time the device comes up, its standard input
    # and output the device's ("": none), killed after initTimeout seconds (serialgw.line.initcommand).
    initCommand: str = ""
    initTimeout: float = 60.0
    # conserver's initspinmax and initspintimer: at most initSpinMost runs start within initSpinWindow seconds; one
    # due past that waits (serialgw.line.initcommand's SPIN_MOST and SPIN_WINDOW, the defaults).
    initSpinMost: int = 5
    initSpinWindow: float = 10.0
    # conserver's break sequences (its break N, breaklist): by the key after the escape menu's l, each the data
    # before its break and, with one, the data after it (serialgw.config.breakseqs).
    breakSequences: tuple[tuple[str, tuple[bytes, ...]], ...] = DEFAULT_BREAK_SEQUENCES
    # ser2net's closeon: the people on the line are disconnected when the device sends this (b"": never).
    closeOn: bytes = b""
    # conserver's aliases: other names the line is reached under (a [by-name] prompt, an SSH user name); never
    # another line's name or alias (serialgw.config.linetable checks the whole file).
    aliases: tuple[str, ...] = ()

    @property
    def opensOnDemand(self) -> bool:
        """Whether the line's device is opened on demand: asked, and a local tty (others are always open)."""
        return self.onDemand and self.device.kind == "tty"
