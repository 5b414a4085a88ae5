"""
A reload's changes to a line that stays (L{serialgw.app.applying}): the
running L{Line} retuned (its device and sessions stay), the listeners and
log that went closed, the new log opened first and the new listeners
once the closed ones let go; after the reload, the links of the lines'
ptys that someone removed made again.

Apart from the service because it is only a reload's: the service opens
and closes whole lines, this changes one in place.
"""

from __future__ import annotations

import threading
import typing
from collections import defaultdict
from typing import Any, Optional, Sequence

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from serialgw.app import reload as plans
from serialgw.app.binding import StartupError
from serialgw.app.lines import retuneLine
from serialgw.app.listen import ListenerOpener
from serialgw.app.reload import listenerChanges
from serialgw.config.listenerspecs import ListenerSpec
from serialgw.config.specs import LineConfig
from serialgw.line.hub import Line

log = Logger()


# Seconds a reload's answer waits for its look at the ptys' links (see restoreLinks).
RESTORE_WAIT = 5.0

class LinkLooks:
    """
    A gateway's reloads' looks at the ptys' links, one thread at a time:
    while one has not returned (a file system that does not answer), a
    later reload's ptys wait here, the newest only, and that thread takes
    them up once it returns, leaving what is left of the older list (a
    later reload wins: a pty it closed, a line it removed, is not looked
    at, so its link is not made again).  C{lock} is held only to hand
    over, never across a file system call: the reactor's thread takes it
    too.  One per gateway (L{GatewayService.linkLooks}): process-wide,
    a look another gateway in the process left hung (a test's that
    failed) held this one's reloads.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # A thread is at work (under lock).
        self.running = False
        # The newest reload's ptys, waiting for that thread (under lock).
        self.waiting: Optional[list[tuple[str, Any, bool]]] = None


class RetunedGateway(typing.Protocol):
    """
    What a reload's retuning uses of the gateway (L{serialgw.app.service.GatewayService}):
    declared here, since the service imports this module.
    """

    reactor: Any
    running: int
    lines: dict[str, Line]
    listeners: ListenerOpener
    linkLooks: LinkLooks
    # What each line opened, by what opened it; the line being opened; retuned lines whose new log is open.
    _keyed: dict[str, list[tuple[Any, tuple[str, Any]]]]
    _opening: Optional[str]
    _logsOpened: set[str]

    def placed(self, name: str, key: Optional[str], message: str) -> str: ...
    def _listen(self, line: Line, config: LineConfig, spec: ListenerSpec) -> None: ...
    def _openLog(self, line: Line, config: LineConfig) -> None: ...
    def _closeKeyed(self, name: str, key: Any) -> list[Any]: ...


def restoreLinks(service: RetunedGateway, result: Any) -> Any:
    """
    After a reload, the links of the lines' ptys (pty: devices and
    listeners) that someone removed are made again: a program could not
    find its pty again until a restart.  Looked at (readlink, and the
    link made) by a thread of its own where the reactor has threads: a
    directory on a mount that hangs holds no line; the reload's answer
    waits for it RESTORE_WAIT s at most.  While one has not returned, a
    later reload's ptys are looked at by it once it does, in place of
    what it had left (see L{LinkLooks}; said).
    """
    ptys: list[tuple[str, Any, bool]] = []
    for line in list(service.lines.values()):
        port: Any = getattr(line.device, "port", None)
        if hasattr(port, "restoreLink"):
            ptys.append((line.name, port, True))
        ptys += [(line.name, client, False) for client in list(line.clients) if hasattr(client, "restoreLink")]
    reactor: Any = service.reactor
    threaded = IReactorThreads.providedBy(reactor)
    looks: LinkLooks = service.linkLooks
    with looks.lock:
        if looks.running:
            # (Empty too: what the earlier reload listed is not looked at.)
            looks.waiting = ptys
            if ptys:
                log.warn("reload: the look at the ptys' links begun by an earlier reload has not returned (a file "
                         "system that does not answer?); this reload's is made by it once it does")
            return result
        if not ptys:
            return result
        if threaded:
            looks.running = True
    if not threaded:
        _said([(name, pty, isPort, pty.restoreLink()) for name, pty, isPort in ptys])
        return result
    done: defer.Deferred[Any] = defer.Deferred()

    def look() -> None:
        todo: Optional[list[tuple[str, Any, bool]]] = ptys
        first = True
        while todo is not None:
            found: list[tuple[str, Any, bool, Optional[str]]] = []
            for name, pty, isPort in todo:
                with looks.lock:
                    if looks.waiting is not None:
                        break  # a later reload's list: it wins
                try:
                    what = pty.restoreLink()
                except Exception as e:  # (never the end of the looks)
                    what = f"cannot be looked at: {e}"
                found.append((name, pty, isPort, what))
            # Done (or the next list taken) before the reactor hears of it:
            # a reload its answer lets through at once must find this
            # thread gone, not "not returned" (its ptys left unlooked at
            # while this thread, preempted here, had nothing left to do).
            with looks.lock:
                todo, looks.waiting = looks.waiting, None
                if todo is None:
                    looks.running = False
            reactor.callFromThread(over if first else _said, found)
            first = False

    def over(found: list[tuple[str, Any, bool, Optional[str]]]) -> None:
        _said(found)
        if not done.called:
            timer.cancel()
            done.callback(result)

    def late() -> None:
        log.warn("reload: the look at the ptys' links has not returned in {wait} s (a file system that does not "
                 "answer?); what it finds is said when it returns", wait=f"{RESTORE_WAIT:g}")
        done.callback(result)

    timer = service.reactor.callLater(RESTORE_WAIT, late)
    try:
        threading.Thread(target=look, name="serialgw reload's look at pty links", daemon=True).start()
    except RuntimeError:  # (no thread to be had: looked at here, as before)
        with looks.lock:
            looks.running = False
        timer.cancel()
        _said([(name, pty, isPort, pty.restoreLink()) for name, pty, isPort in ptys])
        return result
    return done


def _said(found: list[tuple[str, Any, bool, Optional[str]]]) -> None:
    """What the look at each pty's link did (made again, or what is there instead), said on the reactor's thread."""
    for name, pty, isPort, done in found:
        if done is None:
            continue
        if isPort:
            log.warn("{line}: its pty's link {link!r} {done}", line=name, link=pty.link, done=done)
        else:
            log.warn("{line}: {peer}: its link {link!r} {done}", line=name, peer=pty.peer, link=pty.link, done=done)


def retune(service: RetunedGateway, old: LineConfig, new: LineConfig, written: defaultdict[str, set[str]],
           later: Sequence[ListenerSpec] = ()) -> list[Any]:
    """
    Apply a line's new configuration to the running line: its device
    and its sessions stay.  Listeners and a log that went are closed
    here (what to wait for), but those C{later} (moved to another
    address: closed once the new ones listen); a new log is opened
    here, first, and new listeners by L{reopenParts}.
    """
    name = new.name
    line = service.lines[name]
    retuneLine(line, old, new)
    service.listeners.resign(name, new.signature)
    service.listeners.retire(name, new.listeners)
    waits: list[Any] = []
    if new.log != old.log and new.log is not None and not written[new.log.path] - {name}:
        # The new log is opened before the old one closes (unless another
        # line still writes its path: C{written}): output while the reload
        # waits for what it closes (a dial-out, up to dialCloseGrace) is in one of them.
        service._logsOpened.add(name)
        _openNewLog(service, line, new)
        written[new.log.path].add(name)
    if new.log != old.log and old.log is not None:
        waits += service._closeKeyed(name, ("log", old.log))
        if not any(consoleLog.spec.path == old.log.path for consoleLog in line.logs):
            written[old.log.path].discard(name)
    waits += [wait for spec in listenerChanges(old, new)[0] if spec not in later
              for wait in service._closeKeyed(name, spec)]
    service._keyed[name] = plans.rekeyed(service._keyed.get(name, []), old, new)  # (pty: listeners kept in place)
    if line.waitForClient and not any(spec.wait for spec in new.listeners):
        line.waitForClient = False
        if service.running:
            line.device.start()
    return waits


def reopenParts(service: RetunedGateway, old: LineConfig, new: LineConfig,
                fresh: list[ListenerSpec]) -> list[tuple[ListenerSpec, StartupError]]:
    """A retuned line's new log and listeners; those that fail, and why (the rest stays)."""
    line = service.lines[new.name]
    if new.log != old.log and new.log is not None and new.name not in service._logsOpened:
        _openNewLog(service, line, new)
    service._logsOpened.discard(new.name)
    service._opening = new.name
    failed: list[tuple[ListenerSpec, StartupError]] = []
    try:
        for spec in fresh:
            try:
                service._listen(line, new, spec)
            except StartupError as e:
                failed.append((spec, e))
                continue
            for key, (kind, thing) in service._keyed.get(new.name, []):
                if key == spec and kind == "dialer" and service.running:
                    thing.startService()
    finally:
        service._opening = None
    return failed


def _openNewLog(service: RetunedGateway, line: Line, config: LineConfig) -> None:
    """A retuned line's new console log; one that cannot be opened is logged, the line goes on."""
    service._opening = config.name
    try:
        service._openLog(line, config)
    except StartupError as e:
        log.error("reload: {reason}; the line runs without it", reason=service.placed(config.name, e.key, str(e)))
    finally:
        service._opening = None
