"""
C{tls:} listener strings, ours: a TLS listener (certificate, key, the
client certificates it takes and who among them only reads) or a TLS
dial-out (the CA that verifies the server, a client certificate).

Apart from Twisted's forms because Twisted's own C{ssl:} endpoint hands
over a connection before its handshake; only Twisted's tokenizer is
shared (positional and keyword fields, backslash escapes).
"""

from __future__ import annotations

import re

from twisted.internet.endpoints import _parse as endpointFields

from serialgw.config.hostports import parsePort
from serialgw.config.parsers import checkPath, isDecimal
from serialgw.config.specs import ConfigError, ListenerKind, ListenerSpec, Protocol, TLSSpec, quote


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
        port = parsePort(positional[0], original)
        if not named.get("cert") or not named.get("key"):
            raise ConfigError(f"a TLS listener needs cert= and key=: {quote(original)}")
        interface = named.get("interface", "")
        if (subjects or readOnly) and not named.get("ca"):
            raise ConfigError(f"subjects= and readonly= need ca= (client certificates) in listener {quote(original)}")
        tls = TLSSpec(cert=named["cert"], key=named["key"], ca=named.get("ca", ""), subjects=subjects,
                      readOnlySubjects=readOnly, handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{port}", Protocol.TELNET, tls=tls, host=interface, port=port)
    if len(positional) == 2:
        host, port = positional[0].strip("[]"), parsePort(positional[1], original)
        if not named.get("ca"):
            raise ConfigError(f"a TLS dial-out needs ca= to verify the server: {quote(original)}")
        if bool(named.get("cert")) != bool(named.get("key")):
            raise ConfigError(f"a TLS dial-out's client certificate needs cert= and key= both: {quote(original)}")
        tls = TLSSpec(cert=named.get("cert", ""), key=named.get("key", ""), ca=named["ca"], hostname=host,
                      handshakeTimeout=handshake)
        return ListenerSpec(f"tls:{host}:{port}", Protocol.TELNET, kind=ListenerKind.CONNECT, tls=tls, host=host, port=port)
    raise ConfigError(f"cannot read TLS listener {quote(original)}: expected tls:PORT:cert=..:key=.. or tls:HOST:PORT:ca=..")
