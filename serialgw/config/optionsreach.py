"""
Whether a listener's options reach its kind of client: an option written
before the C{+} that its client would ignore is refused, not ignored (a
C{pty:} client takes ro, outbuf= and policy=drop|block only; allow= on a
udp: client, a file:, pipe:, stdio or dial-out, a unix socket).  Also
whether an endpoint is a systemd socket of domain UNIX.  Nothing here does
I/O.
"""

from __future__ import annotations

from serialgw.config.listenerspecs import ListenerKind, ListenerSpec, Protocol
from serialgw.config.specs import ConfigError, quote

# What a pty: client would ignore (it was ignored: raw,ro+pty: let its program
# type), by ListenerSpec field, as the option is written.
_NOT_FOR_PTY = {"allow": "allow=", "idle": "idle=", "keepalive": "keepalive", "nodelay": "nodelay",
                "banner": "banner", "replay": "replay", "notices": "notices or no-notices", "rfc2217": "no-rfc2217"}


def _checkPty(spec: ListenerSpec, options: dict[str, object], original: str) -> None:
    """A pty: listener takes ro, outbuf= and policy=drop|block; anything else is refused, not ignored."""
    takes = "a pty: client takes ro, outbuf= and policy=drop|block"
    if spec.protocol is not Protocol.RAW:
        raise ConfigError(f"listener {quote(original)}: a pty: client is raw bytes, not {spec.protocol.value} "
                          f"(write raw+pty: or pty:); {takes}")
    for field, name in _NOT_FOR_PTY.items():
        if field in options:
            raise ConfigError(f"listener {quote(original)}: {name} means nothing to a pty: client; {takes}")
    if spec.policy == "disconnect":
        raise ConfigError(f"listener {quote(original)}: policy=disconnect cannot cut a pty: client (its program "
                          f"would find no pty until a restart); {takes}")


# Where allow= would check nothing (no peer address) or the wrong peer (a
# dial-out's own: refused, dialled again for ever).  By ListenerKind.
_ALLOW_MEANS_NOTHING = {ListenerKind.FILE: "file:", ListenerKind.PIPE: "pipe:", ListenerKind.STDIO: "stdio",
                        ListenerKind.CONNECT: "a dial-out"}


def checkOptionsReach(spec: ListenerSpec, options: dict[str, object], original: str, endpoint: str) -> None:
    """
    Refuse a listener option written before the C{+} that would be ignored
    by its kind of client (C{endpoint}: the text after the C{+}).
    """
    if spec.kind is ListenerKind.PTY:
        _checkPty(spec, options, original)
    if "allow" not in options:
        return
    if spec.kind is ListenerKind.UDP:  # (ignored, the netconsole's own list wrote)
        raise ConfigError(f"listener {quote(original)}: allow= before the + does not reach a udp: client; who "
                          f"may write goes after it: {endpoint.split(',')[0]},allow={';'.join(spec.allow)}")
    what = _ALLOW_MEANS_NOTHING.get(spec.kind)
    if what is not None:
        raise ConfigError(f"listener {quote(original)}: allow= means nothing to {what} (it checks who connects to "
                          "a listening socket; a unix socket's file mode does that for it)")
    if spec.kind is ListenerKind.LISTEN and (spec.path or systemdUnix(spec.endpoint)):
        # (It let every unix peer in: written, it looked like a restriction.)
        raise ConfigError(f"listener {quote(original)}: allow= means nothing to a unix socket (it checks the address "
                          "a TCP client comes from; a unix peer has none: it let everyone in); the socket file's mode "
                          "(mode=600 unless given) and its directory decide who connects")


def systemdUnix(endpoint: str) -> bool:
    """Whether C{endpoint} is a C{systemd:} socket of domain UNIX (C{systemd:domain=UNIX:index=0}, C{systemd:UNIX:0})."""
    word, *fields = endpoint.split(":")
    if word.lower() != "systemd":
        return False
    named = dict(f.partition("=")[::2] for f in fields if "=" in f)
    positional = [f for f in fields if "=" not in f]
    domain = named.get("domain", positional[0] if positional else "")
    return domain.upper() == "UNIX"
