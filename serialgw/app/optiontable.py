"""
C{twistd serialgw}'s option table: each option's name, letter, default and
help (L{OPT_PARAMETERS}, L{OPT_FLAGS}), the examples ending C{--help}
(L{EXAMPLES}), and which options describe the single line (L{LINE_OPTIONS},
L{LINE_FLAGS}: not with C{--config}).  L{serialgw.app.tap.Options} is made
of them; what they mean is read there and in L{serialgw.app.singleline}.
"""

from __future__ import annotations

from typing import Any

from serialgw import __version__
from serialgw.app.reactor import DEFAULT_BUSY_POLL
from serialgw.app.singleline import DEFAULT_BREAK_DURATION, DEFAULT_DEVICE, DEFAULT_PORT
from serialgw.config.people import DEFAULT_HOST_KEY
from serialgw.config.specs import DEFAULT_MAX_CLIENTS

# What the single line's options say; with --config the file says it (an error).
LINE_OPTIONS = ("device", "port", "name", "serial", "baud", "bytesize", "parity", "stopbits", "break-duration",
                "signature", "coalesce", "max-clients", "open-string", "close-string", "dtr", "rts", "idle-dtr",
                "idle-rts", "pace", "pace-line", "lock-dir", "banner", "on-demand-linger", "idle-timeout", "idle-string",
                "init-command", "init-timeout")
LINE_FLAGS = ("xonxoff", "rtscts", "no-notices", "no-lock", "no-restore", "on-demand", "kick-old-user")

EXAMPLES = f"""\
Bridge a serial line to network clients (serialgw {__version__}).

Examples:
  twistd -n serialgw
      a pty at /tmp/serialgw0 (a program opens it as its serial port),
      telnet on 127.0.0.1:4444
  twistd -n serialgw --port 4444 --device /dev/ttyS0 --baud 115200
      /dev/ttyS0 at 115200 8N1, telnet on port 4444 of every interface;
      `telnet HOST 4444`, then `^]` `send brk` and `h`: magic SysRq
  twistd -n serialgw -d /dev/ttyUSB0 -s 9600,7E1,rtscts --listen 'raw+tcp:5000:interface=\\:\\:1'

Listeners (--port, --listen, listen = in a file), in brief:
  [PROTOCOL[,OPTION...]+]ENDPOINT
    PROTOCOL  telnet (default; with RFC 2217 com port control) or raw
    OPTION    ro, allow=CIDR;CIDR, outbuf=BYTES, policy=drop|disconnect|block,
              idle=SECONDS, keepalive, nodelay, no-rfc2217, escape=^X|off,
              banner, replay, notices, no-notices
    ENDPOINT  a port number (TCP, all interfaces): 4444
              a Twisted endpoint: tcp:4444:interface=127.0.0.1, tcp6:4444,
                unix:/run/serialgw/a.sock, systemd:domain=INET6:index=0
              TLS: tls:4443:cert=FILE:key=FILE[:ca=FILE]
              a QEMU chardev: telnet::4444,server,nowait  tcp::4444,server
                tcp:HOST:PORT (dial out)  unix:PATH,server,nowait
                udp::4555@4556  mon:telnet::4444,server,nowait (menu on ^A)
                pty:/tmp/ttyV0  file:PATH  pipe:PATH  stdio
  e.g. --listen telnet,ro,allow=10.0.0.0/8+4445

Everything else (devices, the TOML file, the escape menu, signals, systemd):
man 8 serialgw
"""

