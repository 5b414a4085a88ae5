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
from serialgw.app.optiontable import EXAMPLES, LINE_FLAGS, LINE_OPTIONS, OPT_FLAGS, OPT_PARAMETERS
from serialgw.app.process import TwistdGatewayService, raiseFileLimit
from serialgw.app.reactor import DEFAULT_BUSY_POLL, GatewayReactor, installIfNoneChosen
from serialgw.app.service import GatewayService
from serialgw.app.singleline import SSH_OPTIONS, byOption, singleLine, singleSSH
from serialgw.config.file import loadFile
from serialgw.config.gatewaylisteners import parseStatusListener, parseWatchAll
from serialgw.config.listenerspecs import ListenerKind, ListenerSpec
from serialgw.config.loops import watchAllLoop
from serialgw.config.parsers import parseBusyPoll
from serialgw.config.paths import absoluteListener, placeKeys
from serialgw.config.placeholders import lineInOptions
from serialgw.config.shard import ownListeners, parseShard, selectLines
from serialgw.config.specs import ConfigError, quote
from serialgw.config.where import where
from serialgw.logflood import limitUnhandledDeferreds

log = Logger()


class Options(CheckReport):
    synopsis = "[options]"
    longdesc = ""
    examples = EXAMPLES
    optParameters: list[list[Any]] = OPT_PARAMETERS
    optFlags: list[list[Any]] = OPT_FLAGS

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
