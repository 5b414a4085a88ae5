"""
Reading listener strings: Twisted endpoint strings, QEMU's C{-serial}
chardev strings, and our few additions; each becomes a L{ListenerSpec}.

How a string is read, in order:

  1. C{PROTOCOL[,FLAG...]+REST}: C{raw+}, C{telnet+}, C{telnet,no-rfc2217+}
     choose the protocol; the rest is read as below.
  2. A bare number C{N}: TCP port N on all interfaces (as QEMU and remserial).
  3. By the word before the first colon:
       - C{telnet udp mon file pipe stdio pty}: QEMU chardevs (see
         L{serialgw.config.qemuchardevs}; C{mon:} here);
       - C{tls}: TLS, ours (see L{serialgw.config.tlslisteners});
       - C{tcp} and C{unix}: QEMU's when an option follows a comma
         (C{tcp::4444,server}, C{unix:/x,server,nowait}) or when C{tcp:}
         has no keyword, no port first and Twisted cannot read it
         (C{tcp::4444}, C{tcp:host:4444}); C{tcp:N:M} with two numbers
         reads both ways and is refused; otherwise Twisted's, keyword and
         positional forms alike (C{tcp:4444:interface=127.0.0.1},
         C{tcp:port=4444}, C{unix:/x}, C{unix:address=/x:mode=660});
       - C{ssl}: refused (it makes a client before the TLS handshake);
       - anything else: a Twisted server endpoint string (C{systemd:}, ...).

C{tcp:}, C{tcp6:} and C{unix:} strings are read by Twisted's own parser
(L{twisted.internet.endpoints.serverFromString}, with no reactor: an
endpoint does no I/O before C{listen()}; see
L{serialgw.config.endpointstrings}), so the spec's host, port and path
are what will be bound, and what Twisted refuses is refused here, naming
the listener. Other Twisted strings are checked by the service when it
builds their endpoints.

The options before the C{+} are read here too; the gateway's own
listeners (watch-all, status, SSH) are in L{serialgw.config.gatewaylisteners}.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional

import attrs

from serialgw.config.endpointstrings import isInteger, twistedReads, twistedServer
from serialgw.config.foreign import ser2netAccepter, ser2netConf
from serialgw.config.hostports import bindsAddress, isPort
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.optionsreach import checkOptionsReach
from serialgw.config.parsers import isDecimal, parseEscape, writtenNumber
from serialgw.config.qemuchardevs import qemuChardev
from serialgw.config.specs import ConfigError, quote
from serialgw.config.spelling import didYouMean
from serialgw.config.tlslisteners import tlsListener

QEMU_WORDS = ("telnet", "udp", "mon", "file", "pipe", "stdio", "pty")
# Clients without an escape menu: a local program's pty, an output file, netconsole datagrams.
NO_ESCAPE_MENU = (ListenerKind.PTY, ListenerKind.FILE, ListenerKind.UDP)


def parseListener(text: str) -> ListenerSpec:
    """
    Read one listener string; raise L{ConfigError} quoting it when it makes
    no sense, or reads two ways.
    """
    original = str(text)
    text = original.strip()
    protocol: Optional[Protocol] = None
    head, plus, rest = text.partition("+")
    options: dict[str, object] = {}
    if plus and head.split(",")[0].strip().lower() in PROTOCOL_NAMES:
        name, *flags = [f.strip() for f in head.split(",")]
        protocol = Protocol(name.lower())
        given: dict[str, tuple[str, Optional[str]]] = {}
        for flag in flags:
            key, eq, value = flag.partition("=")
            read = _listenerOption(key.lower(), value if eq else None, protocol, original)
            for field in read:
                if field in given:
                    # (The last was taken alone: allow=10.0.0.0/8,allow=0.0.0.0/0 let every address in.)
                    raise ConfigError(_twice(given[field], (key, value if eq else None), original))
                given[field] = (key, value if eq else None)
            options.update(read)
        text = rest.strip()
    elif plus and ":" not in head:
        names = ", ".join(p.value for p in Protocol)
        raise ConfigError(
            f"unknown listener protocol {quote(head.split(',')[0])} in {quote(original)} (known: {names})"
        )
    if not text:
        raise ConfigError(f"listener {quote(original)} names no endpoint")

    def done(spec: ListenerSpec) -> ListenerSpec:
        spec = attrs.evolve(spec, text=original, protocol=protocol or spec.protocol, **options)  # type: ignore[arg-type]
        if spec.kind in NO_ESCAPE_MENU and spec.escape is not None:
            raise ConfigError(f"listener {quote(original)}: a {spec.kind.value} client has no escape menu (mon: and "
                              "escape= work on tcp, telnet, unix, pipe: and stdio listeners)")
        checkOptionsReach(spec, options, original, text)
        if spec.kind is ListenerKind.CONNECT and not spec.path and not spec.port:
            raise ConfigError(f"listener {quote(original)} dials port 0: nothing listens there; give the peer's port")
        if spec.kind is ListenerKind.LISTEN and spec.host and not bindsAddress(spec.host):
            # (Bound as a name, it was looked up by the system's resolver at the start and each reload,
            # on the reactor's one thread: every line waited on DNS; --check said OK.)
            raise ConfigError(f"interface {quote(spec.host)} of listener {quote(original)} is not an IP address: a "
                              "listener binds an address (127.0.0.1, ::1, 0.0.0.0), not a host name; localhost is "
                              "taken")
        return spec

    if isDecimal(text):
        return done(twistedServer(f"tcp:{text}", original))
    if ser2netConf(text) is not None:
        # (Twisted's "Unknown endpoint type: '2000'", at start or --check only.)
        raise ConfigError(f"cannot read listener {quote(original)}: a ser2net.conf line: {ser2netConf(text)}")
    ours = _addressAndPort(text)
    if ours is not None:
        # (Twisted's "Unknown endpoint type: '127.0.0.1'", at start or --check only.)
        prefix = f"{head.strip()}+" if protocol is not None else ""
        raise ConfigError(f"cannot read listener {quote(original)}: an address and a port; serialgw writes it "
                          f"{quote(prefix + ours)}")
    word, colon, body = text.partition(":")
    word = word.lower()
    if word == "stdio" and not colon:
        return done(ListenerSpec("", Protocol.RAW, kind=ListenerKind.STDIO))
    if word == "pty" and not colon:
        return done(ListenerSpec("", Protocol.RAW, kind=ListenerKind.PTY))
    if not colon and ser2netAccepter(text) is not None:
        raise ConfigError(f"cannot read listener {quote(original)}: ser2net's accepter form; serialgw writes it "
                          f"{quote(ser2netAccepter(text))}")
    if not colon:
        raise ConfigError(
            f"cannot read listener {quote(original)}: expected a port number, an endpoint "
            "string such as tcp:4444:interface=127.0.0.1, or a QEMU chardev such as "
            "telnet::4444,server,nowait"
        )
    if word == "tls":
        return done(tlsListener(body, original))
    if word == "ssl":
        # Twisted's ssl: endpoint hands us the connection at TCP connect: a
        # silent one would take a place and the writer role (issue 13 item 4).
        raise ConfigError(
            f"listener {quote(original)}: ssl: attaches clients before their TLS handshake; use "
            "tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]"
        )
    if word == "mon":
        return done(_monitor(body, original))
    if word in QEMU_WORDS:
        return done(qemuChardev(word, body, original))
    if word == "tcp":
        hasOptions = "," in body
        first = body.split(":", 1)[0].split(",", 1)[0]
        fields = body.split(",", 1)[0].split(":")
        # (Two readings only when the first is a port: tcp:65536:2 is a bad port, as Twisted reads it.)
        if not hasOptions and len(fields) >= 2 and isPort(fields[0]) and isDecimal(fields[1]):
            raise ConfigError(
                f"listener {quote(original)} reads two ways: as a Twisted endpoint it listens on "
                f"port {fields[0]} of interface {quote(fields[1])}; as QEMU's tcp: it connects to "
                f"host {quote(fields[0])} port {fields[1]}. Write tcp:{fields[0]}:interface=ADDRESS "
                f"or tcp:HOST:{fields[1]},... to say which"
            )
        if hasOptions or not ("=" in body or isInteger(first) or twistedReads(text)):
            return done(qemuChardev("tcp", body, original))
    if word == "unix" and "," in body:
        return done(qemuChardev("unix", body, original))
    if word in ("tcp", "tcp6", "unix"):
        return done(twistedServer(text, original))
    return done(ListenerSpec(endpoint=text))


_ADDRESS_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]*\]|[0-9.]*|\*|localhost)[:,]([0-9]+)$", re.IGNORECASE)


def _addressAndPort(text: str) -> Optional[str]:
    """
    The listener that listens where C{ADDRESS:PORT} or C{ADDRESS,PORT} says
    (socat's and most servers' spelling, ser2net.conf's), as serialgw
    writes it; None for anything else.  The address is one (IPv4, IPv6 in
    brackets), localhost, or every address (empty, C{*}, 0.0.0.0, C{[::]}).
    """
    match = _ADDRESS_PORT.match(text)
    if match is None:
        return None
    host, port = match.group(1), str(int(match.group(2)))
    if host in ("", "*", "0.0.0.0"):
        return port
    if host.lower() == "localhost":
        return f"tcp:{port}:interface=127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if (address.version == 6) != host.startswith("["):
        return None
    if address.version == 4:
        return f"tcp:{port}:interface={address}"
    escaped = str(address).replace(":", "\\:")  # (Twisted's endpoint strings escape a colon)
    return f"tcp6:{port}" if address.is_unspecified else f"tcp6:{port}:interface={escaped}"


def _monitor(body: str, original: str) -> ListenerSpec:
    """C{mon:CHARDEV}, QEMU's monitor multiplexer: here, the escape menu on Ctrl-a."""
    if not body:
        raise ConfigError(f"mon: needs a chardev after it, not {quote(original)}")
    return attrs.evolve(parseListener(body), escape=0x01, qemuKeys=True)


PROTOCOL_NAMES = tuple(p.value for p in Protocol)
# Output one client may have queued (1 GiB), and the longest idle timeout (a year).
MAX_OUTBUF = 1 << 30
MAX_IDLE = 365 * 24 * 3600.0
POLICIES = ("drop", "disconnect", "block")
LISTENER_OPTIONS = (
    "no-rfc2217, ro, allow=CIDR;CIDR, outbuf=BYTES, policy=drop|disconnect|block, idle=SECONDS, keepalive, nodelay, "
    "escape=^X|off, banner, replay, notices, no-notices"
)

# Their names, for the one an unknown option is nearest ('readonly' is 'ro' too).
_OPTION_NAMES = [option.split("=")[0] for option in LISTENER_OPTIONS.split(", ")] + ["readonly"]
# Those that are a word alone.
_FLAGS = ("no-rfc2217", "ro", "readonly", "read-only", "keepalive", "nodelay", "banner", "replay", "notices", "no-notices")


def _twice(first: tuple[str, Optional[str]], second: tuple[str, Optional[str]], original: str) -> str:
    """Why a listener giving one option twice (C{first}, C{second}: each its key and value, None a word alone) is refused."""
    (key, value), (again, other) = first, second
    if value is None or other is None:
        return f"{quote(key)} and {quote(again)} in listener {quote(original)} set one thing twice: expected one"
    hint = (f" (several networks are one allow=, separated by ';': allow={value};{other})"
            if key.lower() == "allow" else "")
    return f"{key}= is given twice in listener {quote(original)} ({quote(value)} and {quote(other)}): expected one{hint}"


def _listenerOption(key: str, value: Optional[str], protocol: Protocol, original: str) -> dict[str, object]:
    """One C{PROTOCOL,OPTION+} flag, as ListenerSpec fields."""

    def need() -> str:
        if not value:
            raise ConfigError(f"listener option {quote(key)} needs a value in {quote(original)}")
        return value

    if key == "no-rfc2217" and value is None:
        if protocol is not Protocol.TELNET:
            raise ConfigError(f"listener option 'no-rfc2217' is for telnet, not {protocol.value}, in {quote(original)}")
        return {"rfc2217": False}
    if key in ("ro", "readonly", "read-only") and value is None:
        return {"readOnly": True}
    if key == "keepalive" and value is None:
        return {"keepalive": True}
    if key == "nodelay" and value is None:
        return {"nodelay": True}
    if key in ("banner", "replay") and value is None:
        return {key: True}
    if key in ("notices", "no-notices") and value is None:
        return {"notices": key == "notices"}
    if key == "escape":
        return {"escape": parseEscape(need(), original)}
    if key == "allow":
        networks = tuple(a for a in re.split(r"[;\s]+", need()) if a)
        if not networks:
            # An empty list is no restriction at all: allow=; let everyone in.
            raise ConfigError(f"allow={quote(value)} in listener {quote(original)} names no address or CIDR network")
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"allow={quote(network)} in listener {quote(original)} is not an address or CIDR network") from None
        return {"allow": networks}
    if key == "outbuf":
        if not isDecimal(need()) or not 1024 <= int(need()) <= MAX_OUTBUF:
            raise ConfigError(f"outbuf={quote(value)} in listener {quote(original)}: expected 1024 to {MAX_OUTBUF} bytes")
        return {"outbuf": int(need())}
    if key == "policy":
        if need().lower() not in POLICIES:
            raise ConfigError(f"policy={quote(value)} in listener {quote(original)}: expected one of {', '.join(POLICIES)}")
        return {"policy": need().lower()}
    if key == "idle":
        try:
            seconds = writtenNumber(need())
        except ValueError:
            seconds = -1
        if not 0 < seconds <= MAX_IDLE:  # nan and inf too: a timer at nan breaks the reactor's order
            raise ConfigError(f"idle={quote(value)} in listener {quote(original)}: expected 0 < seconds <= {MAX_IDLE}")
        return {"idle": seconds}
    if key in _FLAGS:
        # (banner=TEXT: the text is the line's banner = key, or --banner.)
        raise ConfigError(f"listener option {quote(key)} takes no value, not {quote(key + '=' + (value or ''))}, "
                          f"in {quote(original)}" + (": the text is the line's banner = ... (--banner)" if key == "banner" else ""))
    raise ConfigError(f"unknown listener option {quote(key)} in {quote(original)}{didYouMean(key, _OPTION_NAMES)} "
                      f"(known: {LISTENER_OPTIONS})")


