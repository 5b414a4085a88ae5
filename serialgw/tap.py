"""
C{twistd serialgw}: options and the service they make.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import attrs
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from serialgw import __version__
from serialgw.config import (
    DEFAULT_MAX_CLIENTS,
    SINGLE_SETTINGS,
    ConfigError,
    LineConfig,
    ListenerKind,
    ListenerSpec,
    SerialSettings,
    applySingle,
    isDecimal,
    parseCoalesce,
    parseCompact,
    parseDevice,
)
from serialgw.configfile import loadConfig
from serialgw.endpoints import parseListener
from serialgw.reactor import installIfNoneChosen
from serialgw.service import GatewayService, StartupError

log = Logger()

DEFAULT_DEVICE = "pty:/tmp/serialgw0"
DEFAULT_PORT = "tcp:4444:interface=127.0.0.1"


class Options(usage.Options):
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
  twistd -n serialgw -d /dev/ttyUSB0 -s 9600,7E1,rtscts --listen raw+tcp:5000:interface=::1

Listeners (--port, --listen): [PROTOCOL+]ENDPOINT, where PROTOCOL is telnet
(default; with RFC 2217 com port control), telnet,no-rfc2217 or raw, and
ENDPOINT is a port number (TCP, all interfaces) or a Twisted endpoint string
(tcp:4444:interface=127.0.0.1, tcp6:4444, unix:/run/serialgw.sock, ...).
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
        ["name", None, None, "Line name used in logs [default: the device's name]"],
        ["serial", "s", None,
         "Serial settings in one: BAUD[,DATABITS PARITY STOPBITS][,rtscts|xonxoff], "
         "e.g. 115200,8N1 or 9600,7E1,rtscts; the single options below override it"],
        ["baud", None, None, "Baud rate, e.g. 115200 [default: 115200]"],
        ["bytesize", None, None, "Data bits: 5, 6, 7 or 8 [default: 8]"],
        ["parity", None, None, "Parity: N, E, O, M or S (none/even/odd/mark/space) [default: N]"],
        ["stopbits", None, None, "Stop bits: 1, 1.5 or 2 [default: 1]"],
        ["break-duration", None, "250",
         "How long a BREAK holds the line, in milliseconds, e.g. 500"],
        ["signature", None, None,
         "RFC 2217 SIGNATURE text [default: serialgw VERSION LINE]"],
        ["config", "c", None,
         "A TOML file of many lines ([defaults], [lines.NAME] with device, serial, listen, ...); "
         "not together with the single-line options"],
        ["coalesce", None, None,
         "Fewer, larger packets: MIN_MS,MAX_MS[,STRING], e.g. 2,20 or 5,50,\\n (wait MIN after the last "
         "byte, at most MAX after the first, or until STRING) [default: off, every read is sent at once]"],
        ["max-clients", None, None,
         "Network clients the line takes at once; more are refused at connect; 0: no limit "
         f"[default: {DEFAULT_MAX_CLIENTS}]"],
        ["status", None, None,
         "An endpoint for the status page (HTTP, JSON), e.g. tcp:8440:interface=127.0.0.1"],
    ]
    optFlags: list[list[Any]] = [
        ["xonxoff", None, "Software flow control (XON/XOFF) on the serial line"],
        ["rtscts", None, "Hardware flow control (RTS/CTS) on the serial line"],
        ["no-notices", None,
         "No device down/up notices in telnet sessions (RFC 2217 clients still see CD drop)"],
        ["no-restore", None,
         "Keep what the last RFC 2217 client set when it leaves (default: restore the configured settings)"],
        ["check", None,
         "Check the configuration (options or --config FILE) without opening, binding or creating "
         "anything; print what is wrong and exit 0 (usable, perhaps with warnings) or 2 (errors)"],
    ]

    def getUsage(self, width: Optional[int] = None) -> str:
        return usage.Options.getUsage(self, width) + "\n" + self.examples

    # Under twistd a configuration error ends the process (see postOptions);
    # tests parse with exitOnError = False and get a UsageError.
    exitOnError = True

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["listen"] = []

    def opt_listen(self, value: str) -> None:
        """
        One more listener, as for --port; repeatable, e.g.
        --listen raw+4445 --listen unix:/run/serialgw.sock
        """
        self["listen"].append(value)

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"serialgw {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        # Before anything imports the default reactor (checking an endpoint
        # string below does): twistd without --reactor runs ours.
        installIfNoneChosen()
        try:
            if self["config"] is not None:
                given = [name for name in ("device", "port", "serial", "baud", "bytesize", "parity", "stopbits",
                                           "max-clients")
                         if self[name] is not None] + (["listen"] if self["listen"] else [])
                if given:
                    raise ConfigError(f"--config and --{given[0]} do not go together: put the line in the file")
                self["lines"] = loadConfig(self["config"])
            else:
                self["lines"] = [self._lineConfig()]
            for line in self["lines"]:
                for spec in line.listeners:
                    _checkEndpoint(spec)
            if self["status"] is not None:
                _checkEndpoint(parseListener(self["status"]))
            self["line"] = self["lines"][0]
        except ConfigError as e:
            if self.exitOnError:
                # One line and exit status 2, not twistd's page of usage.
                sys.stderr.write(f"serialgw: error: {e}\n")
                raise SystemExit(2) from None
            raise usage.UsageError(str(e)) from None
        if self["check"]:
            raise SystemExit(self.report(sys.stdout, sys.stderr))

    def report(self, out: Any, err: Any) -> int:
        """--check: what is wrong across lines and on disk; the exit status (0 or 2)."""
        from serialgw.check import checkLines

        lines = self["lines"]
        status = parseListener(self["status"]) if self["status"] is not None else None
        errors, warnings = checkLines(lines, status)
        for warning in warnings:
            err.write(f"serialgw: warning: {warning}\n")
        for error in errors:
            err.write(f"serialgw: error: {error}\n")
        source = self["config"] or "options"
        if errors:
            err.write(f"serialgw: {source}: {len(errors)} error(s)\n")
            return 2
        listeners = sum(len(line.listeners) for line in lines)
        extra = f", {len(warnings)} warning(s)" if warnings else ""
        out.write(f"serialgw: {source}: {len(lines)} line(s), {listeners} listener(s): OK{extra}\n")
        return 0

    def _lineConfig(self) -> LineConfig:
        settings = SerialSettings()
        if self["serial"] is not None:
            settings = parseCompact(self["serial"], settings)
        for key in SINGLE_SETTINGS:
            if self[key] is not None:
                settings = applySingle(settings, key, self[key])
        if self["xonxoff"] or self["rtscts"]:
            settings = attrs.evolve(settings, xonxoff=settings.xonxoff or bool(self["xonxoff"]),
                                    rtscts=settings.rtscts or bool(self["rtscts"]))

        device = parseDevice(self["device"] or DEFAULT_DEVICE)
        texts = ([self["port"]] if self["port"] is not None else []) + list(self["listen"])
        if not texts:
            texts = [DEFAULT_PORT]
        listeners = tuple(parseListener(text) for text in texts)

        try:
            milliseconds = float(self["break-duration"])
        except ValueError:
            milliseconds = -1
        if not 0 < milliseconds <= 10000:
            raise ConfigError(
                f"break duration must be 1 to 10000 milliseconds, not {self['break-duration']!r}"
            )
        name = self["name"] or _lineName(device.describe())
        maxClients = DEFAULT_MAX_CLIENTS
        if self["max-clients"] is not None:
            text = str(self["max-clients"]).strip()
            if not isDecimal(text):
                raise ConfigError(f"--max-clients must be a number >= 0 (0: no limit), not {self['max-clients']!r}")
            maxClients = int(text)
        coalesce = parseCoalesce(self["coalesce"] or "off")
        return LineConfig(
            name=name,
            device=device,
            settings=settings,
            listeners=listeners,
            breakDuration=milliseconds / 1000.0,
            restoreSettings=not self["no-restore"],
            coalesceMin=coalesce[0],
            coalesceMax=coalesce[1],
            coalesceOn=coalesce[2],
            signature=self["signature"],
            notices=not self["no-notices"],
            maxClients=maxClients,
        )


def _checkEndpoint(spec: ListenerSpec) -> None:
    """A Twisted endpoint string is checked now (no I/O), so errors come before anything starts."""
    if spec.kind is not ListenerKind.LISTEN or spec.tls is not None:
        return
    from twisted.internet import endpoints, reactor

    try:
        endpoints.serverFromString(reactor, spec.endpoint)
    except Exception as e:
        raise ConfigError(f"bad listener {spec.text!r}: {e}") from None


def _lineName(device: str) -> str:
    if device.startswith("pty:"):
        return os.path.basename(device[4:]) or "pty"
    if device.startswith("/dev/"):
        return device[len("/dev/"):]
    return os.path.basename(device) or device


class _TwistdGatewayService(GatewayService):
    """
    Under twistd, a start-up failure is one line on stderr and exit status 1,
    not a traceback; with a configuration file, SIGHUP reloads it.
    """

    configPath: Optional[str] = None
    # twistd's log observer, made by serialgw.logs (None: twistd's own).
    logObserver: Any = None

    def setServiceParent(self, parent: Any) -> Any:
        # twistd uses the application's ILogObserver component unless
        # --logger is given: the journal's format, or its own tidied.
        if self.logObserver is not None and hasattr(parent, "setComponent"):
            from twisted.logger import ILogObserver

            parent.setComponent(ILogObserver, self.logObserver)
        return GatewayService.setServiceParent(self, parent)

    def privilegedStartService(self) -> None:
        if self.configPath is not None:
            # Before anything listens: a SIGHUP must never find the default action.
            import signal

            def hangup(signum: int, frame: Any) -> None:
                self.reactor.callFromThread(self.reloadFile)

            signal.signal(signal.SIGHUP, hangup)
        else:
            # systemctl reload (Type=notify-reload) sends SIGHUP: with nothing
            # to re-read, say so rather than die of the default action.
            import signal

            def nothing(signum: int, frame: Any) -> None:
                self.reactor.callFromThread(self.reloadNothing)

            signal.signal(signal.SIGHUP, nothing)
        try:
            GatewayService.privilegedStartService(self)
        except StartupError as e:
            raise SystemExit(f"serialgw: error: {e}") from None

    def startService(self) -> None:
        GatewayService.startService(self)
        # What start-up made lives as long as the process: out of the
        # collector's sight, so full collections stay short while serving.
        import gc

        gc.collect()
        gc.freeze()

    def reloadNothing(self) -> None:
        log.info("SIGHUP: no configuration file to re-read (the options stay; --config FILE can be reloaded)")
        self.notifier.reloading()
        self.notifier.reloaded("nothing to reload without --config")

    def reloadFile(self) -> Any:
        """SIGHUP: read the file again and apply it; systemd hears RELOADING=1, then READY=1."""
        assert self.configPath is not None
        self.notifier.reloading()
        try:
            configs = loadConfig(self.configPath)
        except ConfigError as e:
            log.error("reload refused, the running configuration stays: {reason}", reason=str(e))
            self.notifier.reloaded("reload refused, see the log")
            return defer.succeed(None)

        def done(changes: Any) -> Any:
            if isinstance(changes, dict):
                self.notifier.reloaded("reloaded: " + ", ".join(f"{len(v)} {k}" for k, v in changes.items()))
            else:
                self.notifier.reloaded("reload failed, see the log")
            return changes

        return self.reload(configs).addBoth(done)


def raiseFileLimit() -> None:
    """
    Many lines mean many descriptors: raise the soft RLIMIT_NOFILE to the
    hard limit (Twisted's epoll reactor has no 1024 ceiling).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still needs a number for the soft one; the
    # hard limit itself is left as it is.
    wanted = (1 << 20) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as e:
            log.warn("cannot raise the descriptor limit from {soft} to {wanted}: {reason}", soft=soft,
                     wanted=wanted, reason=str(e))


def makeService(options: Options, reactor: Optional[Any] = None) -> GatewayService:
    raiseFileLimit()
    status = parseListener(options["status"]).endpoint if options["status"] else None
    service = _TwistdGatewayService(options["lines"], reactor=reactor, status=status)
    service.configPath = options["config"]
    from serialgw.logs import twistdObserver

    service.logObserver = twistdObserver(getattr(options, "parent", None))
    return service
