"""
What a listener is, as a frozen value: what it speaks (L{Protocol}), how it
reaches its clients (L{ListenerKind}), its TLS and netconsole parts, its
per-listener options (L{ListenerSpec}); and the gateway's own views over
many lines (L{WatchAllSpec}, L{ByNameSpec}).  The listener strings are read
into them by L{serialgw.config.listeners}.  Nothing here does I/O.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional

import attrs


class Protocol(Enum):
    """
    What a listener speaks on its connections.
    """

    TELNET = "telnet"
    RAW = "raw"


class ListenerKind(Enum):
    """
    How a listener reaches its clients.

      - C{LISTEN}: a server endpoint; each connection is a client;
      - C{CONNECT}: the gateway dials out and reconnects (one client);
      - C{UDP}: datagrams to and from fixed addresses (netconsole);
      - C{FILE}: device output appended to a file;
      - C{PIPE}: QEMU's FIFO pair C{PATH.in} / C{PATH.out};
      - C{STDIO}: the gateway's own terminal;
      - C{PTY}: a pseudo-terminal for a local program (QEMU's C{pty},
        remserial C{-l}); its termios changes become settings requests.
    """

    LISTEN = "listen"
    CONNECT = "connect"
    UDP = "udp"
    FILE = "file"
    PIPE = "pipe"
    STDIO = "stdio"
    PTY = "pty"


@attrs.frozen
class UDPSpec:
    """
    QEMU's C{udp:[rhost]:rport[@[srcip]:srcport]}: output goes to
    rhost:rport from srcip:srcport; datagrams to srcport from an address in
    C{allow} go to the device.
    """

    remoteHost: str
    remotePort: int
    sourceHost: str = ""
    sourcePort: int = 0
    allow: tuple[str, ...] = ()


@attrs.frozen
class TLSSpec:
    """
    TLS for a listener (server: C{cert}/C{key}, optionally client
    certificates from C{ca} whose subject CN is one of C{subjects}) or a
    dial-out (client: C{ca} to verify the server as C{hostname}).
    """

    cert: str = ""
    key: str = ""
    ca: str = ""
    subjects: tuple[str, ...] = ()
    hostname: str = ""
    readOnlySubjects: tuple[str, ...] = ()
    # Seconds a connection may take to finish its handshake (0: no limit);
    # it is not a client of the line until it has.
    handshakeTimeout: float = 10.0
    # The files as they were when the configuration was read (device,
    # inode, size, mtime of cert, key, ca: config.paths.stampTLS): rewritten
    # in place, they make it another listener at a reload, opened with them.
    stamp: tuple[Any, ...] = ()

    @property
    def caStamp(self) -> Any:
        """The CA file as it was read (see C{stamp}), or None."""
        return self.stamp[2] if self.stamp else None


@attrs.frozen
class ListenerSpec:
    """
    One way clients reach a line, and the protocol spoken on it.

    @ivar endpoint: for C{LISTEN}, a Twisted server endpoint string (C{tcp:4444});
        for C{CONNECT}, a Twisted client endpoint string; for C{FILE} and
        C{PIPE}, the path.
    @ivar text: what the user wrote, for messages.
    @ivar wait: QEMU's C{server} without C{nowait}: do not read the device
        until the first client is there.
    """

    endpoint: str
    protocol: Protocol = Protocol.TELNET
    text: str = ""
    rfc2217: bool = True
    kind: ListenerKind = ListenerKind.LISTEN
    wait: bool = False
    udp: Optional[UDPSpec] = None
    tls: Optional[TLSSpec] = None
    host: str = ""
    port: int = 0
    path: str = ""
    # TCP_NODELAY on clients' sockets (QEMU's nodelay): off by default, so
    # bulk output leaves in full segments (measured: 93 against 71 MiB/s).
    nodelay: bool = False
    # Hardening, per listener: clients may only read; source addresses
    # allowed (CIDR; empty: any); what a client may have queued towards it,
    # and what happens past that; idle timeout; TCP keepalive.
    readOnly: bool = False
    allow: tuple[str, ...] = ()
    outbuf: int = 256 * 1024
    policy: str = "drop"
    idle: float = 0.0
    keepalive: bool = False
    # People at terminals: the escape key (None: no menu), a banner and a
    # replay of the backlog on connect, notices in the data stream
    # (None: for telnet clients that did not negotiate RFC 2217).
    escape: Optional[int] = None  # the key (escape=); None: no menu (escape=off, the default)
    banner: bool = False
    replay: bool = False
    notices: Optional[bool] = None
    # QEMU's mon: form: the escape keys QEMU has mean what they mean there
    # (h help, x disconnect, b break, the key twice sends it).
    qemuKeys: bool = False


@attrs.frozen
class WatchAllSpec:
    """
    One view of all consoles: listeners whose read-only clients get every
    line's output (of the lines whose names match one of C{lines}, shell
    patterns), each output line prefixed with the line's name.
    """

    listeners: tuple[ListenerSpec, ...]
    lines: tuple[str, ...] = ("*",)


@attrs.frozen
class ByNameSpec:
    """
    One port for many consoles: listeners whose clients name the line they
    want at a prompt (of the lines whose names match one of C{lines}).
    """

    listeners: tuple[ListenerSpec, ...]
    lines: tuple[str, ...] = ("*",)
