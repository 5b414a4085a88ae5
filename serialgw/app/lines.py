"""
A line from its configuration: its device (a local tty or pty, opened
again with backoff when it vanishes or is locked, or a console elsewhere),
the L{Line} set up as the configuration says, and a running line retuned
in place by a reload (its device and sessions stay).
"""

from __future__ import annotations

import errno
import os
from functools import partial
from typing import Any, Callable, Mapping, Optional

from twisted.internet.interfaces import IReactorProcess, IReactorThreads
from twisted.logger import Logger

from serialgw.app.binding import StartupError, keyed
from serialgw.app.startchecks import unixNameProblem
from serialgw.clients.factory import applyListenerRights
from serialgw.clients.linetap import LineTap
from serialgw.clients.local import FileClient
from serialgw.clients.pipeopen import PipeOpening
from serialgw.clients.ptylink import OWN_PTYS, PtyClient
from serialgw.config.baudrates import unusualBaud
from serialgw.config.logspec import LogSpec
from serialgw.config.specs import LineConfig, quote
from serialgw.devices import reopenpool
from serialgw.devices.absent import AbsentPort
from serialgw.devices.device import SerialDevice
from serialgw.devices.errors import DeviceError, DeviceLocked
from serialgw.devices.ports import PtyPort, TtyPort
from serialgw.devices.ptyslave import otherPtyProblem
from serialgw.devices.remote import RemoteDevice
from serialgw.devices.reopen import OPENING
from serialgw.devices.reopenpool import FirstOpen, deviceOpens
from serialgw.interfaces import RESTING, IPort
from serialgw.line.hub import Line

log = Logger()


