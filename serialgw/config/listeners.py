"""
Reading listener strings: Twisted endpoint strings, QEMU's C{-serial}
chardev strings, and our few additions; each becomes a L{ListenerSpec}.

How a string is read, in order:

  1. C{PROTOCOL[,FLAG...]+REST}: C{raw+}, C{telnet+}, C{telnet,no-rfc2217+}
     choose the protocol; the rest is read as below.
  2. A bare number C{N}: TCP port N on all interfaces (as QEMU and remserial).
  3. By the word before the first colon:
       - C{telnet udp mon file pipe stdio}: QEMU chardevs;
       - C{tls}: TLS, ours (see L{_tls});
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
(L{serverFromString}, with no reactor: an endpoint does no I/O before
C{listen()}), so the spec's host, port and path are what will be bound,
and what Twisted refuses is refused here, naming the listener. Other
Twisted strings are checked by the service when it builds their endpoints.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional, cast

import attrs
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.endpoints import _parse as endpointFields

from serialgw.config.foreign import ser2netAccepter, ser2netConf
from serialgw.config.parsers import checkOptionsReach, checkPath, isDecimal, parseEscape
from serialgw.config.specs import (
    ConfigError,
    ListenerKind,
    ListenerSpec,
    Protocol,
    TLSSpec,
    UDPSpec,
    WatchAllSpec,
    isAbstract,
    quote,
)

QEMU_WORDS = ("telnet", "udp", "mon", "file", "pipe", "stdio", "pty")
# Clients without an escape menu: a local program's pty, an output file, netconsole datagrams.
NO_ESCAPE_MENU = (ListenerKind.PTY, ListenerKind.FILE, ListenerKind.UDP)
QEMU_TCP_OPTIONS = ("server", "wait", "nowait", "nodelay", "ipv4", "ipv6", "reconnect", "telnet", "to")


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
        for flag in flags:
            key, eq, value = flag.partition("=")
            options.update(_listenerOption(key.lower(), value if eq else None, protocol, original))
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
        return spec

    if isDecimal(text):
        return done(_twistedServer(f"tcp:{text}", original))
    if ser2netConf(text) is not None:
        # (Twisted's "Unknown endpoint type: '2000'", at start or --check only.)
        raise ConfigError(f"cannot read listener {quote(original)}: a ser2net.conf line: {ser2netConf(text)}")
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
        return done(_tls(body, original))
    if word == "ssl":
        # Twisted's ssl: endpoint hands us the connection at TCP connect: a
        # silent one would take a place and the writer role (issue 13 item 4).
        raise ConfigError(
            f"listener {quote(original)}: ssl: attaches clients before their TLS handshake; use "
            "tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]"
        )
    if word in QEMU_WORDS:
        return done(_qemu(word, body, original))
    if word == "tcp":
        hasOptions = "," in body
        first = body.split(":", 1)[0].split(",", 1)[0]
        fields = body.split(",", 1)[0].split(":")
        # (Two readings only when the first is a port: tcp:65536:2 is a bad port, as Twisted reads it.)
        if not hasOptions and len(fields) >= 2 and _isPort(fields[0]) and isDecimal(fields[1]):
            raise ConfigError(
                f"listener {quote(original)} reads two ways: as a Twisted endpoint it listens on "
                f"port {fields[0]} of interface {quote(fields[1])}; as QEMU's tcp: it connects to "
                f"host {quote(fields[0])} port {fields[1]}. Write tcp:{fields[0]}:interface=ADDRESS "
                f"or tcp:HOST:{fields[1]},... to say which"
            )
        if hasOptions or not ("=" in body or _isInteger(first) or _reads(text)):
            return done(_qemu("tcp", body, original))
    if word == "unix" and "," in body:
        return done(_qemu("unix", body, original))
    if word in ("tcp", "tcp6", "unix"):
        return done(_twistedServer(text, original))
    return done(ListenerSpec(endpoint=text))


PROTOCOL_NAMES = tuple(p.value for p in Protocol)
# Output one client may have queued (1 GiB), and the longest idle timeout (a year).
MAX_OUTBUF = 1 << 30
MAX_IDLE = 365 * 24 * 3600.0
POLICIES = ("drop", "disconnect", "block")
LISTENER_OPTIONS = (
    "no-rfc2217, ro, allow=CIDR;CIDR, outbuf=BYTES, policy=drop|disconnect|block, idle=SECONDS, keepalive, nodelay, "
    "escape=^X|off, banner, replay, notices, no-notices"
)


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
            seconds = float(need()) if need().isascii() else -1  # (float() reads '١٢' as 12)
        except ValueError:
            seconds = -1
        if not 0 < seconds <= MAX_IDLE:  # nan and inf too: a timer at nan breaks the reactor's order
            raise ConfigError(f"idle={quote(value)} in listener {quote(original)}: expected 0 < seconds <= {MAX_IDLE}")
        return {"idle": seconds}
    raise ConfigError(f"unknown listener option {quote(key)} in {quote(original)} (known: {LISTENER_OPTIONS})")


def _isInteger(text: str) -> bool:
    """What Twisted takes for a port number (int(): C{+1}, C{ 1}, C{1_000} too)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


