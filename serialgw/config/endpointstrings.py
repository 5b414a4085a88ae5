"""
C{tcp:}, C{tcp6:} and C{unix:} listener strings read by Twisted's own
parser (L{serverFromString}, with no reactor: an endpoint does no I/O
before C{listen()}), so the spec's host, port and path are what will be
bound, and what Twisted refuses is refused here, naming the listener.

Apart from the rest of the listener grammar because it is the one place
that reads Twisted's private endpoint attributes (C{_port}, C{_interface},
C{_address}, C{_backlog}, C{_mode}, C{_wantPID}) and its fields (C{_parse}).
"""

from __future__ import annotations

from typing import Any, Optional, cast

from twisted.internet.endpoints import (
    _OP,
    _STRING,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    _tokenize,
    serverFromString,
)
from twisted.internet.endpoints import _parse as endpointFields

from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.parsers import checkPath, isDecimal
from serialgw.config.specs import ConfigError, isAbstract, quote


def fieldsOnce(text: str, original: str) -> tuple[list[str], dict[str, str]]:
    """
    An endpoint string's positional and keyword fields (Twisted's
    L{endpointFields}), a keyword given twice refused: Twisted takes the
    last alone ('interface=127.0.0.1:interface=0.0.0.0' listened on every
    interface, said nowhere).
    """
    seen: dict[str, str] = {}
    field: tuple[str, ...] = ()
    for kind, value in [*_tokenize(text), (_OP, ":")]:
        if kind is _STRING:
            field += (value,)
        elif value == ":":
            if len(field) > 1 and field[0] in seen:
                raise ConfigError(f"{field[0]}= is given twice in listener {quote(original)} "
                                  f"({quote(seen[field[0]])} and {quote(field[1])}): expected one")
            if len(field) > 1:
                seen[field[0]] = field[1]
            field = ()
    return endpointFields(text)


def interfaceWritten(named: dict[str, str], original: str) -> None:
    """
    A listener's C{interface=}, given, is not empty: left empty
    ('interface=${ADDRESS}' with the variable unset) it listened on every
    address, as if left out, --check saying OK.
    """
    if named.get("interface") == "":
        raise ConfigError(f"interface= is empty in listener {quote(original)}: it would listen on every address; "
                          "write one (interface=127.0.0.1), or leave interface= out for every one")


def isInteger(text: str) -> bool:
    """What Twisted takes for a port number (int(): C{+1}, C{ 1}, C{1_000} too)."""
    try:
        int(text)
    except ValueError:
        return False
    return True


# Endpoints keep their reactor and touch it only in listen(): parsing with
# this one does no I/O, and a listen() by mistake fails loudly.
_NO_REACTOR = object()


def twistedServer(text: str, original: str) -> ListenerSpec:
    """
    A C{tcp:}, C{tcp6:} or C{unix:} server endpoint string, read by
    Twisted's own parser (L{serverFromString}, as the service will read it:
    positional and keyword arguments, backslash escapes, defaults), so the
    spec's host, port and path are what the endpoint will bind.

    A unix socket is 0600 and an abstract name gets no lock file (there is
    no file beside which Twisted could make it: the NUL byte fails) unless
    the string says otherwise.
    """
    _numbersReadable(text, original)
    endpoint = _serverEndpoint(text, original)
    interfaceWritten(fieldsOnce(text, original)[1], original)
    _numbersAsWritten(text, original, endpoint)
    if not 0 <= endpoint._backlog <= 65535:  # (past an int, listen() failed at start where --check said OK)
        raise ConfigError(f"backlog={endpoint._backlog} in listener {quote(original)}: expected 0 to 65535 (the "
                          "kernel takes at most net.core.somaxconn)")
    if isinstance(endpoint, UNIXServerEndpoint):
        path = checkPath(endpoint._address, "unix socket", unix=True)
        if not path:
            raise ConfigError(f"unix: needs a path in listener {quote(original)}")
        if not 0 <= endpoint._mode <= 0o777:
            # (Twisted's int(, 8) took '7777777' as 7777: setuid, setgid, sticky, anyone's to connect to; it started.)
            raise ConfigError(f"mode={endpoint._mode:o} in listener {quote(original)}: expected an octal mode 0 to 777 "
                              "(e.g. 660: its owner and group may connect)")
        _lockfileAsWritten(text, original)
        if not _given(text, "mode", "_mode"):
            text += ":mode=600"
        if isAbstract(path) and not _given(text, "lockfile", "_wantPID"):
            text += ":lockfile=0"
        return ListenerSpec(endpoint=text, path=path)
    assert isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint))
    if not 0 <= endpoint._port <= 65535:
        raise ConfigError(f"bad port {quote(str(endpoint._port))} in listener {quote(original)}: expected a port number, "
                          "0 to 65535")
    return ListenerSpec(endpoint=text, host=endpoint._interface, port=endpoint._port)