def makeDevice(
    config: LineConfig,
    reactor: Any,
    openPort: Callable[..., IPort],
    retryPolicy: Callable[[int], float],
    reopenPolicy: Callable[[int], float],
    waitForDevices: bool,
    offThread: bool = False,
    begun: Optional[FirstOpen] = None,
    ownSockets: Optional[Callable[[], Mapping[str, str]]] = None,
) -> Any:
    """
    A line's device.  A local device that cannot be opened raises its
    L{DeviceError}, unless C{waitForDevices}: then (and when another
    program holds its lock) the device starts down and is tried again with
    C{reopenPolicy}.  With C{offThread} (and C{waitForDevices}) a local tty
    (or a pty: device, its link) is not opened here but off the reactor
    thread (an open can hang: a hung USB adapter, a driver waiting for
    carrier, a link's directory on a mount that does not answer): the device starts down
    (L{OPENING}) and is up when the open returns, a turn later if it
    returns at once.  C{begun}: its first open, begun at start (see
    L{firstOpens}): its outcome taken as that of an open made here, or, not
    returned yet, the device starts down until it does.  C{ownSockets}: the
    names the line's own unix listeners (and the watch-all ones watching
    it) are bound to, each with what it is, which its remote device must
    not reach (a loop).
    """
    if config.device.remote:
        problem = unixNameProblem(config.device.path) if config.device.kind == "unix" else None
        if problem is not None:
            raise DeviceError(f"device {quote(config.device.describe())}: {problem}")
        log.info("line {line}: device {device}, a console elsewhere", line=config.name,
                 device=config.device.describe())
        return RemoteDevice(config.device, reactor, config.breakDuration, config.settings,
                            retryPolicy=retryPolicy, ownSockets=ownSockets)
    lockDir = _lockDir(config)

    # The device, once made: the pty slave its port last was (see otherPtyProblem).
    made: list[SerialDevice] = []

    # A device that vanishes (USB unplugged, a pty's far end gone) is
    # opened again at the same path (a pty: a new one behind the link).
    def opener(spec: Any = config.device, settings: Any = config.settings) -> IPort:
        # Not another program's pty given the number of the line's, nor (again=True) another session's terminal.
        had = getattr(made[0].port, "node", None) if made else None
        problem = otherPtyProblem(spec.path, had) if spec.kind == "tty" else None
        if problem is not None:
            raise DeviceError(problem)
        port = openPort(spec, settings, lockDir, True)
        loop = ownPtyLoop(config, port)
        if loop is not None:
            port.close()
            raise DeviceError(loop)
        return port

    def absent(e: DeviceError) -> SerialDevice:
        # Down from the start, opened again with backoff.
        made.append(SerialDevice(AbsentPort(config.device.describe(), config.settings), reactor,
                                 config.breakDuration, opener=opener, reopenPolicy=reopenPolicy,
                                 downReason=str(e), lineName=config.name))
        return made[0]

    if config.opensOnDemand:
        # Closed until a client wants it (see serialgw.line.ondemand): nothing opened now.
        log.info("line {line}: device {device}, opened on demand (while a client is connected)", line=config.name,
                 device=config.device.describe())
        return absent(DeviceError(RESTING))
    if offThread and waitForDevices and config.device.kind in ("tty", "pty"):
        device = absent(DeviceError(OPENING))
        # The first open: no pty slave refused as a terminal (see openPort's again).
        device.reopener.openNow(lambda: openPort(config.device, config.settings, lockDir)).addCallback(
            _firstOpenOver, config, device)
        return device
    if begun is not None and not begun.done:
        seconds = reopenpool.START_WAIT  # (what the start waited)
        if not waitForDevices:
            # A device that cannot be opened: the start fails (what it opens later is closed).
            dropFirstOpens({config.name: begun})
            raise DeviceError(f"cannot open device {config.device.path!r}: the open has not returned in {seconds:g} s "
                              + ("(a hung adapter or driver?)" if config.device.kind == "tty" else
                                 "(its link's directory on a file system that does not answer?)"))
        device = absent(DeviceError(OPENING))
        log.warn("line {line}: opening the device {device} has not returned in {seconds:g} s; the line starts down and comes "
                 "up when it does", line=config.name, device=config.device.describe(),
                 seconds=seconds)
        device.reopener.adopt(begun.deferred, begun.since).addCallback(_firstOpenOver, config, device, begun.since)
        return device
    try:
        port = begun.port() if begun is not None else openPort(config.device, config.settings, lockDir)
    except DeviceLocked as e:
        # Someone else has the line (cu, minicom): down until they let go.
        device = absent(e)
        device.reopener.noteFailure(e)
        return device
    except DeviceError as e:
        if not waitForDevices:
            if os.strerror(errno.ENOENT) in str(e) and config.device.path.startswith("/dev/"):
                # (A USB adapter not plugged in yet; a path elsewhere is more likely mistyped.)
                raise DeviceError(f"{e} (not there now: --wait-for-device starts the line down and opens it once it "
                                  "is there)") from None
            raise
        _startsDown(config, e)
        return absent(e)
    _opened(config, port)
    made.append(SerialDevice(port, reactor, config.breakDuration, opener=opener, reopenPolicy=reopenPolicy,
                             lineName=config.name))
    return made[0]


def ownPtyLoop(config: LineConfig, port: IPort) -> Optional[str]:
    """
    Why a tty just opened is refused: the pty of one of its own line's
    pty: listeners, or of another line's whose device leads back to this
    line's (symlinks made since the file was read lead there: the check
    when the file is read saw none), whose client would hand what is
    written to it back to the device for ever; or None.
    """
    pty = _ownPty(port)
    first, ring = pty, list[PtyClient]()
    while pty is not None and pty.line.name != config.name:
        if len(ring) > len(OWN_PTYS):
            return None  # (a loop among other lines, not through this one: theirs to refuse)
        device = pty.line.device
        ring.append(pty)
        pty = _ownPty(device.port) if isinstance(device, SerialDevice) and device.up else None
    if pty is None or first is None:
        return None  # (another line's, whose device does not lead back: a null modem)
    if not ring:
        return (f"cannot open device {config.device.path!r}: it is {pty.slaveName}, the pty of this line's own pty: "
                f"listener {pty.peer!r}: what is written to it would come back to it for ever (a loop)")
    path = "".join(f", and line {quote(a.line.name)}'s device is "
                   + (f"line {quote(b.line.name)}'s" if b is not pty else "this line's")
                   + f" pty: listener {quote(b.peer)}" for a, b in zip(ring, ring[1:] + [pty], strict=True))
    return (f"cannot open device {config.device.path!r}: it is {first.slaveName}, the pty of line "
            f"{quote(first.line.name)}'s pty: listener {quote(first.peer)}{path}: what is written to it would come "
            "back to it for ever (a loop)")