OPT_PARAMETERS: list[list[Any]] = [
    ["device", "d", None,
     "Serial device: a tty path (/dev/ttyS0, /dev/serial/by-id/...); pty:LINK, "
     "a pseudo-terminal made by the gateway with a symlink LINK to it; or a console "
     "elsewhere: telnet:HOST:PORT, rfc2217://HOST:PORT, tcp:HOST:PORT, unix:PATH "
     f"[default: {DEFAULT_DEVICE}]"],
    ["port", "p", None,
     "Listener: a TCP port number on all interfaces (4444), or "
     "[telnet+|raw+]ENDPOINT (tcp:4444:interface=127.0.0.1, raw+unix:/run/x.sock) "
     f"[default, with no --listen either: {DEFAULT_PORT}]"],
    ["name", None, None, "The line's name in logs, on the status page and as the SSH user name that picks it: "
                         "letters, digits, '.', '_' and '-' [default: the device's name]"],
    ["serial", "s", None,
     "Serial settings in one: BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], "
     "e.g. 115200,8N1 or 9600,7E1,rtscts; the single options below override it"],
    ["baud", None, None, "Baud rate, e.g. 115200 [default: 115200]"],
    ["bytesize", None, None, "Data bits: 5, 6, 7 or 8 [default: 8]"],
    ["parity", None, None, "Parity: N, E, O, M or S (none/even/odd/mark/space) [default: N]"],
    ["stopbits", None, None, "Stop bits: 1, 1.5 or 2 [default: 1]"],
    ["break-duration", None, None,
     f"How long a BREAK holds the line, in milliseconds, e.g. 500 [default: {DEFAULT_BREAK_DURATION}]"],
    ["signature", None, None,
     "RFC 2217 SIGNATURE text [default: serialgw VERSION LINE]"],
    ["banner", None, None,
     "A greeting of your own for telnet and SSH sessions (and listeners with the banner option), in place of "
     "the banner option's: escapes \\r \\n \\t \\\\, placeholders {line} {device} {settings}; at most 512 characters"],
    ["config", "c", None,
     "A TOML file of many lines ([defaults], [lines.NAME] with device, serial, listen, ...); "
     "not together with the single-line options"],
    ["shard", None, None,
     "Serve one share of --config's lines: I/N, process I (from 0) of N, e.g. 0/2 (systemd: "
     "serialgw@0-2.service); a line goes by a hash of its name, or by its shard = K key; the status, "
     "SSH and watch-all listeners are per process: PORT+I, or a unix PATH.I"],
    ["coalesce", None, None,
     "Fewer, larger packets: MIN_MS,MAX_MS[,STRING], e.g. 2,20 or 5,50,\\n (wait MIN after the last "
     "byte, at most MAX after the first, or until STRING) [default: off, every read is sent at once]"],
    ["max-clients", None, None,
     "Network clients the line takes at once; more are refused at connect; 0: no limit "
     f"[default: {DEFAULT_MAX_CLIENTS}]"],
    ["open-string", None, None,
     "Written to the device when the first client attaches (ser2net's openstr): escapes \\r \\n "
     "\\t \\e \\0 \\xNN \\\\, and \\b sends a break there, e.g. '\\r\\b'"],
    ["close-string", None, None,
     "Written to the device when the last client leaves (ser2net's closestr); escapes as --open-string"],
    ["dtr", None, None, "DTR while clients are attached: on or off [default: as the device opens, on]"],
    ["rts", None, None, "RTS while clients are attached: on or off [default: as the device opens, on]"],
    ["idle-dtr", None, None, "DTR while no client is attached: on or off [default: as --dtr]"],
    ["idle-rts", None, None, "RTS while no client is attached: on or off [default: as --rts]"],
    ["pace", None, None,
     "Slow devices: at least MS milliseconds between characters written to the device "
     "(timers; output to clients is not affected) [default: 0, off]"],
    ["pace-line", None, None, "At least MS milliseconds after each CR written to the device [default: 0, off]"],
    ["on-demand-linger", None, None,
     "With --on-demand: SECONDS (or 90s, 5m, 1h) the device stays open after the last client left, so that "
     "one coming back (a health check) finds it open [default: 0, closed at once]"],
    ["idle-timeout", None, None,
     "Write --idle-string to the device once nothing was read from it nor written to it for SECONDS (or 5m, "
     "1h; conserver's idletimeout) [default: 0, never]"],
    ["idle-string", None, None,
     "What --idle-timeout writes (conserver's idlestring); escapes as --open-string [default: \\n]"],
    ["init-command", None, None,
     "Run CMD by /bin/sh -ec each time the device comes up, its stdin the device's output, its stdout written "
     "to the device, people's typing held until it ends (conserver's initcmd) [default: none]"],
    ["init-timeout", None, None,
     "Kill --init-command after SECONDS (or 5m, 1h; 1 s to a day) [default: 60]"],
    ["lock-dir", None, None,
     "Where a local tty's UUCP lock file (LCK..NAME, as minicom, cu and ser2net use) is made "
     "[default: /var/lock]"],
    ["status", None, None,
     "An endpoint for the status page (HTTP, JSON), e.g. tcp:8440:interface=127.0.0.1"],
    ["ssh", None, None,
     "An SSH listener, [OPTION,...+]ENDPOINT, e.g. tcp:2222:interface=127.0.0.1 or "
     "banner,escape=^]+tcp:2222; people log in with keys: ssh -p 2222 LINE@HOST (see --name)"],
    ["ssh-host-key", None, None,
     "The SSH host key, made (ed25519, mode 0600) if the file does not exist "
     f"[default: {DEFAULT_HOST_KEY}]"],
    ["authorized-keys", None, None,
     "OpenSSH public keys (authorized_keys format) that may type on the line over SSH; "
     "each key's comment names its person"],
    ["readonly-keys", None, None,
     "OpenSSH public keys that may only watch the line over SSH"],
    ["busy-poll", None, None,
     "Poll up to USEC microseconds for the next event before sleeping, adaptively (only while "
     "events come within that of each other: an answer on its way is caught without a wake-up); "
     f"0: off; with serialgw's reactor only [default: {round(DEFAULT_BUSY_POLL * 1e6)}]"],
]
OPT_FLAGS: list[list[Any]] = [
    ["xonxoff", None, "Software flow control (XON/XOFF) on the serial line"],
    ["rtscts", None, "Hardware flow control (RTS/CTS) on the serial line"],
    ["no-notices", None,
     "No device down/up notices in telnet sessions (RFC 2217 clients still see CD drop)"],
    ["no-lock", None,
     "No UUCP lock file for a local tty (default: take /var/lock/LCK..NAME while the device is open)"],
    ["no-restore", None,
     "Keep what the last RFC 2217 client set when it leaves (default: restore the configured settings)"],
    ["kick-old-user", None,
     "A client connecting to a full line (--max-clients) takes the place of the oldest, who is told why and "
     "disconnected (ser2net's kickolduser; the file's kick-old-user = true)"],
    ["on-demand", None,
     "Open a local tty only while a client is connected, and close it when the last one leaves, so that "
     "other programs may use it meanwhile (the file's on-demand = true)"],
    ["wait-for-device", None,
     "A --device that cannot be opened at start is no error: the line starts down and the device is "
     "tried again with backoff, as when it vanishes (--config does this for every line)"],
    ["check", None,
     "Check the configuration (options or --config FILE) without opening, binding or creating "
     "anything; print what is wrong and exit 0 (usable, perhaps with warnings) or 2 (errors)"],
]
