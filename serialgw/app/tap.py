"""
C{twistd serialgw}: options and the service they make.  The one line the
options describe without C{--config} (and C{--ssh}'s people) is read in
L{serialgw.app.singleline}; here, the option table, what is checked after
parsing in both cases (shards, the gateway's own listeners, endpoints,
lock directories) and L{makeService}; C{--check}'s report is
L{serialgw.app.checkreport}.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import attrs
from twisted.logger import Logger
from twisted.python import usage

from serialgw import __version__
from serialgw.app.arguments import givenOnce, strayArguments, twice, unknownOption
from serialgw.app.checkreport import CheckReport
from serialgw.app.process import TwistdGatewayService, raiseFileLimit
from serialgw.app.reactor import DEFAULT_BUSY_POLL, GatewayReactor, installIfNoneChosen
from serialgw.app.service import GatewayService
from serialgw.app.singleline import (
    DEFAULT_BREAK_DURATION,
    DEFAULT_DEVICE,
    DEFAULT_PORT,
    SSH_OPTIONS,
    byOption,
    singleLine,
    singleSSH,
)
from serialgw.config.file import loadFile
from serialgw.config.gatewaylisteners import parseStatusListener, parseWatchAll
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.loops import watchAllLoop
from serialgw.config.parsers import parseBusyPoll
from serialgw.config.paths import absoluteListener, placeKeys
from serialgw.config.people import DEFAULT_HOST_KEY
from serialgw.config.placeholders import lineInOptions
from serialgw.config.shard import ownListeners, parseShard, selectLines
from serialgw.config.specs import DEFAULT_MAX_CLIENTS, ConfigError, quote
from serialgw.config.where import where
from serialgw.logflood import limitUnhandledDeferreds

log = Logger()

# What the single line's options say; with --config the file says it (an error).
LINE_OPTIONS = ("device", "port", "name", "serial", "baud", "bytesize", "parity", "stopbits", "break-duration",
                "signature", "coalesce", "max-clients", "open-string", "close-string", "dtr", "rts", "idle-dtr",
                "idle-rts", "pace", "pace-line", "lock-dir", "banner", "on-demand-linger", "idle-timeout", "idle-string",
                "init-command", "init-timeout")
LINE_FLAGS = ("xonxoff", "rtscts", "no-notices", "no-lock", "no-restore", "on-demand", "kick-old-user")


class Options(CheckReport):
    synopsis = "[options]"
    longdesc = ""
    examples = f"""\
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

    optParameters: list[list[Any]] = [
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
    optFlags: list[list[Any]] = [
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

    def getUsage(self, width: Optional[int] = None) -> str:
        text = usage.Options.getUsage(self, width) + "\n" + self.examples
        # pip installs the page into the environment (setup.cfg's data_files), where man looks only with
        # its bin on PATH: the README's .venv/bin/twistd has man say "No manual entry for serialgw".
        page = os.path.join(sys.prefix, "share", "man", "man8", "serialgw.8")
        if os.path.isfile(page):
            text = text.replace("\nman 8 serialgw\n", f"\nman 8 serialgw (or man -l {page})\n")
        return text

    # Under twistd a configuration error ends the process (see postOptions);
    # tests parse with exitOnError = False and get a UsageError.
    exitOnError = True

    def __init__(self) -> None:
        usage.Options.__init__(self)
        # An opt_ method's docstring is wrapped as it is: its indentation
        # would show inside a line of --help.
        self.docs = {name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()}
        self["listen"] = []
        self["watch-all"] = []
        # (A second value of an option noted; words that are no option: refused in postOptions, one line.)
        self._givenOnce = givenOnce(self)
        self._stray: tuple[str, ...] = ()

    def parseArgs(self, *words: str) -> None:
        self._stray = words

    def parseOptions(self, options: Optional[list[str]] = None) -> None:
        # (Each parse on its own: an Options parsed again, as a test does, is not "given twice".)
        for note in self._givenOnce:
            note.given = note.twice = None
        self._stray = ()
        try:
            usage.Options.parseOptions(self, options)
        except usage.UsageError as e:
            if not self.exitOnError:
                raise
            # What getopt refused (postOptions ends the process itself): one line, not twistd's page of usage.
            sys.stderr.write(f"serialgw: error: {unknownOption(str(e))}\n")
            raise SystemExit(2) from None

    def opt_listen(self, value: str) -> None:
        """
        One more listener, as for --port; repeatable, e.g.
        --listen raw+4445 --listen unix:/run/serialgw.sock
        """
        self["listen"].append(value)

    def opt_watch_all(self, value: str) -> None:
        """
        One view of all consoles: a listener (repeatable) whose read-only
        clients get every line's output, each output line prefixed with
        NAME: (with --config, the lines chosen in [watch-all], or all)
        """
        self["watch-all"].append(value)

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"serialgw {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        try:
            if (said := strayArguments(self._stray) or twice(self._givenOnce)) is not None:
                raise ConfigError(said)
            # Before anything imports the default reactor (checking an endpoint
            # string below does): twistd without --reactor runs ours.
            try:
                installIfNoneChosen()
            except ValueError as e:
                # (SERIALGW_ONESHOT or SERIALGW_READER: serialgw.app.oneshot)
                raise ConfigError(str(e)) from None
            shard = self["shardSpec"] = parseShard(self["shard"]) if self["shard"] is not None else None
            self["busyPoll"] = parseBusyPoll(self["busy-poll"]) if self["busy-poll"] is not None else None
            if self["busyPoll"]:
                from twisted.internet import reactor

                if not isinstance(reactor, GatewayReactor):
                    raise ConfigError(f"--busy-poll needs serialgw's reactor, not {type(reactor).__name__} "
                                      "(leave out twistd's --reactor, or give --busy-poll 0)")
            if (said := lineInOptions(self)) is not None:
                raise ConfigError(said)
            if shard is not None and self["config"] is None:
                raise ConfigError(f"--shard {self['shard']} needs --config: it shares a file's lines among processes")
            if self["config"] is not None:
                # Every option of the single line: the file says all that
                # (--name, --no-lock, ... were once taken and ignored).
                given = [name for name in LINE_OPTIONS if self[name] is not None]
                given += [name for name in LINE_FLAGS if self[name]] + (["listen"] if self["listen"] else [])
                if given:
                    raise ConfigError(f"--config and --{given[0]} do not go together: put the line in the file")
                ssh = [name for name in SSH_OPTIONS if self[name] is not None]
                if ssh:
                    raise ConfigError(f"--config and --{ssh[0]} do not go together: use [ssh] and [users.NAME] in the file")
                loaded = loadFile(self["config"], shards=shard.count if shard is not None else None)
                # Read again at SIGHUP, after twistd may have changed directory (--rundir).
                self["configPath"] = os.path.abspath(self["config"])
                self["allLines"], self["sshSpec"] = loaded.lines, loaded.ssh
                self["lines"] = selectLines(loaded.lines, shard, loaded.pins) if shard is not None else loaded.lines
                self["watchAllSpec"] = self["watchAllSpecInFile"] = loaded.watchAll
                if loaded.byName is not None and shard is not None:
                    raise ConfigError(f"--shard {self['shard']} and a [by-name] table do not go together: each process "
                                      "knows only its own lines, and one port cannot be every process's")
                self["byNameSpec"] = loaded.byName
                self["configFile"] = loaded
            else:
                self["sshSpec"], rights = singleSSH(self)
                self["lines"] = self["allLines"] = [attrs.evolve(singleLine(self), rights=rights)]
                self["watchAllSpec"] = None
            if self["watch-all"]:
                fromFile = self["watchAllSpec"]
                more = byOption("watch-all", parseWatchAll, self["watch-all"], list(fromFile.lines) if fromFile else [])
                more = attrs.evolve(more, listeners=tuple(absoluteListener(s, os.getcwd()) for s in more.listeners))
                listeners = (fromFile.listeners if fromFile else ()) + more.listeners
                self["watchAllByOption"] = more
                self["watchAllSpec"] = attrs.evolve(more, listeners=listeners)
                loop = watchAllLoop(self["allLines"], self["watchAllSpec"], shard.count if shard is not None else None,
                                    self["configFile"].pins if self["config"] is not None else None, placeKeys)
                if loop is not None:
                    raise ConfigError(f"--device {loop[1]}" if self["config"] is None else self.placed(
                        f"line {quote(loop[0])}: device {loop[1]}"))
            self["statusSpec"] = (absoluteListener(byOption("status", parseStatusListener, self["status"]), os.getcwd())
                                  if self["status"] is not None else None)
            # This process's own status, SSH and watch-all listeners: as
            # given, or with --shard, its copies (every process's copy must
            # be possible: the last one takes the highest port).
            own = self["statusSpec"], self["sshSpec"], self["watchAllSpec"]
            if shard is not None:
                ownListeners(shard.count - 1, *own)
                own = ownListeners(shard.index, *own)
            self["ownStatus"], self["ownSSH"], self["ownWatchAll"] = own
            if self["ownWatchAll"] is not None:
                for spec in self["ownWatchAll"].listeners:
                    _checkEndpoint(spec, sockets=not self["check"])
            for spec in self["byNameSpec"].listeners if self.get("byNameSpec") is not None else ():
                try:
                    _checkEndpoint(spec, sockets=not self["check"])
                except ConfigError as e:
                    raise ConfigError(f"[by-name]: {e}") from None
            # --check (--shard's too) reads every line's endpoints: every
            # process's ExecStartPre= catches the same mistakes.
            for line in self["allLines"] if self["check"] else self["lines"]:
                for spec in line.listeners:
                    try:
                        _checkEndpoint(spec, sockets=not self["check"])
                    except ConfigError as e:
                        # Which line, where in the file; and a systemd: socket a --shard process never has.
                        why = ("; a process of --shard has none (the template unit serialgw@.service has no socket "
                               "units): give the line a tcp: or unix: listener"
                               if shard is not None and "systemd passed no sockets" in str(e) else "")
                        raise ConfigError(self.placed(f"line {quote(line.name)}: {e}{why}")) from None
            if self["ownStatus"] is not None:
                _checkEndpoint(self["ownStatus"], sockets=not self["check"])
            if self["ownSSH"] is not None:
                _checkEndpoint(self["ownSSH"].listener, sockets=not self["check"])
            if not self["check"]:
                from serialgw.app.startchecks import firstClash, lockDirProblem, ownClash

                # Two lines on one port or path (every line of the file:
                # --shard's processes share the machine), refused before
                # anything is bound, as --check and a reload say it (the
                # second's bind said only "one of this gateway's own").
                clash = firstClash(self["allLines"])
                if clash is not None:
                    name, key, message = clash
                    source = self.get("configFile") if self["config"] is not None else None
                    raise ConfigError(message if source is None else
                                      f"{where(source.path, source.text, f'lines.{name}', key)}: {message}")
                # And this process's own listeners on a line's port or path, or on each other's.
                watchAll, byName = self["ownWatchAll"], self.get("byNameSpec")
                gateway: list[tuple[str, ListenerSpec]] = []
                gateway += [("the status endpoint", self["ownStatus"])] if self["ownStatus"] is not None else []
                gateway += [("watch-all", spec) for spec in (watchAll.listeners if watchAll is not None else ())]
                gateway += [("the SSH listener", self["ownSSH"].listener)] if self["ownSSH"] is not None else []
                gateway += [("by-name", spec) for spec in (byName.listeners if byName is not None else ())]
                ownTaken = ownClash(self["allLines"], gateway) if gateway else None
                if ownTaken is not None:
                    raise ConfigError(ownTaken)
                # A lock directory that is not there stops the start (with
                # --config too, where a device that cannot open does not).
                for line in self["lines"]:
                    problem = lockDirProblem(line, writable=True)
                    if problem is not None:
                        raise ConfigError(self.placed(f"line {quote(line.name)}: {problem}"))
            self["line"] = self["lines"][0] if self["lines"] else None
        except ConfigError as e:
            if self.exitOnError:
                # One line and exit status 2, not twistd's page of usage.
                sys.stderr.write(f"serialgw: error: {e}\n")
                raise SystemExit(2) from None
            raise usage.UsageError(str(e)) from None
        if self["check"] and self.exitOnError:
            # (Tests parse without exiting and call report() themselves.)
            raise SystemExit(self.report(sys.stdout, sys.stderr))


def _checkEndpoint(spec: ListenerSpec, sockets: bool = True) -> None:
    """
    A Twisted endpoint string is checked now (no I/O), so errors come before
    anything starts; a C{systemd:} one must name a socket systemd passed
    (with C{sockets} false, as for --check, that is left to a warning).
    """
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        return
    from twisted.internet import endpoints, reactor

    from serialgw.app.systemdsockets import systemdProblem

    problem = systemdProblem(spec.endpoint)
    if problem is not None:
        if sockets:
            raise ConfigError(f"listener {quote(spec.text or spec.endpoint)}: {problem}")
        return

    try:
        endpoints.serverFromString(reactor, spec.endpoint)
    except Exception as e:
        raise ConfigError(f"bad listener {quote(spec.text)}: {e}") from None


def makeService(options: Options, reactor: Optional[Any] = None) -> GatewayService:
    raiseFileLimit()
    if reactor is None:
        from twisted.internet import reactor
    if isinstance(reactor, GatewayReactor):
        limit = options.get("busyPoll")
        reactor.busyPoll.configure(DEFAULT_BUSY_POLL if limit is None else limit)
    status = options["ownStatus"].endpoint if options["ownStatus"] is not None else None
    service = TwistdGatewayService(options["lines"], reactor=reactor, status=status, ssh=options.get("ownSSH"),
                                    watchAll=options.get("ownWatchAll"),
                                    waitForDevices=options["config"] is not None or bool(options["wait-for-device"]))
    service.configPath = options.get("configPath")
    service.source = options.get("configFile")  # (FILE:LINE for what the start and reloads find on disk)
    if service.source is not None:
        service.listeners.handshakes.sessionsPerPerson = service.source.tlsSessionsPerPerson
    service.shard = shard = options.get("shardSpec")
    if shard is not None:
        total = len(options["allLines"])
        if options["lines"]:
            log.info("--shard {shard}: this process serves {count} of the {total} line(s) of {path}", shard=str(shard),
                     count=len(options["lines"]), total=total, path=options["config"])
        else:
            log.warn("--shard {shard}: none of the {total} line(s) of {path} is this process's: it serves its "
                     "status endpoint alone until a reload adds one", shard=str(shard), total=total,
                     path=options["config"])
    service.watchAllInFile = options.get("watchAllSpecInFile")
    service.byName = options.get("byNameSpec")
    service.watchAllByOption = options.get("watchAllByOption")
    service.runAs = runAs(options.parent)
    from serialgw.app.logs import twistdObserver

    service.logObserver = twistdObserver(options.parent)
    if options.parent is not None:
        # (Under twistd: a test's service leaves Twisted's module as it is.)
        limitUnhandledDeferreds()
    return service


def runAs(twistdOptions: Any) -> tuple[int, int]:
    """
    The user and group twistd runs the gateway as once everything is open
    (-u, -g; a group left out is the user's, as twistd takes it); -1 where
    it does not change.
    """
    if twistdOptions is None:
        return (-1, -1)
    uid, gid = twistdOptions.get("uid"), twistdOptions.get("gid")
    if uid is not None and gid is None:
        import pwd

        gid = pwd.getpwuid(uid).pw_gid
    return (-1 if uid is None else int(uid), -1 if gid is None else int(gid))