def _ownPty(port: Any) -> Optional[PtyClient]:
    """The pty: listener of this process whose pty C{port} is (a tty opened), or None."""
    if not isinstance(port, TtyPort):
        return None
    try:
        rdev = os.fstat(port.fileno()).st_rdev
    except (OSError, ValueError):
        return None
    return OWN_PTYS.get(rdev)


def _lockDir(config: LineConfig) -> Optional[str]:
    # A local tty takes its UUCP lock (a pty made here, none).
    return config.lockDir if config.lock and config.device.kind == "tty" else None


def firstOpens(configs: list[LineConfig], reactor: Any, openPort: Callable[..., IPort]) -> dict[str, FirstOpen]:
    """
    At start (before the reactor runs), with a reactor with threads: the
    local ttys and pty: devices of C{configs} opened at once off this
    thread (an open can hang; a pty's link, on a mount that does not
    answer), waited for up to START_WAIT s together; each line's by name (see
    L{makeDevice}'s C{begun}: one not returned by then starts down, or,
    without C{waitForDevices}, fails the start).  Otherwise none: each line
    opens its device in turn.
    """
    if not IReactorThreads.providedBy(reactor):
        return {}
    ttys = {config.device.describe(): config for config in configs
            if config.device.kind in ("tty", "pty") and not config.opensOnDemand}
    begun = deviceOpens.openAll(reactor, {
        name: partial(openPort, config.device, config.settings, _lockDir(config)) for name, config in ttys.items()})
    return {config.name: begun[name] for name, config in ttys.items()}


def dropFirstOpens(begun: dict[str, FirstOpen]) -> None:
    """The first opens of lines a failed start did not make: what they opened (or open later) is closed."""
    for first in begun.values():
        if not first.done:
            first.deferred.addCallbacks(lambda port: port.close(), lambda _: None)
        elif not isinstance(first.result, BaseException):
            first.result.close()


def _startsDown(config: LineConfig, error: BaseException) -> None:
    log.warn("line {line}: {reason}; the line starts down and the device is tried again with backoff",
             line=config.name, reason=str(error))


def _opened(config: LineConfig, port: IPort) -> None:
    if isinstance(port, PtyPort):
        where = f"{port.link} -> {port.slaveName}" if port.link else port.slaveName
        log.info(
            "line {line}: pty {where}; a local program plays the device there, "
            "e.g. socat -,raw,echo=0 {path},raw,echo=0",
            line=config.name,
            where=where,
            path=port.link or port.slaveName,
        )
    else:
        log.info("line {line}: device {device} at {settings}", line=config.name, device=port.name,
                 settings=port.settings.describe())


def _firstOpenOver(outcome: Optional[BaseException], config: LineConfig, device: SerialDevice,
                   since: Optional[float] = None) -> None:
    """
    A first open made off the reactor thread is over: said as one made in
    line is (a lock holder was already); one begun at start C{since} (its
    line said to start down when the start stopped waiting) says when it returned.
    """
    if device.closed:
        return
    if outcome is None:
        _opened(config, device.port)
    elif isinstance(outcome, (DeviceLocked, reopenpool.OpenWithdrawn)):
        pass
    elif since is not None:
        log.warn("line {line}: the open returned after {seconds:.0f} s: {reason}; the device is tried again with backoff",
                 line=config.name, reason=str(outcome), seconds=device.reopener.reactor.seconds() - since)
    else:
        _startsDown(config, outcome)


def seconds(value: float) -> str:
    """A time in a log line: C{300 s}; 0: C{off}."""
    return f"{value:g} s" if value else "off"