def _numbersAsWritten(text: str, original: str, endpoint: Any) -> None:
    """
    The numbers of a C{tcp:}, C{tcp6:} or C{unix:} string Twisted reads
    (the port, C{backlog=}, C{mode=}, C{lockfile=}; named or positional)
    are ASCII digits without an underscore, as every other number of the
    gateway's (L{serialgw.config.parsers.writtenNumber}): Twisted reads them
    with int(), which takes Arabic-Indic digits ('١' is 1) and underscores
    ('1_0' is 10), a sign and spaces ('tcp:+4001', 'tcp: 4001' listened
    on 4001, a port nobody wrote so).  Its other fields, an interface and a
    unix path, are no numbers: any letters.
    """
    positional, named = endpointFields(text)
    # The place's position (Twisted's parsers: unix:ADDRESS:MODE..., tcp:PORT:INTERFACE:BACKLOG,
    # tcp6:PORT:BACKLOG:INTERFACE): skipped by its value, a port written as the interface was
    # ('tcp:+4001:+4001', 'tcp:+4001:interface=+4001' listened on 4001).
    placeAt = 1 if isinstance(endpoint, UNIXServerEndpoint) else 3 if isinstance(endpoint, TCP6ServerEndpoint) else 2
    fields = [("", value) for at, value in enumerate(positional) if at and at != placeAt]
    fields += [(key, value) for key, value in named.items() if key not in ("address", "interface")]
    for key, value in fields:
        # (A minus sign is left to the range checks: "bad port '-1'", "backlog=-1 ...: expected 0 to 65535".)
        if isinstance(value, str) and not isDecimal(value.removeprefix("-")):
            what = f"{key}={quote(value)}" if key else quote(value)
            raise ConfigError(f"{what} in listener {quote(original)}: expected a number in ASCII digits (0-9) only: "
                              "no sign, space or '_'")


# Where Twisted's parsers take each number (tcp:PORT:INTERFACE:BACKLOG,
# tcp6:PORT:BACKLOG:INTERFACE, unix:ADDRESS:MODE:BACKLOG:LOCKFILE), its
# base, and what is expected of it.
_NUMBERS: dict[str, dict[str, tuple[int, int]]] = {
    "tcp": {"port": (1, 10), "backlog": (3, 10)},
    "tcp6": {"port": (1, 10), "backlog": (2, 10)},
    "unix": {"mode": (2, 8), "backlog": (3, 10), "lockfile": (4, 10)},
}
_EXPECTED = {
    "port": "expected a port number, 0 to 65535",
    "backlog": "expected a number, 0 to 65535 (the kernel takes at most net.core.somaxconn)",
    "mode": "expected an octal mode 0 to 777 (e.g. 660: its owner and group may connect)",
    "lockfile": "expected 0 (no lock file) or 1 (a lock file PATH.lock beside the socket)",
}


def _numbersReadable(text: str, original: str) -> None:
    """
    The numbers of a C{tcp:}, C{tcp6:} or C{unix:} string are numbers
    before Twisted reads them, so that one left empty or mistyped is
    refused naming its key, its value and what is expected
    (C{mode='9999' in listener 'unix:/x:mode=9999': expected an octal mode
    0 to 777 ...}, C{lockfile='' ...: expected 0 ... or 1 ...}), where
    Twisted's int() said only C{invalid literal for int() with base 8:
    '9999'}.  Other mistakes are left to Twisted and the checks after it.
    """
    try:
        positional, named = fieldsOnce(text, original)  # (a key given twice said as such)
    except ConfigError:
        raise
    except Exception:
        return  # (What Twisted cannot split, say a trailing backslash, its parse says.)
    kind = positional[0] if positional else ""
    for key, (at, base) in _NUMBERS.get(kind, {}).items():
        value = named.get(key, positional[at] if len(positional) > at else None)
        if not isinstance(value, str):
            continue
        try:
            int(value, base)
        except ValueError:
            what = f"bad port {quote(value)}" if key == "port" else f"{key}={quote(value)}"
            # ('tcp6:4001:interface=::1': the bare colons made an empty backlog; the colons are the mistake.)
            raise ConfigError(f"{what} in listener {quote(original)}: {_EXPECTED[key]}{_colonHint(text)}") from None


def _lockfileAsWritten(text: str, original: str) -> None:
    """
    A C{unix:} string's C{lockfile=} (named, or its fourth field) is 0 or
    1: Twisted reads it with bool(int()), so that C{lockfile=2} (or 10, a
    typing slip for 0, or 01) asked for the lock file as 1 does, said
    nowhere.
    """
    positional, named = endpointFields(text)
    value = named.get("lockfile", positional[4] if len(positional) > 4 else None)
    if value is not None and value not in ("0", "1"):
        raise ConfigError(f"lockfile={quote(str(value))} in listener {quote(original)}: expected 0 (no lock file) or 1 "
                          "(a lock file PATH.lock beside the socket)")


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


def unixServerPath(text: str) -> Optional[str]:
    """The path a C{unix:} server endpoint string binds, as Twisted reads it; None for another kind, or a string Twisted does not read."""
    try:
        endpoint = serverFromString(cast(Any, _NO_REACTOR), text)
    except Exception:
        return None
    path = endpoint._address if isinstance(endpoint, UNIXServerEndpoint) else None
    return path if isinstance(path, str) and path else None


def unixEndpointFor(endpoint: str, path: str) -> str:
    """A C{unix:} server endpoint string for C{path}, with the mode, backlog and lock file C{endpoint} (a C{unix:} one) gives."""
    server = serverFromString(cast(Any, _NO_REACTOR), endpoint)
    assert isinstance(server, UNIXServerEndpoint)
    escaped = path.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")
    return (f"unix:address={escaped}:mode={server._mode:o}:backlog={server._backlog}"
            f":lockfile={int(bool(server._wantPID))}")


def twistedReads(text: str) -> bool:
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
        raise ConfigError(f"cannot read listener {quote(original)} as a Twisted endpoint string{read}: {e}"
                          f"{_colonHint(text)}") from None


def _colonHint(text: str) -> str:
    """How a colon inside a value is written, when C{text} has bare colons (an IPv6 address as written elsewhere)."""
    return "; a colon inside a value (an IPv6 address) is written \\: ('interface=\\:\\:1' in a shell)" if "::" in text else ""
