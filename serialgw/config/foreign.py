"""
What an operator coming from ser2net or conserver pastes: ser2net's serial
form (C{115200n81}), its accepter strings (C{telnet(rfc2217),tcp,4001}),
their option names as keys.  Nothing here is accepted: each is recognised
so that the error can say how serialgw writes it (README: "Coming from
ser2net or conserver").
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional

from serialgw.config.specs import quote

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
    return f"{_digits(speed)},{bits}{parity.upper()}{stop or '1'}"


def _digits(number: str) -> str:
    """ASCII digits without their leading zeros: int() of more than 4300 digits raises (a ValueError traceback)."""
    return number.lstrip("0") or "0"


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


def _interface(host: str) -> str:
    """ser2net's accepter host as a listener's interface= (an address: a host name is written ADDRESS, to fill in)."""
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "ADDRESS"
    return host


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
    return f"{protocol}+tcp:{port}:interface={_interface(host)}"


# ser2net's options (ser2net.yaml) and conserver's (conserver.cf), met as
# keys of a line: what serialgw has for each.
_KEYS = {
    "max-connections": "ser2net's max-connections is max-clients here (default 64, where ser2net's is 1)",
    "kickolduser": "ser2net's kickolduser is kick-old-user here (with max-clients, ser2net's max-connections)",
    "banner": "ser2net's banner is banner here (a string with {line}, {device}, {settings}; shown to telnet and SSH "
              "sessions and where the listener says banner)",
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
    "logfile": "conserver's logfile is log here (its & is {line}: log = \"/var/log/serialgw/{line}.log\")",
    "logfilemax": "conserver's logfilemax is log-max-size here",
    "timestamp": "conserver's timestamp is log-mark (minutes between marks) and log-events = \"conserver\" "
                 "(its a and b: attach, detach, breaks) here",
    "idletimeout": "conserver's idletimeout is idle-timeout here (seconds, or \"5m\", \"1h\"; the idle-string, "
                   "conserver's idlestring, \"\\n\" unless given, is written to a console quiet that long); a "
                   "client's idle disconnect is the listener option idle=SECONDS",
    "idlestring": "conserver's idlestring is idle-string here (with idle-timeout, conserver's idletimeout)",
    "options": "conserver's options are keys of their own here: ondemand is on-demand = true (the others have no "
               "counterpart)",
    "ondemand": "conserver's options ondemand is on-demand = true here (a local tty: opened at the first "
                "connection, closed after the last)",
    "initcmd": "conserver's initcmd is init-command here (run by /bin/sh -ec each time the device comes up, its "
               "standard input and output the device's; init-timeout bounds it, 60 s unless given)",
    "initspinmax": "conserver's initspinmax is init-spin-max here: init-command starts at most that many runs (5 "
                   "unless given) within init-spin-window s (10 unless given); a run due past that waits until the "
                   "oldest start is that old",
    "initspintimer": "conserver's initspintimer is init-spin-window here (seconds, 10 unless given): init-command "
                     "starts at most init-spin-max runs (5 unless given) within it; a run due past that waits until "
                     "the oldest start is that old",
    "closeon": "ser2net's closeon is close-on here (the people on the line are disconnected when the device sends it)",
    "sendon": "ser2net's sendon is coalesce's STRING here: coalesce = \"1,20,\\r\\n\" (MIN_MS,MAX_MS,STRING: output "
              "held until STRING, at most MAX_MS)",
    "breaklist": "conserver's break sequences (its break N blocks, breaklist) are break-sequences here, a table by "
                 "the key after the escape menu's l: { 2 = '\\r~^B', 3 = '#.' } (1, 2 and 3 unless given)",
    "initsubst": "conserver's initsubst has no counterpart: init-command's environment has SERIALGW_LINE and "
                 "SERIALGW_DEVICE",
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


# ser2net's connectors (ser2net.yaml's connector:, gensio strings): the
# remote ones, by their gensio stack, as serialgw's device forms.
_REMOTE = {"telnet(rfc2217)": "rfc2217://{host}:{port}", "telnet": "telnet:{host}:{port}", "": "tcp:{host}:{port}"}


def ser2netConnector(text: str) -> Optional[str]:
    """
    A ser2net connector (C{serialdev,/dev/ttyUSB0,115200n81,local},
    C{telnet(rfc2217),tcp,HOST,PORT}, C{tcp,HOST,PORT}) as the serialgw keys
    that say the same (C{device = "/dev/ttyUSB0", serial = "115200,8N1"});
    L{None} for anything else.
    """
    fields = [f for f in _topLevel(text.strip()) if f]
    if len(fields) >= 2 and fields[0].lower() in ("serialdev", "serialdev()", "sdev") and fields[1].startswith("/"):
        keys = [f'device = "{fields[1]}"']
        speed, other = None, []
        flow: list[str] = []
        for option in (o.strip() for f in fields[2:] for o in f.split()):
            low = option.lower()
            if ser2netSerial(option) is not None:
                speed = ser2netSerial(option)
            elif low in ("rtscts", "xonxoff", "-rtscts", "-xonxoff"):
                # In order, as ser2net reads them: once in serial (it refuses a repeat), none after its -.
                flow = [f for f in flow if f != low.lstrip("-")] + ([low] if low[0] != "-" else [])
            elif low in ("local", "-local"):
                pass  # modem lines are always ignored here
            elif re.fullmatch(r"(dtr|rts)=(on|off)", low):
                keys.append(f'{low[:3]} = "{low[4:]}"')
            else:
                other.append(option)
        if speed or flow:
            keys.insert(1, f'serial = "{",".join([speed or "9600,8N1", *flow])}"')
        return ", ".join(keys) + (f" (not carried over: {', '.join(other)})" if other else "")
    stack = fields[0].lower() if fields else ""
    if stack in ("telnet(rfc2217)", "telnet"):
        fields = fields[1:]
    elif stack == "tcp":
        stack = ""
    else:
        return None
    if len(fields) != 3 or fields[0].lower() != "tcp" or not re.fullmatch(r"[0-9]{1,5}", fields[2]):
        return None
    return f'device = "{_REMOTE[stack].format(host=fields[1], port=int(fields[2]))}"'


# A tty with its settings after a comma or a space (socat's /dev/ttyUSB0,b115200,raw): udev never makes such a name.
_WITH_SETTINGS = re.compile(r"^(/dev/[^,\s]+)[,\s]+b?([0-9]+(?:[NEOMS][5-8](?:1\.5|1|2)?)?)((?:[,\s]+[^,\s]+)*)$",
                            re.IGNORECASE)


# How a tty with its settings is said: in a file's keys, or in command-line options.
KEYS = 'device = "{path}", serial = "{serial}"'
OPTIONS = "--device {path} --serial {serial}"


def deviceWithSettings(text: str, spelled: str = KEYS) -> Optional[str]:
    """
    A tty path with its settings (C{/dev/ttyUSB0,115200}, socat's
    C{/dev/ttyS0,b9600,raw}) as the serialgw keys (or, C{spelled=OPTIONS},
    options) that say the same, the fields that say nothing to serialgw
    named; L{None} for anything else.
    """
    match = _WITH_SETTINGS.match(text.strip())
    if match is None:
        return None
    path, speed, rest = match.groups()
    other = [f for f in re.split(r"[,\s]+", rest) if f]
    return (spelled.format(path=path, serial=ser2netSerial(speed) or _digits(speed))
            + (f" (not carried over: {', '.join(other)})" if other else ""))


# ser2net.conf (ser2net 2.x and 3.x): PORT:STATE:TIMEOUT:DEVICE:OPTIONS.
_CONF = re.compile(r"^(?:([A-Za-z0-9.-]+),)?([0-9]{1,5}):(raw|rawlp|telnet|off):([0-9]+):(/[^:\s]*)(?::(.*))?$",
                   re.IGNORECASE)
_BITS = {"5databits": "5", "6databits": "6", "7databits": "7", "8databits": "8"}
_PARITY = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
_STOP = {"1stopbit": "1", "2stopbits": "2"}


def ser2netConf(text: str) -> Optional[str]:
    """
    A ser2net.conf line (C{2000:telnet:600:/dev/ttyS0:9600 8DATABITS NONE
    1STOPBIT}) as the serialgw line table that does the same, on one line;
    L{None} for anything else.
    """
    match = _CONF.match(text.strip())
    if match is None:
        return None
    host, port, state, timeout, device, options = match.groups()
    if state.lower() == "off":
        return f"its port {port} is off: serialgw has no disabled line; leave the line's table out (or comment it out)"
    baud, bits, parity, stop, keys, other = "9600", "8", "N", "1", [], []
    flow: list[str] = []
    rfc2217 = False
    for option in re.split(r"[\s,]+", options or ""):
        low = option.lower()
        if not option or low in ("local", "-local", "-chardelay", "-hangup_when_done"):
            continue
        if re.fullmatch(r"[0-9]+", option):
            baud = _digits(option)
        elif low in _BITS:
            bits = _BITS[low]
        elif low in _PARITY:
            parity = _PARITY[low]
        elif low in _STOP:
            stop = _STOP[low]
        elif low in ("xonxoff", "rtscts", "-xonxoff", "-rtscts"):
            # In order, as ser2net reads them: once in serial (it refuses a repeat), none after its -.
            flow = [f for f in flow if f != low.lstrip("-")] + ([low] if low[0] != "-" else [])
        elif low == "remctl":
            rfc2217 = True
        elif low.startswith("max-connections=") and re.fullmatch(r"[0-9]+", low[16:]):
            keys.append(f"max-clients = {_digits(low[16:])}")
        elif low == "hangup_when_done":
            keys.append('idle-dtr = "off", idle-rts = "off"')
        else:
            other.append(option)
    protocol = "raw" if state.lower() != "telnet" else "telnet" if rfc2217 else "telnet,no-rfc2217"
    if _digits(timeout) != "0":
        protocol += f",idle={_digits(timeout)}"
    where = f"tcp:{int(port)}:interface={_interface(host)}" if host else \
        str(int(port))
    name = re.sub(r"[^A-Za-z0-9._-]", "-", device.rpartition("/")[2]).lstrip("._-") or "line"
    serial = ",".join([f"{baud},{bits}{parity}{stop}", *flow])
    said = ", ".join([f'device = "{device}"', f'listen = "{protocol}+{where}"', f'serial = "{serial}"', *keys])
    notes = " (rawlp's device takes no settings: raw here)" if state.lower() == "rawlp" else ""
    return f"serialgw writes it [lines.{name}] {said}{notes}" + (f" (not carried over: {', '.join(other)})"
                                                                  if other else "")


# A line of ser2net.yaml or conserver.cf pasted into the TOML file.
_YAML = re.compile(r"^\s*(?:-\s+)?([A-Za-z][A-Za-z0-9_-]*)\s*:(?:\s+(.*?))?\s*$")
_CONSERVER_BLOCK = re.compile(r"^\s*(console|default|access|config|group|break)\s+(\S+)\s*\{")
_CONSERVER_KEY = re.compile(r"^\s*([a-z]+)\s+([^=;]*?)\s*;\s*(?:}\s*)?$")


def pastedLine(line: str, known: set[str]) -> Optional[str]:
    """
    What a line of ser2net.yaml, ser2net.conf or conserver.cf that is no
    TOML says in serialgw (C{known}: the keys of a line); L{None} for
    anything else.
    """
    escape = re.search(r"\\[Ndps]", line)
    if escape is not None and "=" in line:
        # ser2net's filename escapes in a TOML basic string: tomllib's "Unescaped '\\' in a string".
        example = line.strip().replace("\\N", "{line}")
        return (f"ser2net's escapes ({escape.group(0)}) are not read here, and in a TOML \"...\" string a backslash "
                f"starts an escape: {{line}} is the line's name, as ser2net's \\N ({quote(example)})")
    basic = re.match(r"""^\s*([A-Za-z0-9_.-]+)\s*=\s*"([^"']*)"\s*(?:#.*)?$""", line)
    if basic is not None and re.search(r'\\[^btnfr"\\uU]', basic.group(2)):
        # A Twisted endpoint's \: (tcp6:4446:interface=\:\:1), a Windows-ish path: tomllib says only "Unescaped '\'".
        return ("in a TOML string \"...\" a backslash starts an escape: write the value in single quotes, a literal "
                f"string that keeps its backslashes ({basic.group(1)} = '{basic.group(2)}')")
    if re.match(r"^(%YAML\b|---\s*$)", line.strip()):
        # ser2net 4's file begins so (its manual's own example): given whole to --config.
        return ("a YAML file (ser2net 4's ser2net.yaml?): serialgw reads TOML, a [lines.NAME] table a connection "
                "(examples/ser2net.yaml and examples/ser2net.toml, in share/doc/serialgw/ where pip installed serialgw: the same lines in both; README: Coming from "
                "ser2net or conserver)")
    conf = ser2netConf(line)
    if conf is not None:
        return f"a ser2net.conf line: {conf}"
    block = _CONSERVER_BLOCK.match(line)
    if block is not None:
        kind, name = block.groups()
        if kind == "console":
            return f"conserver's console block; serialgw writes it as a table, [lines.{name}], keys NAME = VALUE"
        if kind == "default":
            return "conserver's default block; serialgw writes it as the table [defaults], keys NAME = VALUE"
        return f"conserver's {kind} block has no counterpart here (README: Coming from ser2net or conserver)"
    yaml = _YAML.match(line)
    if yaml is not None:
        key, value = yaml.group(1), (yaml.group(2) or "").strip()
        low = key.lower()
        if low == "connection":
            name = value.lstrip("&").strip() if value.startswith("&") else "NAME"
            return (f"ser2net's connection; serialgw writes it as a table, [lines.{name}], with device = ... and "
                    "listen = ...")
        if low == "accepter":
            ours = ser2netAccepter(value)
            return ("ser2net's accepter; serialgw writes it " +
                    (f'listen = "{ours}"' if ours else "listen = ... (README: Coming from ser2net or conserver)"))
        if low == "connector":
            ours = ser2netConnector(value)
            return ("ser2net's connector; serialgw writes it " +
                    (ours if ours else 'device = ... and serial = ..., on one line (a connector split over '
                     'lines: device = "/dev/ttyUSB0", serial = "115200,8N1")'))
        if low in ("options", "defaults", "default"):
            where = "a line's table" if low == "options" else "the table [defaults]"
            return f"ser2net's {low}; serialgw writes them as keys of {where}, NAME = VALUE"
        hint = foreignKey(low)
        if hint is not None:
            return f"{hint} (a YAML line: TOML writes NAME = VALUE)"
        return f"a YAML line: TOML writes {key} = VALUE" if key in known else None
    setting = _CONSERVER_KEY.match(line)
    if setting is not None:
        key = setting.group(1)
        hint = foreignKey(key)
        if hint is not None:
            return f"{hint} (a conserver.cf line: TOML writes NAME = VALUE)"
        return f"a conserver.cf line: TOML writes {key} = VALUE" if key in known else None
    return None