def _address(text: str) -> Any:
    """The IP address C{text} names (localhost: 127.0.0.1, as a remote host name resolves), or None."""
    try:
        return ipaddress.ip_address("127.0.0.1" if text == "localhost" else text)
    except ValueError:
        return None


def _isAddress(text: str) -> bool:
    return text != "localhost" and _address(text) is not None


def _sendsToItself(remoteHost: str, sourceHost: str) -> bool:
    """Whether datagrams to C{remoteHost} reach a socket on C{sourceHost} (one port): the same address, or loopback from the wildcard (empty, 0.0.0.0, ::)."""
    remote, source = _address(remoteHost), _address(sourceHost)
    wildcard = not sourceHost or (source is not None and source.is_unspecified)
    return remoteHost == sourceHost or remote is not None and (remote == source or wildcard and remote.is_loopback)


def _isPort(text: str) -> bool:
    return isDecimal(text) and int(text) <= 65535


def _port(text: str, original: str) -> int:
    if not isDecimal(text) or not 0 <= int(text) <= 65535:
        raise ConfigError(f"bad port {quote(text)} in listener {quote(original)}")
    return int(text)


def _hostPort(text: str, original: str) -> tuple[str, int]:
    """C{host:port}, C{:port}, C{[v6]:port}."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(f"cannot read address {quote(text)} in listener {quote(original)}")
        return host, _port(rest[1:], original)
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ConfigError(f"expected HOST:PORT, not {quote(text)}, in listener {quote(original)}")
    if ":" in host:
        raise ConfigError(f"an IPv6 address goes in brackets ([{host}]) in listener {quote(original)}")
    return host, _port(port, original)


# Endpoints keep their reactor and touch it only in listen(): parsing with
# this one does no I/O, and a listen() by mistake fails loudly.
_NO_REACTOR = object()


def _twistedServer(text: str, original: str) -> ListenerSpec:
    """
    A C{tcp:}, C{tcp6:} or C{unix:} server endpoint string, read by
    Twisted's own parser (L{serverFromString}, as the service will read it:
    positional and keyword arguments, backslash escapes, defaults), so the
    spec's host, port and path are what the endpoint will bind.

    A unix socket is 0600 and an abstract name gets no lock file (there is
    no file beside which Twisted could make it: the NUL byte fails) unless
    the string says otherwise.
    """
    endpoint = _serverEndpoint(text, original)
    if not 0 <= endpoint._backlog <= 65535:  # (past an int, listen() failed at start where --check said OK)
        raise ConfigError(f"backlog={endpoint._backlog} in listener {quote(original)}: expected 0 to 65535 (the "
                          "kernel takes at most net.core.somaxconn)")
    if isinstance(endpoint, UNIXServerEndpoint):
        path = checkPath(endpoint._address, "unix socket", unix=True)
        if not path:
            raise ConfigError(f"unix: needs a path in listener {quote(original)}")
        if not _given(text, "mode", "_mode"):
            text += ":mode=600"
        if isAbstract(path) and not _given(text, "lockfile", "_wantPID"):
            text += ":lockfile=0"
        return ListenerSpec(endpoint=text, path=path)
    assert isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint))
    if not 0 <= endpoint._port <= 65535:
        raise ConfigError(f"bad port {quote(str(endpoint._port))} in listener {quote(original)}")
    return ListenerSpec(endpoint=text, host=endpoint._interface, port=endpoint._port)


def _given(text: str, keyword: str, attribute: str) -> bool:
    """
    Whether a Twisted endpoint string (one Twisted reads) gives C{keyword}:
    Twisted takes the last of a keyword given twice, so two values put first
    make no difference exactly when the string gives its own; one given as
    a positional field makes a second one an error.
    """
    word, _, body = text.partition(":")
    try:
        zero, one = (getattr(serverFromString(cast(Any, _NO_REACTOR), f"{word}:{keyword}={value}:{body}"), attribute)
                     for value in (0, 1))
    except TypeError:
        return True
    return bool(zero == one)


def _reads(text: str) -> bool:
    """Whether Twisted reads a server endpoint string."""
    try:
        serverFromString(cast(Any, _NO_REACTOR), text)
    except Exception:
        return False
    return True


def _serverEndpoint(text: str, original: str) -> Any:
    try:
        return serverFromString(cast(Any, _NO_REACTOR), text)
    except Exception as e:
        read = f" ({quote(text)})" if text != original else ""
        hint = "; a colon inside a value (an IPv6 address) is written \\: ('interface=\\:\\:1' in a shell)" if "::" in text else ""
        raise ConfigError(f"cannot read listener {quote(original)} as a Twisted endpoint string{read}: {e}{hint}") from None


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _options(parts: list[str], allowed: tuple[str, ...], original: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key not in allowed:
            raise ConfigError(f"unknown option {quote(key)} in listener {quote(original)} (known: {', '.join(allowed)})")
        options[key] = value.strip().lower() if eq else "on"
    return options


def _flag(options: dict[str, str], name: str, default: bool, original: str) -> bool:
    if name not in options:
        return default
    value = options[name]
    if value in ("on", "yes", "true", "1"):
        return True
    if value in ("off", "no", "false", "0"):
        return False
    raise ConfigError(f"option {name}={quote(value)} in listener {quote(original)}: expected on or off")


def _qemu(word: str, body: str, original: str) -> ListenerSpec:
    if word == "mon":
        # QEMU's monitor multiplexer: here, the escape menu on Ctrl-a.
        if not body:
            raise ConfigError(f"mon: needs a chardev after it, not {quote(original)}")
        return attrs.evolve(parseListener(body), escape=0x01, qemuKeys=True)
    if word == "pty":
        return ListenerSpec(body, Protocol.RAW, kind=ListenerKind.PTY, path=checkPath(body, "pty: link"))
    if word in ("file", "pipe"):
        if not body or "," in body:
            raise ConfigError(f"{word}: takes a path and no options, not {quote(original)}")
        checkPath(body, f"{word}:")
        kind = ListenerKind.FILE if word == "file" else ListenerKind.PIPE
        return ListenerSpec(body, Protocol.RAW, kind=kind, path=body)
    if word == "stdio":
        raise ConfigError(f"stdio takes no arguments, not {quote(original)}")
    if word == "udp":
        return _udp(body, original)
    address, *parts = body.split(",")
    if word == "unix":
        options = _options(parts, ("server", "wait", "nowait", "reconnect"), original)
        if not address:
            raise ConfigError(f"unix: needs a path in listener {quote(original)}")
        checkPath(address, "unix socket", unix=True)
        server = _flag(options, "server", False, original)
        wait = _flag(options, "wait", "nowait" not in options, original) and server
        if server:
            return attrs.evolve(_twistedServer(f"unix:{_escape(address)}", original), protocol=Protocol.RAW, wait=wait)
        return ListenerSpec(f"unix:{address}", Protocol.RAW, kind=ListenerKind.CONNECT, path=address)
    # tcp: and telnet:
    options = _options(parts, QEMU_TCP_OPTIONS, original)
    host, port = _hostPort(address, original)
    protocol = Protocol.TELNET if word == "telnet" or _flag(options, "telnet", False, original) else Protocol.RAW
    server = _flag(options, "server", False, original)
    wait = _flag(options, "wait", "nowait" not in options, original) and server
    nodelay = _flag(options, "nodelay", False, original)
    if server:
        if ":" in host:
            endpoint = f"tcp6:{port}:interface={_escape(host)}"
        elif host:
            endpoint = f"tcp:{port}:interface={_escape(host)}"
        else:
            endpoint = f"tcp:{port}"
        return ListenerSpec(endpoint, protocol, wait=wait, host=host, port=port, nodelay=nodelay)
    if not host:
        host = "localhost"
    return ListenerSpec(f"tcp:{host}:{port}", protocol, kind=ListenerKind.CONNECT, host=host, port=port, nodelay=nodelay)


def _udp(body: str, original: str) -> ListenerSpec:
    address, *parts = body.split(",")
    options = _options(parts, ("allow",), original)
    remote, at, source = address.partition("@")
    remoteHost, remotePort = _hostPort(remote, original)
    sourceHost, sourcePort = ("", 0)
    if at:
        if isDecimal(source):
            sourcePort = _port(source, original)
        else:
            sourceHost, sourcePort = _hostPort(source, original)
    if sourceHost and not _isAddress(sourceHost):
        raise ConfigError(f"source address {quote(sourceHost)} in listener {quote(original)} is a name: the netconsole's "
                          "port is bound to an address: give one (127.0.0.1, ::1), or none (@PORT) for every interface")
    if not remoteHost:
        remoteHost = "127.0.0.1"
    allow: tuple[str, ...]
    if "allow" in options:
        allow = tuple(a for a in re.split(r"[;\s]+", options["allow"]) if a)
    elif remoteHost in ("127.0.0.1", "localhost"):
        allow = ("127.0.0.0/8", "::1")
    else:
        allow = (remoteHost,)
        if not _isAddress(remoteHost):
            # Not allow='...' the user never wrote.
            raise ConfigError(f"remote host {quote(remoteHost)} in listener {quote(original)} is a name: writes are taken from "
                              "the remote host's address: give an address, or who may write with ,allow=CIDR")
    for network in allow:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"allow={quote(network)} in listener {quote(original)} is not an address or CIDR network") from None
    # One socket sends to the remote: of the source's family (a name is resolved to IPv4).
    if _isAddress(sourceHost) and (":" in sourceHost) != (":" in remoteHost and _isAddress(remoteHost)):
        raise ConfigError(f"remote host {quote(remoteHost)} and source address {quote(sourceHost)} in listener "
                          f"{quote(original)} are not of one family (IPv4, IPv6): no datagram could be sent")
    if not remotePort:
        raise ConfigError(f"listener {quote(original)}: the remote's port cannot be 0 (nothing can be sent there)")
    if remotePort == sourcePort and _sendsToItself(remoteHost, sourceHost):
        # Each datagram came back as typing: a device that echoes looped for ever.
        raise ConfigError(f"listener {quote(original)} sends to its own port {sourcePort}: give the remote's port, then @ and this one's")
    spec = UDPSpec(remoteHost, remotePort, sourceHost, sourcePort, allow)
    return ListenerSpec(f"udp:{remoteHost}:{remotePort}", Protocol.RAW, kind=ListenerKind.UDP, udp=spec)


def _tls(body: str, original: str) -> ListenerSpec:
    """
    C{tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]}
    listens (C{handshake=SECONDS}: how long a handshake may take, default 10); C{tls:HOST:PORT:ca=FILE[:cert=FILE:key=FILE]} dials out and
    verifies the server as HOST. The port may be written C{port=PORT}; a
    backslash escapes the next character (C{cert=/etc/a\\:b.pem}), as in
    Twisted's strings.
    """
    # Twisted's tokenizer, as for its own endpoint strings (private, there since Twisted 10): positional and
    # keyword fields, backslash escapes; a first host in brackets ([::1], as QEMU's forms) is one field.
    positional, named = endpointFields("tls:" + re.sub(r"^\[[^\]\\]*\]", lambda m: m[0].replace(":", "\\:"), body))
    positional = positional[1:]
    if "port" in named:
        # tls:port=N listens; tls:HOST:port=N dials out.
        if len(positional) > 1 or positional and isDecimal(positional[0]):
            raise ConfigError(f"listener {quote(original)} gives the port twice")
        positional.append(named.pop("port"))
    for key in named:
        if key not in ("interface", "cert", "key", "ca", "subjects", "readonly", "handshake"):
            raise ConfigError(f"unknown option {quote(key)} in listener {quote(original)} "
                              "(known: port, interface, cert, key, ca, subjects, readonly, handshake)")
    handshake = 10.0
    if "handshake" in named:
        try:
            handshake = float(named["handshake"])
        except ValueError:
            handshake = -1.0
        if not 0 <= handshake <= 3600:
            raise ConfigError(f"handshake={quote(named['handshake'])} in listener {quote(original)}: "
                              "expected seconds, 0 (no limit) to 3600")
    for key in ("cert", "key", "ca"):
        if key in named:
            checkPath(named[key], f"{key}= in listener")
    subjects = tuple(s for s in named.get("subjects", "").split(";") if s)
    readOnly = tuple(s for s in named.get("readonly", "").split(";") if s)
    for key, names in (("subjects", subjects), ("readonly", readOnly)):
        if key in named and not names:
            # subjects=; would be no restriction: every certificate of the CA.
            raise ConfigError(f"{key}={quote(named[key])} in listener {quote(original)} names no certificate CN")
    if len(positional) == 1:
        port = _port(positional[0], original)
        if not named.get("cert") or not named.get("key"):
            raise ConfigError(f"a TLS listener needs cert= and key=: {quote(original)}")
        interface = named.get("interface", "")
        if (subjects or readOnly) and not named.get("ca"):
            raise ConfigError(f"subjects= and readonly= need ca= (client certificates) in listener {quote(original)}")
        tls = TLSSpec(cert=named["cert"], key=named["key"], ca=named.get("ca", ""), subjects=subjects,
                      readOnlySubjects=readOnly, handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{port}", Protocol.TELNET, tls=tls, host=interface, port=port)
    if len(positional) == 2:
        host, port = positional[0].strip("[]"), _port(positional[1], original)
        if not named.get("ca"):
            raise ConfigError(f"a TLS dial-out needs ca= to verify the server: {quote(original)}")
        if bool(named.get("cert")) != bool(named.get("key")):
            raise ConfigError(f"a TLS dial-out's client certificate needs cert= and key= both: {quote(original)}")
        tls = TLSSpec(cert=named.get("cert", ""), key=named.get("key", ""), ca=named["ca"], hostname=host,
                      handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{host}:{port}", Protocol.TELNET, kind=ListenerKind.CONNECT, tls=tls, host=host, port=port)
    raise ConfigError(f"cannot read TLS listener {quote(original)}: expected tls:PORT:cert=..:key=.. or tls:HOST:PORT:ca=..")


def parseWatchAll(texts: list[str], patterns: list[str]) -> WatchAllSpec:
    """
    The watch-all listeners (server endpoints, with the usual options:
    C{allow=}, C{outbuf=}, C{policy=}, C{idle=}, C{keepalive}) and the shell
    patterns of the lines they show (C{rack4-*}; none given: every line).
    """
    listeners = []
    for text in texts:
        spec = parseListener(text)
        if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
            raise ConfigError(f"watch-all listener {quote(text)}: expected a server endpoint such as "
                              "tcp:4400:interface=127.0.0.1 or unix:/run/serialgw/all.sock (no dial-out, "
                              "file, pipe, netconsole or TLS)")
        ignored = [name for name, given in (("escape=", spec.escape is not None), ("banner", spec.banner),
                                            ("replay", spec.replay), ("notices", spec.notices is True),
                                            ("no-notices", spec.notices is False), ("no-rfc2217", not spec.rfc2217))
                   if given]
        if ignored:
            raise ConfigError(f"watch-all listener {quote(text)}: {ignored[0]} does not apply there (a plain stream of "
                              "every line's output: no telnet, escape menu, banner, replay or notices)")
        listeners.append(spec)
    if not listeners:
        raise ConfigError("watch-all: no listener given")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"watch-all lines: expected shell patterns of line names, e.g. rack4-*, not {quote(pattern)}")
    return WatchAllSpec(tuple(listeners), tuple(patterns) or ("*",))


def parseStatusListener(text: str) -> ListenerSpec:
    """
    C{--status ENDPOINT}: a Twisted server endpoint string the status page
    is served on over plain HTTP (C{tcp:8440:interface=127.0.0.1},
    C{unix:/run/serialgw/status.sock}).  Not TLS: our C{tls:PORT:cert=..}
    grammar is a line listener's, and given to Twisted as it is, C{tls:}
    (Twisted 26.10 has a parser of its own) listened on port 443 of every
    interface, whatever PORT and interface= said.
    """
    spec = parseListener(text)
    head, plus, _ = str(text).strip().partition("+")
    if plus and head.split(",")[0].strip().lower() in PROTOCOL_NAMES:
        # allow=, ro, ... are a line listener's: here they would be ignored (allow= silently let everyone in).
        raise ConfigError(f"--status {quote(str(text).strip())}: listener options do not apply to the status endpoint (it "
                          "serves HTTP to whoever reaches it): bind it to an interface (tcp:8440:interface=127.0.0.1) "
                          "or a unix socket, and filter in front of it")
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        raise ConfigError(f"--status {quote(str(text).strip())}: expected a server endpoint for plain HTTP such as "
                          "tcp:8440:interface=127.0.0.1 or unix:/run/serialgw/status.sock (no dial-out, file, "
                          "pipe, netconsole or TLS: for HTTPS, put a TLS proxy in front of it)")
    return spec


def optionsFirst(head: str) -> bool:
    """
    Whether C{head}, the text before a C{+}, is listener options
    (C{ro,allow=::1/128}: a colon only in an option's value) rather than
    the start of an endpoint (C{unix:/run/a+b}: a colon in its first word).
    """
    return ":" not in head.split(",")[0].partition("=")[0]


def parseSSHListener(text: str) -> ListenerSpec:
    """
    C{[OPTION,...+]ENDPOINT}: a Twisted server endpoint string
    (C{tcp:2222:interface=127.0.0.1}) with the listener options a telnet
    listener takes (C{ro}, C{allow=}, C{outbuf=}, C{policy=}, C{idle=},
    C{escape=}, C{banner}, C{replay}, ...), e.g. C{banner,escape=^]+tcp:2222}.
    """
    original = str(text).strip()
    head, plus, rest = original.partition("+")
    if plus and optionsFirst(head):
        try:
            spec = parseListener(f"raw,{head}+{rest}")
        except ConfigError as e:
            raise ConfigError(str(e).replace(f"raw,{head}+{rest}", original)) from None
    else:
        spec = parseListener(original)
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        raise ConfigError(f"SSH listener {quote(original)}: expected a server endpoint such as tcp:2222:interface=127.0.0.1")
    return attrs.evolve(spec, text=original)
