"""
C{tls:} listener strings, ours: a TLS listener (certificate, key, the
client certificates it takes and who among them only reads) or a TLS
dial-out (the CA that verifies the server, a client certificate).

Apart from Twisted's forms because Twisted's own C{ssl:} endpoint hands
over a connection before its handshake; only Twisted's tokenizer is
shared (positional and keyword fields, backslash escapes).
"""

from __future__ import annotations

import ipaddress
import itertools
import re

from serialgw.config.endpointstrings import fieldsOnce, interfaceWritten
from serialgw.config.hostports import parsePort
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol, TLSSpec
from serialgw.config.parsers import checkPath, isDecimal, writtenNumber
from serialgw.config.specs import ConfigError, quote
from serialgw.config.spelling import didYouMean

# A TLS listener's options past its port.
_TLS_OPTIONS = ("interface", "cert", "key", "ca", "subjects", "readonly", "handshake")


def tlsListener(body: str, original: str) -> ListenerSpec:
    """
    C{tls:PORT[:interface=ADDR]:cert=FILE:key=FILE[:ca=FILE][:subjects=CN;CN]}
    listens (C{handshake=SECONDS}: how long a handshake may take, default 10); C{tls:HOST:PORT:ca=FILE[:cert=FILE:key=FILE]} dials out and
    verifies the server as HOST. The port may be written C{port=PORT}; a
    backslash escapes the next character (C{cert=/etc/a\\:b.pem}), as in
    Twisted's strings.
    """
    # Twisted's tokenizer, as for its own endpoint strings (private, there since Twisted 10): positional and
    # keyword fields, backslash escapes; a first host in brackets ([::1], as QEMU's forms) is one field.
    body = re.sub(r"^\[[^\]\\]*\]", lambda m: m[0].replace(":", "\\:"), body)
    positional, named = fieldsOnce("tls:" + body, original)
    positional = positional[1:]
    hint = _colonHint(body)
    if "port" in named:
        # tls:port=N listens; tls:HOST:port=N dials out.
        if len(positional) > 1 or positional and isDecimal(positional[0]):
            raise ConfigError(f"listener {quote(original)} gives the port twice{hint}")
        positional.append(named.pop("port"))
    for key in named:
        if key not in _TLS_OPTIONS:
            raise ConfigError(f"unknown option {quote(key)} in listener {quote(original)}"
                              f"{didYouMean(key, _TLS_OPTIONS)} (known: port, {', '.join(_TLS_OPTIONS)})")
    handshake = 10.0
    if "handshake" in named:
        try:
            handshake = writtenNumber(named["handshake"])
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
        port = _port(positional[0], original, hint)
        if not named.get("cert") or not named.get("key"):
            raise ConfigError(f"a TLS listener needs cert= and key=: {quote(original)}")
        interfaceWritten(named, original)
        interface = named.get("interface", "")
        if (subjects or readOnly) and not named.get("ca"):
            raise ConfigError(f"subjects= and readonly= need ca= (client certificates) in listener {quote(original)}")
        tls = TLSSpec(cert=named["cert"], key=named["key"], ca=named.get("ca", ""), subjects=subjects,
                      readOnlySubjects=readOnly, handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{port}", Protocol.TELNET, tls=tls, host=interface, port=port)
    if len(positional) == 2:
        host, port = positional[0].strip("[]"), _port(positional[1], original, hint)
        if not named.get("ca"):
            raise ConfigError(f"a TLS dial-out needs ca= to verify the server: {quote(original)}")
        if bool(named.get("cert")) != bool(named.get("key")):
            raise ConfigError(f"a TLS dial-out's client certificate needs cert= and key= both: {quote(original)}")
        tls = TLSSpec(cert=named.get("cert", ""), key=named.get("key", ""), ca=named["ca"], hostname=host,
                      handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{host}:{port}", Protocol.TELNET, kind=ListenerKind.CONNECT, tls=tls, host=host, port=port)
    raise ConfigError(f"cannot read TLS listener {quote(original)}: expected tls:PORT:cert=..:key=.. or "
                      f"tls:HOST:PORT:ca=..{hint}")


def _colonHint(body: str) -> str:
    """
    How to write the first C{KEY=VALUE} of a C{tls:} string that Twisted's
    tokenizer cut at a bare colon in its value (fields without C{=} follow
    it: C{interface=::1} read as C{interface=}, C{''}, C{1}), or a
    dial-out's bare IPv6 host (C{tls:::1:4443}: in brackets), as the end
    of an error message; C{""} when there is none.
    """
    fields = re.split(r"(?<!\\):", body)
    for i, field in enumerate(fields):
        if "=" not in field:
            continue
        end = i + 1
        while end < len(fields) and "=" not in fields[end]:
            end += 1
        if end > i + 1:
            written = ":".join(fields[i:end])
            escaped = written.replace(":", "\\:")
            return (f"; {quote(written)}: a colon inside a value (an IPv6 address) is written \\:, as in Twisted's "
                    f"endpoint strings ({quote(escaped)})")
    # A dial-out's IPv6 host written bare (tls:::1:4443): its colons cut it into fields.
    lead = list(itertools.takewhile(lambda field: "=" not in field, fields))
    after = fields[len(lead):len(lead) + 1]
    for host, port in ((":".join(lead[:-1]), lead[-1:]), (":".join(lead), after)):
        if len(lead) >= 3 and port and (port[0].startswith("port=") or isDecimal(port[0])) and _isIPv6(host):
            return f"; an IPv6 host goes in brackets ({quote(f'tls:[{host}]:{port[0]}')})"
    return ""


def _isIPv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def _port(text: str, original: str, hint: str) -> int:
    """A positional field as the port; refused with C{hint} (L{_colonHint}) added."""
    try:
        return parsePort(text, original)
    except ConfigError as e:
        raise ConfigError(f"{e}{hint}") from None