def makeLine(config: LineConfig, device: Any, clock: Any) -> Line:
    """The line of a configuration on its device, which now tells it what happens; nobody attached yet."""
    line = Line(config.name, device, clock=clock, configured=config.settings,
                restoreSettings=config.restoreSettings)
    line.notices = config.notices
    line.mode = config.mode
    line.maxClients = config.maxClients
    line.kickOld = config.kickOldUser
    line.banner = config.banner
    line.aliases = config.aliases
    line.breakSequences = dict(config.breakSequences)
    line.setCloseOn(config.closeOn)
    line.rights = config.rights
    line.backlogSize = config.backlog
    line.coalesce(config.coalesceMin, config.coalesceMax, config.coalesceOn)
    device.sink = line
    line.openString, line.closeString = config.openString, config.closeString
    line.modemAttached = {"dtr": config.dtr, "rts": config.rts}
    line.modemIdle = {"dtr": config.idleDtr, "rts": config.idleRts}
    # Right after open, before any data: nobody is attached yet.
    line.applyModemLines()
    if config.pace or config.paceLine:
        if isinstance(device, SerialDevice):
            device.setPace(config.pace, config.paceLine)
        else:
            log.warn("line {line}: pace and pace-line apply to local devices; {device} is not paced",
                     line=config.name, device=config.device.describe())
    line.waitForClient = any(spec.wait for spec in config.listeners)
    line.linger = config.onDemandLinger
    line.setOnDemand(config.opensOnDemand)
    line.setIdleString(config.idleTimeout, config.idleString)
    line.setInitCommand(config.initCommand, config.initTimeout, clock if IReactorProcess.providedBy(clock) else None,
                        config.initSpinMost, config.initSpinWindow)
    if line.up:
        line.initSoon()  # (opened already: run once its logs are attached)
    warnUnusualBaud(config)
    return line


def warnUnusualBaud(config: LineConfig, when: str = "") -> None:
    """A line's baud rate that is neither standard nor a known odd one (11520 for 115200) is warned of, as --check does."""
    unusual = unusualBaud(config.settings.baudrate)
    if unusual is not None:
        log.warn("line {line}: {problem}{when}", line=config.name, problem=unusual, when=when,
                 baud=config.settings.baudrate)


