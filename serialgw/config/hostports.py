"""
The address pieces of listener strings that are not Twisted's: a port
(0 to 65535, decimal), C{HOST:PORT} with an IPv6 host in brackets, and
whether a host is an address or a name.  QEMU's chardev forms, C{tls:}
and the check for a C{tcp:N:M} that reads two ways all read them so, and
each error names the listener.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from serialgw.config.parsers import isDecimal
from serialgw.config.specs import ConfigError, quote


def addressOf(text: str) -> Any:
    """The IP address C{text} names (localhost: 127.0.0.1, as a remote host name resolves), or None."""
    try:
        return ipaddress.ip_address("127.0.0.1" if text == "localhost" else text)
    except ValueError:
        return None


def isAddress(text: str) -> bool:
    return text != "localhost" and addressOf(text) is not None


def bindsAddress(text: str) -> bool:
    """
    Whether a listener's interface is one the gateway binds: an IP address,
    or localhost (any case: the hosts file's, found without DNS).
    """
    return text.lower() == "localhost" or addressOf(text) is not None


def isPort(text: str) -> bool:
    return isDecimal(text) and int(text) <= 65535


def parsePort(text: str, original: str) -> int:
    if not isDecimal(text) or not 0 <= int(text) <= 65535:
        raise ConfigError(f"bad port {quote(text)} in listener {quote(original)}: expected a port number, 0 to 65535")
    return int(text)


def parseHostPort(text: str, original: str) -> tuple[str, int]:
    """C{host:port}, C{:port}, C{[v6]:port}."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(f"cannot read address {quote(text)} in listener {quote(original)}")
        return host, parsePort(rest[1:], original)
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ConfigError(f"expected HOST:PORT, not {quote(text)}, in listener {quote(original)}")
    if ":" in host:
        raise ConfigError(f"an IPv6 address goes in brackets ([{host}]) in listener {quote(original)}")
    return host, parsePort(port, original)
