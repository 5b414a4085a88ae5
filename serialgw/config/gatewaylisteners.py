"""
The gateway's own listeners, not a line's: C{--watch-all} (every line's
output on one stream), C{--status} (plain HTTP) and SSH.  Each is a line
listener string (L{parseListener}) narrowed to what makes sense there:
a server endpoint, and only the options that do something on it.
"""

from __future__ import annotations

import attrs

from serialgw.config.listeners import PROTOCOL_NAMES, parseListener
from serialgw.config.listenerspecs import ByNameSpec, ListenerKind, ListenerSpec, WatchAllSpec
from serialgw.config.specs import ConfigError, quote


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


def parseByName(texts: list[str], patterns: list[str]) -> ByNameSpec:
    """
    The by-name listeners (server endpoints, TLS too, with a line
    listener's options: the clients are the chosen line's) and the shell
    patterns of the lines they serve (none given: every line).
    """
    listeners = []
    for text in texts:
        spec = parseListener(text)
        if spec.kind is not ListenerKind.LISTEN:
            raise ConfigError(f"by-name listener {quote(text)}: expected a server endpoint such as 4000, "
                              "tls:4000:cert=...:key=... or unix:/run/serialgw/consoles.sock (no dial-out, file, pipe, "
                              "pty, netconsole or stdio: a client there names the console it wants)")
        listeners.append(spec)
    if not listeners:
        raise ConfigError("by-name: no listener given")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"by-name lines: expected shell patterns of line names, e.g. rack4-*, not {quote(pattern)}")
    return ByNameSpec(tuple(listeners), tuple(patterns) or ("*",))


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
