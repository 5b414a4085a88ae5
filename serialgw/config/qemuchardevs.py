"""
QEMU's C{-serial} chardev strings as listeners: C{telnet:}, C{tcp:} and
C{unix:} with QEMU's comma options (C{server}, C{wait}, C{nodelay}, ...),
C{file:}, C{pipe:}, C{pty:}, and C{udp:} (a netconsole: where datagrams
go, where they come from, who may write).  C{mon:} wraps another listener
and is read with them (L{serialgw.config.listeners}).

Apart from the Twisted forms because the grammar is QEMU's: comma
options, C{HOST:PORT}, a server only when asked for.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from serialgw.config.endpointstrings import twistedServer
from serialgw.config.hostports import addressOf, isAddress, parseHostPort, parsePort
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol, UDPSpec
from serialgw.config.parsers import checkPath, isDecimal
from serialgw.config.specs import ConfigError, quote
from serialgw.config.spelling import didYouMean

QEMU_TCP_OPTIONS = ("server", "wait", "nowait", "nodelay", "ipv4", "ipv6", "reconnect", "telnet", "to")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _options(parts: list[str], allowed: tuple[str, ...], original: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if key not in allowed:
            raise ConfigError(f"unknown option {quote(key)} in listener {quote(original)}{didYouMean(key, allowed)} "
                              f"(known: {', '.join(allowed)})")
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


def qemuChardev(word: str, body: str, original: str) -> ListenerSpec:
    """The chardev C{word:body} (not C{mon:}) as a listener; C{tcp} and C{unix} only in QEMU's form."""
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
            return attrs.evolve(twistedServer(f"unix:{_escape(address)}", original), protocol=Protocol.RAW, wait=wait)
        return ListenerSpec(f"unix:{address}", Protocol.RAW, kind=ListenerKind.CONNECT, path=address)
    # tcp: and telnet:
    options = _options(parts, QEMU_TCP_OPTIONS, original)
    host, port = parseHostPort(address, original)
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
    remoteHost, remotePort = parseHostPort(remote, original)
    sourceHost, sourcePort = ("", 0)
    if at:
        if isDecimal(source):
            sourcePort = parsePort(source, original)
        else:
            sourceHost, sourcePort = parseHostPort(source, original)
    if sourceHost and not isAddress(sourceHost):
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
        if not isAddress(remoteHost):
            # Not allow='...' the user never wrote.
            raise ConfigError(f"remote host {quote(remoteHost)} in listener {quote(original)} is a name: writes are taken from "
                              "the remote host's address: give an address, or who may write with ,allow=CIDR")
    for network in allow:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"allow={quote(network)} in listener {quote(original)} is not an address or CIDR network") from None
    # One socket sends to the remote: of the source's family (a name is resolved to IPv4).
    if isAddress(sourceHost) and (":" in sourceHost) != (":" in remoteHost and isAddress(remoteHost)):
        raise ConfigError(f"remote host {quote(remoteHost)} and source address {quote(sourceHost)} in listener "
                          f"{quote(original)} are not of one family (IPv4, IPv6): no datagram could be sent")
    if not remotePort:
        raise ConfigError(f"listener {quote(original)}: the remote's port cannot be 0 (nothing can be sent there)")
    if remotePort == sourcePort and _sendsToItself(remoteHost, sourceHost):
        # Each datagram came back as typing: a device that echoes looped for ever.
        raise ConfigError(f"listener {quote(original)} sends to its own port {sourcePort}: give the remote's port, then @ and this one's")
    spec = UDPSpec(remoteHost, remotePort, sourceHost, sourcePort, allow)
    return ListenerSpec(f"udp:{remoteHost}:{remotePort}", Protocol.RAW, kind=ListenerKind.UDP, udp=spec)


def _sendsToItself(remoteHost: str, sourceHost: str) -> bool:
    """Whether datagrams to C{remoteHost} reach a socket on C{sourceHost} (one port): the same address, or loopback from the wildcard (empty, 0.0.0.0, ::)."""
    remote, source = addressOf(remoteHost), addressOf(sourceHost)
    wildcard = not sourceHost or (source is not None and source.is_unspecified)
    return remoteHost == sourceHost or remote is not None and (remote == source or wildcard and remote.is_loopback)