def conserverName(name: str) -> Optional[str]:
    """
    What conserver's access-list forms are here, for a C{write}/C{read}
    entry that names no user: C{@group}, C{user@host}, C{""} (a list
    emptied), C{!*}; L{None} for another name.
    """
    bare = name[1:] if name.startswith("!") else name
    if bare.startswith("@"):
        return ("conserver's @group (a group of the host) has no counterpart: name each [users.NAME], or give the "
                "line to everyone with '*' and take some out with '!NAME'")
    if "@" in bare:
        return ("conserver's user@host: a user here is a person with keys or a certificate wherever they come "
                "from; write the user alone, and narrow where from with the listener option allow=CIDR")
    if not bare:
        return "an empty name: conserver's \"\" (a list emptied) is leaving the key out, or [] for nobody"
    if name == "!*":  # ('*' itself is every user)
        return "'!*' takes everyone out: leave the name out of the list instead"
    return None


# Top-level tables an operator writes from ser2net.yaml or conserver.cf.
_TABLES = {
    "connection": "ser2net's connection is a [lines.NAME] table here",
    "connections": "ser2net's connections are [lines.NAME] tables here, one a line",
    "default": "ser2net's default and conserver's default * are the [defaults] table here",
    "console": "conserver's console NAME is a [lines.NAME] table here",
    "define": "ser2net's define has no counterpart: [defaults] gives every line a value",
    "admin": "ser2net's admin port is the status endpoint here (--status)",
    "led": "ser2net's led has no counterpart",
    "rotator": "ser2net's rotator has no counterpart: each line has its own listeners",
    "access": "conserver's access is the listener option allow=CIDR here, and write/read name [users.NAME]",
    "group": "conserver's group has no counterpart: write/read name each [users.NAME]",
    "config": "conserver's config block has no counterpart: the gateway's options are its command line",
    "break": "conserver's break sequences have no counterpart: the escape menu's b and k KEY",
}


def foreignTable(key: str) -> Optional[str]:
    """What serialgw has for a top-level table named as in ser2net.yaml or conserver.cf; L{None} else."""
    return _TABLES.get(key.lower())
