"""
What an operator coming from ser2net or conserver pastes: ser2net's serial
form (C{115200n81}), its accepter strings (C{telnet(rfc2217),tcp,4001}),
their option names as keys.  Nothing here is accepted: each is recognised
so that the error can say how serialgw writes it (README: "Coming from
ser2net or conserver").
"""

from __future__ import annotations

import re
from typing import Optional

_SER2NET_SERIAL = re.compile(r"^([0-9]+)([NEOMS])([5-8])(1\.5|1|2)?$", re.IGNORECASE)


def ser2netSerial(field: str) -> Optional[str]:
    """
    ser2net's C{SPEED PARITY DATABITS STOPBITS} in one word (C{115200n81},
    C{9600E71}) written as serialgw's C{115200,8N1}; L{None} for anything else.
    """
    match = _SER2NET_SERIAL.match(field)
    if match is None:
        return None
    speed, parity, bits, stop = match.groups()
    return f"{int(speed)},{bits}{parity.upper()}{stop or '1'}"


def _topLevel(text: str) -> list[str]:
    """Split at the commas outside parentheses: C{telnet(rfc2217,x),tcp,1} is three fields."""
    fields, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            fields.append(current.strip())
            current = ""
        else:
            current += char
    fields.append(current.strip())
    return fields


def ser2netAccepter(text: str) -> Optional[str]:
    """
    A ser2net TCP accepter (C{telnet(rfc2217),tcp,4001}, C{tcp,localhost,4002},
    C{telnet,tcp,HOST,4003}) as the serialgw listener that does the same;
    L{None} for anything else (udp, sctp, ssl, ...: no one string says it).
    """
    fields = _topLevel(text)
    protocol = "raw"
    if fields and re.fullmatch(r"telnet(\(.*\))?", fields[0], re.IGNORECASE):
        options = [o.strip().lower() for o in fields[0][7:-1].split(",")] if "(" in fields[0] else []
        protocol = "telnet" if "rfc2217" in options else "telnet,no-rfc2217"
        fields = fields[1:]
    if len(fields) not in (2, 3) or fields[0].lower() != "tcp" or not re.fullmatch(r"[0-9]{1,5}", fields[-1]):
        return None
    port = int(fields[-1])
    if len(fields) == 2:
        return f"{protocol}+{port}"
    host = fields[1]
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        return None
    interface = "127.0.0.1" if host.lower() == "localhost" else host
    return f"{protocol}+tcp:{port}:interface={interface}"


# ser2net's options (ser2net.yaml) and conserver's (conserver.cf), met as
# keys of a line: what serialgw has for each.
_KEYS = {
    "max-connections": "ser2net's max-connections is max-clients here (default 64, where ser2net's is 1)",
    "kickolduser": "ser2net's kickolduser has no counterpart: mode = \"exclusive\" keeps one writer, and the "
                   "escape menu's t takes write from another",
    "banner": "ser2net's banner is the listener option banner here (\"telnet,banner+4001\": the line's name, "
              "settings and who is on; no text of your own)",
    "timeout": "ser2net's timeout is the listener option idle=SECONDS here (\"telnet,idle=600+4001\")",
    "openstr": "ser2net's openstr is open-string here",
    "closestr": "ser2net's closestr is close-string here",
    "trace-read": "ser2net's trace-read is log here (the console log: log-format \"\" for no stamps)",
    "trace-write": "ser2net's trace-write is log-typed here (the file LOG.typed beside log)",
    "trace-both": "ser2net's trace-both is log and log-typed here (two files)",
    "trace-hexdump": "ser2net's trace-hexdump is log-typed = \"hexdump\" here",
    "trace-timestamp": "ser2net's trace-timestamp is log-format here",
    "remaddr": "ser2net's remaddr is the listener option allow=CIDR;CIDR here",
    "chardelay": "ser2net's chardelay (on there by default) is coalesce here, off by default (\"1,20\" comes closest)",
    "accepter": "ser2net's accepter is listen here",
    "connector": "ser2net's connector is device and serial here",
    "enable": "ser2net's enable has no counterpart: comment the line's table out",
    "logfile": "conserver's logfile is log here",
    "logfilemax": "conserver's logfilemax is log-max-size here",
    "timestamp": "conserver's timestamp is log-mark (minutes between marks) and log-events = \"conserver\" "
                 "(its a and b: attach, detach, breaks) here",
    "idletimeout": "conserver's idletimeout is the listener option idle=SECONDS here",
    "initcmd": "conserver's initcmd has no counterpart: open-string writes text, no program",
    "exec": "conserver's exec has no counterpart: run the program behind socat on a unix socket and make "
            "device = \"unix:PATH\" (README: Coming from ser2net or conserver)",
    "type": "conserver's type has no key here: device says it (a path, telnet:HOST:PORT, tcp:HOST:PORT, "
            "unix:PATH)",
    "host": "conserver's host and port are device = \"telnet:HOST:PORT\" (or tcp:HOST:PORT for raw) here",
    "port": "conserver's host and port are device = \"telnet:HOST:PORT\" (or tcp:HOST:PORT for raw) here; "
            "a port clients connect to is listen",
    "uds": "conserver's uds is device = \"unix:PATH\" here",
    "master": "conserver's master has no counterpart: each gateway serves its own lines",
    "rw": "conserver's rw is write here, naming [users.NAME] (SSH keys, TLS certificates)",
    "ro": "conserver's ro is read here, naming [users.NAME]; or the listener option ro",
}


def foreignKey(key: str) -> Optional[str]:
    """What serialgw has for a ser2net or conserver option C{key}; L{None} when it is neither's."""
    return _KEYS.get(key.lower())