def retuneLine(line: Line, old: LineConfig, new: LineConfig) -> None:
    """
    A line's new settings applied to the running line (a reload): serial
    settings to the open device, break length, notices, mode, rights
    (a listener's too: ro, allow=), backlog, strings, modem lines and pacing.  Listeners and logs are the
    service's.
    """
    device: Any = line.device
    if new.settings != old.settings:
        line.configured = new.settings
        effective = line.applySettings(new.settings)
        log.info("line {line}: settings {wanted} (reload); in effect: {settings}", line=new.name,
                 wanted=new.settings.describe(), settings=effective.describe())
        if new.settings.baudrate != old.settings.baudrate:
            warnUnusualBaud(new, " (reload)")
    device.breakDuration = new.breakDuration
    line.restoreSettings = new.restoreSettings
    line.notices = new.notices
    line.maxClients = new.maxClients
    line.kickOld = new.kickOldUser
    line.banner = new.banner  # (for the sessions that start from now on)
    line.aliases = new.aliases  # (looked up by the next to name one: those on it stay)
    line.breakSequences = dict(new.breakSequences)
    if new.closeOn != old.closeOn:
        line.setCloseOn(new.closeOn)
    if new.rights != old.rights:
        line.applyRights(new.rights)
    if new.listeners != old.listeners:
        # ro and allow= taken away apply to those already connected too.
        applyListenerRights(line, new.listeners, old.listeners)
    # After the rights: made exclusive, the line's one writer is the first
    # who may still write (one made read-only by this reload kept write
    # over the others, and then nobody wrote).
    line.setMode(new.mode)
    line.backlogSize = new.backlog
    line.coalesce(new.coalesceMin, new.coalesceMax, new.coalesceOn)
    line.openString, line.closeString = new.openString, new.closeString
    modem = (new.dtr, new.rts, new.idleDtr, new.idleRts)
    if modem != (old.dtr, old.rts, old.idleDtr, old.idleRts):
        line.modemAttached = {"dtr": new.dtr, "rts": new.rts}
        line.modemIdle = {"dtr": new.idleDtr, "rts": new.idleRts}
        line.applyModemLines()
    if (new.pace, new.paceLine) != (old.pace, old.paceLine) and isinstance(device, SerialDevice):
        device.setPace(new.pace, new.paceLine)
    if new.opensOnDemand != old.opensOnDemand:
        # On: closed if no client wants it, its (new) linger from now; off: opened now, and kept open.
        log.info("line {line}: on-demand {state} (reload)", line=new.name, state="on" if new.opensOnDemand else "off")
        line.linger = new.onDemandLinger
        line.setOnDemand(new.opensOnDemand, lingering=True)
    if new.onDemandLinger != old.onDemandLinger:
        # (A device lingering open now closes that long after its last client left.)
        log.info("line {line}: on-demand-linger {seconds} (reload)", line=new.name, seconds=seconds(new.onDemandLinger))
        line.setLinger(new.onDemandLinger)
    if (new.idleTimeout, new.idleString) != (old.idleTimeout, old.idleString):
        # (Due that long after the device's last activity: at once if that is past.)
        log.info("line {line}: idle-timeout {seconds} (reload)", line=new.name, seconds=seconds(new.idleTimeout))
        line.setIdleString(new.idleTimeout, new.idleString)
    if (new.initCommand, new.initTimeout) != (old.initCommand, old.initTimeout):
        # (A run under way goes on as it was: the new one is run at the device's next coming up.)
        log.info("line {line}: init-command {command} (reload){when}", line=new.name,
                 command=repr(new.initCommand[:200]) if new.initCommand else "none",
                 when=": run the next time the device comes up" if new.initCommand else "")
    spin = (new.initSpinMost, new.initSpinWindow)
    if spin != (old.initSpinMost, old.initSpinWindow) and new.initCommand:
        # (The starts counted so far are kept: the next start is checked against the new bound.
        # Taken out with the command, it bounds nothing: not said.)
        log.info("line {line}: init-command starts at most {most} runs within {window} (reload)", line=new.name,
                 most=new.initSpinMost, window=f"{new.initSpinWindow:g} s")
    if (new.initCommand, new.initTimeout, *spin) != (old.initCommand, old.initTimeout, old.initSpinMost,
                                                     old.initSpinWindow):
        line.setInitCommand(new.initCommand, new.initTimeout, line.initReactor, *spin)


def linesStatus(lines: list[Line]) -> str:
    """One line for systemd's STATUS=: lines up, down (the first few by name), still opening and closed on demand, clients."""
    opening = [line.name for line in lines if not line.device.up and (line.device.downReason or "").startswith(OPENING)]
    resting = [line.name for line in lines if line.closedOnDemand]
    down = [line.name for line in lines if not line.device.up and line.name not in opening and line.name not in resting]
    # A console log is no one on the line; a watch-all watcher is one
    # client, on every line it watches (it was counted once a line: one
    # watcher of a 1000-line farm said "1000 client(s)").
    taps = [c for line in lines for c in line.clients if isinstance(c, LineTap)]
    clients = sum(len(line.clients) - len(line.logs) for line in lines) - len(taps) + len({id(t.watcher) for t in taps})
    text = f"{len(lines)} line(s), {len(lines) - len(down) - len(opening) - len(resting)} up, {len(down)} down"
    for names, what in ((down, ""), (opening, f", {len(opening)} opening")):
        text += f"{what} ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
    text += f", {len(resting)} closed (on demand)" if resting else ""
    return f"{text}; {clients} client(s)"


def fileRefused(name: str, part: Any, e: OSError) -> StartupError:
    """Line C{name}'s console log or LOG.typed (C{part}: its LogSpec, or the log), or its file: output, cannot be opened: C{e}, as the start says it."""
    if isinstance(part, (FileClient, PipeOpening, PtyClient)):
        return keyed(StartupError(f"line {name!r}: cannot open listener {part.spec.text!r}: {e.strerror or e}"), "listen")
    path = part.path if isinstance(part, LogSpec) else part.spec.path
    return keyed(StartupError(f"line {name!r}: cannot open log {e.filename or path!r}: {e.strerror}"), "log")
